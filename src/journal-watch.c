/* SPDX-License-Identifier: GPL-3.0-or-later */

/* The engines' journal lines as they come, one handle for all watchers; see journal-watch.h. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <systemd/sd-journal.h>

#include "journal-tail.h"
#include "journal-watch.h"
#include "log.h"
#include "shared/list.h"
#include "shared/string-util.h"

struct JournalWatchSlot {
        JournalWatch *watch;
        char *unit;
        char *invocation_id;            /* NULL: not known */
        JournalWatchCallback callback;
        void *userdata;
        JournalWatchSlot *prev, *next;
};

struct JournalWatch {
        sd_event *event;
        bool user;
        char *slice;

        sd_journal *journal;            /* open while there are slots */
        sd_event_source *io;            /* the journal's inotify fd */
        sd_event_source *poll;          /* every JOURNAL_WATCH_POLL_USEC, see journal-watch.h */
        bool dispatching;               /* slots may go away under journal_watch_dispatch() */

        JournalWatchSlot *slots_head, *slots_tail;
        unsigned n_slots;
};

static const char *unit_field(const JournalWatch *w) {
        return w->user ? "_SYSTEMD_USER_UNIT" : "_SYSTEMD_UNIT";
}

static void journal_watch_close(JournalWatch *w) {
        w->io = sd_event_source_disable_unref(w->io);
        w->poll = sd_event_source_disable_unref(w->poll);
        if (w->journal) {
                sd_journal_close(w->journal);
                w->journal = NULL;
                log_debug("Engine journal watch closed.");
        }
}

static bool value_is(const char *v, size_t n, const char *s, bool ignore_case) {
        return n == strlen(s) && (ignore_case ? strncasecmp(v, s, n) : strncmp(v, s, n)) == 0;
}

/* The slot the current entry belongs to, or NULL. */
static JournalWatchSlot *entry_slot(JournalWatch *w) {
        const char *unit, *inv = NULL;
        size_t unit_n, inv_n = 0;

        if (journal_entry_field(w->journal, unit_field(w), &unit, &unit_n) <= 0)
                return NULL;
        if (journal_entry_field(w->journal, "_SYSTEMD_INVOCATION_ID", &inv, &inv_n) <= 0)
                inv = NULL;

        for (JournalWatchSlot *s = w->slots_head; s; s = s->next) {
                if (!value_is(unit, unit_n, s->unit, false))
                        continue;
                /* Both know the run: another run's line is not ours. */
                if (inv && s->invocation_id && !value_is(inv, inv_n, s->invocation_id, true))
                        continue;
                return s;
        }
        return NULL;
}

static void journal_watch_dispatch(JournalWatch *w) {
        int r;

        w->dispatching = true;
        while (w->journal && w->slots_head) {
                JournalWatchSlot *s;
                const char *msg;
                size_t n;

                r = sd_journal_next(w->journal);
                if (r < 0) {
                        log_debug_errno(r, "Failed to read the engines' journal: %m");
                        break;
                }
                if (r == 0)
                        break;
                s = entry_slot(w);
                if (!s || journal_entry_field(w->journal, "MESSAGE", &msg, &n) <= 0)
                        continue;
                s->callback(msg, n, s->userdata);
        }
        w->dispatching = false;
        if (!w->slots_head)
                journal_watch_close(w);
}

static int on_journal_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        JournalWatch *w = userdata;
        int r;

        /* Reads the inotify events: rotated and new files are added to the handle. */
        r = sd_journal_process(w->journal);
        if (r < 0)
                log_debug_errno(r, "Failed to process journal changes: %m");
        journal_watch_dispatch(w);
        return 0;
}

static int on_journal_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        JournalWatch *w = userdata;
        int r;

        r = sd_event_source_set_time(source, usec + JOURNAL_WATCH_POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(source, SD_EVENT_ON);
        if (r < 0)
                log_debug_errno(r, "Failed to schedule the next journal look: %m");
        journal_watch_dispatch(w);
        return 0;
}

