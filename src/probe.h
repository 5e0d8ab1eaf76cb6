/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Readiness probing of one engine: GET <url> every interval until it answers 200 or the
 * deadline passes. Attempts are scheduled on a fixed grid (start + k * interval, timers with
 * 1 ms accuracy) so a slow answer does not shift later probes; an attempt that is still
 * running when its successor is due simply delays it. 503 (llama-server while loading),
 * connection refused and any other answer mean "not yet".
 */

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "shared/time-util.h"

typedef struct Probe Probe;

/* r == 0: ready (answered 200). r == -ETIMEDOUT: deadline passed. */
typedef void (*ProbeCallback)(Probe *p, int r, void *userdata);

int probe_new(Probe **ret, sd_event *event, const char *url, usec_t interval, usec_t timeout,
              ProbeCallback cb, void *userdata);
Probe *probe_free(Probe *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Probe *, probe_free);

/* The first attempt at once, then one per slot of the grid until 200 or the deadline. */
int probe_start(Probe *p);
/* Also called (with -EAGAIN) after every attempt that did not answer 200; NULL: not. The
 * callback may call this again, but must not free the probe. */
void probe_set_attempt_callback(Probe *p, ProbeCallback cb);
/* Something suggests the engine may answer now (it wrote a log line): an attempt outside the
 * grid, at once for a ready line (see probe-trigger.h), else at most one per
 * PROBE_TRIGGER_GAP_USEC. Only a trigger: ready still means 200. No-op once finished. */
void probe_trigger(Probe *p, bool ready_line);
/* What the last attempt saw: "HTTP 503", "Connection refused", ... NULL before the first. */
const char *probe_last_error(const Probe *p);
unsigned probe_attempts(const Probe *p);
/* CLOCK_MONOTONIC time the 200 was received, 0 before. */
usec_t probe_ready_usec(const Probe *p);
