/* pipeline — importance statistics as llama-imatrix collects them.
 *
 * Per weight: the sums of x^2 and of x per input column over every token row x that entered
 * it, and the number of rows. input/imatrix.h writes them as llama.cpp's imatrix GGUF
 * (pl_imatrix_acc_entries hands them over) and reads such files back.
 * Errors: pl_error + one line in msg[PL_MSG_SIZE]. */
#ifndef QFORGE_PL_IMATRIX_ACC_H
#define QFORGE_PL_IMATRIX_ACC_H

#include <stddef.h>
#include <stdint.h>

#include "input/imatrix.h"
#include "pipeline/pl_error.h"

typedef struct pl_imatrix_acc pl_imatrix_acc; /* owns its entries */

pl_imatrix_acc *pl_imatrix_acc_create(void); /* NULL when out of memory */
void pl_imatrix_acc_free(pl_imatrix_acc *im);
/* Add rows x (rows x cols floats) as the input of weight `name` (shorter than GGUF_MAX_NAME).
 * An entry's width is fixed by its first add. PL_ERR_ARG (bad arguments, other width,
 * non-finite value), PL_ERR_NOMEM. */
pl_error pl_imatrix_acc_add(pl_imatrix_acc *im, const char *name, const float *x, int rows,
                            int cols, char *msg);
size_t pl_imatrix_acc_n_entries(const pl_imatrix_acc *im);
/* The sums of weight `name` (cols values each, valid until the next add/free) and its row
 * count; NULL when absent. */
const double *pl_imatrix_acc_sums(const pl_imatrix_acc *im, const char *name, int *cols,
                                  const double **sum, int64_t *count);
/* The entries in the order first added, for inp_imatrix_declare / inp_imatrix_write_data:
 * valid until the next add/free. */
const inp_imatrix_sums *pl_imatrix_acc_entries(const pl_imatrix_acc *im, size_t *n);
/* Sum every rank's statistics into each rank's entries (MPI build, pipeline/pl_mpi.h: a
 * collective call; nothing to do on one rank). The ranks must have added the same names in
 * the same order, else PL_ERR_INTERNAL on every rank. */
pl_error pl_imatrix_acc_reduce(pl_imatrix_acc *im, char *msg);

#endif
