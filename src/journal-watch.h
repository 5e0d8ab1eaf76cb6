/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The engines' journal lines as they come, for readiness probes triggered by the engine's own
 * words. One sd-journal handle for the whole daemon, open only while some pool watches (50
 * pools starting at once share it), matched on the engines' slice so that nothing else is read;
 * each watcher (a JournalWatchSlot) gets the lines of one unit:
 *
 *   r = journal_watch_add(m->journal_watch, &p->log_watch, "pool-engine-x.service",
 *                         unit->invocation_id, on_line, p);
 *   ...
 *   p->log_watch = journal_watch_slot_free(p->log_watch);    // the last one closes the journal
 *
 * A line belongs to a slot when its unit field (_SYSTEMD_UNIT, or _SYSTEMD_USER_UNIT for a user
 * manager's units) names the slot's unit and, where both the line and the slot know one, its
 * _SYSTEMD_INVOCATION_ID is the slot's: lines of an earlier run of the same unit are not
 * delivered. (journald attaches the invocation ID only to the system manager's units.)
 *
 * When. The journal fd (inotify) is watched on the event loop, but journald coalesces its change
 * notifications: it posts them 250 ms after the first write of a batch (systemd's
 * POST_CHANGE_TIMER_INTERVAL_USEC), so a lone line is announced a quarter second late. The
 * entries themselves are in the shared mapping at once, so while any slot exists the newest
 * entries are also looked at every JOURNAL_WATCH_POLL_USEC: reads of mapped memory through the
 * field index, no syscall unless the files grew. With no slot there is no handle, no fd and no
 * timer: an idle daemon is not woken.
 *
 * Nothing here blocks: the files are mmap'ed, sd_journal_process() only reads inotify events.
 */

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

#include "shared/macro.h"
#include "shared/time-util.h"

#define JOURNAL_WATCH_POLL_USEC (10 * USEC_PER_MSEC)

typedef struct JournalWatch JournalWatch;
typedef struct JournalWatchSlot JournalWatchSlot;

/* message: the line's MESSAGE= value, size bytes, not NUL-terminated. The callback may free
 * its own slot (and others). */
typedef void (*JournalWatchCallback)(const char *message, size_t size, void *userdata);

/* user: the units are a user manager's (_SYSTEMD_USER_UNIT, _SYSTEMD_USER_SLICE). slice: the
 * slice the watched units run in. Opens nothing yet. */
int journal_watch_new(JournalWatch **ret, sd_event *event, bool user, const char *slice);
JournalWatch *journal_watch_free(JournalWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalWatch *, journal_watch_free);

/* Lines of unit written from now on go to cb. invocation_id: 32 hex digits, or NULL/"" when
 * not known. Opens the journal for the first slot: -errno when it cannot be opened. */
int journal_watch_add(JournalWatch *w, JournalWatchSlot **ret, const char *unit, const char *invocation_id,
                      JournalWatchCallback cb, void *userdata);
/* The last slot closes the journal (after the dispatch in progress, if any). */
JournalWatchSlot *journal_watch_slot_free(JournalWatchSlot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalWatchSlot *, journal_watch_slot_free);

/* How many slots watch (0 also: no journal open). */
unsigned journal_watch_n_slots(const JournalWatch *w);
