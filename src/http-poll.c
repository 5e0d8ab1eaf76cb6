/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http-poll.h"
#include "shared/event-util.h"

int http_poll_init(HttpPoll *p, sd_event *event, const char *url, usec_t interval) {
        *p = (HttpPoll) {};
        if (interval == 0 || interval == USEC_INFINITY)
                return -EINVAL;

        *p = (HttpPoll) {
                .event = sd_event_ref(event),
                .interval = interval,
                .url = strdup(url),
        };
        return p->url ? 0 : -ENOMEM;
}

void http_poll_done(HttpPoll *p) {
        p->running = http_get_free(p->running);
        p->tick = sd_event_source_disable_unref(p->tick);
        p->event = sd_event_unref(p->event);
        p->url = mfree(p->url);
}

int http_poll_start(HttpPoll *p, usec_t accuracy, sd_event_time_handler_t on_tick, void *userdata,
                    const char *description) {
        int r;

        r = sd_event_now(p->event, CLOCK_MONOTONIC, &p->start_usec);
        if (r < 0)
                return r;
        r = sd_event_add_time(p->event, &p->tick, CLOCK_MONOTONIC, p->start_usec + p->interval, accuracy,
                              on_tick, userdata);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->tick, description);
        return 0;
}

int http_poll_arm_next(HttpPoll *p, usec_t t) {
        return event_source_arm(p->tick, grid_next_slot(p->start_usec, p->interval, t));
}

int http_poll_launch(HttpPoll *p, usec_t timeout, size_t body_max, HttpGetCallback cb, void *userdata) {
        return http_get_start(&p->running, p->event, p->url, timeout, body_max, cb, userdata);
}

void http_poll_finished(HttpPoll *p) {
        p->running = http_get_free(p->running);
}
