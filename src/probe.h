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

#include "curl-glue.h"
#include "shared/time-util.h"

typedef struct Probe Probe;

/* r == 0: ready (answered 200). r == -ETIMEDOUT: deadline passed. */
typedef void (*ProbeCallback)(Probe *p, int r, void *userdata);

int probe_new(Probe **ret, sd_event *event, CurlGlue *glue, const char *url, usec_t interval,
              usec_t timeout, ProbeCallback cb, void *userdata);
Probe *probe_free(Probe *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Probe *, probe_free);

/* Connect from this local address (an IP literal; NULL: the kernel's choice). */
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

/* CURLOPT_OPENSOCKETFUNCTION for any request to an engine's own port: never connects from that
 * port to itself (TCP simultaneous open) while nothing listens there; see probe.c. */
curl_socket_t probe_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a);

/* An easy handle for a GET of url from an engine's own port: http only, no redirect, the whole
 * transfer within timeout (1 ms at least), the body handed to write_cb(userdata), connected
 * through probe_open_socket(). The caller adds what is its own and hands it to curl_glue_add().
 * -ENOMEM, or -EINVAL where curl refused an option. */
int probe_request_new(CURL **ret, const char *url, usec_t timeout, curl_write_callback write_cb,
                      void *userdata);
