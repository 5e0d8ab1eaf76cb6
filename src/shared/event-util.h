/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* sd-event timers that are armed again and again: systemd's event_reset_time() (event-util.c). */

#include <systemd/sd-event.h>

/* Sets a timer source's time and enables it for one shot. Returns negative errno. */
int event_source_arm(sd_event_source *s, uint64_t usec);

/*
 * Arms *s as a one-shot timer at usec of clock: created (with accuracy, callback, userdata and
 * description, which may be NULL) when *s is NULL, otherwise given the new time and enabled
 * once more, whatever its state (a timer that fired or was turned off is re-armed). Returns
 * negative errno.
 */
int event_reset_time(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec, uint64_t accuracy,
                     sd_event_time_handler_t callback, void *userdata, const char *description);
/* The same, usec after the event loop's now of clock; -EOVERFLOW, the timer untouched, past the
 * end of time. */
int event_reset_time_relative(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec,
                              uint64_t accuracy, sd_event_time_handler_t callback, void *userdata,
                              const char *description);
