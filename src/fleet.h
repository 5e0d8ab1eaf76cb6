/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Fleet: this node's pools in etcd, for orchestrators that run more than one node, and every
 * node's pools read back. A client of etcd's v3 JSON gateway (etcd-api.h) on the manager's event
 * loop, through the shared CurlGlue: no thread, no blocking call.
 *
 * One lease per node, granted at start and kept alive every TTL/3. Every key this node writes
 * (fleet-cache.h has the layout) is attached to it, so when the node dies (daemon killed,
 * machine gone, network cut) its keys vanish with the lease while its engines keep running. The
 * node key is written once connected; pool keys once the manager's start-up (re-adoption) is
 * complete, and from then on whenever a pool changes, coalesced (fleet-policy.h): at most one
 * write per pool per 50 ms, the newest state wins; a stopped pool's key is deleted.
 *
 * etcd failing never disturbs local operation: a failed request marks the fleet disconnected
 * (logged once per change), everything in flight is dropped, and the client reconnects with
 * backoff, trying the next endpoint; connected again it rewrites the current state of every
 * key (and deletes the keys of pools stopped meanwhile). A lease found gone (keepalive TTL 0,
 * "lease not found" on a write: expired during a partition, or revoked) is granted anew and
 * everything rewritten.
 *
 * Reads come from a cache (fleet-cache.h) of the whole prefix, loaded with a range and kept
 * current with a watch from the next revision; a watch that fails or is cancelled (compaction)
 * is replaced by a new range and watch.
 */

#include <json-c/json.h>

#include "shared/macro.h"

typedef struct Manager Manager;
typedef struct Fleet Fleet;

typedef enum FleetState {
        FLEET_OFF,                      /* no Etcd= */
        FLEET_DISCONNECTED,             /* not (yet, or no longer) registered in etcd */
        FLEET_CONNECTED,                /* the lease is alive and the node key written */
        _FLEET_STATE_MAX,
        _FLEET_STATE_INVALID = -EINVAL,
} FleetState;

const char *fleet_state_to_string(FleetState s);
FleetState fleet_state_from_string(const char *s);

/* Reads [Fleet] of the manager's configuration, the node name (default: the hostname) and the
 * credentials file. Off without Etcd=. Logs its errors. */
int fleet_new(Fleet **ret, Manager *m);
/* Cancels every request: the keys stay until the lease expires (a restart re-registers them). */
Fleet *fleet_free(Fleet *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Fleet *, fleet_free);

/* Starts connecting once the event loop runs. Nothing happens when off. */
int fleet_start(Fleet *f);
/* The manager's start-up is complete: every pool is known, so pool keys may be written (and
 * stale ones of a previous instance deleted). */
void fleet_startup_complete(Fleet *f);
/* A pool's registry entry changed (or it appeared): its key is written, coalesced. */
void fleet_pool_changed(Fleet *f, const char *pool_id);

/* The node key's "devices" summary (an array or object; NULL: empty). A reference is taken;
 * the node key is rewritten. The hook for a GPU inventory. */
int fleet_set_devices(Fleet *f, json_object *devices);

FleetState fleet_get_state(const Fleet *f);
const char *fleet_node_name(const Fleet *f);

/*
 * The watch cache: {"fleet": state, "node": this node, "revision": N, "nodes": [...], "pools":
 * [...]} (see fleet_cache_to_json()). -EOPNOTSUPP when off, -ENODATA before the first range
 * answer (etcd unreachable since start).
 */
int fleet_to_json(Fleet *f, json_object **ret);
