/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "shared/macro.h"
#include <arpa/inet.h>

#include "shared/buffer.h"
#include "shared/string-util.h"
#include "test-util.h"

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        ASSERT_NOT_NULL(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

TEST(pool_id_valid_examples) {
        ASSERT_TRUE(pool_id_is_valid("a"));
        ASSERT_TRUE(pool_id_is_valid("7"));
        ASSERT_TRUE(pool_id_is_valid("llama-7b"));
        ASSERT_TRUE(pool_id_is_valid("Pool_1.q4"));
        ASSERT_TRUE(pool_id_is_valid("a.."));
        ASSERT_TRUE(pool_id_is_valid("a-"));
        ASSERT_TRUE(pool_id_is_valid("0_._-"));
}

TEST(pool_id_length_64_ok_65_rejected) {
        _cleanup_free_ char *s63 = repeat('a', 63), *s64 = repeat('a', 64), *s65 = repeat('a', 65),
                            *s200 = repeat('x', 200);

        ASSERT_EQ(POOL_ID_MAX, 64);
        ASSERT_TRUE(pool_id_is_valid(s63));
        ASSERT_TRUE(pool_id_is_valid(s64));
        ASSERT_FALSE(pool_id_is_valid(s65));
        ASSERT_FALSE(pool_id_is_valid(s200));
}

TEST(pool_id_rejects_empty_and_leading_non_alnum) {
        ASSERT_FALSE(pool_id_is_valid(NULL));
        ASSERT_FALSE(pool_id_is_valid(""));
        ASSERT_FALSE(pool_id_is_valid("-a"));
        ASSERT_FALSE(pool_id_is_valid("-"));
        ASSERT_FALSE(pool_id_is_valid("_a"));
        ASSERT_FALSE(pool_id_is_valid(".a"));
        ASSERT_FALSE(pool_id_is_valid("."));
        ASSERT_FALSE(pool_id_is_valid(".."));
        ASSERT_FALSE(pool_id_is_valid("../etc"));
}

TEST(pool_id_rejects_slash_space_and_specials) {
        ASSERT_FALSE(pool_id_is_valid("a/b"));
        ASSERT_FALSE(pool_id_is_valid("a/../b"));
        ASSERT_FALSE(pool_id_is_valid("/a"));
        ASSERT_FALSE(pool_id_is_valid("a b"));
        ASSERT_FALSE(pool_id_is_valid(" a"));
        ASSERT_FALSE(pool_id_is_valid("a "));
        ASSERT_FALSE(pool_id_is_valid("a\tb"));
        ASSERT_FALSE(pool_id_is_valid("a\nb"));
        ASSERT_FALSE(pool_id_is_valid("a\\b"));
        ASSERT_FALSE(pool_id_is_valid("a:b"));
        ASSERT_FALSE(pool_id_is_valid("a@b"));
        ASSERT_FALSE(pool_id_is_valid("a%b"));
        ASSERT_FALSE(pool_id_is_valid("a$b"));
        ASSERT_FALSE(pool_id_is_valid("a*"));
}

TEST(pool_id_rejects_unicode) {
        ASSERT_FALSE(pool_id_is_valid("é"));
        ASSERT_FALSE(pool_id_is_valid("café"));
        ASSERT_FALSE(pool_id_is_valid("pool\xc2\xa0x"));     /* NBSP */
        ASSERT_FALSE(pool_id_is_valid("a\xe2\x80\x8b"));     /* zero-width space */
        ASSERT_FALSE(pool_id_is_valid("\xff"));
        ASSERT_FALSE(pool_id_is_valid("ａ"));                /* fullwidth a */
}

TEST(env_name_valid) {
        ASSERT_TRUE(env_name_is_valid("A"));
        ASSERT_TRUE(env_name_is_valid("_"));
        ASSERT_TRUE(env_name_is_valid("CUDA_VISIBLE_DEVICES"));
        ASSERT_TRUE(env_name_is_valid("_X1"));
        ASSERT_TRUE(env_name_is_valid("A0_9"));
}

TEST(env_name_invalid) {
        ASSERT_FALSE(env_name_is_valid(NULL));
        ASSERT_FALSE(env_name_is_valid(""));
        ASSERT_FALSE(env_name_is_valid("1A"));
        ASSERT_FALSE(env_name_is_valid("9"));
        ASSERT_FALSE(env_name_is_valid("path"));
        ASSERT_FALSE(env_name_is_valid("Path"));
        ASSERT_FALSE(env_name_is_valid("A-B"));
        ASSERT_FALSE(env_name_is_valid("A=B"));
        ASSERT_FALSE(env_name_is_valid("A B"));
        ASSERT_FALSE(env_name_is_valid("A.B"));
        ASSERT_FALSE(env_name_is_valid("Ä"));
}

TEST(host_valid) {
        ASSERT_TRUE(host_is_valid("localhost"));
        ASSERT_TRUE(host_is_valid("127.0.0.1"));
        ASSERT_TRUE(host_is_valid("0.0.0.0"));
        ASSERT_TRUE(host_is_valid("10.1.2.3"));
        ASSERT_TRUE(host_is_valid("::1"));
        ASSERT_TRUE(host_is_valid("::"));
        ASSERT_TRUE(host_is_valid("fe80::1"));
        ASSERT_TRUE(host_is_valid("::ffff:127.0.0.1"));
}

TEST(host_invalid) {
        ASSERT_FALSE(host_is_valid(NULL));
        ASSERT_FALSE(host_is_valid(""));
        ASSERT_FALSE(host_is_valid("example.com"));
        ASSERT_FALSE(host_is_valid("LOCALHOST"));
        ASSERT_FALSE(host_is_valid("localhost."));
        ASSERT_FALSE(host_is_valid("256.0.0.1"));
        ASSERT_FALSE(host_is_valid("127.1"));
        ASSERT_FALSE(host_is_valid("1.2.3.4.5"));
        ASSERT_FALSE(host_is_valid(" 127.0.0.1"));
        ASSERT_FALSE(host_is_valid("127.0.0.1 "));
        ASSERT_FALSE(host_is_valid("127.0.0.1:80"));
        ASSERT_FALSE(host_is_valid("[::1]"));
        ASSERT_FALSE(host_is_valid("::1::"));
        ASSERT_FALSE(host_is_valid("fe80::1%lo"));
}

TEST(host_loopback) {
        ASSERT_TRUE(host_is_loopback("localhost"));
        ASSERT_TRUE(host_is_loopback("127.0.0.1"));
        ASSERT_TRUE(host_is_loopback("127.255.255.254"));
        ASSERT_TRUE(host_is_loopback("127.1.2.3"));
        ASSERT_TRUE(host_is_loopback("::1"));
        ASSERT_TRUE(host_is_loopback("0:0:0:0:0:0:0:1"));
}

TEST(host_not_loopback) {
        ASSERT_FALSE(host_is_loopback(NULL));
        ASSERT_FALSE(host_is_loopback(""));
        ASSERT_FALSE(host_is_loopback("0.0.0.0"));
        ASSERT_FALSE(host_is_loopback("128.0.0.1"));
        ASSERT_FALSE(host_is_loopback("126.255.255.255"));
        ASSERT_FALSE(host_is_loopback("10.0.0.1"));
        ASSERT_FALSE(host_is_loopback("::"));
        ASSERT_FALSE(host_is_loopback("::2"));
        ASSERT_FALSE(host_is_loopback("fe80::1"));
        ASSERT_FALSE(host_is_loopback("example.com"));
        ASSERT_FALSE(host_is_loopback("127.0.0.1.example.com"));
}

static void assert_escape(const char *in, const char *want) {
        _cleanup_free_ char *out = NULL;

        ASSERT_OK(unit_name_escape(in, &out));
        ASSERT_STREQ(out, want);
}

TEST(unit_name_escape_valid_pool_id_unchanged) {
        _cleanup_free_ char *s64 = repeat('z', 64);

        assert_escape("llama-7b", "llama-7b");
        assert_escape("Pool_1.q4", "Pool_1.q4");
        assert_escape("a..", "a..");
        assert_escape(s64, s64);
}

TEST(unit_name_escape_escapes_specials) {
        assert_escape("", "");
        assert_escape("a/b", "a\\x2fb");
        assert_escape("a b", "a\\x20b");
        assert_escape(".hidden", "\\x2ehidden");
        assert_escape("..", "\\x2e.");
        assert_escape("a\\b", "a\\x5cb");
        assert_escape("é", "\\xc3\\xa9");
        assert_escape("a:b", "a:b");
        assert_escape("\x01\x7f\xff", "\\x01\\x7f\\xff");
}

/* Distinct inputs map to distinct outputs, in particular a literal "\x2f" vs "/". */
TEST(unit_name_escape_injective) {
        static const char *const inputs[] = {
                "a/b", "a\\x2fb", "a-b", "a_b", "a.b", ".ab", "\\x2eab", "a b", "a\\x20b", "ab",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++)
                for (size_t j = i + 1; j < ELEMENTSOF(inputs); j++) {
                        _cleanup_free_ char *a = NULL, *b = NULL;

                        ASSERT_OK(unit_name_escape(inputs[i], &a));
                        ASSERT_OK(unit_name_escape(inputs[j], &b));
                        ASSERT_TRUE(strcmp(a, b) != 0);
                }
}

TEST(streq_consttime_compares) {
        ASSERT_TRUE(streq_consttime("", ""));
        ASSERT_TRUE(streq_consttime("secret", "secret"));
        ASSERT_FALSE(streq_consttime("secret", "secreT"));
        ASSERT_FALSE(streq_consttime("secret", "Secret"));
        ASSERT_FALSE(streq_consttime("secret", "secre"));
        ASSERT_FALSE(streq_consttime("secre", "secret"));
        ASSERT_FALSE(streq_consttime("secret", ""));
        ASSERT_FALSE(streq_consttime("", "secret"));
        /* Periodic b must not match a longer a by wrapping around. */
        ASSERT_FALSE(streq_consttime("abab", "ab"));
        ASSERT_FALSE(streq_consttime("aaaa", "a"));
        ASSERT_FALSE(streq_consttime("a", "aaaa"));
        ASSERT_FALSE(streq_consttime("\xff", "\x7f"));
}

TEST(strextendf_appends) {
        _cleanup_free_ char *s = NULL;

        ASSERT_OK(strextendf(&s, "%s", ""));
        ASSERT_STREQ(s, "");
        ASSERT_OK(strextendf(&s, "a=%d", 1));
        ASSERT_STREQ(s, "a=1");
        ASSERT_OK(strextendf(&s, ", b=%s", "two"));
        ASSERT_STREQ(s, "a=1, b=two");
        ASSERT_OK(strextendf(&s, "%s", ""));
        ASSERT_STREQ(s, "a=1, b=two");
}

TEST(strextendf_long_output) {
        _cleanup_free_ char *s = NULL, *big = repeat('q', 10000);

        for (unsigned i = 0; i < 100; i++)
                ASSERT_OK(strextendf(&s, "%s", big));
        ASSERT_EQ(strlen(s), 1000000);
        ASSERT_EQ(s[999999], 'q');
}

TEST(format_bytes) {
        ASSERT_STREQ(FORMAT_BYTES(0), "0 B");
        ASSERT_STREQ(FORMAT_BYTES(1023), "1023 B");
        ASSERT_STREQ(FORMAT_BYTES(1024), "1.0 KiB");
        ASSERT_STREQ(FORMAT_BYTES(3ULL << 29), "1.5 GiB");
        ASSERT_STREQ(FORMAT_BYTES(80ULL << 30), "80.0 GiB");
        ASSERT_STREQ(FORMAT_BYTES(UINT64_MAX), "16.0 EiB");
}

TEST(strstrip_trailing_strips) {
        char a[] = "hello \t\r\n\n", b[] = "  lead stays", c[] = " \n\t", d[] = "", e[] = "a b\n";

        ASSERT_STREQ(strstrip_trailing(a), "hello");
        ASSERT_STREQ(strstrip_trailing(b), "  lead stays");
        ASSERT_STREQ(strstrip_trailing(c), "");
        ASSERT_STREQ(strstrip_trailing(d), "");
        ASSERT_STREQ(strstrip_trailing(e), "a b");
        ASSERT_TRUE(strstrip_trailing(a) == a);
}

TEST(buffer_append) {
        _cleanup_free_ char *b = NULL;
        size_t size = 0, allocated = 0;

        /* The first growth goes to min; the buffer stays NUL-terminated. */
        ASSERT_OK(buffer_append(&b, &size, &allocated, "abc", 3, 8, 20));
        ASSERT_STREQ(b, "abc");
        ASSERT_EQ(size, 3u);
        ASSERT_EQ(allocated, 8u);
        /* Fits: no growth. */
        ASSERT_OK(buffer_append(&b, &size, &allocated, "defg", 4, 8, 20));
        ASSERT_STREQ(b, "abcdefg");
        ASSERT_EQ(allocated, 8u);
        /* Doubles. */
        ASSERT_OK(buffer_append(&b, &size, &allocated, "h", 1, 8, 20));
        ASSERT_EQ(allocated, 16u);
        /* Never past max + 1, however much doubling would ask for. */
        ASSERT_OK(buffer_append(&b, &size, &allocated, "ijklmnopqrst", 12, 8, 20));
        ASSERT_STREQ(b, "abcdefghijklmnopqrst");
        ASSERT_EQ(size, 20u);
        ASSERT_EQ(allocated, 21u);
        /* Nothing to append: unchanged. */
        ASSERT_OK(buffer_append(&b, &size, &allocated, "", 0, 8, 20));
        ASSERT_EQ(size, 20u);
}

TEST(host_port_parse) {
        const char *end;
        HostPort hp;

        ASSERT_OK(host_port_parse("127.0.0.1:8080", &end, &hp));
        ASSERT_EQ(hp.families[0], AF_INET);
        ASSERT_EQ(hp.families[1], AF_UNSPEC);
        ASSERT_EQ(hp.port, 8080);
        ASSERT_STREQ(end, "");
        ASSERT_EQ(memcmp(hp.addresses[0], "\x7f\0\0\1", 4), 0);

        ASSERT_OK(host_port_parse("[::1]:9200/metrics", &end, &hp));
        ASSERT_EQ(hp.families[0], AF_INET6);
        ASSERT_EQ(hp.port, 9200);
        ASSERT_STREQ(end, "/metrics");

        /* localhost: 127.0.0.1, then ::1; nothing resolved. */
        ASSERT_OK(host_port_parse("localhost:00080", &end, &hp));
        ASSERT_EQ(hp.families[0], AF_INET);
        ASSERT_EQ(hp.families[1], AF_INET6);
        ASSERT_EQ(hp.port, 80);

        ASSERT_ERROR(host_port_parse("localhost:000080", &end, &hp), EINVAL);   /* over 5 digits */
        ASSERT_ERROR(host_port_parse("127.0.0.1:0", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("127.0.0.1:65536", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("127.0.0.1:", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("127.0.0.1", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("::1:9200", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("[::1]9200", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("[127.0.0.1]:80", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("example.com:80", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse(":80", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("[]:80", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse("", &end, &hp), EINVAL);
        ASSERT_ERROR(host_port_parse(NULL, &end, &hp), EINVAL);
}

DEFINE_TEST_MAIN
