/* common — one-line error messages into a caller's buffer, shared by every library.
 *
 * Each library keeps its own error enum and message size, and wraps these in a fail function
 * `code fail(char *msg, code e, const char *fmt, ...)` that formats and returns e, plus a
 * one-line check macro over QF_FAIL_IF (e.g. GGUF_FAIL_IF, LQ_FAIL_IF, INP_FAIL_IF). */
#ifndef QFORGE_QF_MSG_H
#define QFORGE_QF_MSG_H

#include <stdarg.h>
#include <stddef.h>

/* Writes "PREFIX: " (when prefix is not NULL and fits) and then fmt into msg[size], cut to
 * fit, and makes it one safe line: every control byte (< 0x20, 0x7f) that reached it from a
 * name or string in a file becomes '?'. Nothing happens when msg is NULL or size is 0. */
void qf_msg_vformat(char *msg, size_t size, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
void qf_msg_format(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Control bytes (< 0x20, 0x7f) of the NUL-terminated msg become '?'; NULL is ignored. */
void qf_msg_clean(char *msg);

/* One-line check: if cond holds, return fail(msg, code, fmt, ...) from the calling function. */
#define QF_FAIL_IF(cond, fail, msg, code, ...)                                                  \
    do {                                                                                        \
        if (cond)                                                                               \
            return fail((msg), (code), __VA_ARGS__);                                            \
    } while (0)

#endif
