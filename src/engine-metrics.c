/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>
#include <string.h>

#include "engine-metrics.h"
#include "curl-dl.h"
#include "log.h"
#include "probe.h"
#include "shared/event-util.h"

struct EngineScraper {
        sd_event *event;
        CurlGlue *glue;
        char *url;
        usec_t interval;
        usec_t timeout;
        EngineScraperCallback callback;
        void *userdata;

        usec_t start_usec;              /* CLOCK_MONOTONIC: the grid's origin */
        sd_event_source *tick;          /* the next scrape */
        CURL *running;                  /* the scrape in flight, if any */
        char *body;                     /* what it received so far */
        size_t size, allocated;
        bool too_big;
};

static void scraper_reset_body(EngineScraper *s) {
        s->body = mfree(s->body);
        s->size = s->allocated = 0;
        s->too_big = false;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        EngineScraper *s = userdata;
        size_t n = size * nmemb;

        if (n > ENGINE_METRICS_BODY_MAX - s->size) {
                s->too_big = true;
                return 0;               /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        if (s->size + n > s->allocated) {
                size_t a = MAX(s->allocated * 2, MAX(s->size + n, (size_t) 16 * 1024));
                char *b;

                a = MIN(a, (size_t) ENGINE_METRICS_BODY_MAX);
                b = realloc(s->body, a);
                if (!b)
                        return 0;
                s->body = b;
                s->allocated = a;
        }
        memcpy(s->body + s->size, ptr, n);
        s->size += n;
        return n;
}

static void scraper_schedule(EngineScraper *s) {
        usec_t t;
        int r;

        r = sd_event_now(s->event, CLOCK_MONOTONIC, &t);
        if (r >= 0)
                r = event_source_arm(s->tick, grid_next_slot(s->start_usec, s->interval, t));
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next scrape of %s: %m", s->url);
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        EngineScraper *s = userdata;
        _cleanup_free_ char *error = NULL;
        EngineLoad load;
        long code = 0;
        int r;

        s->running = NULL;

        if (s->too_big) {
                r = -EFBIG;
                error = strdup("body over 1 MiB");
        } else if (result != CURLE_OK) {
                r = result == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
                error = strdup(sym_curl_easy_strerror(result));
        } else if (sym_curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
                r = -ENOENT;
                if (asprintf(&error, "HTTP %ld", code) < 0)
                        error = NULL;
        } else
                r = engine_load_parse(s->body ?: "", s->size, &load);
        scraper_reset_body(s);

        s->callback(s, r, r >= 0 ? &load : NULL, r >= 0 ? NULL : strna(error), s->userdata);
        scraper_schedule(s);
}

static int scraper_launch(EngineScraper *s) {
        CURL *easy;
        int r;

        r = probe_request_new(&easy, s->url, s->timeout, on_body, s);
        if (r < 0)
                return r;
        /* A connection of its own per read, closed after it: no socket per engine held open
         * between reads seconds apart, and the liveness probe's cached connection left alone
         * (taking it would close it). */
        if (sym_curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK) {
                sym_curl_easy_cleanup(easy);
                return -EINVAL;
        }

        r = curl_glue_add(s->glue, easy, on_done, s);
        if (r < 0) {
                sym_curl_easy_cleanup(easy);
                return r;
        }
        s->running = easy;
        return 0;
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

int engine_scraper_new(EngineScraper **ret, sd_event *event, CurlGlue *glue, const char *url,
                       usec_t interval, usec_t timeout, EngineScraperCallback cb, void *userdata) {
        _cleanup_(engine_scraper_freep) EngineScraper *s = NULL;

        if (interval == 0 || interval == USEC_INFINITY || !cb)
                return -EINVAL;

        s = calloc(1, sizeof(EngineScraper));
        if (!s)
                return -ENOMEM;
        *s = (EngineScraper) {
                .event = sd_event_ref(event),
                .glue = glue,
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
        if (s->running)
                curl_glue_cancel(s->glue, s->running);
        sd_event_source_disable_unref(s->tick);
        sd_event_unref(s->event);
        free(s->body);
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
