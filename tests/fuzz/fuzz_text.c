/* libFuzzer target: calibration / evaluation text files (inp_text_load, input/text.h).
 *
 * The input is written to a memfd and loaded through /proc/self/fd/N. A rejected file must give
 * a one-line message; an accepted one must be valid UTF-8 without NUL (inp_text_check agrees),
 * NUL-terminated, and byte-identical to the input unless the input starts with the gzip magic.
 * Seeds: plain and gzip texts, concatenated gzip members, corrupt and truncated streams. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "input/text.h"
#include "tests/fuzz/support.h"

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_text.txt", MFD_CLOEXEC);
        FZ_CHECK(g_fd >= 0);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    FZ_CHECK(ftruncate(g_fd, 0) == 0);
    FZ_CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);
    char *text = NULL;
    size_t len = 12345;
    char msg[INP_MSG_SIZE];
    msg[0] = 0;
    inp_error e = inp_text_load(g_path, &text, &len, msg);
    fz_note("inp_text_load", e == INP_OK ? NULL : msg);
    if (e != INP_OK) {
        FZ_CHECK(text == NULL && len == 0 && e < INP_ERR_COUNT_);
        fz_check_msg(msg, sizeof msg);
        return 0;
    }
    FZ_CHECK(text != NULL && text[len] == 0);
    FZ_CHECK(inp_text_check(text, len) == len);
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gz)
        FZ_CHECK(len == size && memcmp(text, data, size) == 0);
    free(text);
    return 0;
}
