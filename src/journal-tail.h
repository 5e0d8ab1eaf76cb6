/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The engine's own words: the last lines one run of a unit wrote to the journal, and their quoted
 * form for last_error:
 *
 *         engine exited with status 1 before becoming ready: "error: failed to load model 'x.gguf'"
 *
 *   _cleanup_strv_free_ char **lines = NULL;
 *   _cleanup_free_ char *quoted = NULL, *error = NULL;
 *
 *   r = journal_tail_lines(j, &(JournalTailMatch) {
 *                   .unit_field = user ? "_SYSTEMD_USER_UNIT" : "_SYSTEMD_UNIT",
 *                   .unit = unit->name,
 *                   .invocation_id = unit->invocation_id,
 *                   .pid = unit->main_pid,
 *                   .since_usec = started_at,
 *           }, JOURNAL_TAIL_LINES, JOURNAL_TAIL_BYTES, &lines, &error);
 *   if (r < 0)
 *           log_debug_errno(r, "No engine output: %s", error);    // last_error without the tail
 *   else if (journal_lines_quote(lines, JOURNAL_TAIL_BYTES, &quoted) > 0)
 *           ... "%s: %s", what_happened, quoted ...
 *
 * Neither function logs. Reading is bounded: the handle's files are mmap'ed, the matches use the
 * journal's field indexes, at most JOURNAL_TAIL_SCAN_MAX entries are looked at, and nothing waits
 * for journald. Lines reach the journal asynchronously, so a caller that reads right after a unit
 * exited may see fewer lines than the engine wrote.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-journal.h>

#define JOURNAL_TAIL_LINES 3U
#define JOURNAL_TAIL_BYTES 512U
/* Entries looked at, newest first, before giving up on finding max_lines non-empty ones. */
#define JOURNAL_TAIL_SCAN_MAX 1024U

typedef struct JournalTailMatch {
        /* "_SYSTEMD_UNIT" for units of the system manager, "_SYSTEMD_USER_UNIT" for a user
         * manager's (see tests/sandbox: there _SYSTEMD_UNIT is user@0.service). Both NULL: match on
         * pid alone. */
        const char *unit_field;
        const char *unit;
        /*
         * The unit's InvocationID (32 hex digits), or NULL. A filter rather than a match: entries
         * whose _SYSTEMD_INVOCATION_ID differs are another run's and are skipped, entries without
         * one are kept. journald only attaches it to output of the system manager's units (it
         * reads it from /run/systemd/units/), and lines written just before an exit lose it along
         * with the other _SYSTEMD_* fields, so matching on it would lose exactly the lines that
         * say why an engine died.
         */
        const char *invocation_id;
        /* The unit's main PID, or 0. Adds the match _PID=pid, for the lines journald could no longer
         * attribute to the unit (the process was gone when it looked). */
        pid_t pid;
        /* CLOCK_REALTIME µs: entries older than this belong to earlier runs (and the _PID match
         * to other processes that had the pid). 0: no bound. */
        uint64_t since_usec;
} JournalTailMatch;

/* The current entry's value of field (without "FIELD=", not NUL-terminated): 1, or 0 when the
 * entry has no such field, or a negative errno. */
int journal_entry_field(sd_journal *j, const char *field, const char **ret, size_t *ret_size);

/*
 * Returns in *ret_lines the MESSAGE= of the last max_lines entries that match, oldest first:
 * trailing whitespace removed, empty lines skipped, each cut at max_line_bytes bytes (0: no
 * limit), text after a NUL byte dropped. *ret_lines is an empty strv (not NULL) when the engine
 * wrote nothing.
 *
 * Returns 0, or a negative errno with *ret_error (if not NULL) saying what went wrong:
 * -EINVAL (no journal, j == NULL, or no unit and no pid to match on), -ENOMEM, or the error of
 * sd_journal_add_match()/sd_journal_seek_tail()/sd_journal_previous(). Changes j's matches and
 * position; flushes its matches when done.
 */
int journal_tail_lines(sd_journal *j, const JournalTailMatch *match, unsigned max_lines,
                       size_t max_line_bytes, char ***ret_lines, char **ret_error);

/*
 * The lines as one quoted string for last_error: a double quote, the lines escaped (see
 * shared/escape.h: \" \\ \n \xNN, valid UTF-8 kept) and joined with the two characters \n, a
 * double quote. Lines are joined with an escaped newline rather than " / " so that the form is
 * unambiguous and reads back as the original text with any C or JSON string unescaper.
 *
 * At most max_bytes bytes (values below 16 count as 16), quotes included. What does not fit is cut
 * so that the newest line, the one most likely to say why the engine died, survives: whole older
 * lines go first, replaced by a leading "…\n"; if the newest line alone is too long, its end is
 * cut, on a character and escape boundary, and "…" put there.
 *
 *         "error: failed to load model 'x.gguf'"
 *         "loading model\nterminate called after throwing an instance of 'std::bad_alloc'"
 *         "…\nGGML_ASSERT(…) failed: a very long line cut here…"
 *
 * Returns 1 with *ret set, 0 with *ret = NULL when there are no lines, or -ENOMEM.
 */
int journal_lines_quote(char * const *lines, size_t max_bytes, char **ret);
