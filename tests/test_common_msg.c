/* common/qf_msg: the one-line message formatter and the check macro every library wraps. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#include "common/qf_msg.h"

Test(msg, format_cleans_control_bytes)
{
    char m[64];
    qf_msg_format(m, sizeof m, "tensor '%s': %d", "a\nb\x1b[31m\x7f", 7);
    cr_assert_str_eq(m, "tensor 'a?b?[31m?': 7");
    qf_msg_format(m, sizeof m, "tab\there, UTF-8 kept: \xC3\xA9");
    cr_assert_str_eq(m, "tab?here, UTF-8 kept: \xC3\xA9");
    qf_msg_format(NULL, 64, "ignored %d", 1); /* no buffer: nothing happens */
    m[0] = 'x';
    qf_msg_format(m, 0, "ignored");
    cr_assert_eq(m[0], 'x');
}

Test(msg, cut_to_fit)
{
    char m[8];
    memset(m, 'z', sizeof m);
    qf_msg_format(m, sizeof m, "%s", "0123456789");
    cr_assert_str_eq(m, "0123456");
}

static void with_prefix(char *m, size_t size, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void with_prefix(char *m, size_t size, const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(m, size, prefix, fmt, ap);
    va_end(ap);
}

Test(msg, prefix)
{
    char m[16];
    with_prefix(m, sizeof m, "f.st", "bad %s", "x");
    cr_assert_str_eq(m, "f.st: bad x");
    with_prefix(m, sizeof m, NULL, "bad %s", "x");
    cr_assert_str_eq(m, "bad x");
    with_prefix(m, sizeof m, "a\rb", "c");
    cr_assert_str_eq(m, "a?b: c");
    /* a prefix that does not fit is left out rather than crowding out the message */
    with_prefix(m, sizeof m, "a/very/long/path/name", "what");
    cr_assert_str_eq(m, "what");
    with_prefix(m, sizeof m, "12345678901234", "what"); /* "12345678901234: " needs 17 bytes */
    cr_assert_str_eq(m, "what");
    with_prefix(m, sizeof m, "123456789012", "what"); /* fits: the message is cut instead */
    cr_assert_str_eq(m, "123456789012: w");
}

Test(msg, clean)
{
    char m[] = "ok\x01\x1f \x7f\x80";
    qf_msg_clean(m);
    cr_assert_str_eq(m, "ok?? ?\x80");
    qf_msg_clean(NULL);
}

/* A library's fail function and check macro, as each library defines them. */
typedef enum { T_OK = 0, T_ERR_ARG = 3 } t_error;
static t_error t_fail(char *msg, t_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static t_error t_fail(char *msg, t_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, 32, NULL, fmt, ap);
    va_end(ap);
    return e;
}
#define T_FAIL_IF(cond, msg, code, ...) QF_FAIL_IF(cond, t_fail, msg, code, __VA_ARGS__)

static int reached;
static t_error checked(int n, char *msg)
{
    T_FAIL_IF(n < 0, msg, T_ERR_ARG, "n is %d", n);
    T_FAIL_IF(n > 9, msg, T_ERR_ARG, "n too large");
    reached++;
    return T_OK;
}

Test(msg, fail_if_macro)
{
    char m[32] = "";
    cr_assert_eq(checked(-2, m), T_ERR_ARG);
    cr_assert_str_eq(m, "n is -2");
    cr_assert_eq(checked(10, m), T_ERR_ARG);
    cr_assert_str_eq(m, "n too large");
    cr_assert_eq(checked(10, NULL), T_ERR_ARG);
    cr_assert_eq(reached, 0);
    m[0] = 0;
    cr_assert_eq(checked(3, m), T_OK);
    cr_assert_eq(reached, 1);
    cr_assert_str_eq(m, "");
}
