/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>

#include "event-util.h"
#include "test-util.h"
#include "time-util.h"

static int on_time(sd_event_source *s, uint64_t usec, void *userdata) {
        unsigned *fired = userdata;

        (*fired)++;
        return 0;
}

static void assert_armed(sd_event_source *s, uint64_t usec) {
        uint64_t t = 0;
        int enabled = SD_EVENT_OFF;

        ASSERT_OK(sd_event_source_get_time(s, &t));
        ASSERT_EQ(t, usec);
        ASSERT_OK(sd_event_source_get_enabled(s, &enabled));
        ASSERT_EQ(enabled, SD_EVENT_ONESHOT);
}

TEST(source_arm) {
        sd_event *e = NULL;
        sd_event_source *s = NULL;
        unsigned fired = 0;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sd_event_add_time(e, &s, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC, on_time, &fired));
        ASSERT_OK(sd_event_source_set_enabled(s, SD_EVENT_OFF));

        ASSERT_OK(event_source_arm(s, 4711));
        assert_armed(s, 4711);

        sd_event_source_disable_unref(s);
        sd_event_unref(e);
}

TEST(reset_time_creates_then_rearms) {
        sd_event *e = NULL;
        sd_event_source *s = NULL, *first;
        const char *description = NULL;
        unsigned fired = 0;
        uint64_t t;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &t));

        /* Created, one-shot, with its description. */
        ASSERT_OK(event_reset_time(e, &s, CLOCK_MONOTONIC, t + USEC_PER_SEC, USEC_PER_MSEC, on_time, &fired,
                                   "test-timer"));
        ASSERT_NOT_NULL(s);
        assert_armed(s, t + USEC_PER_SEC);
        ASSERT_OK(sd_event_source_get_description(s, &description));
        ASSERT_STREQ(description, "test-timer");
        first = s;

        /* Armed again, earlier: the same source. */
        ASSERT_OK(event_reset_time(e, &s, CLOCK_MONOTONIC, t, USEC_PER_MSEC, on_time, &fired, "test-timer"));
        ASSERT_TRUE(s == first);
        assert_armed(s, t);

        /* It fires once, is off after that, and is re-armed. */
        while (fired == 0)
                ASSERT_OK(sd_event_run(e, 100 * USEC_PER_MSEC));
        ASSERT_EQ(fired, 1);
        ASSERT_EQ(sd_event_source_get_enabled(s, NULL), 0);
        ASSERT_OK(event_reset_time(e, &s, CLOCK_MONOTONIC, t + 2 * USEC_PER_SEC, USEC_PER_MSEC, on_time,
                                   &fired, NULL));
        ASSERT_TRUE(s == first);
        assert_armed(s, t + 2 * USEC_PER_SEC);

        sd_event_source_disable_unref(s);
        sd_event_unref(e);
}

TEST(reset_time_relative) {
        sd_event *e = NULL;
        sd_event_source *s = NULL;
        unsigned fired = 0;
        uint64_t before, after, t;

        ASSERT_OK(sd_event_new(&e));

        /* Before the loop has run, its now is read afresh on each call. */
        ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &before));
        ASSERT_OK(event_reset_time_relative(e, &s, CLOCK_MONOTONIC, 5 * USEC_PER_SEC, USEC_PER_MSEC, on_time,
                                            &fired, "test-relative"));
        ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &after));
        ASSERT_NOT_NULL(s);
        ASSERT_OK(sd_event_source_get_time(s, &t));
        ASSERT_TRUE(t >= before + 5 * USEC_PER_SEC && t <= after + 5 * USEC_PER_SEC);
        assert_armed(s, t);

        /* Past the end of time: refused, the timer left as it was. */
        ASSERT_ERROR(event_reset_time_relative(e, &s, CLOCK_MONOTONIC, UINT64_MAX - 1, USEC_PER_MSEC,
                                               on_time, &fired, NULL), EOVERFLOW);
        assert_armed(s, t);

        sd_event_source_disable_unref(s);
        sd_event_unref(e);
}

DEFINE_TEST_MAIN
