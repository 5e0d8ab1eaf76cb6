/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Which engine log lines trigger a readiness probe, and the 10 ms rate limit (probe-trigger.c). */

#include "probe-trigger.h"
#include "test-util.h"

static bool ready(const char *s) {
        return probe_trigger_is_ready_line(s, strlen(s));
}

TEST(ready_lines_of_known_engines) {
        /* llama.cpp, old and new wording */
        ASSERT_TRUE(ready("main: server is listening on http://127.0.0.1:8080 - starting the main loop"));
        ASSERT_TRUE(ready("srv  main: server is listening on 127.0.0.1:8081"));
        /* vLLM (uvicorn) */
        ASSERT_TRUE(ready("INFO:     Application startup complete."));
        /* TGI, text and coloured */
        ASSERT_TRUE(ready("2024-05-01T10:00:00.000000Z  INFO text_generation_router::server: "
                          "router/src/server.rs:1827: Connected"));
        ASSERT_TRUE(ready("INFO text_generation_router: Connected\033[0m\n"));
        ASSERT_TRUE(ready("Connected"));
}

TEST(other_lines_are_not_ready_lines) {
        ASSERT_FALSE(ready(""));
        ASSERT_FALSE(ready("llama_model_loader: loaded meta data with 19 key-value pairs"));
        ASSERT_FALSE(ready("main: HTTP server is loading the model"));
        ASSERT_FALSE(ready("Connected to the shard 0"));          /* not the last word */
        ASSERT_FALSE(ready("Disconnected"));                       /* a longer word */
        ASSERT_FALSE(ready("server is listenin"));
        ASSERT_FALSE(probe_trigger_is_ready_line(NULL, 0));
}

TEST(ready_line_is_bounded_by_size) {
        const char line[] = "server is listening";

        /* The phrase cut by size does not match; bytes after size are not read. */
        ASSERT_FALSE(probe_trigger_is_ready_line(line, sizeof(line) - 2));
        ASSERT_TRUE(probe_trigger_is_ready_line(line, sizeof(line) - 1));
        /* An embedded NUL before the last word is not a separator. */
        ASSERT_FALSE(probe_trigger_is_ready_line("x\0Connected", 11));
        ASSERT_TRUE(probe_trigger_is_ready_line("x Connected\0", 11));
}

TEST(rate_limit) {
        const usec_t gap = PROBE_TRIGGER_GAP_USEC, t = 5 * USEC_PER_SEC;

        /* The first line probes at once. */
        ASSERT_EQ(probe_trigger_when(0, t, false), t);
        /* Within the gap: the probe waits for the gap's end, however many lines come. */
        ASSERT_EQ(probe_trigger_when(t, t + 1, false), t + gap);
        ASSERT_EQ(probe_trigger_when(t, t + gap - 1, false), t + gap);
        /* At or after the gap: at once. */
        ASSERT_EQ(probe_trigger_when(t, t + gap, false), t + gap);
        ASSERT_EQ(probe_trigger_when(t, t + 3 * gap, false), t + 3 * gap);
        /* A ready line never waits. */
        ASSERT_EQ(probe_trigger_when(t, t + 1, true), t + 1);
        ASSERT_EQ(gap, 10 * USEC_PER_MSEC);
}

DEFINE_TEST_MAIN
