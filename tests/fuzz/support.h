/* Shared helpers of the fuzz targets (fuzz build only; linked into every bin-fuzz target).
 *
 * A fixture is a tiny Llama checkpoint directory written once per process under $TMPDIR
 * (or /dev/shm): hidden 4, 2 heads / 1 KV head, FFN 4, 2 layers, vocab 8, BF16/F16/F32
 * tensors, an 8-piece tokenizer.model. Targets that fuzz one file of a checkpoint write
 * the fuzzed bytes next to the fixed files and open the directory with inp_open().
 * Every check failure aborts, so the fuzzer reports it. */
#ifndef QFORGE_FUZZ_SUPPORT_H
#define QFORGE_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "libgguf/gguf.h"
#include "input/input.h"

#define FZ_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c))                                                                                  \
            fz_fail(__FILE__, __LINE__, #c);                                                       \
    } while (0)

void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

enum { FZ_SINGLE = 0, FZ_SHARDED = 1 };

/* Make a fresh fixture directory (FZ_SINGLE: model.safetensors; FZ_SHARDED: two shards
 * model-0000{1,2}-of-00002.safetensors without an index) plus config.json and
 * tokenizer.model. Returns its path (static storage); removed at exit. */
const char *fz_fixture(int kind);

/* The fixture's config.json text and its two-shard index JSON (static strings). */
const char *fz_fixture_config(void);
const char *fz_fixture_index(void);
/* The fixture's tokenizer.model bytes. */
const uint8_t *fz_fixture_spm(size_t *n);
/* Bytes of a whole fixture safetensors file: which = 0 single, 1/2 the shards. malloc'ed. */
uint8_t *fz_fixture_safetensors(int which, size_t *n);

/* Write / remove DIR/NAME; abort on an I/O error (the fixture is ours). */
void fz_write(const char *dir, const char *name, const void *buf, size_t n);
void fz_remove(const char *dir, const char *name);

/* Touch every key, value and tensor byte of a reader and check its invariants. */
void fz_walk_gguf(const gguf_reader *r);
/* Open-and-walk a source: metadata, every tensor's rows through inp_read_f32/inp_read_raw
 * (float types), inp_data, inp_release, the file list. */
void fz_walk_source(inp_source *s);
/* With QFORGE_FUZZ_VERBOSE set (for triaging seeds: run a target on files), print
 * "STAGE: ok" or "STAGE: MESSAGE" to stderr. */
void fz_note(const char *stage, const char *msg);
/* After a failed call: the message must be one non-empty line inside its buffer, free of
 * control bytes (a hostile file must not put newlines or terminal escapes into it). With
 * QFORGE_FUZZ_LAX_MSG set only "non-empty and terminated" is checked, so that fuzzing can go
 * past a known message bug. */
void fz_check_msg(const char *msg, size_t cap);

extern volatile uint64_t fz_sink;

#endif
