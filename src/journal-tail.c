/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The last lines of one run of a unit, read straight from the journal files (sd-journal), and
 * their quoted form for last_error. See journal-tail.h for the matching rules and why the
 * invocation ID is a filter rather than a match.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "journal-tail.h"
#include "shared/escape.h"
#include "shared/macro.h"
#include "shared/ret-error.h"
#include "shared/strv.h"

#define QUOTE_MIN_BYTES 16U
#define ELLIPSIS "\xe2\x80\xa6"         /* … */
#define LINE_SEPARATOR "\\n"

static void journal_flush_matchesp(sd_journal **j) {
        if (*j)
                sd_journal_flush_matches(*j);
}

static int add_match(sd_journal *j, const char *field, const char *value, char **ret_error) {
        _cleanup_free_ char *m = NULL;
        int r;

        if (asprintf(&m, "%s=%s", field, value) < 0)
                return -ENOMEM;
        r = sd_journal_add_match(j, m, 0);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot match journal entries on %s: %s", m, strerror(-r));
        return 0;
}

int journal_entry_field(sd_journal *j, const char *field, const char **ret, size_t *ret_size) {
        size_t flen = strlen(field), size;
        const void *data;
        int r;

        r = sd_journal_get_data(j, field, &data, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (size < flen + 1 || memcmp(data, field, flen) != 0 || ((const char *) data)[flen] != '=')
                return -EBADMSG;
        *ret = (const char *) data + flen + 1;
        *ret_size = size - flen - 1;
        return 1;
}

/* Whether the current entry belongs to the run we want. */
static bool entry_is_ours(sd_journal *j, const JournalTailMatch *m) {
        const char *v;
        size_t n;

        if (!isempty(m->invocation_id) &&
            journal_entry_field(j, "_SYSTEMD_INVOCATION_ID", &v, &n) > 0 &&
            (n != strlen(m->invocation_id) || strncasecmp(v, m->invocation_id, n) != 0))
                return false;
        return true;
}

static char *line_from_message(const char *v, size_t n, size_t max_line_bytes) {
        size_t len = strnlen(v, n);

        while (len > 0 && strchr(" \t\r\n", v[len - 1]))
                len--;
        if (max_line_bytes > 0 && len > max_line_bytes) {
                /* Cut on a character boundary; an invalid byte counts as one character. */
                size_t i = 0;

                while (i < max_line_bytes) {
                        size_t k = MAX(utf8_char_len(v + i, len - i), (size_t) 1);

                        if (i + k > max_line_bytes)
                                break;
                        i += k;
                }
                len = i;
        }
        return strndup(v, len);
}

int journal_tail_lines(sd_journal *j, const JournalTailMatch *m, unsigned max_lines,
                       size_t max_line_bytes, char ***ret_lines, char **ret_error) {
        _cleanup_(journal_flush_matchesp) sd_journal *flush = NULL;
        _cleanup_strv_free_ char **l = NULL;
        bool by_unit, by_pid;
        unsigned scanned = 0;
        size_t n = 0;
        int r;

        if (!j)
                return ret_error_set(ret_error, -EINVAL, "the journal is not available");
        by_unit = !isempty(m->unit_field) && !isempty(m->unit);
        by_pid = m->pid > 0;
        if (!by_unit && !by_pid)
                return ret_error_set(ret_error, -EINVAL, "neither a unit nor a pid to look for in the journal");

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        sd_journal_flush_matches(j);
        flush = j;
        if (by_unit) {
                r = add_match(j, m->unit_field, m->unit, ret_error);
                if (r < 0)
                        return r;
        }
        if (by_pid) {
                char pid[16];

                if (by_unit) {
                        r = sd_journal_add_disjunction(j);
                        if (r < 0)
                                return ret_error_set(ret_error, r, "cannot match journal entries: %s",
                                                     strerror(-r));
                }
                (void) snprintf(pid, sizeof(pid), "%d", (int) m->pid);
                r = add_match(j, "_PID", pid, ret_error);
                if (r < 0)
                        return r;
        }

        r = sd_journal_seek_tail(j);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot seek to the end of the journal: %s", strerror(-r));

        while (n < max_lines && scanned < JOURNAL_TAIL_SCAN_MAX) {
                const char *v;
                uint64_t t;
                size_t size;
                char *line;

                r = sd_journal_previous(j);
                if (r < 0)
                        return ret_error_set(ret_error, r, "cannot read the journal: %s", strerror(-r));
                if (r == 0)
                        break;
                scanned++;

                /* Entries come newest first: the first one older than the run ends the search. */
                if (m->since_usec > 0 && sd_journal_get_realtime_usec(j, &t) >= 0 && t < m->since_usec)
                        break;
                if (!entry_is_ours(j, m))
                        continue;
                if (journal_entry_field(j, "MESSAGE", &v, &size) <= 0)
                        continue;

                line = line_from_message(v, size, max_line_bytes);
                if (!line)
                        return -ENOMEM;
                if (line[0] == '\0') {
                        free(line);
                        continue;
                }
                r = strv_push(&l, line);
                if (r < 0) {
                        free(line);
                        return r;
                }
                n++;
        }

        /* Collected newest first: turn it around. */
        for (size_t i = 0; i < n / 2; i++) {
                char *tmp = l[i];

                l[i] = l[n - 1 - i];
                l[n - 1 - i] = tmp;
        }

        *ret_lines = TAKE_PTR(l);
        return 0;
}

int journal_lines_quote(char * const *lines, size_t max_bytes, char **ret) {
        _cleanup_strv_free_ char **e = NULL;
        size_t n = strv_length(lines), first = 0, total, cut;
        char *buf, *o;

        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        max_bytes = MAX(max_bytes, (size_t) QUOTE_MIN_BYTES);

        e = calloc(n + 1, sizeof(char *));
        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                e[i] = escape_text(lines[i], strlen(lines[i]));
                if (!e[i])
                        return -ENOMEM;
        }

        /* Quotes, lines, separators; drop the oldest lines until it fits or one is left. */
        total = 2;
        for (size_t i = 0; i < n; i++)
                total += strlen(e[i]) + (i > 0 ? strlen(LINE_SEPARATOR) : 0);
        while (total > max_bytes && first + 1 < n) {
                total -= strlen(e[first]) + strlen(LINE_SEPARATOR);
                if (first == 0)
                        total += strlen(ELLIPSIS LINE_SEPARATOR);
                first++;
        }

        /* Still too long: only the newest line is left; cut its end. */
        cut = strlen(e[n - 1]);
        if (total > max_bytes) {
                size_t room = max_bytes - (total - cut) - strlen(ELLIPSIS);

                /* total - cut is at most 2 + strlen("…\n") = 7 here, and max_bytes >= 16. */
                cut = escaped_prefix_len(e[n - 1], room);
        }

        buf = malloc(max_bytes + 1);
        if (!buf)
                return -ENOMEM;
        o = buf;
        *o++ = '"';
        if (first > 0)
                o = stpcpy(o, ELLIPSIS LINE_SEPARATOR);
        for (size_t i = first; i + 1 < n; i++) {
                o = stpcpy(o, e[i]);
                o = stpcpy(o, LINE_SEPARATOR);
        }
        memcpy(o, e[n - 1], cut);
        o += cut;
        if (cut < strlen(e[n - 1]))
                o = stpcpy(o, ELLIPSIS);
        *o++ = '"';
        *o = '\0';

        *ret = buf;
        return 1;
}
