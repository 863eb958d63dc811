/* qforge-perplexity's closing KL-divergence block on stdout, in llama-perplexity's layout
 * (scripts that read llama-perplexity's output read ours). */
#ifndef QFORGE_TOOLS_KLD_LINES_H
#define QFORGE_TOOLS_KLD_LINES_H

#include "runtime/perplexity.h"

void kld_print(const rt_kld_stats *s);

#endif
