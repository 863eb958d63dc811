/* Calibration across processes (see pl_mpi.h). */
#include <limits.h>
#include <stdlib.h>

#include "pipeline/pl_internal.h"
#include "pipeline/pl_mpi.h"

#ifdef QFORGE_MPI
#include <mpi.h>

static int g_state; /* 0: not asked yet, 1: MPI running, -1: failed to start (one rank) */

static void mpi_end(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done)
        MPI_Finalize();
}

static int mpi_up(void)
{
    if (g_state == 0) {
        int ok = 0, prov = 0;
        MPI_Initialized(&ok);
        if (!ok && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &prov) == MPI_SUCCESS) {
            ok = 1;
            atexit(mpi_end);
        }
        g_state = ok ? 1 : -1;
    }
    return g_state == 1;
}

int pl_mpi_rank(void)
{
    int r = 0;
    if (mpi_up())
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int pl_mpi_size(void)
{
    int n = 1;
    if (mpi_up())
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/* In pieces of at most 2^27 elements (MPI counts are int). */
pl_error pl_mpi_sum(double *x, size_t n, char *msg)
{
    if (pl_mpi_size() == 1)
        return PL_OK;
    for (size_t i = 0; i < n; i += (size_t)1 << 27) {
        const int k = (int)(n - i < ((size_t)1 << 27) ? n - i : (size_t)1 << 27);
        if (MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return pl_fail(msg, PL_ERR_INTERNAL, "MPI_Allreduce failed");
    }
    return PL_OK;
}

pl_error pl_mpi_sum_i64(int64_t *x, char *msg)
{
    if (pl_mpi_size() == 1)
        return PL_OK;
    if (MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        return pl_fail(msg, PL_ERR_INTERNAL, "MPI_Allreduce failed");
    return PL_OK;
}

pl_error pl_mpi_bcast(void *buf, size_t n, char *msg)
{
    if (pl_mpi_size() == 1)
        return PL_OK;
    for (size_t i = 0; i < n; i += (size_t)1 << 30) {
        const int k = (int)(n - i < ((size_t)1 << 30) ? n - i : (size_t)1 << 30);
        if (MPI_Bcast((char *)buf + i, k, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return pl_fail(msg, PL_ERR_INTERNAL, "MPI_Bcast failed");
    }
    return PL_OK;
}

#else

int pl_mpi_rank(void) { return 0; }
int pl_mpi_size(void) { return 1; }

pl_error pl_mpi_sum(double *x, size_t n, char *msg)
{
    (void)x, (void)n, (void)msg;
    return PL_OK;
}

pl_error pl_mpi_sum_i64(int64_t *x, char *msg)
{
    (void)x, (void)msg;
    return PL_OK;
}

pl_error pl_mpi_bcast(void *buf, size_t n, char *msg)
{
    (void)buf, (void)n, (void)msg;
    return PL_OK;
}

#endif
