/* input — calibration / evaluation text files.
 *
 * A text file is plain UTF-8 or gzip-compressed UTF-8 (recognized by the gzip magic bytes
 * 1f 8b, whatever the file is called; concatenated gzip members are read as one stream).
 * The bytes are returned unchanged (no BOM stripping, no newline conversion). They must be
 * valid UTF-8 without NUL bytes, and at most INP_TEXT_MAX bytes once decompressed; the
 * message of a rejected file names the byte offset of the first problem.
 */
#ifndef QFORGE_INP_TEXT_H
#define QFORGE_INP_TEXT_H

#include <stddef.h>

#include "input/input.h"

#define INP_TEXT_MAX ((size_t)1 << 30) /* 1 GiB of text */

/* Read path into *text (malloc'ed, NUL-terminated after *len bytes; the caller frees).
 * Errors: INP_ERR_IO (open/read; errno in the message), INP_ERR_FORMAT (corrupt or truncated
 * gzip stream, invalid UTF-8, NUL byte), INP_ERR_LIMIT (over INP_TEXT_MAX), INP_ERR_NOMEM,
 * INP_ERR_ARG. On error *text is NULL and *len 0. */
inp_error inp_text_load(const char *path, char **text, size_t *len, char *msg);

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points
 * above U+10FFFF included) or is NUL, or n when all n bytes are fine. */
size_t inp_text_check(const char *text, size_t n);

#endif
