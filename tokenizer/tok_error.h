/* tokenizer — errors shared by the vocabulary readers and the encoders.
 *
 * Functions that can fail return a tok_error and, when msg is not NULL, write one line (no
 * newline) into msg[TOK_MSG_SIZE]. The library never prints and never exits.
 */
#ifndef QFORGE_TOK_ERROR_H
#define QFORGE_TOK_ERROR_H

#define TOK_MSG_SIZE 512

typedef enum {
    TOK_OK = 0,
    TOK_ERR_IO,          /* cannot open/read a file */
    TOK_ERR_NOMEM,
    TOK_ERR_FORMAT,      /* malformed file (protobuf, JSON) */
    TOK_ERR_LIMIT,       /* a size exceeds a cap */
    TOK_ERR_MODEL,       /* unusable vocabulary (duplicate token, bad special id, missing arrays) */
    TOK_ERR_UNSUPPORTED, /* valid but not supported (tokenizer model, pre-tokenizer) */
    TOK_ERR_ARG,         /* bad argument (text too long, id out of range, buffer too small) */
    TOK_ERR_COUNT_
} tok_error;

const char *tok_strerror(tok_error e);

#endif
