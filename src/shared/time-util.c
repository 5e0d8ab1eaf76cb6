/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Microsecond clocks and durations. parse_duration() accepts what systemd.time(7) calls a
 * time span, restricted to the units up to weeks: a sequence of "<number>[<unit>]" parts,
 * optionally separated by whitespace, whose values add up ("1h 30min", "1.5s", "90").
 * format_duration() writes the canonical form that parse_duration() reads back.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "time-util.h"

#define USEC_PER_WEEK ((usec_t) (7ULL * USEC_PER_DAY))

/* Weak: tests/test-pool.c drives the pool state machine with a fake clock of its own. */
__attribute__((weak)) usec_t now(clockid_t clock) {
        struct timespec ts;

        /* Fails only for a clock id the kernel does not know: a programming error. */
        if (clock_gettime(clock, &ts) < 0)
                abort();

        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

static const struct {
        const char *suffix;
        usec_t usec;
} unit_table[] = {
        { "us",      1              },
        { "usec",    1              },
        { "ms",      USEC_PER_MSEC  },
        { "msec",    USEC_PER_MSEC  },
        { "s",       USEC_PER_SEC   },
        { "sec",     USEC_PER_SEC   },
        { "second",  USEC_PER_SEC   },
        { "seconds", USEC_PER_SEC   },
        { "m",       USEC_PER_MINUTE },
        { "min",     USEC_PER_MINUTE },
        { "minute",  USEC_PER_MINUTE },
        { "minutes", USEC_PER_MINUTE },
        { "h",       USEC_PER_HOUR  },
        { "hr",      USEC_PER_HOUR  },
        { "hour",    USEC_PER_HOUR  },
        { "hours",   USEC_PER_HOUR  },
        { "d",       USEC_PER_DAY   },
        { "day",     USEC_PER_DAY   },
        { "days",    USEC_PER_DAY   },
        { "w",       USEC_PER_WEEK  },
        { "week",    USEC_PER_WEEK  },
        { "weeks",   USEC_PER_WEEK  },
};

static bool char_is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool char_is_letter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool char_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_space(const char *p) {
        while (char_is_space(*p))
                p++;
        return p;
}

/* Looks up the unit of n letters at p; a missing unit (n == 0) means seconds. */
static int unit_multiplier(const char *p, size_t n, usec_t *ret) {
        if (n == 0) {
                *ret = USEC_PER_SEC;
                return 0;
        }

        for (size_t i = 0; i < ELEMENTSOF(unit_table); i++)
                if (strlen(unit_table[i].suffix) == n && strneq(p, unit_table[i].suffix, n)) {
                        *ret = unit_table[i].usec;
                        return 0;
                }

        return -EINVAL;
}

/* Parses one "<digits>[.<digits>] [<unit>]" at *p, advancing *p past it. */
static int parse_part(const char **p, usec_t *ret) {
        const char *s = *p, *frac = NULL, *unit;
        usec_t integer = 0, multiplier, result, m;
        size_t n_digits = 0, n_unit;
        int r;

        for (; char_is_digit(*s); s++, n_digits++) {
                unsigned d = (unsigned) (*s - '0');

                if (integer > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                integer = integer * 10 + d;
        }

        if (*s == '.') {
                frac = ++s;
                for (; char_is_digit(*s); s++)
                        n_digits++;
        }

        /* Refuses "", ".", "-5", "+5" and anything else not starting with a digit. */
        if (n_digits == 0)
                return -EINVAL;

        s = skip_space(s);
        unit = s;
        while (char_is_letter(*s))
                s++;
        n_unit = (size_t) (s - unit);

        r = unit_multiplier(unit, n_unit, &multiplier);
        if (r < 0)
                return r;

        /* A part without a unit must end at whitespace, so that "1..5" or "1.5.5" are refused
         * rather than read as two parts. */
        if (n_unit == 0 && *s != '\0' && !char_is_space(s[-1]))
                return -EINVAL;

        if (integer > UINT64_MAX / multiplier)
                return -ERANGE;
        result = integer * multiplier;

        /* Each further fractional digit is worth a tenth of the previous one; digits below
         * one microsecond are dropped, so "0.0000001s" is 0. */
        m = multiplier;
        for (const char *f = frac; f && char_is_digit(*f) && m > 0; f++) {
                usec_t add;

                m /= 10;
                add = (usec_t) (*f - '0') * m;
                if (add > UINT64_MAX - result)
                        return -ERANGE;
                result += add;
        }

        *p = s;
        *ret = result;
        return 0;
}

int parse_duration(const char *s, usec_t *ret) {
        const char *p;
        usec_t sum = 0;

        if (!s)
                return -EINVAL;

        p = skip_space(s);
        if (strneq(p, "infinity", strlen("infinity")) && *skip_space(p + strlen("infinity")) == '\0') {
                *ret = USEC_INFINITY;
                return 0;
        }

        if (*p == '\0')
                return -EINVAL;

        for (;;) {
                usec_t v;
                int r;

                r = parse_part(&p, &v);
                if (r < 0)
                        return r;

                if (v > UINT64_MAX - sum)
                        return -ERANGE;
                sum += v;

                p = skip_space(p);
                if (*p == '\0')
                        break;
        }

        /* USEC_INFINITY has its own spelling; a sum that reaches it is an overflow. */
        if (sum == USEC_INFINITY)
                return -ERANGE;

        *ret = sum;
        return 0;
}

char *format_duration(char *buf, size_t size, usec_t t) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "w",   USEC_PER_WEEK   },
                { "d",   USEC_PER_DAY    },
                { "h",   USEC_PER_HOUR   },
                { "min", USEC_PER_MINUTE },
                { "s",   USEC_PER_SEC    },
                { "ms",  USEC_PER_MSEC   },
                { "us",  1               },
        };
        size_t n = 0;

        if (!buf || size == 0)
                return buf;

        if (t == USEC_INFINITY) {
                (void) snprintf(buf, size, "infinity");
                return buf;
        }
        if (t == 0) {
                (void) snprintf(buf, size, "0");
                return buf;
        }

        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                usec_t v = t / table[i].usec;
                int k;

                if (v == 0)
                        continue;
                t %= table[i].usec;

                k = snprintf(buf + n, size - n, "%s%llu%s",
                             n > 0 ? " " : "", (unsigned long long) v, table[i].suffix);
                if (k < 0 || (size_t) k >= size - n) {
                        buf[n] = '\0';         /* Drop the part that did not fit whole. */
                        break;
                }
                n += (size_t) k;
        }

        return buf;
}

char *format_timestamp_rfc3339(char *buf, size_t size, usec_t t) {
        struct tm tm;
        time_t sec;
        size_t n;
        int k;

        if (!buf || size == 0 || t == USEC_INFINITY)
                return NULL;

        sec = (time_t) (t / USEC_PER_SEC);
        if (!gmtime_r(&sec, &tm))
                return NULL;

        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return NULL;

        k = snprintf(buf + n, size - n, ".%03uZ", (unsigned) ((t % USEC_PER_SEC) / USEC_PER_MSEC));
        if (k < 0 || (size_t) k >= size - n)
                return NULL;

        return buf;
}
