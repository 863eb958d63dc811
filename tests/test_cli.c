/* tools/cli.c: --version, signals (what is caught, what stays ignored, SIGXFSZ), the safe small
 * outputs (cli_create/cli_commit/cli_write_json) and their cleanup on cli_die and on a signal.
 * Each case that ends a process runs in a forked child; the parent checks its status and the
 * directory it wrote into. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "tools/cli.h"

/* Entries of dir other than . and .., joined by spaces into buf ("" when empty). */
static const char *entries(const char *dir, char *buf, size_t size)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    buf[0] = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? " " : "", e->d_name);
    closedir(d);
    return buf;
}

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Run fn(arg) in a child with default signal dispositions and stderr to /dev/null; returns the
 * wait status. */
static int in_child(void (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        freopen("/dev/null", "w", stderr);
        fn(arg);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static char *g_argv0 = "qforge-test";

static void init(void)
{
    char *argv[] = {g_argv0, NULL};
    cli_init(1, argv);
}

/* The VERSION file's first line (the Makefile compiles it into cli.c). */
static const char *file_version(void)
{
    static char v[64];
    char *path = join(tu_root(), "VERSION");
    size_t n;
    char *text = tu_read_file(path, &n);
    cr_assert_not_null(text, "cannot read %s", path);
    snprintf(v, sizeof v, "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
    free(path);
    return v;
}

Test(cli, version_and_prog)
{
    cr_assert_str_eq(cli_version(), file_version());
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        char *argv[] = {"/usr/bin/qforge-x", "in.gguf", "--version", NULL};
        cli_init(3, argv);
        _exit(9); /* not reached: --version exits 0 */
    }
    close(fds[1]);
    char out[256] = {0};
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    cr_assert_gt(n, 0);
    char want[128];
    snprintf(want, sizeof want, "qforge-x (qforge) %s\n", file_version());
    cr_assert_str_eq(out, want);
    /* after "--", --version is an argument like any other */
    char *argv2[] = {"qforge-y", "--", "--version", NULL};
    cli_init(3, argv2);
    cr_assert_str_eq(cli_prog(), "qforge-y");
}

Test(cli, strerror_explains_efbig)
{
    char want[200];
    snprintf(want, sizeof want, "%s (over the file size limit, ulimit -f, or the file system's largest file)",
             strerror(EFBIG));
    cr_assert_str_eq(cli_strerror(EFBIG), want);
    cr_assert_str_eq(cli_strerror(ENOSPC), strerror(ENOSPC));
    cr_assert_str_eq(cli_strerror(ENOENT), strerror(ENOENT));
}

Test(cli, create_commit_writes_through_a_temp)
{
    char *dir = tu_mkdtemp(), *path = join(dir, "out.json"), ls[512];
    init();
    FILE *f = cli_create(path);
    cr_assert_not_null(f);
    cr_assert_eq(fputs("{}", f) >= 0, 1);
    /* while open: only the temp exists, named after the output */
    entries(dir, ls, sizeof ls);
    cr_assert(!strncmp(ls, ".out.json.qforge-tmp-", 21) && strlen(ls) == 27 && !strchr(ls, ' '), "%s", ls);
    cli_commit(f, path);
    cr_assert_str_eq(entries(dir, ls, sizeof ls), "out.json");
    size_t n;
    char *got = tu_read_file(path, &n);
    cr_assert_str_eq(got, "{}");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    mode_t um = umask(0);
    umask(um);
    cr_assert_eq(st.st_mode & 0777, 0666 & ~um, "mode %o", st.st_mode & 0777);
    free(got);
    free(path);
    free(dir);
}

Test(cli, write_json_equals_json_dump_file)
{
    char *dir = tu_mkdtemp(), *a = join(dir, "a.json"), *b = join(dir, "b.json");
    json_t *j = json_pack("{s:i, s:[f, s], s:n}", "n", 3, "x", 1.5, "\xc3\xa9t\xc3\xa9", "z");
    cr_assert_not_null(j);
    init();
    cli_write_json(j, a, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    cr_assert_eq(json_dump_file(j, b, JSON_INDENT(1) | JSON_ENSURE_ASCII), 0);
    size_t na, nb;
    char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(da, db, na), 0);
    json_decref(j);
    free(da);
    free(db);
    free(a);
    free(b);
    free(dir);
}

static void die_with_temp(const char *path)
{
    init();
    FILE *f = cli_create(path);
    fputs("partial", f);
    fflush(f);
    cli_die(CLI_BAD_INPUT, path, "test");
}

Test(cli, die_removes_the_temp)
{
    char *dir = tu_mkdtemp(), *path = join(dir, "out.bin"), ls[512];
    int st = in_child(die_with_temp, path);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == CLI_BAD_INPUT, "status %d", st);
    cr_assert_str_eq(entries(dir, ls, sizeof ls), "");
    free(path);
    free(dir);
}

/* Past RLIMIT_FSIZE: write() fails with EFBIG instead of a SIGXFSZ kill; exit 3, nothing left. */
static void over_size_limit(const char *path)
{
    struct rlimit rl = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &rl);
    init();
    FILE *f = cli_create(path);
    static char buf[64 << 10];
    fwrite(buf, 1, sizeof buf, f);
    cli_commit(f, path);
}

Test(cli, size_limit_is_exit_3_not_sigxfsz)
{
    char *dir = tu_mkdtemp(), *path = join(dir, "big.bin"), ls[512];
    int st = in_child(over_size_limit, path);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == CLI_IO, "status %d (signal %d)", st,
              WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_str_eq(entries(dir, ls, sizeof ls), "");
    free(path);
    free(dir);
}

static int g_sig;

static void signal_mid_write(const char *path)
{
    init();
    FILE *f = cli_create(path);
    fputs("partial", f);
    fflush(f);
    cli_set_temp(path); /* slot 0 too (the GGUF writer's temp) */
    raise(g_sig);
    _exit(0); /* not reached */
}

Test(cli, caught_signals_remove_temps_and_end_by_the_signal)
{
    const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGXCPU};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        char *dir = tu_mkdtemp(), *path = join(dir, "out.bin"), ls[512];
        cr_assert_eq(tu_write_file(path, "old", 3), 0); /* cli_set_temp's file: removed too */
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        g_sig = sigs[i];
        int st = in_child(signal_mid_write, path);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i], "signal %d: status %d", sigs[i], st);
        cr_assert_str_eq(entries(dir, ls, sizeof ls), "", "signal %d left: %s", sigs[i], ls);
        free(path);
        free(dir);
    }
}

/* nohup and a script's background jobs: a signal ignored on entry stays ignored. */
static void ignored_on_entry(const char *unused)
{
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    init();
    raise(SIGHUP);
    raise(SIGINT);
    exit(7);
}

Test(cli, signals_ignored_on_entry_stay_ignored)
{
    int st = in_child(ignored_on_entry, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %d", st);
}
