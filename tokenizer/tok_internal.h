/* tokenizer internals shared by its files. Not part of the public contract. */
#ifndef QFORGE_TOK_INTERNAL_H
#define QFORGE_TOK_INTERNAL_H

#include "tokenizer/tok_error.h"

/* Defense in depth for one-line messages: control bytes left in msg become '?'. */
void tok_msg_clean_(char *msg);

#endif
