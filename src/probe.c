/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "http-poll.h"
#include "log.h"
#include "probe-trigger.h"
#include "probe.h"
#include "shared/event-util.h"

struct Probe {
        HttpPoll poll;                  /* the engine's health URL, the grid, the attempt in flight */
        usec_t timeout;
        ProbeCallback callback;
        ProbeCallback attempt_callback; /* after each attempt that did not answer 200 */
        void *userdata;

        usec_t ready_usec;              /* CLOCK_MONOTONIC */
        unsigned attempts;
        bool due;                       /* the next slot arrived while an attempt was running */
        bool finished;                  /* answered 200 or timed out */
        sd_event_source *deadline;
        sd_event_source *trigger;       /* a log-triggered attempt held back by the rate limit */
        usec_t last_trigger_usec;       /* when the last log-triggered attempt went out, 0: never */
        char *last_error;
};

static void probe_finish(Probe *p, int r) {
        p->finished = true;
        http_poll_finished(&p->poll);
        (void) sd_event_source_set_enabled(p->poll.tick, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->deadline, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->trigger, SD_EVENT_OFF);
        p->callback(p, r, p->userdata);
}

static void set_last_error(Probe *p, char *e) {
        free(p->last_error);
        p->last_error = e;
}

static int probe_launch(Probe *p);

static void on_done(HttpGet *g, int r, const HttpResponse *response, const char *error, void *userdata) {
        Probe *p = userdata;
        char *e = NULL;

        if (r >= 0 && response->status == 200) {
                http_poll_finished(&p->poll);
                (void) sd_event_now(p->poll.event, CLOCK_MONOTONIC, &p->ready_usec);
                probe_finish(p, 0);
                return;
        }
        if (r >= 0) {
                if (asprintf(&e, "HTTP %u", response->status) < 0)
                        e = NULL;
        } else
                e = strdup(error);
        http_poll_finished(&p->poll);
        set_last_error(p, e);

        if (p->attempt_callback)
                p->attempt_callback(p, -EAGAIN, p->userdata);

        if (p->due) {
                p->due = false;
                (void) probe_launch(p);
        }
}

static int probe_launch(Probe *p) {
        int r;

        /* A request may take as long as one interval, but at least a second: a loaded engine
         * answering slowly is still answering. The body is read and dropped. */
        r = http_poll_launch(&p->poll, MAX(p->poll.interval, USEC_PER_SEC), 0, on_done, p);
        if (r < 0)
                return r;
        p->attempts++;
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Probe *p = userdata;
        int r;

        r = http_poll_arm_next(&p->poll, usec);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule next health probe of %s: %m", p->poll.url);

        if (p->poll.running) {
                p->due = true;
                return 0;
        }
        r = probe_launch(p);
        if (r < 0)
                log_warning_errno(r, "Failed to start health probe of %s: %m", p->poll.url);
        return 0;
}

/* An attempt now, outside the grid; one in flight is followed by another at once, since it may
 * have been sent before what triggered this. */
static void probe_attempt_now(Probe *p, usec_t t) {
        int r;

        p->last_trigger_usec = t;
        if (p->poll.running) {
                p->due = true;
                return;
        }
        r = probe_launch(p);
        if (r < 0)
                log_warning_errno(r, "Failed to start health probe of %s: %m", p->poll.url);
}

static int on_trigger(sd_event_source *s, uint64_t usec, void *userdata) {
        probe_attempt_now(userdata, usec);
        return 0;
}

void probe_trigger(Probe *p, bool ready_line) {
        usec_t t, at;
        int r;

        /* Finished (answered 200 or timed out): nothing left to trigger. */
        if (!p->poll.tick || p->finished)
                return;
        r = sd_event_now(p->poll.event, CLOCK_MONOTONIC, &t);
        if (r < 0)
                return;
        at = probe_trigger_when(p->last_trigger_usec, t, ready_line);
        if (at <= t) {
                (void) sd_event_source_set_enabled(p->trigger, SD_EVENT_OFF);
                return probe_attempt_now(p, t);
        }
        /* Rate-limited: one attempt when the gap has passed, for however many lines came. */
        if (sd_event_source_get_enabled(p->trigger, NULL) > 0)
                return;
        r = event_reset_time(p->poll.event, &p->trigger, CLOCK_MONOTONIC, at, USEC_PER_MSEC, on_trigger, p,
                             "probe-trigger");
        if (r < 0)
                log_warning_errno(r, "Failed to schedule triggered health probe of %s: %m", p->poll.url);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        probe_finish(userdata, -ETIMEDOUT);
        return 0;
}

int probe_new(Probe **ret, sd_event *event, const char *url, usec_t interval, usec_t timeout,
              ProbeCallback cb, void *userdata) {
        _cleanup_(probe_freep) Probe *p = NULL;
        int r;

        p = calloc(1, sizeof(Probe));
        if (!p)
                return -ENOMEM;
        r = http_poll_init(&p->poll, event, url, interval);
        if (r < 0)
                return r;
        p->timeout = timeout;
        p->callback = cb;
        p->userdata = userdata;

        *ret = TAKE_PTR(p);
        return 0;
}

Probe *probe_free(Probe *p) {
        if (!p)
                return NULL;
        http_poll_done(&p->poll);
        sd_event_source_disable_unref(p->deadline);
        sd_event_source_disable_unref(p->trigger);
        free(p->last_error);
        return mfree(p);
}

int probe_start(Probe *p) {
        int r;

        /* Accuracy 1 ms on both: the default slack of 250 ms would be added to the ready lag
         * and would stretch the configured timeout. */
        r = http_poll_start(&p->poll, USEC_PER_MSEC, on_tick, p, "probe-tick");
        if (r < 0)
                return r;

        if (p->timeout != USEC_INFINITY) {
                r = sd_event_add_time(p->poll.event, &p->deadline, CLOCK_MONOTONIC, p->poll.start_usec + p->timeout,
                                      1000, on_deadline, p);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(p->deadline, "probe-deadline");
        }

        /* The first attempt goes out at once. */
        return probe_launch(p);
}

const char *probe_last_error(const Probe *p) {
        return p->last_error;
}

void probe_set_attempt_callback(Probe *p, ProbeCallback cb) {
        p->attempt_callback = cb;
}

unsigned probe_attempts(const Probe *p) {
        return p->attempts;
}

usec_t probe_ready_usec(const Probe *p) {
        return p->ready_usec;
}
