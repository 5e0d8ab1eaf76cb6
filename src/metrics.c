/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <math.h>
#include <stdarg.h>

#include "metrics.h"
#include "shared/string-table.h"

static const char *const metric_type_table[_METRIC_TYPE_MAX] = {
        [METRIC_COUNTER] = "counter",
        [METRIC_GAUGE] = "gauge",
        [METRIC_HISTOGRAM] = "histogram",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(metric_type, MetricType);

const HistogramBounds histogram_duration_bounds = {
        .n = 14,
        .bound = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 600 },
};

void metrics_writer_init(MetricsWriter *w) {
        *w = (MetricsWriter) {};
}

void metrics_writer_done(MetricsWriter *w) {
        free(w->buf);
        metrics_writer_init(w);
}

int metrics_writer_finish(MetricsWriter *w, char **ret, size_t *ret_size) {
        if (w->oom || !w->buf) {
                bool oom = w->oom;

                metrics_writer_done(w);
                if (oom)
                        return -ENOMEM;
                *ret = strdup("");
                if (!*ret)
                        return -ENOMEM;
                if (ret_size)
                        *ret_size = 0;
                return 0;
        }
        *ret = TAKE_PTR(w->buf);
        if (ret_size)
                *ret_size = w->size;
        metrics_writer_init(w);
        return 0;
}

static bool writer_reserve(MetricsWriter *w, size_t n) {
        size_t need;
        char *b;

        if (w->oom)
                return false;
        need = w->size + n + 1;
        if (need <= w->allocated)
                return true;
        need = MAX(need, MAX(w->allocated * 2, (size_t) 4096));
        b = realloc(w->buf, need);
        if (!b) {
                w->oom = true;
                return false;
        }
        w->buf = b;
        w->allocated = need;
        return true;
}

static void writer_put(MetricsWriter *w, const char *s, size_t n) {
        if (!writer_reserve(w, n))
                return;
        memcpy(w->buf + w->size, s, n);
        w->size += n;
        w->buf[w->size] = '\0';
}

static void writer_puts(MetricsWriter *w, const char *s) {
        writer_put(w, s, strlen(s));
}

/* s with \\, \n and (in label values) \" escaped; runs without any are copied whole. */
static void writer_put_escaped(MetricsWriter *w, const char *s, bool quote) {
        const char *special = quote ? "\\\n\"" : "\\\n";

        for (const char *p = s; *p; ) {
                size_t n = strcspn(p, special);

                writer_put(w, p, n);
                p += n;
                if (!*p)
                        break;
                writer_puts(w, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : "\\\"");
                p++;
        }
}

static void writer_put_value(MetricsWriter *w, double v) {
        char b[64];

        if (isnan(v))
                writer_puts(w, "NaN");
        else if (isinf(v))
                writer_puts(w, v > 0 ? "+Inf" : "-Inf");
        else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
                /* Whole numbers, most samples: digits without printf. */
                uint64_t u = (uint64_t) fabs(v);
                size_t i = sizeof(b);

                b[--i] = '\0';
                do
                        b[--i] = (char) ('0' + u % 10);
                while ((u /= 10) > 0);
                if (v < 0)
                        b[--i] = '-';
                writer_puts(w, b + i);
        } else {
                snprintf(b, sizeof(b), "%.15g", v);
                writer_puts(w, b);
        }
}

void metrics_family(MetricsWriter *w, const char *name, MetricType type, const char *help) {
        writer_puts(w, "# HELP ");
        writer_puts(w, name);
        writer_puts(w, " ");
        writer_put_escaped(w, help, false);
        writer_puts(w, "\n# TYPE ");
        writer_puts(w, name);
        writer_puts(w, " ");
        writer_puts(w, metric_type_to_string(type));
        writer_puts(w, "\n");
}

void metrics_samplev(MetricsWriter *w, const char *name, const char *suffix, double value,
                     const char *const *labels, size_t n_labels) {
        writer_puts(w, name);
        writer_puts(w, strempty(suffix));
        for (size_t i = 0; i + 1 < n_labels * 2; i += 2) {
                writer_puts(w, i == 0 ? "{" : ",");
                writer_puts(w, labels[i]);
                writer_puts(w, "=\"");
                writer_put_escaped(w, strempty(labels[i + 1]), true);
                writer_puts(w, "\"");
        }
        if (n_labels > 0)
                writer_puts(w, "}");
        writer_puts(w, " ");
        writer_put_value(w, value);
        writer_puts(w, "\n");
}

#define LABELS_MAX 8

void metrics_sample(MetricsWriter *w, const char *name, double value, ...) {
        const char *labels[LABELS_MAX * 2];
        size_t n = 0;
        va_list ap;

        va_start(ap, value);
        for (;;) {
                const char *k = va_arg(ap, const char *);

                if (!k)
                        break;
                labels[n * 2] = k;
                labels[n * 2 + 1] = va_arg(ap, const char *);
                if (++n == LABELS_MAX)
                        break;
        }
        va_end(ap);
        metrics_samplev(w, name, NULL, value, labels, n);
}

bool metric_name_is_valid(const char *s, bool label) {
        if (isempty(s))
                return false;
        for (const char *p = s; *p; p++) {
                bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                             (*p == ':' && !label);

                if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
                        return false;
        }
        return true;
}

void histogram_observe(Histogram *h, const HistogramBounds *b, double value) {
        if (isnan(value))
                return;
        for (size_t i = 0; i < b->n; i++)
                if (value <= b->bound[i]) {
                        h->bucket[i]++;
                        break;
                }
        h->count++;
        h->sum += value;
}

void metrics_histogram(MetricsWriter *w, const char *name, const Histogram *h, const HistogramBounds *b,
                       const char *const *labels, size_t n_labels) {
        const char *l[(LABELS_MAX + 1) * 2];
        uint64_t cumulative = 0;
        char le[HISTOGRAM_BOUNDS_MAX][32];

        n_labels = MIN(n_labels, (size_t) LABELS_MAX);
        memcpy(l, labels, n_labels * 2 * sizeof(char *));
        l[n_labels * 2] = "le";
        for (size_t i = 0; i < b->n; i++) {
                cumulative += h->bucket[i];
                snprintf(le[i], sizeof(le[i]), "%g", b->bound[i]);
                l[n_labels * 2 + 1] = le[i];
                metrics_samplev(w, name, "_bucket", (double) cumulative, l, n_labels + 1);
        }
        l[n_labels * 2 + 1] = "+Inf";
        metrics_samplev(w, name, "_bucket", (double) h->count, l, n_labels + 1);
        metrics_samplev(w, name, "_sum", h->sum, labels, n_labels);
        metrics_samplev(w, name, "_count", (double) h->count, labels, n_labels);
}
