/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>
#include <string.h>

#include "engine-metrics.h"
#include "http-poll.h"
#include "log.h"

struct EngineScraper {
        HttpPoll poll;                  /* the engine's metrics URL, the grid, the scrape in flight */
        usec_t timeout;
        EngineScraperCallback callback;
        void *userdata;
};

static void scraper_schedule(EngineScraper *s) {
        usec_t t;
        int r;

        r = sd_event_now(s->poll.event, CLOCK_MONOTONIC, &t);
        if (r >= 0)
                r = http_poll_arm_next(&s->poll, t);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next scrape of %s: %m", s->poll.url);
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
        http_poll_finished(&s->poll);
        scraper_schedule(s);
}

/* A connection of its own per read, closed after it: no socket per engine held open between
 * reads seconds apart. */
static int scraper_launch(EngineScraper *s) {
        return http_poll_launch(&s->poll, s->timeout, ENGINE_METRICS_BODY_MAX, on_done, s);
}

static int on_tick(sd_event_source *source, uint64_t usec, void *userdata) {
        EngineScraper *s = userdata;
        int r;

        if (s->poll.running)
                return 0;               /* on_done() schedules the next one */
        r = scraper_launch(s);
        if (r < 0) {
                log_warning_errno(r, "Failed to start a scrape of %s: %m", s->poll.url);
                scraper_schedule(s);
        }
        return 0;
}

int engine_scraper_new(EngineScraper **ret, sd_event *event, const char *url, usec_t interval,
                        usec_t timeout, EngineScraperCallback cb, void *userdata) {
        _cleanup_(engine_scraper_freep) EngineScraper *s = NULL;
        int r;

        if (!cb)
                return -EINVAL;
        s = calloc(1, sizeof(EngineScraper));
        if (!s)
                return -ENOMEM;
        *s = (EngineScraper) { .timeout = timeout, .callback = cb, .userdata = userdata };
        r = http_poll_init(&s->poll, event, url, interval);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

EngineScraper *engine_scraper_free(EngineScraper *s) {
        if (s)
                http_poll_done(&s->poll);
        return mfree(s);
}

int engine_scraper_start(EngineScraper *s) {
        int r;

        /* 10 ms: no latency matters here, but the default slack of 250 ms would be a good part
         * of a short interval. */
        r = http_poll_start(&s->poll, 10 * USEC_PER_MSEC, on_tick, s, "engine-metrics");
        if (r < 0)
                return r;

        /* The first scrape goes out at once; the tick stays armed for the next slot. */
        return scraper_launch(s);
}