static int journal_watch_open(JournalWatch *w) {
        _cleanup_free_ char *match = NULL;
        int r, fd, events;

        r = sd_journal_open(&w->journal, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        /* The engines' lines only: the daemon's own (and everyone else's) are never read. */
        if (asprintf(&match, "%s=%s", w->user ? "_SYSTEMD_USER_SLICE" : "_SYSTEMD_SLICE", w->slice) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_journal_add_match(w->journal, match, 0);
        if (r < 0)
                goto fail;
        /* From now on: position on the newest entry, so that sd_journal_next() returns new ones. */
        r = sd_journal_seek_tail(w->journal);
        if (r >= 0)
                r = sd_journal_previous(w->journal);
        if (r < 0)
                goto fail;

        fd = sd_journal_get_fd(w->journal);
        if (fd < 0) {
                r = fd;
                goto fail;
        }
        events = sd_journal_get_events(w->journal);
        if (events < 0) {
                r = events;
                goto fail;
        }
        r = sd_event_add_io(w->event, &w->io, fd, (uint32_t) events, on_journal_io, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(w->io, "journal-watch-io");

        r = sd_event_add_time_relative(w->event, &w->poll, CLOCK_MONOTONIC, JOURNAL_WATCH_POLL_USEC,
                                       USEC_PER_MSEC, on_journal_poll, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(w->poll, SD_EVENT_ON);
        (void) sd_event_source_set_description(w->poll, "journal-watch-poll");
        log_debug("Engine journal watch opened.");
        return 0;

fail:
        journal_watch_close(w);
        return r;
}

int journal_watch_new(JournalWatch **ret, sd_event *event, bool user, const char *slice) {
        _cleanup_(journal_watch_freep) JournalWatch *w = NULL;

        w = calloc(1, sizeof(JournalWatch));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(event);
        w->user = user;
        w->slice = strdup(slice);
        if (!w->slice)
                return -ENOMEM;
        *ret = TAKE_PTR(w);
        return 0;
}

JournalWatch *journal_watch_free(JournalWatch *w) {
        if (!w)
                return NULL;
        /* Slots outliving the watch are detached: their owners free them later. */
        while (w->slots_head) {
                JournalWatchSlot *s = w->slots_head;

                LIST_REMOVE(w->slots_head, w->slots_tail, s);
                s->watch = NULL;
        }
        journal_watch_close(w);
        sd_event_unref(w->event);
        free(w->slice);
        return mfree(w);
}

int journal_watch_add(JournalWatch *w, JournalWatchSlot **ret, const char *unit, const char *invocation_id,
                      JournalWatchCallback cb, void *userdata) {
        _cleanup_(journal_watch_slot_freep) JournalWatchSlot *s = NULL;
        int r;

        if (!w || isempty(unit) || !cb)
                return -EINVAL;

        s = calloc(1, sizeof(JournalWatchSlot));
        if (!s)
                return -ENOMEM;
        s->callback = cb;
        s->userdata = userdata;
        s->unit = strdup(unit);
        if (!s->unit)
                return -ENOMEM;
        if (!isempty(invocation_id)) {
                s->invocation_id = strdup(invocation_id);
                if (!s->invocation_id)
                        return -ENOMEM;
        }

        if (!w->journal) {
                r = journal_watch_open(w);
                if (r < 0)
                        return r;
        }
        s->watch = w;
        LIST_APPEND(w->slots_head, w->slots_tail, s);
        w->n_slots++;
        *ret = TAKE_PTR(s);
        return 0;
}

JournalWatchSlot *journal_watch_slot_free(JournalWatchSlot *s) {
        JournalWatch *w;

        if (!s)
                return NULL;
        w = s->watch;
        if (w) {
                LIST_REMOVE(w->slots_head, w->slots_tail, s);
                w->n_slots--;
                /* journal_watch_dispatch() closes it when it is done with the handle. */
                if (!w->slots_head && !w->dispatching)
                        journal_watch_close(w);
        }
        free(s->unit);
        free(s->invocation_id);
        return mfree(s);
}

unsigned journal_watch_n_slots(const JournalWatch *w) {
        return w ? w->n_slots : 0;
}
