/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>
#include <string.h>

#include "engine-metrics.h"
#include "http-get.h"
#include "log.h"
#include "shared/event-util.h"

struct EngineScraper {
        sd_event *event;
        char *url;
        usec_t interval;
        usec_t timeout;
        EngineScraperCallback callback;
        void *userdata;

        usec_t start_usec;              /* CLOCK_MONOTONIC: the grid's origin */
        sd_event_source *tick;          /* the next scrape */
        HttpGet *running;               /* the scrape in flight, if any */
};

static void scraper_schedule(EngineScraper *s) {
        usec_t t;
        int r;

        r = sd_event_now(s->event, CLOCK_MONOTONIC, &t);
        if (r >= 0)
                r = event_source_arm(s->tick, grid_next_slot(s->start_usec, s->interval, t));
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next scrape of %s: %m", s->url);
}

static void on_done(HttpGet *g, int r, const HttpResponse *response, const char *error, void *userdata) {
        EngineScraper *s = userdata;
        _cleanup_free_ char *text = NULL;
        EngineLoad load;

        if (r == -EFBIG)
                error = "body over 1 MiB";
        else if (r < 0 && r != -ETIMEDOUT)
                r = -EIO;
        else if (r >= 0 && response->status != 200) {
                r = -ENOENT;
                if (asprintf(&text, "HTTP %u", response->status) < 0)
                        text = NULL;
                error = text;
        } else if (r >= 0)
                r = engine_load_parse(response->body ?: "", response->size, &load);

        s->callback(s, r, r >= 0 ? &load : NULL, r >= 0 ? NULL : strna(error), s->userdata);
        s->running = http_get_free(s->running);
        scraper_schedule(s);
}

/* A connection of its own per read, closed after it: no socket per engine held open between
 * reads seconds apart. */
static int scraper_launch(EngineScraper *s) {
        return http_get_start(&s->running, s->event, s->url, s->timeout, ENGINE_METRICS_BODY_MAX, on_done, s);
}

static int on_tick(sd_event_source *source, uint64_t usec, void *userdata) {
        EngineScraper *s = userdata;
        int r;

        if (s->running)
                return 0;               /* on_done() schedules the next one */
        r = scraper_launch(s);
        if (r < 0) {
                log_warning_errno(r, "Failed to start a scrape of %s: %m", s->url);
                scraper_schedule(s);
        }
        return 0;
}

int engine_scraper_new(EngineScraper **ret, sd_event *event, const char *url, usec_t interval,
                        usec_t timeout, EngineScraperCallback cb, void *userdata) {
        _cleanup_(engine_scraper_freep) EngineScraper *s = NULL;

        if (interval == 0 || interval == USEC_INFINITY || !cb)
                return -EINVAL;

        s = calloc(1, sizeof(EngineScraper));
        if (!s)
                return -ENOMEM;
        *s = (EngineScraper) {
                .event = sd_event_ref(event),
                .interval = interval,
                .timeout = timeout,
                .callback = cb,
                .userdata = userdata,
        };
        s->url = strdup(url);
        if (!s->url)
                return -ENOMEM;

        *ret = TAKE_PTR(s);
        return 0;
}

EngineScraper *engine_scraper_free(EngineScraper *s) {
        if (!s)
                return NULL;
        http_get_free(s->running);
        sd_event_source_disable_unref(s->tick);
        sd_event_unref(s->event);
        free(s->url);
        return mfree(s);
}

int engine_scraper_start(EngineScraper *s) {
        int r;

        r = sd_event_now(s->event, CLOCK_MONOTONIC, &s->start_usec);
        if (r < 0)
                return r;
        /* 10 ms: no latency matters here, but the default slack of 250 ms would be a good part
         * of a short interval. */
        r = sd_event_add_time(s->event, &s->tick, CLOCK_MONOTONIC, s->start_usec + s->interval,
                              10 * USEC_PER_MSEC, on_tick, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->tick, "engine-metrics");

        /* The first scrape goes out at once; the tick stays armed for the next slot. */
        return scraper_launch(s);
}
