/* libFuzzer target: importance matrix files (inp_imatrix_load, input/imatrix.h), GGUF or
 * legacy .dat, written to a memfd and loaded through /proc/self/fd/N.
 *
 * A rejected file must give a one-line message; an accepted one has at least one entry,
 * names sorted and unique, every value finite, and lookups by name return the same data. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "input/imatrix.h"
#include "tests/fuzz/support.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_imatrix.dat", MFD_CLOEXEC);
        FZ_CHECK(g_fd >= 0);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    FZ_CHECK(ftruncate(g_fd, 0) == 0);
    FZ_CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);
    inp_imatrix *im = NULL;
    char msg[INP_MSG_SIZE];
    msg[0] = 0;
    inp_error e = inp_imatrix_load(g_path, &im, msg);
    fz_note("inp_imatrix_load", e == INP_OK ? NULL : msg);
    if (e != INP_OK) {
        FZ_CHECK(im == NULL && e < INP_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    size_t n = inp_imatrix_n_entries(im);
    FZ_CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        const char *name = inp_imatrix_name(im, i);
        FZ_CHECK(name != NULL);
        if (i > 0)
            FZ_CHECK(strcmp(inp_imatrix_name(im, i - 1), name) < 0);
        size_t nv = 0;
        const float *v = inp_imatrix_find(im, name, &nv);
        FZ_CHECK(v != NULL && nv >= 1);
        for (size_t k = 0; k < nv; k++)
            FZ_CHECK(isfinite(v[k]));
    }
    FZ_CHECK(inp_imatrix_name(im, n) == NULL);
    FZ_CHECK(inp_imatrix_find(im, "no such tensor \x01", NULL) == NULL);
    const char *ds = inp_imatrix_dataset(im);
    if (ds)
        fz_sink += strlen(ds);
    FZ_CHECK(inp_imatrix_chunk_count(im) >= 0);
    inp_imatrix_free(im);
    return 0;
}
