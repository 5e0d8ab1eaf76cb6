/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <math.h>

#include "engine-load.h"
#include "test-util.h"

#define RUNNING(l) ((l).value[ENGINE_LOAD_REQUESTS_RUNNING])
#define WAITING(l) ((l).value[ENGINE_LOAD_REQUESTS_WAITING])
#define KV(l) ((l).value[ENGINE_LOAD_KV_CACHE_USAGE_RATIO])

static int parse(const char *text, EngineLoad *l) {
        return engine_load_parse(text, strlen(text), l);
}

TEST(llamacpp) {
        EngineLoad l;

        ASSERT_EQ(parse("# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                        "# TYPE llamacpp:prompt_tokens_total counter\n"
                        "llamacpp:prompt_tokens_total 123\n"
                        "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 = 100 percent usage.\n"
                        "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                        "llamacpp:kv_cache_usage_ratio 0.25\n"
                        "# TYPE llamacpp:requests_processing gauge\n"
                        "llamacpp:requests_processing 3\n"
                        "# TYPE llamacpp:requests_deferred gauge\n"
                        "llamacpp:requests_deferred 7\n"
                        "llamacpp:n_slots 4\n", &l), 3);
        ASSERT_TRUE(RUNNING(l) == 3);
        ASSERT_TRUE(WAITING(l) == 7);
        ASSERT_TRUE(KV(l) == 0.25);
        ASSERT_TRUE(engine_load_is_set(&l));
}

/* vLLM labels every series by model_name: the series add up; the ratio takes the largest. */
TEST(vllm_series) {
        EngineLoad l;

        ASSERT_EQ(parse("# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                        "# TYPE vllm:num_requests_running gauge\n"
                        "vllm:num_requests_running{engine=\"0\",model_name=\"a\"} 2.0\n"
                        "vllm:num_requests_running{engine=\"1\",model_name=\"a\"} 1.0\n"
                        "vllm:num_requests_waiting{model_name=\"a\"} 5.0\n"
                        "vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.5\n"
                        "vllm:gpu_cache_usage_perc{model_name=\"b\"} 0.75\n"
                        "vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"a\"} 0.0\n",
                        &l), 5);
        ASSERT_TRUE(RUNNING(l) == 3);
        ASSERT_TRUE(WAITING(l) == 5);
        ASSERT_TRUE(KV(l) == 0.75);

        /* vLLM >= 0.10 spells the ratio kv_cache_usage_perc. */
        ASSERT_EQ(parse("vllm:kv_cache_usage_perc{model_name=\"x\"} 1e-1\n", &l), 1);
        ASSERT_TRUE(KV(l) == 0.1);
        ASSERT_TRUE(isnan(RUNNING(l)) && isnan(WAITING(l)));
}

TEST(none_known) {
        EngineLoad l;

        ASSERT_EQ(parse("", &l), 0);
        ASSERT_FALSE(engine_load_is_set(&l));
        ASSERT_EQ(parse("# only comments\n#\n\n   \n", &l), 0);
        ASSERT_EQ(parse("tgi_queue_size 4\nup 1\n", &l), 0);
        ASSERT_EQ(parse("<html><body>404 Not Found</body></html>", &l), 0);
        ASSERT_EQ(parse("{\"error\":{\"code\":501}}", &l), 0);
        ASSERT_FALSE(engine_load_is_set(&l));
        /* A name that only starts like a known one. */
        ASSERT_EQ(parse("llamacpp:requests_processing_total 4\nllamacpp:requests_processin 4\n", &l), 0);
        /* In a comment or a HELP line it is no sample. */
        ASSERT_EQ(parse("# llamacpp:requests_processing 4\n"
                        "# HELP llamacpp:requests_processing 4\n", &l), 0);
}

TEST(labels_with_escapes) {
        EngineLoad l;

        ASSERT_EQ(parse("vllm:num_requests_running{model_name=\"a \\\"quoted\\\" } name\",x=\"\\\\\",y=\"l\\n2\",} 4\n",
                        &l), 1);
        ASSERT_TRUE(RUNNING(l) == 4);
        ASSERT_EQ(parse("vllm:num_requests_running{} 4\nvllm:num_requests_running { a = \"b\" }\t5\n", &l), 2);
        ASSERT_TRUE(RUNNING(l) == 9);
        /* Malformed label sets: the line is skipped, the others count. */
        ASSERT_EQ(parse("vllm:num_requests_running{model_name=\"a} 4\n"
                        "vllm:num_requests_running{model_name=a} 4\n"
                        "vllm:num_requests_running{model_name=\"a\\x\"} 4\n"
                        "vllm:num_requests_running{model_name=\"a\" 4\n"
                        "vllm:num_requests_running{model:name=\"a\"} 4\n"
                        "vllm:num_requests_running{=\"a\"} 4\n"
                        "vllm:num_requests_running{a=\"b\"c=\"d\"} 4\n"
                        "vllm:num_requests_running{a=\"b\",,} 4\n"
                        "vllm:num_requests_running{\n"
                        "vllm:num_requests_running{a=\"b\"}4\n"
                        "vllm:num_requests_waiting 2\n", &l), 1);
        ASSERT_TRUE(isnan(RUNNING(l)));
        ASSERT_TRUE(WAITING(l) == 2);
}

