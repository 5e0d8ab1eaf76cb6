/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the quoting of an engine's last lines for last_error: any bytes (control characters,
 * invalid UTF-8, quotes, backslashes, very long lines) give a quoted string within the byte limit,
 * with no raw control character, that starts and ends with a double quote. The first byte chooses
 * the limit; the rest, split at newlines, are the lines.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal-tail.h"
#include "shared/macro.h"
#include "shared/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-journal-quote: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *q = NULL;
        size_t max, start = 0, len;
        int r;

        if (size < 1)
                return 0;
        max = 16 + data[0] * 4;         /* 16 .. 1036 bytes */
        data++;
        size--;
        for (size_t i = 0; i <= size; i++)
                if (i == size || data[i] == '\n') {
                        char *line = strndup((const char *) data + start, i - start);

                        if (!line || strv_push(&lines, line) < 0) {
                                free(line);
                                return 0;
                        }
                        start = i + 1;
                }

        r = journal_lines_quote(lines, max, &q);
        if (r <= 0)
                return 0;
        len = strlen(q);
        check(len <= max, "longer than the limit", q);
        check(len >= 2 && q[0] == '"' && q[len - 1] == '"', "not in double quotes", q);
        for (size_t i = 0; i < len; i++)
                check((unsigned char) q[i] >= 0x20 && q[i] != 0x7f, "a raw control character", q);
        return 0;
}
