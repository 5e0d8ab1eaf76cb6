/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The Prometheus text exposition format (version 0.0.4), written into a memory buffer, and the
 * histogram type the pools keep. Pure: no I/O, no clock. The families themselves are put
 * together by metrics-export.c from the registry, the pools and the GPU inventory.
 *
 *   MetricsWriter w;
 *   metrics_writer_init(&w);
 *   metrics_family(&w, "pool_managerd_pool_ready", METRIC_GAUGE, "Whether the pool's engine serves (1) or not (0).");
 *   metrics_sample(&w, "pool_managerd_pool_ready", 1, "pool_id", "llama-7b", NULL);
 *   r = metrics_writer_finish(&w, &text);
 *
 * Label values are escaped (\\, \", \n), HELP texts too (\\, \n); values are written as integers
 * when they are whole, "+Inf"/"-Inf"/"NaN" otherwise as the format spells them. A writer that
 * ran out of memory fails at metrics_writer_finish(), not before: callers need not check
 * every sample.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
        _METRIC_TYPE_MAX,
        _METRIC_TYPE_INVALID = -EINVAL,
} MetricType;

const char *metric_type_to_string(MetricType t);

typedef struct MetricsWriter {
        char *buf;
        size_t size, allocated;
        bool oom;
} MetricsWriter;

void metrics_writer_init(MetricsWriter *w);
void metrics_writer_done(MetricsWriter *w);
/* Hands the text over (NUL-terminated) and resets the writer; -ENOMEM when any write failed. */
int metrics_writer_finish(MetricsWriter *w, char **ret, size_t *ret_size);

/* "# HELP name help" and "# TYPE name type". */
void metrics_family(MetricsWriter *w, const char *name, MetricType type, const char *help);
/* "name{label="value",...} value"; labels are name/value pairs ending with NULL. A NULL value
 * is written as "". */
void metrics_sample(MetricsWriter *w, const char *name, double value, ...) _sentinel_;
void metrics_samplev(MetricsWriter *w, const char *name, const char *suffix, double value,
                     const char *const *labels, size_t n_labels);

/* Whether s is a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*; no ':' for labels). */
bool metric_name_is_valid(const char *s, bool label);

/* A histogram over fixed upper bounds (seconds): bucket i counts the observations <= bounds[i]
 * and > bounds[i-1]; the +Inf bucket is count. */
#define HISTOGRAM_BOUNDS_MAX 16

typedef struct HistogramBounds {
        size_t n;
        double bound[HISTOGRAM_BOUNDS_MAX];
} HistogramBounds;

typedef struct Histogram {
        uint64_t bucket[HISTOGRAM_BOUNDS_MAX];
        uint64_t count;
        double sum;
} Histogram;

/* Durations of operations: 10 ms to 10 min. */
extern const HistogramBounds histogram_duration_bounds;

void histogram_observe(Histogram *h, const HistogramBounds *b, double value);
/* The _bucket (cumulative, le="..." and le="+Inf"), _sum and _count samples of one histogram;
 * labels as in metrics_samplev() (le is added). */
void metrics_histogram(MetricsWriter *w, const char *name, const Histogram *h, const HistogramBounds *b,
                       const char *const *labels, size_t n_labels);
