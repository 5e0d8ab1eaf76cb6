/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdint.h>
#include <stdlib.h>

#include "escape.h"
#include "macro.h"

size_t utf8_char_len(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t cp, min;
        size_t len;

        if (n == 0)
                return 0;
        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                len = 2;
                cp = p[0] & 0x1f;
                min = 0x80;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                len = 3;
                cp = p[0] & 0x0f;
                min = 0x800;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                cp = p[0] & 0x07;
                min = 0x10000;
        } else
                return 0;       /* a continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */

        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

static char *append_hex(char *o, unsigned char c) {
        static const char hex[] = "0123456789abcdef";

        *o++ = '\\';
        *o++ = 'x';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 0xf];
        return o;
}

char *escape_text(const char *s, size_t len) {
        char *buf, *o;

        /* At most 4 output bytes per input byte (\xNN). */
        if (len > (SIZE_MAX - 1) / 4)
                return NULL;
        buf = malloc(len * 4 + 1);
        if (!buf)
                return NULL;

        o = buf;
        for (size_t i = 0; i < len;) {
                unsigned char c = (unsigned char) s[i];
                size_t k;

                switch (c) {
                case '\\':
                case '"':
                        *o++ = '\\';
                        *o++ = (char) c;
                        i++;
                        continue;
                case '\n':
                        *o++ = '\\';
                        *o++ = 'n';
                        i++;
                        continue;
                case '\r':
                        *o++ = '\\';
                        *o++ = 'r';
                        i++;
                        continue;
                case '\t':
                        *o++ = '\\';
                        *o++ = 't';
                        i++;
                        continue;
                }

                if (c < 0x20 || c == 0x7f) {
                        o = append_hex(o, c);
                        i++;
                        continue;
                }

                k = utf8_char_len(s + i, len - i);
                if (k == 0) {
                        o = append_hex(o, c);
                        i++;
                } else if (k == 2 && c == 0xc2 && (unsigned char) s[i + 1] < 0xa0) {
                        /* C1 controls (U+0080..U+009F): CSI and friends. */
                        o = append_hex(o, c);
                        o = append_hex(o, (unsigned char) s[i + 1]);
                        i += 2;
                } else {
                        memcpy(o, s + i, k);
                        o += k;
                        i += k;
                }
        }
        *o = '\0';
        return buf;
}

size_t escaped_prefix_len(const char *e, size_t max) {
        size_t n = strlen(e), i = 0;

        while (i < n) {
                size_t k;

                if (e[i] == '\\')
                        k = e[i + 1] == 'x' ? 4 : 2;
                else
                        k = MAX(utf8_char_len(e + i, n - i), (size_t) 1);
                if (i + k > max || i + k > n)
                        break;
                i += k;
        }
        return i;
}
