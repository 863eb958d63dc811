/* The layer's linear weights in true-sequential GPTQ groups (Llama). The one table the GPTQ
 * driver and the importance pass read; it will come from the architecture table (arch/). */
#include "pipeline/pl_internal.h"

static const pl_group k_groups[] = {
    {RT_HOOK_ATTN_QKV, {"attn_q", "attn_k", "attn_v"}},
    {RT_HOOK_ATTN_OUT, {"attn_output", NULL, NULL}},
    {RT_HOOK_FFN_GATE_UP, {"ffn_gate", "ffn_up", NULL}},
    {RT_HOOK_FFN_DOWN, {"ffn_down", NULL, NULL}},
};

const pl_group *pl_layer_groups(size_t *n)
{
    *n = sizeof k_groups / sizeof k_groups[0];
    return k_groups;
}
