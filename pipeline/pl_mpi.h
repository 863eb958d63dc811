/* pipeline — calibration across processes (optional MPI build, `make MPI=1`, -DQFORGE_MPI).
 *
 * Under `mpirun -np N`, GPTQ's calibration chunks are split over the ranks (chunk c goes to
 * rank c mod N), each rank accumulates its part of every Hessian (and cross term), the sums
 * are reduced in double (MPI_Allreduce), rank 0 solves and broadcasts each quantized tensor
 * so every rank runs the same quantized model on, and only rank 0 writes files. Without MPI
 * (or a process started without mpirun) there is one rank and these calls do nothing.
 * MPI is initialized on first use (MPI_THREAD_FUNNELED: only the calling thread calls MPI)
 * and finalized at exit. Errors: pl_error + one line in msg[PL_MSG_SIZE]. */
#ifndef QFORGE_PL_MPI_H
#define QFORGE_PL_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/pl_error.h"

int pl_mpi_rank(void); /* 0 without MPI */
int pl_mpi_size(void); /* 1 without MPI */
/* x[0..n) := the sum of every rank's x (in place). */
pl_error pl_mpi_sum(double *x, size_t n, char *msg);
pl_error pl_mpi_sum_i64(int64_t *x, char *msg);
/* n bytes of buf from rank 0 to every rank. */
pl_error pl_mpi_bcast(void *buf, size_t n, char *msg);

#endif
