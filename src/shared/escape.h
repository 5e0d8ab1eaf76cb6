/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Escaping of text that comes from outside (an engine's log lines, a process's comm) for messages
 * that end up in last_error, the journal and JSON: printable, one line, reversible, and still
 * readable when the text is not ASCII.
 *
 * The escaped form keeps valid UTF-8 as it is and writes
 *   \\ and \"                          for a backslash and a double quote,
 *   \n \r \t                           for newline, carriage return, tab,
 *   \xNN                               for every other C0 control byte and DEL, for each byte of a
 *                                      C1 control character (U+0080..U+009F, which terminals act
 *                                      on), and for each byte that is not part of valid UTF-8
 *                                      (stray continuation bytes, overlong forms, surrogates,
 *                                      code points past U+10FFFF, sequences cut short).
 * Every escape starts with a backslash, so an escaped string splits into units (one escape or one
 * character) that escaped_prefix_len() can cut between.
 */

#include <stddef.h>

/* Length of the valid UTF-8 character at s (1..4), or 0 if s[0..n) does not start with one. */
size_t utf8_char_len(const char *s, size_t n);

/* Escapes s[0..len) (NUL bytes included, as \x00). Returns NULL on OOM. */
char *escape_text(const char *s, size_t len);

/* The largest prefix of an escaped string (escape_text()'s output) that is at most max bytes long
 * and does not split an escape or a character. */
size_t escaped_prefix_len(const char *e, size_t max);
