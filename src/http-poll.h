/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * HttpPoll: what a readiness probe (probe.c) and an engine-metrics scraper (engine-metrics.c)
 * share: GETs of one engine URL, one at a time, timed by a fixed grid of slots
 * (start + k * interval) so that a slow answer does not shift the later ones. Embedded in its
 * owner, which decides what a slot does and what an answer means.
 */

#include <stddef.h>

#include <systemd/sd-event.h>

#include "http-get.h"
#include "shared/time-util.h"

typedef struct HttpPoll {
        sd_event *event;
        char *url;
        usec_t interval;
        usec_t start_usec;              /* CLOCK_MONOTONIC: the grid's origin */
        sd_event_source *tick;          /* the next slot */
        HttpGet *running;               /* the GET in flight, if any */
} HttpPoll;

/* -EINVAL for an interval of 0 or infinity. http_poll_done() is safe after any outcome. */
int http_poll_init(HttpPoll *p, sd_event *event, const char *url, usec_t interval);
/* Cancels the GET in flight (its callback is not called) and the next slot. */
void http_poll_done(HttpPoll *p);

/* The grid starts now: the tick (accuracy, callback, description) is armed for its first slot. */
int http_poll_start(HttpPoll *p, usec_t accuracy, sd_event_time_handler_t on_tick, void *userdata,
                    const char *description);
/* Arms the tick for the first slot after t: slots already past are skipped, never made up. */
int http_poll_arm_next(HttpPoll *p, usec_t t);

/* A GET now, with its own connection (see http-get.h). */
int http_poll_launch(HttpPoll *p, usec_t timeout, size_t body_max, HttpGetCallback cb, void *userdata);
/* The GET in flight is over: called from its callback. */
void http_poll_finished(HttpPoll *p);
