/* report: the markdown table (ranking, Pareto marks, figures) and the plots (PNG, SVG) of a
 * sweep report; malformed reports are refused. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "testutil.h"

/* Four variants: the KLD falls with size except q5-rtn, which a smaller file beats. */
static json_t *sample(void)
{
    static const char *txt =
        "{\"tool\": \"qforge-sweep\", \"version\": \"0.1.0\", \"model\": \"models/m\", \"n_elements\": 1000,"
        " \"bases\": [{\"text\": \"t.txt\", \"n_chunk\": 3, \"n_ctx\": 256, \"ppl\": 90.0, \"ppl_unc\": 1.0}],"
        " \"variants\": ["
        "  {\"file\": \"q8-rtn.gguf\", \"type\": \"Q8_0\", \"method\": \"rtn\", \"file_bytes\": 8000000, \"bpw\": 8.5,"
        "   \"eval\": [{\"ppl\": 90.1, \"ppl_base\": 90.0, \"kld\": 0.0001, \"same_top_p\": 0.99,"
        "              \"kld_percentiles\": {\"median\": 0.00005, \"99\": 0.001, \"99.9\": 0.002, \"max\": 0.003}}]},"
        "  {\"file\": \"q4-rtn.gguf\", \"type\": \"Q4_0\", \"method\": \"rtn\", \"file_bytes\": 4000000, \"bpw\": 4.5,"
        "   \"eval\": [{\"ppl\": 95.0, \"ppl_base\": 90.0, \"kld\": 0.01, \"same_top_p\": 0.9,"
        "              \"kld_percentiles\": {\"median\": 0.005, \"99\": 0.05, \"99.9\": 0.1, \"max\": 0.2}}]},"
        "  {\"file\": \"q4-imatrix.gguf\", \"type\": \"Q4_0\", \"method\": \"imatrix\", \"file_bytes\": 4000000,"
        "   \"bpw\": 4.5, \"eval\": [{\"ppl\": 93.0, \"ppl_base\": 90.0, \"kld\": 0.008, \"same_top_p\": 0.92,"
        "              \"kld_percentiles\": {\"median\": 0.004, \"99\": 0.04, \"99.9\": 0.09, \"max\": 0.1}}]},"
        "  {\"file\": \"q5-rtn.gguf\", \"type\": \"Q5_0\", \"method\": \"rtn\", \"file_bytes\": 5000000, \"bpw\": 5.5,"
        "   \"eval\": [{\"ppl\": 94.0, \"ppl_base\": 90.0, \"kld\": 0.009, \"same_top_p\": 0.91,"
        "              \"kld_percentiles\": {\"median\": 0.004, \"99\": 0.04, \"99.9\": 0.09, \"max\": 0.1}}]}]}";
    json_error_t err;
    json_t *j = json_loads(txt, JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(j, "sample: %s", err.text);
    return j;
}

/* The table row of file, or NULL. */
static const char *row(const char *md, const char *file)
{
    char key[64];
    snprintf(key, sizeof key, "| %s |", file);
    return strstr(md, key);
}

Test(report, markdown_ranks_by_size_and_marks_pareto)
{
    json_t *j = sample();
    rp_error e;
    char msg[RP_MSG_SIZE];
    char *md = rp_markdown(j, &e, msg);
    cr_assert_not_null(md, "%s", msg);
    const char *q4i = row(md, "q4-imatrix.gguf"), *q4r = row(md, "q4-rtn.gguf"), *q5 = row(md, "q5-rtn.gguf"),
               *q8 = row(md, "q8-rtn.gguf");
    cr_assert(q4i && q4r && q5 && q8, "%s", md);
    /* by size; equal sizes by file name */
    cr_assert(q4i < q4r && q4r < q5 && q5 < q8, "%s", md);
    /* Pareto: q4-imatrix (smallest, lowest of its size) and q8 (lowest KLD); q4-rtn is beaten by
       q4-imatrix at the same size, q5-rtn by q4-imatrix (smaller, lower KLD) */
    cr_assert(strstr(q4i, "| ◆ |") && strstr(q4i, "| ◆ |") < q4r);
    cr_assert(!strstr(q4r, "| ◆ |") || strstr(q4r, "| ◆ |") > q5);
    cr_assert(!strstr(q5, "| ◆ |") || strstr(q5, "| ◆ |") > q8);
    cr_assert_not_null(strstr(q8, "| ◆ |"));
    /* figures: size in MiB, the PPL change against the float model, same top p in % */
    cr_assert_not_null(strstr(q4r, "| 3.81 | 4.500 | 95.0000 | +5.56% | 0.010000 | 0.005000 | 0.05000 | 0.10000 | "
                                   "0.20000 | 90.00% |"), "%.200s", q4r);
    cr_assert_not_null(strstr(md, "3 chunks of 256 tokens; the float model's PPL 90.0000"));
    free(md);
    json_decref(j);
}

Test(report, malformed_reports_are_refused)
{
    rp_error e;
    char msg[RP_MSG_SIZE];
    json_t *j = json_pack("{s:[]}", "variants");
    cr_assert_null(rp_markdown(j, &e, msg));
    cr_assert_eq(e, RP_ERR_FORMAT, "%s", msg);
    json_object_set_new(j, "bases", json_array());
    FILE *f = tmpfile();
    cr_assert_eq(rp_plot(j, RP_PLOT_KLD, "pngcairo", f, msg), RP_ERR_FORMAT); /* nothing to plot */
    json_t *b = json_pack("{s:[], s:i}", "bases", "variants", 3);
    cr_assert_eq(rp_plot(b, RP_PLOT_PPL, "pngcairo", f, msg), RP_ERR_FORMAT);
    fclose(f);
    json_decref(b);
    json_decref(j);
    cr_assert_str_eq(rp_strerror(RP_ERR_FORMAT), "malformed report");
}

static char *plot(rp_plot_kind kind, const char *device, size_t *n)
{
    json_t *j = sample();
    char msg[RP_MSG_SIZE], *dir = tu_mkdtemp(), path[512];
    snprintf(path, sizeof path, "%s/plot", dir);
    FILE *f = fopen(path, "w+b");
    cr_assert_not_null(f);
    cr_assert_eq(rp_plot(j, kind, device, f, msg), RP_OK, "%s", msg);
    cr_assert_eq(fclose(f), 0); /* the caller's FILE stays open and valid */
    char *data = tu_read_file(path, n);
    cr_assert_not_null(data);
    remove(path);
    remove(dir);
    free(dir);
    json_decref(j);
    return data;
}

Test(report, plots_are_png_and_svg)
{
    size_t n;
    char *png = plot(RP_PLOT_KLD, "pngcairo", &n);
    cr_assert_gt(n, 5000);
    cr_assert_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0);
    free(png);
    char *svg = plot(RP_PLOT_PPL, "svgcairo", &n);
    cr_assert_not_null(strstr(svg, "<svg"));
    cr_assert_not_null(strstr(svg, "</svg>"));
    free(svg);
}
