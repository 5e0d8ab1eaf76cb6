/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The fleet client's timing rules, pure: the caller passes the time (CLOCK_MONOTONIC) and the
 * randomness.
 *
 * Coalescing: each key is written at most once per interval (start to start) and never with a
 * write of it still in flight, so writes cannot overtake each other. A change in between only
 * marks the key dirty; the write that follows takes the state of that moment, so the newest
 * state wins and a burst of changes over a time T costs at most 1 + T/interval writes.
 *
 * Backoff: after the n-th failure in a row the next attempt waits initial * 2^(n-1), at most
 * max, with +-25% jitter so that the nodes of a fleet do not reconnect in step after an outage.
 */

#include <stdbool.h>
#include <stdint.h>

#include "shared/time-util.h"

typedef struct FleetWrite {
        bool dirty;                     /* the key's state changed since the last write started */
        bool in_flight;
        bool ever_started;
        usec_t last_start;
} FleetWrite;

/* A change. Returns when the write should start: now, later (to keep the interval), or
 * USEC_INFINITY while one is in flight (fleet_write_done() then says when). */
usec_t fleet_write_changed(FleetWrite *w, usec_t now, usec_t interval);
/* When a dirty key may be written (USEC_INFINITY: clean, or in flight). */
usec_t fleet_write_due(const FleetWrite *w, usec_t now, usec_t interval);
/* A write starts now with the state of now: the key is clean until the next change. */
void fleet_write_started(FleetWrite *w, usec_t now);
/* The write ended (done or failed); returns when the next one is due, USEC_INFINITY if none. */
usec_t fleet_write_done(FleetWrite *w, usec_t now, usec_t interval);

/* The delay before the next attempt after failures (>= 1) failures in a row. */
usec_t fleet_backoff(unsigned failures, usec_t initial, usec_t max, uint64_t random);
