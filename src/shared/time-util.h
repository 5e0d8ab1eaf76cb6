/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Microsecond time values and systemd-style durations ("500ms", "5s", "2min", "1h 30min"). */

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE ((usec_t) (60ULL * USEC_PER_SEC))
#define USEC_PER_HOUR ((usec_t) (60ULL * USEC_PER_MINUTE))
#define USEC_PER_DAY ((usec_t) (24ULL * USEC_PER_HOUR))
#define MSEC_PER_SEC 1000ULL

usec_t now(clockid_t clock);

/* The first slot after t of the grid origin, origin + interval, ... (t >= origin, interval > 0):
 * slots already in the past are skipped, so a late tick never makes a burst. */
static inline usec_t grid_next_slot(usec_t origin, usec_t interval, usec_t t) {
        return origin + ((t - origin) / interval + 1) * interval;
}

/*
 * Parses a duration the way systemd.time(7) does: a sequence of number+unit pairs
 * ("1h 30min", "1.5s"); a bare number is seconds. Units: us, ms, s/sec/second(s),
 * m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s). Returns -EINVAL on bad syntax,
 * -ERANGE on overflow.
 */
int parse_duration(const char *s, usec_t *ret);

/* Formats like "500ms", "5s", "2min 3s", "infinity" into buf (at least FORMAT_DURATION_MAX). */
#define FORMAT_DURATION_MAX 64
char *format_duration(char *buf, size_t size, usec_t t);

/* Formats a CLOCK_REALTIME timestamp as RFC 3339 UTC with milliseconds into buf. */
#define FORMAT_TIMESTAMP_MAX 40
char *format_timestamp_rfc3339(char *buf, size_t size, usec_t t);
