/* The sweep report as markdown (report.h), and the rows both views read. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/qf_msg.h"
#include "report/report_internal.h"

const char *rp_strerror(rp_error e)
{
    static const char *const s[RP_ERR_COUNT_] = {"ok", "out of memory", "malformed report", "plot failed"};
    return (unsigned)e < RP_ERR_COUNT_ ? s[e] : "unknown error";
}

rp_error rp_fail(char *msg, rp_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qf_msg_vformat(msg, RP_MSG_SIZE, NULL, fmt, ap);
    va_end(ap);
    return e;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int by_size(const void *a, const void *b)
{
    const rp_row *x = a, *y = b;
    return x->bytes < y->bytes ? -1 : x->bytes > y->bytes ? 1 : strcmp(x->file, y->file);
}

rp_error rp_rows(const json_t *report, size_t text, rp_row **rows, size_t *n, char *msg)
{
    const json_t *vars = json_object_get(report, "variants"), *v;
    if (!json_is_array(vars))
        return rp_fail(msg, RP_ERR_FORMAT, "no \"variants\" array");
    *n = 0;
    *rows = calloc(json_array_size(vars) + 1, sizeof **rows);
    if (!*rows)
        return rp_fail(msg, RP_ERR_NOMEM, "out of memory");
    size_t i;
    json_array_foreach(vars, i, v) {
        const json_t *ev = json_array_get(json_object_get(v, "eval"), text);
        rp_row *r = &(*rows)[*n];
        r->file = json_string_value(json_object_get(v, "file"));
        r->type = json_string_value(json_object_get(v, "type"));
        r->method = json_string_value(json_object_get(v, "method"));
        r->bytes = num(v, "file_bytes");
        r->bpw = num(v, "bpw");
        if (!r->file || !r->type || !r->method || !(r->bytes > 0) || !ev)
            continue; /* not evaluated (an interrupted sweep) */
        const json_t *kp = json_object_get(ev, "kld_percentiles");
        r->ppl = num(ev, "ppl");
        r->ppl_base = num(ev, "ppl_base");
        r->kld = num(ev, "kld");
        r->median = num(kp, "median");
        r->p99 = num(kp, "99");
        r->p999 = num(kp, "99.9");
        r->max = num(kp, "max");
        r->same_top = num(ev, "same_top_p");
        ++*n;
    }
    qsort(*rows, *n, sizeof **rows, by_size);
    for (size_t a = 0; a < *n; a++) {
        rp_row *r = &(*rows)[a];
        r->pareto = true;
        for (size_t b = 0; b < *n && r->pareto; b++) {
            const rp_row *q = &(*rows)[b];
            if (b != a && q->bytes <= r->bytes && q->kld <= r->kld && (q->bytes < r->bytes || q->kld < r->kld))
                r->pareto = false;
        }
    }
    return RP_OK;
}

static void table(FILE *f, const json_t *report, size_t k, const rp_row *rows, size_t n)
{
    const json_t *base = json_array_get(json_object_get(report, "bases"), k);
    const char *text = json_string_value(json_object_get(base, "text"));
    fprintf(f, "## %s\n\n", text ? text : "?");
    fprintf(f, "%lld chunks of %lld tokens; the float model's PPL %.4f ± %.5f.\n\n",
            (long long)json_integer_value(json_object_get(base, "n_chunk")),
            (long long)json_integer_value(json_object_get(base, "n_ctx")), num(base, "ppl"), num(base, "ppl_unc"));
    fprintf(f, "| file | type | method | MiB | bpw | PPL | ΔPPL | mean KLD | median KLD | 99%% KLD | 99.9%% KLD "
               "| max KLD | same top p | Pareto |\n");
    fprintf(f, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|\n");
    for (size_t i = 0; i < n; i++) {
        const rp_row *r = &rows[i];
        fprintf(f, "| %s | %s | %s | %.2f | %.3f | %.4f | %+.2f%% | %.6f | %.6f | %.5f | %.5f | %.5f | %.2f%% | %s |\n",
                r->file, r->type, r->method, r->bytes / 1048576.0, r->bpw, r->ppl,
                100.0 * (r->ppl / r->ppl_base - 1.0), r->kld, r->median, r->p99, r->p999, r->max,
                100.0 * r->same_top, r->pareto ? "◆" : "");
    }
    fprintf(f, "\n");
}

char *rp_markdown(const json_t *report, rp_error *err, char *msg)
{
    char *buf = NULL;
    size_t len = 0;
    *err = RP_OK;
    const json_t *bases = json_object_get(report, "bases");
    if (!json_is_array(bases)) {
        *err = rp_fail(msg, RP_ERR_FORMAT, "no \"bases\" array");
        return NULL;
    }
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        *err = rp_fail(msg, RP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const char *model = json_string_value(json_object_get(report, "model"));
    fprintf(f, "# Sweep of %s\n\n", model ? model : "?");
    fprintf(f, "%.0f weights; made by %s %s. Every variant is compared with the float model token by token "
               "(KL divergence of the next-token distributions, as llama-perplexity --kl-divergence). Rows are "
               "ranked by file size; ◆ marks the Pareto-optimal ones: no other file is as small with as low a "
               "mean KLD.\n\n",
            num(report, "n_elements"), json_string_value(json_object_get(report, "tool")) ?: "?",
            json_string_value(json_object_get(report, "version")) ?: "?");
    for (size_t k = 0; k < json_array_size(bases) && *err == RP_OK; k++) {
        rp_row *rows = NULL;
        size_t n = 0;
        *err = rp_rows(report, k, &rows, &n, msg);
        if (*err == RP_OK)
            table(f, report, k, rows, n);
        free(rows);
    }
    fprintf(f, "Plots: kld.png (mean KLD vs bits per weight), ppl.png (PPL vs bits per weight); "
               "figures of every variant in report.json.\n");
    if (fclose(f) != 0 && *err == RP_OK)
        *err = rp_fail(msg, RP_ERR_NOMEM, "out of memory");
    if (*err != RP_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}
