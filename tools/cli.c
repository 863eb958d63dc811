#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "qforge";
/* Written before the handler can see it; read by the handler only (async-signal-safe unlink). */
static char g_temp[4096];
static volatile sig_atomic_t g_have_temp;

static void on_signal(int sig)
{
    if (g_have_temp)
        unlink(g_temp);
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_init(const char *prog)
{
    const char *slash = strrchr(prog, '/');
    g_prog = slash ? slash + 1 : prog;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_passive_omp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return; /* the user's choice */
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* no /proc: run on with libgomp's default */
}

const char *cli_prog(void) { return g_prog; }

void cli_set_temp(const char *path)
{
    g_have_temp = 0;
    if (path && strlen(path) < sizeof g_temp) {
        memcpy(g_temp, path, strlen(path) + 1);
        g_have_temp = 1;
    }
}

static void vmessage(const char *file, const char *fmt, va_list ap)
{
    fflush(stdout);
    if (file)
        fprintf(stderr, "%s: %s: ", g_prog, file);
    else
        fprintf(stderr, "%s: ", g_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_die(int code, const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(file, fmt, ap);
    va_end(ap);
    if (g_have_temp)
        unlink(g_temp);
    exit(code);
}

void cli_warn(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "%s: warning: ", g_prog);
    if (file)
        fprintf(stderr, "%s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_gguf(gguf_error e)
{
    switch (e) {
    case GGUF_OK: return CLI_OK;
    case GGUF_ERR_IO: return CLI_IO;
    case GGUF_ERR_NOMEM: case GGUF_ERR_STATE: return CLI_INTERNAL;
    case GGUF_ERR_ARG: return CLI_USAGE;
    default: return CLI_BAD_INPUT;
    }
}

int cli_exit_src(inp_error e)
{
    switch (e) {
    case INP_OK: return CLI_OK;
    case INP_ERR_IO: return CLI_IO;
    case INP_ERR_NOMEM: return CLI_INTERNAL;
    case INP_ERR_ARG: return CLI_USAGE;
    default: return CLI_BAD_INPUT;
    }
}

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

long cli_parse_long(const char *opt, const char *val, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || !*val || *end || errno || v < lo || v > hi)
        cli_die(CLI_USAGE, NULL, "%s expects a whole number from %ld to %ld, got '%s'", opt, lo, hi,
                val ? val : "");
    return v;
}

uint64_t cli_parse_size(const char *opt, const char *val)
{
    static const char units[] = "KMGT";
    char *end = NULL;
    errno = 0;
    const unsigned long long v = val && *val >= '0' && *val <= '9' ? strtoull(val, &end, 10) : 0;
    int shift = -1;
    if (end && !errno) {
        const char *s = end, *u = *s ? strchr(units, toupper((unsigned char)*s)) : NULL;
        shift = 0;
        if (u) { /* K, M, G, T; optionally followed by "i" */
            shift = 10 * (int)(u - units + 1);
            if (*++s == 'i')
                s++;
        }
        if (*s == 'B')
            s++;
        if (*s)
            shift = -1;
    }
    if (shift < 0 || (shift && v > (UINT64_MAX >> shift)))
        cli_die(CLI_USAGE, NULL, "%s expects a size such as 512M, 4G or 4GiB (0: no limit), got '%s'", opt,
                val ? val : "");
    return (uint64_t)v << shift;
}

uint64_t cli_phys_memory(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

char *cli_bytes(double n, char buf[32])
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && u < 4) {
        n /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%.0f B", n);
    else
        snprintf(buf, 32, "%.1f %s", n, unit[u]);
    return buf;
}

/* ---- pipeline errors (added with the pipeline library) ---- */

int cli_exit_pl(pl_error e)
{
    switch (e) {
    case PL_OK: return CLI_OK;
    case PL_ERR_ARG: return CLI_USAGE;
    case PL_ERR_IO: return CLI_IO;
    case PL_ERR_NOMEM: case PL_ERR_STOPPED: case PL_ERR_INTERNAL: return CLI_INTERNAL;
    default: return CLI_BAD_INPUT;
    }
}

/* ---- shared by the pipeline tools (added with the pipeline library) ---- */

const char *cli_input_file(const char *path, const inp_source *s)
{
    for (size_t i = 0; path && i < inp_n_files(s); i++)
        if (cli_same_file(path, inp_file(s, i)))
            return inp_file(s, i);
    return NULL;
}

char *cli_shape(uint32_t n_dims, const int64_t *ne, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < n_dims && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)ne[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

char *cli_sci(double v, char buf[32])
{
    if (v == 0 || !isfinite(v)) {
        snprintf(buf, 32, "%g", v);
        return buf;
    }
    int ex = (int)floor(log10(fabs(v)));
    double m = v / pow(10.0, ex);
    if (fabs(m) >= 9.95) { /* rounds up to 10.0 */
        m /= 10;
        ex++;
    }
    snprintf(buf, 32, "%.1fe%d", m, ex);
    return buf;
}
