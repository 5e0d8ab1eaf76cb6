/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Which engine log lines trigger a readiness probe, and when; see probe-trigger.h. */

#include <string.h>

#include "probe-trigger.h"

/* Phrases found anywhere in the line. */
static const char * const ready_phrases[] = {
        "server is listening",                  /* llama.cpp llama-server */
        "Application startup complete",         /* vLLM (uvicorn) */
};

static bool char_in(char c, const char *set) {
        return c != '\0' && strchr(set, c);
}

/* The line's last word: TGI ends "... router/src/server.rs:1827: Connected". */
static const char ready_last_word[] = "Connected";

bool probe_trigger_is_ready_line(const char *line, size_t size) {
        size_t n = size, w = strlen(ready_last_word);

        if (!line)
                return false;
        for (size_t i = 0; i < sizeof(ready_phrases) / sizeof(ready_phrases[0]); i++)
                if (memmem(line, size, ready_phrases[i], strlen(ready_phrases[i])))
                        return true;

        /* Trailing blanks and an ANSI colour reset (ESC [ 0 m, TGI's text format) do not count. */
        for (;;) {
                if (n > 0 && char_in(line[n - 1], " \t\r\n"))
                        n--;
                else if (n >= 4 && memcmp(line + n - 4, "\033[0m", 4) == 0)
                        n -= 4;
                else if (n >= 3 && memcmp(line + n - 3, "\033[m", 3) == 0)
                        n -= 3;
                else
                        break;
        }
        return n >= w && memcmp(line + n - w, ready_last_word, w) == 0 &&
                (n == w || char_in(line[n - w - 1], " \t:]"));
}

usec_t probe_trigger_when(usec_t last, usec_t now, bool ready_line) {
        if (ready_line || last == 0 || now >= last + PROBE_TRIGGER_GAP_USEC)
                return now;
        return last + PROBE_TRIGGER_GAP_USEC;
}
