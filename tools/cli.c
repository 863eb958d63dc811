#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef QFORGE_VERSION
#define QFORGE_VERSION "unknown" /* the Makefile passes the VERSION file's contents */
#endif

static const char *g_prog = "qforge";

/* Temp files that must not survive a signal or cli_die: slot 0 is cli_set_temp's, the others
 * cli_create's. Written before the handler can see them (the flag is set last); the handler only
 * reads them (unlink is async-signal-safe). */
#define N_TEMPS 4
static char g_temp[N_TEMPS][4096];
static volatile sig_atomic_t g_have_temp[N_TEMPS];
static FILE *g_file[N_TEMPS]; /* cli_create's stream in each slot */

/* The signals a run can receive in normal use (terminal gone, Ctrl-C, Ctrl-\, a closed pipe,
 * kill, ulimit -t): each removes the temp files, then ends the process by the same signal. */
static const int g_caught[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGXCPU};

static void remove_temps(void)
{
    for (int i = 0; i < N_TEMPS; i++)
        if (g_have_temp[i])
            unlink(g_temp[i]);
}

static void on_signal(int sig)
{
    remove_temps();
    signal(sig, SIG_DFL);
    raise(sig); /* blocked until the handler returns, then fatal */
}

const char *cli_version(void) { return QFORGE_VERSION; }

void cli_init(int argc, char **argv)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "qforge";
    const char *slash = strrchr(prog, '/');
    g_prog = slash ? slash + 1 : prog;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (!strcmp(argv[i], "--version")) {
            printf("%s (qforge) %s\n", g_prog, QFORGE_VERSION);
            exit(fflush(stdout) == 0 ? CLI_OK : CLI_IO);
        }
    /* Past ulimit -f, write() fails with EFBIG when SIGXFSZ is ignored; the default would kill
     * the process before it can remove its temp file. */
    signal(SIGXFSZ, SIG_IGN);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof g_caught / sizeof *g_caught; i++)
        sigaddset(&sa.sa_mask, g_caught[i]);
    for (size_t i = 0; i < sizeof g_caught / sizeof *g_caught; i++) {
        /* a signal ignored on entry stays ignored: nohup (SIGHUP), a script's background job (SIGINT) */
        if (sigaction(g_caught[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(g_caught[i], &sa, NULL);
    }
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
    g_have_temp[0] = 0;
    if (path && strlen(path) < sizeof g_temp[0]) {
        memcpy(g_temp[0], path, strlen(path) + 1);
        g_have_temp[0] = 1;
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
    remove_temps();
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

const char *cli_strerror(int err)
{
    static char buf[160];
    if (err != EFBIG) /* ENOSPC and EDQUOT say what they are */
        return strerror(err);
    snprintf(buf, sizeof buf, "%s (over the file size limit, ulimit -f, or the file system's largest file)",
             strerror(err));
    return buf;
}

FILE *cli_create(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        cli_die(CLI_USAGE, path, "names a directory, not a file");
    int slot = 1;
    while (slot < N_TEMPS && g_file[slot])
        slot++;
    const int dlen = slash ? (int)(slash - path) : 0;
    const int n = slot == N_TEMPS ? -1
                                  : snprintf(g_temp[slot], sizeof g_temp[slot], "%.*s%s.%s.qforge-tmp-XXXXXX", dlen,
                                             path, slash ? "/" : "", base);
    if (n < 0 || (size_t)n >= sizeof g_temp[slot])
        cli_die(CLI_INTERNAL, path, "too many open outputs or too long a path");
    const int fd = mkostemp(g_temp[slot], O_CLOEXEC);
    if (fd < 0)
        cli_die(CLI_IO, path, "cannot create a temp file beside it: %s", cli_strerror(errno));
    g_have_temp[slot] = 1;
    /* mkstemp makes 0600; give the file the mode a plain create would */
    const mode_t um = umask(0);
    umask(um);
    FILE *f = fchmod(fd, 0666 & ~um) == 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        const int err = errno;
        close(fd);
        cli_die(CLI_IO, path, "cannot create: %s", cli_strerror(err));
    }
    g_file[slot] = f;
    return f;
}

void cli_commit(FILE *f, const char *path)
{
    int slot = 1;
    while (slot < N_TEMPS && g_file[slot] != f)
        slot++;
    if (!f || slot == N_TEMPS)
        cli_die(CLI_INTERNAL, path, "cli_commit: not a stream from cli_create");
    errno = 0;
    int err = fflush(f) != 0 || ferror(f) ? (errno ? errno : EIO) : 0;
    if (!err && fsync(fileno(f)) != 0)
        err = errno;
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    g_file[slot] = NULL;
    if (!err && rename(g_temp[slot], path) != 0)
        err = errno;
    if (err)
        cli_die(CLI_IO, path, "write error: %s", cli_strerror(err)); /* removes the temp file */
    g_have_temp[slot] = 0;
    /* make the rename durable (best effort: some file systems cannot fsync a directory) */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1, slash ? path : ".");
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

void cli_write_json(const json_t *j, const char *path, size_t flags)
{
    FILE *f = cli_create(path);
    errno = 0;
    if (json_dumpf(j, f, flags) != 0)
        cli_die(CLI_IO, path, "write error: %s", cli_strerror(errno ? errno : EIO));
    cli_commit(f, path);
}

/* A bundled file: ../DIR/NAME next to bin/, or PREFIX/share/qforge/NAME. */
const char *cli_bundled(const char *dir, const char *name, const char *opt)
{
    char exe[4096], path[8400], real[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = len > 0 ? (exe[len] = 0, strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = 0;
        const char *fmt[2] = {"%s/../%s/%s", "%s/../share/qforge/%.0s%s"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, fmt[i], exe, dir, name);
            if (access(path, R_OK) == 0)
                return strdup(realpath(path, real) ? real : path);
        }
    }
    cli_die(CLI_IO, NULL, "the bundled %s is not found next to the executable; use %s FILE", name, opt);
}
