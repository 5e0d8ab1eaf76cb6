/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Minimal test assertions: each failure prints the expression, file and line, and the
 * test binary exits non-zero. TEST(name) registers a case; test_main() runs them all.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                               \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: Assertion failed: %s\n", __FILE__,      \
                                __LINE__, #expr);                                       \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_EQ(a, b)                                                                 \
        do {                                                                            \
                intmax_t _a_ = (intmax_t) (a), _b_ = (intmax_t) (b);                    \
                if (_a_ != _b_) {                                                       \
                        fprintf(stderr, "%s:%d: Assertion failed: %s == %s (%jd != %jd)\n", \
                                __FILE__, __LINE__, #a, #b, _a_, _b_);                  \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_OK(expr)                                                                 \
        do {                                                                            \
                intmax_t _r_ = (intmax_t) (expr);                                       \
                if (_r_ < 0) {                                                          \
                        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__,   \
                                #expr, strerror((int) -_r_));                           \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_ERROR(expr, err) ASSERT_EQ((expr), -(err))

#define ASSERT_STREQ(a, b)                                                              \
        do {                                                                            \
                const char *_a_ = (a), *_b_ = (b);                                      \
                if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0) {                            \
                        fprintf(stderr, "%s:%d: Assertion failed: %s == %s (\"%s\" != \"%s\")\n", \
                                __FILE__, __LINE__, #a, #b, _a_ ?: "(null)", _b_ ?: "(null)"); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

#define ASSERT_NULL(expr) ASSERT_TRUE((expr) == NULL)
#define ASSERT_NOT_NULL(expr) ASSERT_TRUE((expr) != NULL)

/* Substring match, for error messages. */
#define ASSERT_CONTAINS(haystack, needle)                                               \
        do {                                                                            \
                const char *_h_ = (haystack), *_n_ = (needle);                          \
                if (!_h_ || !strstr(_h_, _n_)) {                                        \
                        fprintf(stderr, "%s:%d: Assertion failed: \"%s\" contains \"%s\"\n", \
                                __FILE__, __LINE__, _h_ ?: "(null)", _n_);              \
                        abort();                                                        \
                }                                                                       \
        } while (0)

typedef struct TestCase {
        const char *name;
        void (*func)(void);
} TestCase;

#define TEST(n)                                                                         \
        static void test_##n(void);                                                     \
        static const TestCase test_case_##n                                             \
                __attribute__((used, section("test_cases"), aligned(8))) = { #n, test_##n }; \
        static void test_##n(void)

extern const TestCase __start_test_cases[];
extern const TestCase __stop_test_cases[];

/* Runs every TEST() of the binary, or only those named on the command line. */
#define DEFINE_TEST_MAIN                                                                \
        int main(int argc, char *argv[]) {                                              \
                unsigned n = 0;                                                         \
                for (const TestCase *t = __start_test_cases; t < __stop_test_cases; t++) { \
                        if (argc > 1) {                                                 \
                                int found = 0;                                          \
                                for (int i = 1; i < argc; i++)                          \
                                        if (strcmp(argv[i], t->name) == 0)              \
                                                found = 1;                              \
                                if (!found)                                             \
                                        continue;                                       \
                        }                                                               \
                        fprintf(stderr, "/* %s */\n", t->name);                         \
                        t->func();                                                      \
                        n++;                                                            \
                        printf("ok %u - %s\n", n, t->name);                             \
                        fflush(stdout);                                                 \
                }                                                                       \
                fprintf(stderr, "%u test cases passed\n", n);                           \
                return 0;                                                               \
        }
