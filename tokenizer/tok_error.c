#include "tokenizer/tok_internal.h"

#include <stdarg.h>
#include <stdio.h>
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

void tok_msg_clean_(char *msg)
{
    for (unsigned char *p = (unsigned char *)msg; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void tok_set_msg_(char *msg, const char *fmt, ...)
{
    if (!msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, TOK_MSG_SIZE, fmt, ap);
    va_end(ap);
    tok_msg_clean_(msg);
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
