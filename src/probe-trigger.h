/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * When an engine's log line triggers a readiness probe (pure). While a pool is probing, every
 * line its engine writes to the journal may mean it just started to answer, so it triggers a
 * probe outside the fixed grid: at once for a line that engines write when they are ready, at
 * most one per PROBE_TRIGGER_GAP_USEC for any other line (a model load writes hundreds). A
 * line rate-limited away is not lost: its probe goes out when the gap has passed, so the last
 * line of a burst is always followed by a probe.
 *
 * A trigger is only a trigger: ready still means HTTP 200 from the health endpoint.
 */

#include <stdbool.h>
#include <stddef.h>

#include "shared/time-util.h"

#define PROBE_TRIGGER_GAP_USEC (10 * USEC_PER_MSEC)

/*
 * Whether a line (size bytes, not NUL-terminated) is one a known engine writes once it serves:
 * llama.cpp's llama-server "server is listening", vLLM's (uvicorn) "Application startup
 * complete", TGI's "Connected" (the line's last word). A false match costs one probe.
 */
bool probe_trigger_is_ready_line(const char *line, size_t size);

/*
 * When the probe a line triggers at time now should go out, given that the last triggered probe
 * went out at last (0: none yet): now for a ready line or when the gap has passed, else
 * last + PROBE_TRIGGER_GAP_USEC.
 */
usec_t probe_trigger_when(usec_t last, usec_t now, bool ready_line);
