/* SPDX-License-Identifier: GPL-3.0-or-later */

/* The quoted form of an engine's last lines (journal_lines_quote()) and the escaping under it. */

#include "journal-tail.h"
#include "shared/escape.h"
#include "shared/macro.h"
#include "shared/strv.h"
#include "test-util.h"

static char *repeat(const char *unit, size_t n) {
        size_t len = strlen(unit);
        char *s = malloc(len * n + 1);

        ASSERT_NOT_NULL(s);
        for (size_t i = 0; i < n; i++)
                memcpy(s + i * len, unit, len);
        s[len * n] = '\0';
        return s;
}

static char *quote(char **lines, size_t max) {
        char *q = NULL;

        ASSERT_EQ(journal_lines_quote(lines, max, &q), 1);
        ASSERT_NOT_NULL(q);
        return q;
}

/* Checks that q is a well-formed quoted string: quotes at both ends, only valid UTF-8 and our
 * escapes inside, no control byte. */
static void assert_well_formed(const char *q, size_t max) {
        size_t n = strlen(q);

        ASSERT_TRUE(n <= max);
        ASSERT_TRUE(n >= 2);
        ASSERT_EQ(q[0], '"');
        ASSERT_EQ(q[n - 1], '"');
        for (size_t i = 1; i < n - 1;) {
                unsigned char c = (unsigned char) q[i];

                ASSERT_TRUE(c >= 0x20 && c != 0x7f);
                ASSERT_TRUE(c != '"');
                if (c == '\\') {
                        ASSERT_TRUE(i + 1 < n - 1);
                        if (q[i + 1] == 'x') {
                                ASSERT_TRUE(i + 3 < n - 1);
                                ASSERT_TRUE(strchr("0123456789abcdef", q[i + 2]));
                                ASSERT_TRUE(strchr("0123456789abcdef", q[i + 3]));
                                i += 4;
                        } else {
                                ASSERT_TRUE(strchr("\\\"nrt", q[i + 1]));
                                i += 2;
                        }
                } else {
                        size_t k = utf8_char_len(q + i, n - 1 - i);

                        ASSERT_TRUE(k > 0);
                        i += k;
                }
        }
}

TEST(utf8_char_len) {
        ASSERT_EQ(utf8_char_len("a", 1), 1);
        ASSERT_EQ(utf8_char_len("\xc3\xa9", 2), 2);             /* é */
        ASSERT_EQ(utf8_char_len("\xe6\x97\xa5", 3), 3);         /* 日 */
        ASSERT_EQ(utf8_char_len("\xf0\x9f\x98\x80", 4), 4);     /* 😀 */
        ASSERT_EQ(utf8_char_len("\xe6\x97\xa5", 2), 0);         /* cut short */
        ASSERT_EQ(utf8_char_len("\x80", 1), 0);                 /* stray continuation */
        ASSERT_EQ(utf8_char_len("\xc0\xaf", 2), 0);             /* overlong "/" */
        ASSERT_EQ(utf8_char_len("\xe0\x80\xaf", 3), 0);         /* overlong */
        ASSERT_EQ(utf8_char_len("\xed\xa0\x80", 3), 0);         /* surrogate U+D800 */
        ASSERT_EQ(utf8_char_len("\xf4\x90\x80\x80", 4), 0);     /* past U+10FFFF */
        ASSERT_EQ(utf8_char_len("\xff", 1), 0);
        ASSERT_EQ(utf8_char_len("\xc3(", 2), 0);
        ASSERT_EQ(utf8_char_len("", 0), 0);
}

TEST(escape_text) {
        _cleanup_free_ char *a = escape_text("a\"b\\c\nd\re\tf\x01g\x7fh\x1b[0m", 19);
        _cleanup_free_ char *b = escape_text("\0x", 2);
        _cleanup_free_ char *c = escape_text("ünï 日本語 ✓ 😀", strlen("ünï 日本語 ✓ 😀"));
        _cleanup_free_ char *d = escape_text("\xff\x80\xc0\xaf\xed\xa0\x80\xc2\x9b|\xe6\x97", 12);

        ASSERT_STREQ(a, "a\\\"b\\\\c\\nd\\re\\tf\\x01g\\x7fh\\x1b[0m");
        ASSERT_STREQ(b, "\\x00x");
        ASSERT_STREQ(c, "ünï 日本語 ✓ 😀");
        ASSERT_STREQ(d, "\\xff\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xc2\\x9b|\\xe6\\x97");
}

TEST(escaped_prefix_len) {
        ASSERT_EQ(escaped_prefix_len("abc", 2), 2);
        ASSERT_EQ(escaped_prefix_len("abc", 10), 3);
        ASSERT_EQ(escaped_prefix_len("a\\x01b", 4), 1);         /* does not split \x01 */
        ASSERT_EQ(escaped_prefix_len("a\\x01b", 5), 5);
        ASSERT_EQ(escaped_prefix_len("a\\nb", 2), 1);
        ASSERT_EQ(escaped_prefix_len("a日b", 3), 1);           /* does not split 日 */
        ASSERT_EQ(escaped_prefix_len("a日b", 4), 4);
        ASSERT_EQ(escaped_prefix_len("", 4), 0);
}

