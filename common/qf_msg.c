/* common — one-line error messages (see qf_msg.h). */
#include "common/qf_msg.h"

#include <stdio.h>
#include <string.h>

void qf_msg_clean(char *msg)
{
    for (unsigned char *p = (unsigned char *)msg; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void qf_msg_vformat(char *msg, size_t size, const char *prefix, const char *fmt, va_list ap)
{
    if (!msg || size == 0)
        return;
    size_t n = 0;
    if (prefix) {
        const int k = snprintf(msg, size, "%s: ", prefix);
        n = k > 0 && (size_t)k < size ? (size_t)k : 0; /* a prefix that does not fit is left out */
    }
    vsnprintf(msg + n, size - n, fmt, ap);
    qf_msg_clean(msg);
}

void qf_msg_format(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, size, NULL, fmt, ap);
    va_end(ap);
}
