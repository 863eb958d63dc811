/* pipeline — error codes and messages shared by every part of the library.
 *
 * A call that can fail returns a pl_error and writes one line into the caller's
 * msg[PL_MSG_SIZE] (when msg is not NULL). The line names the file at fault first where there
 * is one ("model.gguf: tensor 'x': ..."), so a tool prints it as is. The library never prints
 * and never exits. */
#ifndef QFORGE_PL_ERROR_H
#define QFORGE_PL_ERROR_H

#define PL_MSG_SIZE 1024

typedef enum {
    PL_OK = 0,
    PL_ERR_NOMEM,
    PL_ERR_IO,        /* reading or writing a file failed */
    PL_ERR_FORMAT,    /* malformed input: model file, importance matrix, calibration text */
    PL_ERR_MODEL,     /* a model the pipeline cannot handle: missing or inconsistent tensors,
                         types it cannot read or write, requantization */
    PL_ERR_ARG,       /* bad argument or option (NULL, out of range, an output path that is a
                         directory) */
    PL_ERR_BUDGET,    /* the calibration would need more memory than its budget */
    PL_ERR_STOPPED,   /* the progress callback asked to stop */
    PL_ERR_INTERNAL,  /* a library refused what the plan promised (a bug) */
    PL_ERR_COUNT_
} pl_error;

const char *pl_strerror(pl_error e);

#endif
