/* Progress bars and step lines (progress.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/progress.h"

static struct {
    prog_mode mode;
    bool open, drawn;
    char label[160];
    const char *unit;
    double total, done, t0, last;
    double pl_total;  /* the plan's input bytes, for the write step */
    bool pl_gptq;     /* a GPTQ calibration: its step counts layers */
} P;

void prog_init(prog_mode m)
{
    if (m == PROG_AUTO || m == PROG_BAR_ONLY) {
        const char *term = getenv("TERM");
        const bool tty = isatty(STDERR_FILENO) && !(term && !strcmp(term, "dumb"));
        m = tty ? PROG_BAR : m == PROG_AUTO ? PROG_LINES : PROG_QUIET;
    }
    P.mode = m;
}

bool prog_is_bar(void) { return P.mode == PROG_BAR; }

static int width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col < 200 ? ws.ws_col : 200;
    return 80;
}

static char *clock_str(double s, char buf[24])
{
    const long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, 24, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, 24, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static void draw(double now)
{
    char tail[128], e1[24], e2[24];
    const double el = now - P.t0, rate = el > 0 ? P.done / el : 0;
    const int w = width();
    if (P.total > 0) {
        const double f = P.done < P.total ? P.done / P.total : 1.0;
        snprintf(tail, sizeof tail, " %3.0f%% %.4g/%.4g %s  %.1f %s/s  %s ETA %s", 100 * f, P.done, P.total,
                 P.unit ? P.unit : "", rate, P.unit ? P.unit : "", clock_str(el, e1),
                 rate > 0 ? clock_str((P.total - P.done) / rate, e2) : "?");
        const int lab = (int)strlen(P.label) < w / 3 ? (int)strlen(P.label) : w / 3;
        int bar = w - 1 - lab - 3 - (int)strlen(tail);
        if (bar > 40)
            bar = 40;
        char b[64];
        const int fill = bar > 0 ? (int)(f * bar) : 0;
        for (int i = 0; i < bar; i++)
            b[i] = i < fill ? '#' : '.';
        b[bar > 0 ? bar : 0] = 0;
        fprintf(stderr, "\r\033[K%.*s [%s]%.*s", lab, P.label, b, w - 1 - lab - 3 - (bar > 0 ? bar : 0), tail);
    } else {
        fprintf(stderr, "\r\033[K%.*s  %s elapsed", w - 20, P.label, clock_str(el, e1));
    }
    fflush(stderr);
    P.drawn = true;
    P.last = now;
}

void prog_begin(const char *label, double total, const char *unit)
{
    if (P.open)
        prog_end();
    if (P.mode == PROG_QUIET)
        return;
    snprintf(P.label, sizeof P.label, "%s", label);
    P.unit = unit;
    P.total = total;
    P.done = 0;
    P.t0 = cli_now();
    P.open = true;
    if (P.mode == PROG_BAR)
        draw(P.t0);
}

void prog_total(double total) { P.total = total; }

void prog_update(double done)
{
    if (!P.open)
        return;
    P.done = done;
    const double now = cli_now();
    if (P.mode == PROG_BAR && (now - P.last >= 0.1 || (P.total > 0 && done >= P.total)))
        draw(now);
}

void prog_end(void)
{
    if (!P.open)
        return;
    P.open = false;
    const double now = cli_now(), el = now - P.t0;
    if (P.mode == PROG_BAR) {
        draw(now);
        fputc('\n', stderr);
        P.drawn = false;
    } else if (P.mode == PROG_LINES && P.total > 0) {
        fprintf(stderr, "%s: %s: %.4g %s in %.2f s, %.1f %s/s\n", cli_prog(), P.label, P.done, P.unit ? P.unit : "",
                el, el > 0 ? P.done / el : 0.0, P.unit ? P.unit : "");
    } else if (P.mode == PROG_LINES) {
        fprintf(stderr, "%s: %s: %.2f s\n", cli_prog(), P.label, el);
    }
    fflush(stderr);
}

void prog_abort(void)
{
    if (!P.open)
        return;
    P.open = false;
    if (P.mode == PROG_BAR && P.drawn) {
        fputc('\n', stderr);
        P.drawn = false;
    }
}

void prog_clear(void)
{
    if (P.mode == PROG_BAR && P.drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        P.drawn = false;
    }
}

static void begin2(const char *prefix, const char *what, double total, const char *unit)
{
    char label[160];
    snprintf(label, sizeof label, "%s%s%s", prefix ? prefix : "", prefix ? " " : "", what);
    prog_begin(label, total, unit);
}

int prog_pl_event(const pl_event *ev, const char *prefix)
{
    const pl_report *r = ev->report;
    switch (ev->kind) {
    case PL_EV_PLAN:
        P.pl_total = 0;
        for (size_t k = 0; k < r->n_tensors; k++)
            P.pl_total += (double)r->tensors[k].in_bytes / 1048576.0;
        P.pl_gptq = false;
        break;
    case PL_EV_CALIB_START:
        begin2(prefix, "calibration", 0, "layers");
        break;
    case PL_EV_CALIB_GROUP:
        if (!P.pl_gptq) {
            P.pl_gptq = true;
            prog_total(ev->n_layer);
        }
        prog_update(ev->layer);
        break;
    case PL_EV_CALIB_DONE:
        if (P.pl_gptq)
            prog_update(P.total);
        prog_end();
        break;
    case PL_EV_TENSOR:
        if (!P.open)
            begin2(prefix, "write", P.pl_total, "MiB");
        prog_update(P.done + (double)r->tensors[ev->index].in_bytes / 1048576.0);
        if (ev->index + 1 == r->n_tensors)
            prog_end();
        break;
    default:
        break;
    }
    return 0;
}
