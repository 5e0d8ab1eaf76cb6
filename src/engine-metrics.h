/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * EngineScraper: reads one engine's own /metrics every interval, one GET at a time (an
 * HttpPoll, http-poll.h), and hands what it says of the engine's load (engine-load.h) to its
 * owner. Runs while the pool is ready; the pool frees it otherwise. No thread, no blocking
 * call: the next scrape is scheduled when the last one is over, at the next slot of a fixed
 * grid (start + k * interval), so a slow engine delays scrapes instead of piling them up.
 */

#include <systemd/sd-event.h>

#include "engine-load.h"
#include "shared/time-util.h"

/* A bigger body aborts the transfer (vLLM's, with every histogram, is ~100 KiB). */
#define ENGINE_METRICS_BODY_MAX (1024U * 1024U)

typedef struct EngineScraper EngineScraper;

/*
 * After each scrape. r >= 0: the engine answered 200 and *load holds what it said (r fields
 * of its names found, 0 for a body without them; load is never NULL then). r < 0: no answer
 * to read, error says why ("HTTP 404", "Connection refused", "timed out after 2000 ms",
 * "body over 1 MiB", ...): -ENOENT for an answer other than 200, -EIO for a failed transfer, -ETIMEDOUT for a
 * timeout, -EFBIG for a body too big. The callback must not free the scraper.
 */
typedef void (*EngineScraperCallback)(EngineScraper *s, int r, const EngineLoad *load, const char *error,
                                      void *userdata);

/* url: the engine's metrics URL; interval > 0; timeout: of each GET. */
int engine_scraper_new(EngineScraper **ret, sd_event *event, const char *url, usec_t interval,
                       usec_t timeout, EngineScraperCallback cb, void *userdata);
/* Cancels the scrape in flight and the timer; the callback is not called. NULL is fine. */
EngineScraper *engine_scraper_free(EngineScraper *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EngineScraper *, engine_scraper_free);

/* The first scrape goes out at once. */
int engine_scraper_start(EngineScraper *s);
