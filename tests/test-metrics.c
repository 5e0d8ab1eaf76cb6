/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <math.h>

#include "metrics.h"
#include "test-util.h"

static char *finish(MetricsWriter *w) {
        char *text = NULL;
        size_t size = 0;

        ASSERT_OK(metrics_writer_finish(w, &text, &size));
        ASSERT_NOT_NULL(text);
        ASSERT_EQ(size, strlen(text));
        return text;
}

TEST(family_and_samples) {
        MetricsWriter w;
        char *text;

        metrics_writer_init(&w);
        metrics_family(&w, "pool_managerd_pool_ready", METRIC_GAUGE, "Ready (1) or not (0).");
        metrics_sample(&w, "pool_managerd_pool_ready", 1, "pool_id", "a", NULL);
        metrics_sample(&w, "pool_managerd_pool_ready", 0, "pool_id", "b", "engine", "llamacpp", NULL);
        metrics_family(&w, "pool_managerd_build_info", METRIC_GAUGE, "Version.");
        metrics_sample(&w, "pool_managerd_build_info", 1, NULL);
        text = finish(&w);
        ASSERT_STREQ(text,
                     "# HELP pool_managerd_pool_ready Ready (1) or not (0).\n"
                     "# TYPE pool_managerd_pool_ready gauge\n"
                     "pool_managerd_pool_ready{pool_id=\"a\"} 1\n"
                     "pool_managerd_pool_ready{pool_id=\"b\",engine=\"llamacpp\"} 0\n"
                     "# HELP pool_managerd_build_info Version.\n"
                     "# TYPE pool_managerd_build_info gauge\n"
                     "pool_managerd_build_info 1\n");
        free(text);
}

/* The format's escapes: label values \\ \" \n; HELP \\ \n (a quote stays). */
TEST(escaping) {
        MetricsWriter w;
        char *text;

        metrics_writer_init(&w);
        metrics_family(&w, "x_total", METRIC_COUNTER, "a \"quoted\" back\\slash\nnewline");
        metrics_sample(&w, "x_total", 3, "l", "q\"b\\n\nend", "empty", NULL, NULL);
        text = finish(&w);
        ASSERT_STREQ(text,
                     "# HELP x_total a \"quoted\" back\\\\slash\\nnewline\n"
                     "# TYPE x_total counter\n"
                     "x_total{l=\"q\\\"b\\\\n\\nend\",empty=\"\"} 3\n");
        free(text);
}

TEST(values) {
        MetricsWriter w;
        char *text;

        metrics_writer_init(&w);
        metrics_sample(&w, "a", 0.25, NULL);
        metrics_sample(&w, "b", 81604378624.0, NULL);
        metrics_sample(&w, "c", NAN, NULL);
        metrics_sample(&w, "d", INFINITY, NULL);
        metrics_sample(&w, "e", -INFINITY, NULL);
        metrics_sample(&w, "f", 1e300, NULL);
        metrics_sample(&w, "g", -3, NULL);
        text = finish(&w);
        ASSERT_STREQ(text, "a 0.25\nb 81604378624\nc NaN\nd +Inf\ne -Inf\nf 1e+300\ng -3\n");
        free(text);
}

/* Buckets are cumulative, +Inf is the count, _sum the total; le is added after the labels. */
TEST(histogram) {
        static const HistogramBounds b = { .n = 3, .bound = { 0.1, 1, 10 } };
        const char *labels[] = { "pool_id", "p" };
        Histogram h = {};
        MetricsWriter w;
        char *text;

        histogram_observe(&h, &b, 0.05);
        histogram_observe(&h, &b, 0.1);         /* le is "less or equal" */
        histogram_observe(&h, &b, 5);
        histogram_observe(&h, &b, 50);
        histogram_observe(&h, &b, NAN);         /* ignored */
        ASSERT_EQ(h.count, 4);

        metrics_writer_init(&w);
        metrics_histogram(&w, "d_seconds", &h, &b, labels, 1);
        text = finish(&w);
        ASSERT_STREQ(text,
                     "d_seconds_bucket{pool_id=\"p\",le=\"0.1\"} 2\n"
                     "d_seconds_bucket{pool_id=\"p\",le=\"1\"} 2\n"
                     "d_seconds_bucket{pool_id=\"p\",le=\"10\"} 3\n"
                     "d_seconds_bucket{pool_id=\"p\",le=\"+Inf\"} 4\n"
                     "d_seconds_sum{pool_id=\"p\"} 55.15\n"
                     "d_seconds_count{pool_id=\"p\"} 4\n");
        free(text);

        /* The daemon's bounds are increasing and fit. */
        ASSERT_TRUE(histogram_duration_bounds.n <= HISTOGRAM_BOUNDS_MAX);
        for (size_t i = 1; i < histogram_duration_bounds.n; i++)
                ASSERT_TRUE(histogram_duration_bounds.bound[i] > histogram_duration_bounds.bound[i - 1]);
}

TEST(names) {
        ASSERT_TRUE(metric_name_is_valid("pool_managerd_pool_ready", false));
        ASSERT_TRUE(metric_name_is_valid("llamacpp:kv_cache_usage_ratio", false));
        ASSERT_FALSE(metric_name_is_valid("llamacpp:x", true));
        ASSERT_TRUE(metric_name_is_valid("_x9", true));
        ASSERT_FALSE(metric_name_is_valid("9x", false));
        ASSERT_FALSE(metric_name_is_valid("a-b", false));
        ASSERT_FALSE(metric_name_is_valid("", false));
        ASSERT_FALSE(metric_name_is_valid(NULL, false));
}

TEST(empty_writer) {
        MetricsWriter w;
        char *text;

        metrics_writer_init(&w);
        text = finish(&w);
        ASSERT_STREQ(text, "");
        free(text);
        ASSERT_STREQ(metric_type_to_string(METRIC_HISTOGRAM), "histogram");
        ASSERT_NULL(metric_type_to_string(_METRIC_TYPE_MAX));
}

DEFINE_TEST_MAIN