TEST(quote_no_lines) {
        char *q = (char *) "unchanged";

        ASSERT_EQ(journal_lines_quote(NULL, 512, &q), 0);
        ASSERT_NULL(q);
        q = (char *) "unchanged";
        ASSERT_EQ(journal_lines_quote(STRV_MAKE(NULL), 512, &q), 0);
        ASSERT_NULL(q);
}

TEST(quote_one_line) {
        _cleanup_free_ char *q = quote(STRV_MAKE("error: failed to load model 'x.gguf'"), 512);

        ASSERT_STREQ(q, "\"error: failed to load model 'x.gguf'\"");
}

TEST(quote_lines_joined_with_escaped_newline) {
        _cleanup_free_ char *q = quote(STRV_MAKE("loading model", "say \"hi\" C:\\x",
                                                 "terminate called"), 512);

        ASSERT_STREQ(q, "\"loading model\\nsay \\\"hi\\\" C:\\\\x\\nterminate called\"");
        assert_well_formed(q, 512);
}

TEST(quote_control_characters) {
        _cleanup_free_ char *q = quote(STRV_MAKE("\x1b[31mred\x1b[0m\tTAB\x01\x7f\r\xc2\x85"), 512);

        ASSERT_STREQ(q, "\"\\x1b[31mred\\x1b[0m\\tTAB\\x01\\x7f\\r\\xc2\\x85\"");
        assert_well_formed(q, 512);
}

TEST(quote_multibyte_kept) {
        _cleanup_free_ char *q = quote(STRV_MAKE("modèle introuvable: «日本語.gguf» ✗ 😀"), 512);

        ASSERT_STREQ(q, "\"modèle introuvable: «日本語.gguf» ✗ 😀\"");
        assert_well_formed(q, 512);
}

TEST(quote_invalid_utf8_escaped) {
        _cleanup_free_ char *q = quote(STRV_MAKE("bad \xff\xfe byte, cut \xe6\x97"), 512);

        ASSERT_STREQ(q, "\"bad \\xff\\xfe byte, cut \\xe6\\x97\"");
        assert_well_formed(q, 512);
}

TEST(quote_long_line_cut_at_end) {
        _cleanup_free_ char *line = repeat("a", 1000), *q = quote(STRV_MAKE(line), 512);
        size_t n = strlen(q);

        ASSERT_EQ(n, 512);
        ASSERT_TRUE(strneq(q, "\"aaa", 4));
        ASSERT_STREQ(q + n - 4, "…\"");
        assert_well_formed(q, 512);
}

TEST(quote_cut_on_character_boundary) {
        _cleanup_free_ char *line = repeat("日", 300);

        for (size_t max = 16; max < 1000; max++) {
                _cleanup_free_ char *q = quote(STRV_MAKE(line), max);

                assert_well_formed(q, max);
                /* Nothing lost but what did not fit: at most one 日 short of max, plus "…". */
                if (max < 2 + 900)
                        ASSERT_TRUE(strlen(q) + 3 > max);
        }
}

TEST(quote_cut_never_splits_an_escape) {
        _cleanup_free_ char *line = repeat("\x01", 200);

        for (size_t max = 16; max < 900; max++) {
                _cleanup_free_ char *q = quote(STRV_MAKE("older", line), max);

                assert_well_formed(q, max);
        }
}

TEST(quote_drops_oldest_lines_first) {
        _cleanup_free_ char *old = repeat("a", 600), *q = quote(STRV_MAKE(old, "b", "error: c"), 512);
        _cleanup_free_ char *q2 = quote(STRV_MAKE("x", "y", old), 512);

        ASSERT_STREQ(q, "\"…\\nb\\nerror: c\"");
        /* The newest line alone is too long: the older ones go, its end is cut. */
        ASSERT_TRUE(strneq(q2, "\"…\\naaaa", strlen("\"…\\naaaa")));
        ASSERT_STREQ(q2 + strlen(q2) - 4, "…\"");
        ASSERT_EQ(strlen(q2), 512);
        assert_well_formed(q2, 512);
}

TEST(quote_fits_exactly) {
        /* 2 quotes + 510 bytes = 512: nothing cut. */
        _cleanup_free_ char *line = repeat("z", 510), *q = quote(STRV_MAKE(line), 512);
        _cleanup_free_ char *line2 = repeat("z", 511), *q2 = quote(STRV_MAKE(line2), 512);

        ASSERT_EQ(strlen(q), 512);
        ASSERT_NULL(strstr(q, "…"));
        ASSERT_EQ(strlen(q2), 512);
        ASSERT_NOT_NULL(strstr(q2, "…"));
}

TEST(quote_tiny_max_counts_as_16) {
        _cleanup_free_ char *line = repeat("0123456789", 10), *q = quote(STRV_MAKE(line), 0);

        ASSERT_TRUE(strlen(q) <= 16);
        assert_well_formed(q, 16);
}

TEST(quote_mixed_property) {
        /* Every cut of a mix of everything stays well formed and within bounds. */
        const char *mix = "ok ünï \x1b[1m日本\xff\"q\"\\ 😀\x01 end";
        _cleanup_free_ char *l1 = repeat(mix, 7), *l2 = repeat(mix, 3), *l3 = repeat(mix, 11);

        for (size_t max = 0; max < 1200; max += 3) {
                _cleanup_free_ char *q = quote(STRV_MAKE(l1, l2, l3), max);

                assert_well_formed(q, MAX(max, (size_t) 16));
        }
}

DEFINE_TEST_MAIN
