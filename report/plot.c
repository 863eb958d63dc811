/* The sweep's plots with PLplot (report.h). */
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report_internal.h"

#define RP_MAX_METHODS 8

/* cmap0: 0 background, 1 axes and text, 2.. the methods' curves, 9 the float model's line, 10 the grid. */
static void palette(void)
{
    static const int c[][3] = {{255, 255, 255}, {0, 0, 0}, {31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                               {214, 39, 40}, {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {110, 110, 110}, {215, 215, 215}};
    for (int i = 0; i < (int)(sizeof c / sizeof c[0]); i++)
        plscol0(i, c[i][0], c[i][1], c[i][2]);
}

static double yval(const rp_row *r, rp_plot_kind kind) { return kind == RP_PLOT_KLD ? r->kld : r->ppl; }
/* The plotted y: log10 of the KLD (it spans decades), the PPL as it is (it moves by percents). */
static double yt(rp_plot_kind kind, double y) { return kind == RP_PLOT_KLD ? log10(y) : y; }

/* The x and y ranges (y as plotted) over the finite points, the float PPL included. */
static bool ranges(const rp_row *rows, size_t n, rp_plot_kind kind, double *x0, double *x1, double *y0, double *y1)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double y = yval(&rows[i], kind);
        if (!(y > 0) || !isfinite(y) || !isfinite(rows[i].bpw))
            continue;
        *x0 = fmin(*x0, rows[i].bpw);
        *x1 = fmax(*x1, rows[i].bpw);
        *y0 = fmin(*y0, yt(kind, y));
        *y1 = fmax(*y1, yt(kind, y));
        if (kind == RP_PLOT_PPL && rows[i].ppl_base > 0)
            *y0 = fmin(*y0, rows[i].ppl_base);
    }
    if (!(*x0 <= *x1))
        return false;
    const double dx = fmax(*x1 - *x0, 0.5), dy = fmax(*y1 - *y0, kind == RP_PLOT_KLD ? 0.05 : 1e-3 * *y1);
    *x0 -= 0.06 * dx;
    *x1 += 0.14 * dx; /* room for the labels */
    *y0 -= 0.06 * dy;
    *y1 += 0.25 * dy;  /* room for the legend */
    return true;
}

static const char *const symbols[] = {"●", "■", "▲", "◆", "▼", "★", "✚", "✖"};

/* One curve per method: those of the report's options first, in their order, then any other in
 * order of appearance; labels (the type) on the first method's points. */
static int curves(const json_t *report, const rp_row *rows, size_t n, rp_plot_kind kind, const char **names)
{
    int nm = 0;
    const json_t *ms = json_object_get(json_object_get(report, "options"), "methods"), *mv;
    size_t mi;
    json_array_foreach(ms, mi, mv) {
        for (size_t i = 0; json_is_string(mv) && nm < RP_MAX_METHODS && i < n; i++)
            if (!strcmp(rows[i].method, json_string_value(mv))) {
                names[nm++] = rows[i].method;
                break;
            }
    }
    for (size_t i = 0; i < n; i++) {
        int m = 0;
        while (m < nm && strcmp(names[m], rows[i].method))
            m++;
        if (m == nm && nm < RP_MAX_METHODS)
            names[nm++] = rows[i].method;
    }
    PLFLT *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    for (int m = 0; x && y && m < nm; m++) {
        int k = 0;
        for (size_t i = 0; i < n; i++) /* rows are ranked by size, so by bpw */
            if (!strcmp(rows[i].method, names[m]) && yval(&rows[i], kind) > 0 && isfinite(yval(&rows[i], kind))) {
                x[k] = rows[i].bpw;
                y[k++] = yt(kind, yval(&rows[i], kind));
                if (m == 0) {
                    PLFLT xmin, xmax, ymin, ymax;
                    plgvpw(&xmin, &xmax, &ymin, &ymax);
                    plcol0(1);
                    plschr(0, 0.7);
                    plptex(rows[i].bpw + 0.012 * (xmax - xmin), yt(kind, yval(&rows[i], kind)) + 0.025 * (ymax - ymin),
                           1, 0, 0, rows[i].type);
                }
            }
        plcol0(2 + m);
        plwidth(2.0);
        pllsty(1);
        plline(k, x, y);
        plschr(0, 0.8);
        plstring(k, x, y, symbols[m]);
    }
    free(x);
    free(y);
    return nm;
}

