/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The fleet's key layout in etcd, and a cache of what every node published there:
 *
 *   <KeyPrefix>nodes/<node>            {"node", "version", "url", "devices", "started_at"}
 *   <KeyPrefix>pools/<node>/<pool>     the pool's status: {"node", "pool_id", "ready", "live", "url",
 *                                      "engine", "engine_version", "device_mask", "slots_total",
 *                                      "slots_free", "active_leases", "last_error", "updated_at", ...}
 *
 * Every key is attached to its node's lease, so a dead node's keys vanish with it. The cache is
 * loaded from a range answer and kept current with watch events; it never trusts a value: each
 * one is parsed (a JSON object of at most FLEET_VALUE_MAX bytes, the members we know of the type
 * we write) and a bad one is reported and leaves the cache as it was for that key. Keys of other
 * shapes under the prefix are someone else's and ignored. Pure: no I/O, no clock, no logging.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "etcd-api.h"
#include "shared/macro.h"

/* A node or pool value; ours are well under 4 KiB. */
#define FLEET_VALUE_MAX (64U * 1024U)

typedef enum FleetKeyKind {
        FLEET_KEY_NODE,
        FLEET_KEY_POOL,
        _FLEET_KEY_KIND_MAX,
        _FLEET_KEY_KIND_INVALID = -EINVAL,
} FleetKeyKind;

/* A node name, like a pool id: [A-Za-z0-9][A-Za-z0-9_.-]{0,63} (a hostname fits). */
bool fleet_node_name_is_valid(const char *s);

int fleet_node_key(const char *prefix, const char *node, char **ret);
int fleet_pool_key(const char *prefix, const char *node, const char *pool_id, char **ret);
/* "<prefix>pools/<node>/": the range of one node's pool keys. */
int fleet_node_pools_prefix(const char *prefix, const char *node, char **ret);

/*
 * Splits a key (key_size bytes, may contain NUL bytes) of the layout. Returns 1 with kind, node
 * and (for pools) pool id; 0 for a key outside the layout (not under the prefix, or under it but
 * neither nodes/ nor pools/); -EINVAL with *ret_error for a key under nodes/ or pools/ that is
 * malformed.
 */
int fleet_key_parse(const char *prefix, const char *key, size_t key_size, FleetKeyKind *ret_kind,
                    char **ret_node, char **ret_pool, char **ret_error);

/* Parses a value of kind: -EINVAL with *ret_error for anything but a JSON object of at most
 * FLEET_VALUE_MAX bytes whose known members have the right types. */
int fleet_value_parse(FleetKeyKind kind, const char *value, size_t size, json_object **ret,
                      char **ret_error);

typedef struct FleetCache FleetCache;

/* Called for every entry that was not taken, with the key (quoted for messages) and why. */
typedef void (*FleetCacheWarn)(const char *key, const char *problem, void *userdata);

int fleet_cache_new(FleetCache **ret, const char *prefix);
FleetCache *fleet_cache_free(FleetCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(FleetCache *, fleet_cache_free);

/* Replaces the contents with a range answer at revision. An entry that is not acceptable keeps
 * what the cache had for its key, if anything. */
int fleet_cache_load(FleetCache *c, const EtcdKeyValue *kvs, size_t n, int64_t revision, FleetCacheWarn warn,
                     void *userdata);
/* Applies watch events; revision is the answer's header revision. An event older than what the
 * cache holds for its key is ignored. */
int fleet_cache_apply(FleetCache *c, const EtcdEvent *events, size_t n, int64_t revision,
                      FleetCacheWarn warn, void *userdata);

bool fleet_cache_is_loaded(const FleetCache *c);
int64_t fleet_cache_revision(const FleetCache *c);
size_t fleet_cache_n_pools(const FleetCache *c);
size_t fleet_cache_n_nodes(const FleetCache *c);

/* {"revision": N, "nodes": [...], "pools": [...]}, each sorted by node (then pool id); every
 * entry is its value with "node" (and "pool_id") taken from the key. */
int fleet_cache_to_json(const FleetCache *c, json_object **ret);
