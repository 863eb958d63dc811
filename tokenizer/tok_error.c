#include "common/qf_msg.h"
#include "tokenizer/tok_internal.h"

#include <stdarg.h>
#include <stdlib.h>

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

void tok_set_msg_(char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, msg ? TOK_MSG_SIZE : 0, NULL, fmt, ap);
    va_end(ap);
}

bool tok_ivec_push_(tok_ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 256;
        int32_t *p = realloc(a->v, c * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = c;
    }
    a->v[a->n++] = x;
    return true;
}
