/* Error names, message formatting and the mapping of the other libraries' codes. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "common/qf_msg.h"
#include "pipeline/pl_internal.h"

const char *pl_strerror(pl_error e)
{
    static const char *const names[PL_ERR_COUNT_] = {
        [PL_OK] = "success",
        [PL_ERR_NOMEM] = "out of memory",
        [PL_ERR_IO] = "input/output error",
        [PL_ERR_FORMAT] = "malformed input",
        [PL_ERR_MODEL] = "model not supported",
        [PL_ERR_ARG] = "bad argument",
        [PL_ERR_BUDGET] = "over the memory budget",
        [PL_ERR_STOPPED] = "stopped by the caller",
        [PL_ERR_INTERNAL] = "internal error",
    };
    return (unsigned)e < PL_ERR_COUNT_ ? names[e] : "unknown error";
}

pl_error pl_fail(char *msg, pl_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, PL_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
}

double pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

pl_error pl_from_rt(rt_error e)
{
    switch (e) {
    case RT_OK: return PL_OK;
    case RT_ERR_NOMEM: return PL_ERR_NOMEM;
    case RT_ERR_IO: return PL_ERR_IO;
    case RT_ERR_FORMAT: return PL_ERR_FORMAT;
    case RT_ERR_ARG: return PL_ERR_ARG;
    case RT_ERR_HOOK: return PL_ERR_STOPPED;
    case RT_ERR_BUDGET: return PL_ERR_BUDGET;
    default: return PL_ERR_MODEL;
    }
}

pl_error pl_from_inp(inp_error e)
{
    switch (e) {
    case INP_OK: return PL_OK;
    case INP_ERR_NOMEM: return PL_ERR_NOMEM;
    case INP_ERR_IO: return PL_ERR_IO;
    case INP_ERR_ARG: return PL_ERR_ARG;
    case INP_ERR_FORMAT: case INP_ERR_LIMIT: return PL_ERR_FORMAT;
    default: return PL_ERR_MODEL;
    }
}

pl_error pl_from_gguf(gguf_error e)
{
    switch (e) {
    case GGUF_OK: return PL_OK;
    case GGUF_ERR_NOMEM: return PL_ERR_NOMEM;
    case GGUF_ERR_IO: return PL_ERR_IO;
    case GGUF_ERR_ARG: return PL_ERR_ARG;
    case GGUF_ERR_STATE: return PL_ERR_INTERNAL;
    default: return PL_ERR_FORMAT;
    }
}

pl_error pl_from_lq(lq_error e)
{
    switch (e) {
    case LQ_OK: return PL_OK;
    case LQ_ERR_NOMEM: return PL_ERR_NOMEM;
    case LQ_ERR_TYPE: case LQ_ERR_SHAPE: return PL_ERR_ARG;
    default: return PL_ERR_MODEL;
    }
}