static void legend(int nm, const char **names, bool base)
{
    PLINT opt[RP_MAX_METHODS + 1], tcol[RP_MAX_METHODS + 1], lcol[RP_MAX_METHODS + 1], lsty[RP_MAX_METHODS + 1];
    PLINT scol[RP_MAX_METHODS + 1], snum[RP_MAX_METHODS + 1];
    PLFLT lw[RP_MAX_METHODS + 1], ssc[RP_MAX_METHODS + 1];
    const char *text[RP_MAX_METHODS + 1], *sym[RP_MAX_METHODS + 1];
    int n = 0;
    for (; n < nm; n++) {
        opt[n] = PL_LEGEND_LINE | PL_LEGEND_SYMBOL;
        tcol[n] = 1;
        lcol[n] = scol[n] = 2 + n;
        lsty[n] = 1;
        lw[n] = 2.0;
        ssc[n] = 0.8;
        snum[n] = 2;
        text[n] = names[n];
        sym[n] = symbols[n];
    }
    if (base) {
        opt[n] = PL_LEGEND_LINE;
        tcol[n] = 1;
        lcol[n] = scol[n] = 9;
        lsty[n] = 2;
        lw[n] = 1.5;
        ssc[n] = 1.0;
        snum[n] = 0;
        text[n] = "float model";
        sym[n++] = "";
    }
    PLFLT w, h;
    plschr(0, 0.9);
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_TOP | PL_POSITION_RIGHT, 0.02, 0.02,
             0.08, 0, 1, 1, 0, 0, n, opt, 1.0, 1.0, 2.0, 0.0, tcol, text, NULL, NULL, NULL, NULL, lcol, lsty, lw,
             scol, ssc, snum, sym);
}

rp_error rp_plot(const json_t *report, rp_plot_kind kind, const char *device, FILE *f, char *msg)
{
    rp_row *rows = NULL;
    size_t n = 0;
    rp_error e = rp_rows(report, 0, &rows, &n, msg);
    double x0, x1, y0, y1;
    if (e == RP_OK && !ranges(rows, n, kind, &x0, &x1, &y0, &y1))
        e = rp_fail(msg, RP_ERR_FORMAT, "no evaluated variant to plot");
    if (e != RP_OK) {
        free(rows);
        return e;
    }
    /* PLplot closes the FILE it is given at plend1: give it a duplicate of f's descriptor (same
     * offset), so f stays the caller's to flush and close. */
    fflush(f);
    const int fd = dup(fileno(f));
    FILE *g = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!g) {
        if (fd >= 0)
            close(fd);
        free(rows);
        return rp_fail(msg, RP_ERR_PLOT, "cannot duplicate the output file");
    }
    const bool svg = !strcmp(device, "svgcairo");
    plsdev(device);
    plsfile(g);
    plspage(0, 0, svg ? 720 : 1000, svg ? 480 : 660, 0, 0);
    palette();
    plinit();
    pladv(0);
    plvsta();
    plwind(x0, x1, y0, y1);
    plwidth(1.0);
    plschr(0, 0.9);
    plcol0(10);
    const bool logy = kind == RP_PLOT_KLD;
    plbox("g", 0, 0, logy ? "gl" : "g", 0, 0);
    plcol0(1);
    plbox("bcnst", 0, 0, logy ? "bclnstv" : "bcnstv", 0, 0);
    const char *model = json_string_value(json_object_get(report, "model"));
    const char *slash = model ? strrchr(model, '/') : NULL;
    char title[256];
    snprintf(title, sizeof title, "%s: %s vs size", slash && slash[1] ? slash + 1 : model ? model : "model",
             kind == RP_PLOT_KLD ? "mean KL divergence" : "perplexity");
    plschr(0, 1.0);
    pllab("bits per weight", kind == RP_PLOT_KLD ? "mean KLD vs the float model (log scale)" : "PPL",
          title);
    const bool base = kind == RP_PLOT_PPL && n > 0 && rows[0].ppl_base > 0;
    if (base) {
        PLFLT bx[2] = {x0, x1}, by[2] = {rows[0].ppl_base, rows[0].ppl_base};
        plcol0(9);
        pllsty(2);
        plwidth(1.5);
        plline(2, bx, by);
        pllsty(1);
    }
    const char *names[RP_MAX_METHODS];
    const int nm = curves(report, rows, n, kind, names);
    legend(nm, names, base);
    plend1(); /* closes g */
    free(rows);
    struct stat st;
    return fstat(fileno(f), &st) == 0 && st.st_size > 0 ? RP_OK : rp_fail(msg, RP_ERR_PLOT, "nothing was drawn");
}