TEST(values_and_timestamps) {
        EngineLoad l;

        ASSERT_EQ(parse("llamacpp:requests_processing 1 1700000000000\n"
                        "llamacpp:requests_processing 2 -5\n"
                        "llamacpp:requests_processing\t3\t\r\n"
                        "llamacpp:requests_processing 4 17000x\n"
                        "llamacpp:requests_processing 5 1 2\n"
                        "llamacpp:requests_processing 6.5e0\n", &l), 4);
        ASSERT_TRUE(RUNNING(l) == 12.5);

        /* NaN (no value yet), infinities, negatives, hex, words, nothing: skipped. */
        ASSERT_EQ(parse("llamacpp:requests_deferred NaN\n"
                        "llamacpp:requests_deferred +Inf\n"
                        "llamacpp:requests_deferred -Inf\n"
                        "llamacpp:requests_deferred Inf\n"
                        "llamacpp:requests_deferred -1\n"
                        "llamacpp:requests_deferred 0x10\n"
                        "llamacpp:requests_deferred infinity\n"
                        "llamacpp:requests_deferred nan\n"
                        "llamacpp:requests_deferred 1e999\n"
                        "llamacpp:requests_deferred .\n"
                        "llamacpp:requests_deferred 1e\n"
                        "llamacpp:requests_deferred --1\n"
                        "llamacpp:requests_deferred 1,5\n"
                        "llamacpp:requests_deferred\n"
                        "llamacpp:requests_deferred \n"
                        "llamacpp:requests_deferred 11111111111111111111111111111111111111111111111111111111111111111111\n",
                        &l), 0);
        ASSERT_TRUE(isnan(WAITING(l)));

        /* No final newline; CRLF; leading blanks. */
        ASSERT_EQ(parse("  llamacpp:requests_deferred 1\r\nllamacpp:kv_cache_usage_ratio 0", &l), 2);
        ASSERT_TRUE(WAITING(l) == 1);
        ASSERT_TRUE(KV(l) == 0);
        ASSERT_TRUE(engine_load_is_set(&l));
}

TEST(garbage) {
        static const char bin[] = "llamacpp:requests_processing 1\n\0\xff\xfe\n{}}{\"\\\n"
                                  "llamacpp:requests\0_processing 7\n"
                                  "llamacpp:requests_processing 2\0\n"
                                  "llamacpp:requests_deferred 3";
        EngineLoad l;
        char *big;
        size_t n = 2 * ENGINE_LOAD_LINE_MAX;

        ASSERT_EQ(engine_load_parse(bin, sizeof(bin) - 1, &l), 2);
        ASSERT_TRUE(RUNNING(l) == 1);
        ASSERT_TRUE(WAITING(l) == 3);

        /* A line too long is skipped (here a label value of 32 KiB), the next one counts. */
        big = malloc(n + 128);
        ASSERT_NOT_NULL(big);
        strcpy(big, "llamacpp:requests_processing{a=\"");
        memset(big + strlen(big), 'x', n);
        strcpy(big + strlen("llamacpp:requests_processing{a=\"") + n, "\"} 9\nllamacpp:requests_deferred 4\n");
        ASSERT_EQ(parse(big, &l), 1);
        ASSERT_TRUE(isnan(RUNNING(l)));
        ASSERT_TRUE(WAITING(l) == 4);

        /* Only newlines, only blanks, an unterminated label at the very end. */
        memset(big, '\n', n);
        ASSERT_EQ(engine_load_parse(big, n, &l), 0);
        memset(big, ' ', n);
        ASSERT_EQ(engine_load_parse(big, n, &l), 0);
        ASSERT_EQ(parse("vllm:num_requests_running{a=\"\\", &l), 0);
        ASSERT_EQ(parse("vllm:num_requests_running{a", &l), 0);
        ASSERT_EQ(parse("vllm:num_requests_running", &l), 0);
        ASSERT_EQ(engine_load_parse("vllm:num_requests_running 1", 10, &l), 0);
        free(big);
}

/* Sums that overflow keep the last finite sum. */
TEST(overflow) {
        EngineLoad l;

        ASSERT_EQ(parse("vllm:num_requests_running 1e308\nvllm:num_requests_running 1e308\n", &l), 2);
        ASSERT_TRUE(RUNNING(l) == 1e308);
}

DEFINE_TEST_MAIN
