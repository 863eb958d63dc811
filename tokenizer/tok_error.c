#include "common/qf_msg.h"
#include "tokenizer/tok_internal.h"

const char *tok_strerror(tok_error e)
{
    static const char *const names[TOK_ERR_COUNT_] = {
        [TOK_OK] = "ok",
        [TOK_ERR_IO] = "I/O error",
        [TOK_ERR_NOMEM] = "out of memory",
        [TOK_ERR_FORMAT] = "malformed file",
        [TOK_ERR_LIMIT] = "size limit exceeded",
        [TOK_ERR_MODEL] = "unusable vocabulary",
        [TOK_ERR_UNSUPPORTED] = "unsupported tokenizer",
        [TOK_ERR_ARG] = "invalid argument",
    };
    return (unsigned)e < TOK_ERR_COUNT_ ? names[e] : "unknown error";
}

void tok_msg_clean_(char *msg) { qf_msg_clean(msg); }
