/* The small shared helper of the qforge tools: program name, --version, one-line errors with the
 * documented exit codes, signals, the temp outputs to remove on a signal or an error, and timing.
 * Tools only; libraries never print. */
#ifndef QFORGE_CLI_H
#define QFORGE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#include <jansson.h>

#include "libgguf/gguf.h"
#include "input/input.h"

enum {
    CLI_OK = 0,
    CLI_USAGE = 1,     /* bad command line */
    CLI_BAD_INPUT = 2, /* malformed or unsupported input file */
    CLI_IO = 3,        /* cannot read or write a file */
    CLI_INTERNAL = 4
};

/* Call first in main (after cli_passive_omp). Sets the program name used in messages (from
 * argv[0]); answers --version anywhere before "--" ("PROG (qforge) VERSION" on stdout, exit 0);
 * sets up signals:
 *   SIGXFSZ ignored: a write past ulimit -f fails with EFBIG and the tool exits 3 with one line;
 *   SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGXCPU: the registered temp files are removed and
 *   the process ends by that signal (status 128+signal in the shell; a closed stdout pipe: 141).
 *   A signal ignored on entry stays ignored (nohup, background jobs of a script). */
void cli_init(int argc, char **argv);
const char *cli_prog(void);
/* The qforge version (the repository's VERSION file). */
const char *cli_version(void);

/* libgomp reads OMP_WAIT_POLICY before main, and its default lets idle threads spin: on a
 * machine with other work every OpenMP barrier can then wait for a descheduled partner (a
 * GPTQ run took 7x longer). When the environment does not set the policy, set it to passive
 * and re-execute the program (/proc/self/exe, same arguments); on an idle machine passive
 * measured the same speed. Call first thing in main; returns when nothing was done. */
void cli_passive_omp(char **argv);

/* Print "PROG: FILE: message" (or "PROG: message" when file is NULL) to stderr, remove the
 * registered temp file, exit with code. */
noreturn void cli_die(int code, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cli_warn(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The temp output file that must not survive a signal (NULL: none). The string is copied.
 * For the GGUF writer's temp file (gguf_writer_temp_path); one at a time. */
void cli_set_temp(const char *path);

/* A small output written safely: cli_create makes a temp file ".NAME.qforge-tmp-XXXXXX" beside
 * path, registered for removal on a signal or cli_die; cli_commit flushes, fsyncs, closes it and
 * renames it to path. Both die with exit 3 and one line on an I/O error (temp removed). At most
 * three are open at once. */
FILE *cli_create(const char *path);
void cli_commit(FILE *f, const char *path);
/* json_dumpf through cli_create/cli_commit (the bytes json_dump_file would write). */
void cli_write_json(const json_t *j, const char *path, size_t flags);

/* strerror, with EFBIG explained: "File too large (over the file size limit, ulimit -f, or the
 * file system's largest file)". Not reentrant for EFBIG (a static buffer). */
const char *cli_strerror(int err);

/* Exit codes for library errors: format problems are bad input (2), I/O is 3. */
int cli_exit_gguf(gguf_error e);
int cli_exit_src(inp_error e);

/* True when both paths name the same existing file (same device and inode). */
bool cli_same_file(const char *a, const char *b);

/* Seconds since an arbitrary start, monotonic. */
double cli_now(void);

/* Parse a non-negative integer option value; dies with a usage error naming opt. */
long cli_parse_long(const char *opt, const char *val, long lo, long hi);

/* Parse a byte size: digits with an optional K, M, G or T suffix (powers of 1024; "M", "MB"
 * and "MiB" alike); dies with a usage error naming opt. */
uint64_t cli_parse_size(const char *opt, const char *val);

/* The machine's physical memory in bytes (0 if unknown): the default --max-memory. */
uint64_t cli_phys_memory(void);

/* Human-readable byte count into buf ("26.2 KiB"). Returns buf. */
char *cli_bytes(double n, char buf[32]);

/* ---- pipeline errors (added with the pipeline library) ---- */
#include "pipeline/pl_error.h"

/* Exit code for a pipeline error: ARG is usage (1), IO 3, NOMEM/STOPPED/INTERNAL 4, the rest
 * bad input (2). */
int cli_exit_pl(pl_error e);

/* ---- shared by the pipeline tools (added with the pipeline library) ---- */

/* The file of source s that path names (same device and inode), or NULL. */
const char *cli_input_file(const char *path, const inp_source *s);
/* "[256, 4096]": the first n_dims of ne into buf. Returns buf. */
char *cli_shape(uint32_t n_dims, const int64_t *ne, char *buf, size_t size);
/* 1.2e-4 style (one decimal, no padded exponent; 0 and non-finite values with %g). */
char *cli_sci(double v, char buf[32]);

/* A file shipped with qforge: ../DIR/NAME next to the executable (the build tree), or
 * PREFIX/share/qforge/NAME (installed). Returns a malloc'ed real path the caller may keep; dies
 * (exit 3, naming OPT as the way to give the file) when neither exists. */
const char *cli_bundled(const char *dir, const char *name, const char *opt);

#endif
