/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The HTTP API: a route table mapping method and path to one small handler each, JSON in and
 * out. Every input is validated completely before the manager is asked to do anything, so a
 * refused request never changes the registry.
 */

#include <json-c/json.h>

#include "http.h"
#include "registry.h"

/* Routes a complete request (headers and body collected by http.c): checks the token, finds
 * the route, runs its handler. Leaves the request answered or deferred. */
void http_api_handle(HttpRequest *r);

/*
 * A pool's status as JSON: pool_id, live, ready, active_leases, draining, and engine_version,
 * last_error, slots_total, slots_free, device_mask, unit, pid, url, state, handoff_path,
 * last_heartbeat_ms, each JSON null when unset.
 */
int pool_entry_to_json(const PoolEntry *e, json_object **ret);
/* Every pool's status, as GET /pools answers: an array in the registry's order. */
int pools_to_json(const Registry *reg, json_object **ret);
