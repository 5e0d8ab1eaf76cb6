/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>

#include "test-util.h"
#include "time-util.h"

static usec_t parse_ok(const char *s) {
        usec_t u = 4711;

        ASSERT_OK(parse_duration(s, &u));
        return u;
}

static void assert_parse_fails(const char *s, int error) {
        usec_t u = 4711;

        ASSERT_ERROR(parse_duration(s, &u), error);
        ASSERT_EQ(u, 4711);     /* Untouched on failure. */
}

TEST(now) {
        usec_t a, b, m;

        a = now(CLOCK_REALTIME);
        b = now(CLOCK_REALTIME);
        ASSERT_TRUE(a > 1600000000ULL * USEC_PER_SEC);  /* After 2020. */
        ASSERT_TRUE(b >= a);

        m = now(CLOCK_MONOTONIC);
        ASSERT_TRUE(m > 0);
        ASSERT_TRUE(now(CLOCK_MONOTONIC) >= m);
        ASSERT_TRUE(now(CLOCK_BOOTTIME) > 0);
}

TEST(parse_duration_units) {
        ASSERT_EQ(parse_ok("7us"), 7);
        ASSERT_EQ(parse_ok("7usec"), 7);
        ASSERT_EQ(parse_ok("500ms"), 500 * USEC_PER_MSEC);
        ASSERT_EQ(parse_ok("500msec"), 500 * USEC_PER_MSEC);
        ASSERT_EQ(parse_ok("5s"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("5sec"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1second"), USEC_PER_SEC);
        ASSERT_EQ(parse_ok("5seconds"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("2m"), 2 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("2min"), 2 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("1minute"), USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("2minutes"), 2 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("3h"), 3 * USEC_PER_HOUR);
        ASSERT_EQ(parse_ok("3hr"), 3 * USEC_PER_HOUR);
        ASSERT_EQ(parse_ok("1hour"), USEC_PER_HOUR);
        ASSERT_EQ(parse_ok("3hours"), 3 * USEC_PER_HOUR);
        ASSERT_EQ(parse_ok("4d"), 4 * USEC_PER_DAY);
        ASSERT_EQ(parse_ok("1day"), USEC_PER_DAY);
        ASSERT_EQ(parse_ok("4days"), 4 * USEC_PER_DAY);
        ASSERT_EQ(parse_ok("2w"), 14 * USEC_PER_DAY);
        ASSERT_EQ(parse_ok("1week"), 7 * USEC_PER_DAY);
        ASSERT_EQ(parse_ok("2weeks"), 14 * USEC_PER_DAY);
}

TEST(parse_duration_bare_and_zero) {
        ASSERT_EQ(parse_ok("0"), 0);
        ASSERT_EQ(parse_ok("0s"), 0);
        ASSERT_EQ(parse_ok("0ms"), 0);
        ASSERT_EQ(parse_ok("000"), 0);
        ASSERT_EQ(parse_ok("5"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("90"), 90 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("007"), 7 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1.5"), 1500 * USEC_PER_MSEC);
}

TEST(parse_duration_combinations) {
        ASSERT_EQ(parse_ok("1h 30min"), USEC_PER_HOUR + 30 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("1h30min"), USEC_PER_HOUR + 30 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("2min 3s"), 123 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1w 2d 3h 4min 5s 6ms 7us"),
                  9 * USEC_PER_DAY + 3 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE + 5 * USEC_PER_SEC +
                  6 * USEC_PER_MSEC + 7);
        ASSERT_EQ(parse_ok("1s 1s"), 2 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1min 30"), 90 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1 2"), 3 * USEC_PER_SEC);          /* Like systemd: parts add up. */
        ASSERT_EQ(parse_ok("5 s"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("  5s  "), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("\t1h\t \t30min\n"), USEC_PER_HOUR + 30 * USEC_PER_MINUTE);
}

TEST(parse_duration_fractions) {
        ASSERT_EQ(parse_ok("1.5s"), 1500 * USEC_PER_MSEC);
        ASSERT_EQ(parse_ok("0.5s"), 500 * USEC_PER_MSEC);
        ASSERT_EQ(parse_ok(".5s"), 500 * USEC_PER_MSEC);
        ASSERT_EQ(parse_ok("5.s"), 5 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("1.5min"), 90 * USEC_PER_SEC);
        ASSERT_EQ(parse_ok("0.25h"), 15 * USEC_PER_MINUTE);
        ASSERT_EQ(parse_ok("1.5ms"), 1500);
        ASSERT_EQ(parse_ok("2.999us"), 2);                    /* Below 1us is dropped. */
        ASSERT_EQ(parse_ok("1.123456789s"), 1123456);
        ASSERT_EQ(parse_ok("1.5h 0.5min"), 90 * USEC_PER_MINUTE + 30 * USEC_PER_SEC);
}

TEST(parse_duration_infinity) {
        ASSERT_EQ(parse_ok("infinity"), USEC_INFINITY);
        ASSERT_EQ(parse_ok("  infinity "), USEC_INFINITY);
        assert_parse_fails("infinityx", EINVAL);
        assert_parse_fails("infinity 5s", EINVAL);
        assert_parse_fails("5s infinity", EINVAL);
        assert_parse_fails("inf", EINVAL);
        assert_parse_fails("Infinity", EINVAL);
}

TEST(parse_duration_bad) {
        assert_parse_fails(NULL, EINVAL);
        assert_parse_fails("", EINVAL);
        assert_parse_fails("   ", EINVAL);
        assert_parse_fails("-1s", EINVAL);
        assert_parse_fails("-0", EINVAL);
        assert_parse_fails("1s -1s", EINVAL);
        assert_parse_fails("+5s", EINVAL);
        assert_parse_fails("s", EINVAL);
        assert_parse_fails(".", EINVAL);
        assert_parse_fails(".s", EINVAL);
        assert_parse_fails("1..5s", EINVAL);
        assert_parse_fails("1.5.5s", EINVAL);
        assert_parse_fails("abc", EINVAL);
        assert_parse_fails("5x", EINVAL);
        assert_parse_fails("5secs", EINVAL);
        assert_parse_fails("5 fortnights", EINVAL);
        assert_parse_fails("5S", EINVAL);               /* Units are case-sensitive. */
        assert_parse_fails("5M", EINVAL);               /* Months are not supported. */
        assert_parse_fails("1y", EINVAL);
        assert_parse_fails("5ns", EINVAL);
        assert_parse_fails("5s,3s", EINVAL);
        assert_parse_fails("5s;", EINVAL);
        assert_parse_fails("0x10", EINVAL);
        assert_parse_fails("1e3", EINVAL);
}

TEST(parse_duration_overflow) {
        usec_t u;

        /* UINT64_MAX - 1 is the largest finite value. */
        ASSERT_EQ(parse_ok("18446744073709551614us"), UINT64_MAX - 1);
        assert_parse_fails("18446744073709551615us", ERANGE);     /* Would be USEC_INFINITY. */
        assert_parse_fails("18446744073709551616us", ERANGE);
        assert_parse_fails("99999999999999999999999999", ERANGE);
        assert_parse_fails("18446744073709551615s", ERANGE);
        ASSERT_EQ(parse_ok("30500568weeks"), 30500568ULL * 7 * USEC_PER_DAY);
        assert_parse_fails("30500569weeks", ERANGE);
        ASSERT_OK(parse_duration("30000000weeks", &u));
        assert_parse_fails("30000000weeks 30000000weeks", ERANGE);
        assert_parse_fails("18446744073709551614us 2us", ERANGE);
        ASSERT_EQ(parse_ok("18446744073709.551614s"), UINT64_MAX - 1);
        assert_parse_fails("18446744073709.551615s", ERANGE);
        assert_parse_fails("18446744073709.551616s", ERANGE);
        assert_parse_fails("18446744073709.999999s", ERANGE);  /* Overflows in the fraction. */
        assert_parse_fails("18446744073709551.999999s", ERANGE);
}

static const char *fmt(usec_t t) {
        static char buf[FORMAT_DURATION_MAX];

        return format_duration(buf, sizeof(buf), t);
}

TEST(format_duration) {
        ASSERT_STREQ(fmt(0), "0");
        ASSERT_STREQ(fmt(USEC_INFINITY), "infinity");
        ASSERT_STREQ(fmt(1), "1us");
        ASSERT_STREQ(fmt(500 * USEC_PER_MSEC), "500ms");
        ASSERT_STREQ(fmt(5 * USEC_PER_SEC), "5s");
        ASSERT_STREQ(fmt(123 * USEC_PER_SEC), "2min 3s");
        ASSERT_STREQ(fmt(USEC_PER_HOUR), "1h");
        ASSERT_STREQ(fmt(USEC_PER_HOUR + 30 * USEC_PER_MINUTE), "1h 30min");
        ASSERT_STREQ(fmt(1500 * USEC_PER_MSEC), "1s 500ms");
        ASSERT_STREQ(fmt(USEC_PER_DAY), "1d");
        ASSERT_STREQ(fmt(8 * USEC_PER_DAY + 1), "1w 1d 1us");
        ASSERT_STREQ(fmt(9 * USEC_PER_DAY + 3 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE + 5 * USEC_PER_SEC +
                         6 * USEC_PER_MSEC + 7),
                     "1w 2d 3h 4min 5s 6ms 7us");
        ASSERT_STREQ(fmt(UINT64_MAX - 1), "30500568w 6d 8h 1min 49s 551ms 614us");
}

TEST(format_duration_roundtrip) {
        static const usec_t values[] = {
                1, 999, 1000, 1001, 500 * USEC_PER_MSEC, USEC_PER_SEC, 61 * USEC_PER_SEC,
                USEC_PER_HOUR - 1, 3 * USEC_PER_DAY + 17, 52 * 7 * USEC_PER_DAY, UINT64_MAX - 1,
        };
        char buf[FORMAT_DURATION_MAX];

        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                usec_t u;

                ASSERT_NOT_NULL(format_duration(buf, sizeof(buf), values[i]));
                ASSERT_OK(parse_duration(buf, &u));
                ASSERT_EQ(u, values[i]);
        }

        ASSERT_NOT_NULL(format_duration(buf, sizeof(buf), USEC_INFINITY));
        ASSERT_OK(parse_duration(buf, &(usec_t) {0}));
}

TEST(format_duration_truncates) {
        char buf[8];

        memset(buf, 'x', sizeof(buf));
        ASSERT_NOT_NULL(format_duration(buf, sizeof(buf), 123 * USEC_PER_SEC + 4));
        ASSERT_STREQ(buf, "2min 3s");

        memset(buf, 'x', sizeof(buf));
        ASSERT_NOT_NULL(format_duration(buf, 6, 123 * USEC_PER_SEC));
        ASSERT_STREQ(buf, "2min");              /* Whole parts only, always terminated. */

        ASSERT_NOT_NULL(format_duration(buf, 3, USEC_INFINITY));
        ASSERT_STREQ(buf, "in");
}

TEST(format_timestamp_rfc3339) {
        char buf[FORMAT_TIMESTAMP_MAX];

        ASSERT_STREQ(format_timestamp_rfc3339(buf, sizeof(buf), 0), "1970-01-01T00:00:00.000Z");
        ASSERT_STREQ(format_timestamp_rfc3339(buf, sizeof(buf), 1795769006123456ULL),
                     "2026-11-27T08:43:26.123Z");
        ASSERT_STREQ(format_timestamp_rfc3339(buf, sizeof(buf), 951782400999999ULL),
                     "2000-02-29T00:00:00.999Z");
        ASSERT_NULL(format_timestamp_rfc3339(buf, sizeof(buf), USEC_INFINITY));
        ASSERT_NULL(format_timestamp_rfc3339(buf, 24, 0));      /* Needs 25 bytes. */
        ASSERT_NOT_NULL(format_timestamp_rfc3339(buf, 25, 0));
        ASSERT_NOT_NULL(format_timestamp_rfc3339(buf, sizeof(buf), now(CLOCK_REALTIME)));
}

DEFINE_TEST_MAIN
