/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The one table of a pool's published properties: D-Bus name and type, JSON key, poolctl's
 * label, and the getter from the registry entry. The D-Bus vtable (pool-bus.c), the change
 * signals (the same diff), the HTTP status JSON (http-api.c) and poolctl's list, status and
 * --json all walk it, so a new field is added here once. Pure.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "registry.h"

typedef enum PoolPropertyType {
        POOL_PROPERTY_STRING,           /* D-Bus s ("" when unset), JSON string or null */
        POOL_PROPERTY_BOOL,             /* b */
        POOL_PROPERTY_UINT32,           /* u (0 when unset), JSON integer or null */
        POOL_PROPERTY_INT32,            /* i (-1 when unset), JSON integer or null */
        POOL_PROPERTY_UINT64,           /* t (0 when unset), JSON integer or null */
        _POOL_PROPERTY_TYPE_MAX,
} PoolPropertyType;

typedef enum PoolPropertyFlags {
        POOL_PROPERTY_CONST = 1 << 0,           /* never changes (D-Bus const) */
        POOL_PROPERTY_JSON_MSEC = 1 << 1,       /* a CLOCK_REALTIME usec on D-Bus, ms in JSON */
        POOL_PROPERTY_TIMESTAMP = 1 << 2,       /* CLOCK_REALTIME usec: poolctl shows a time */
        POOL_PROPERTY_IF_SET = 1 << 3,          /* poolctl status shows it only when set */
} PoolPropertyFlags;

typedef struct PoolPropertyValue {
        bool set;                       /* false: unset (JSON null, the D-Bus default) */
        const char *s;                  /* STRING (borrowed from the entry) */
        bool b;                         /* BOOL */
        int64_t i;                      /* UINT32, INT32, UINT64 (as far as it fits) */
        uint64_t u;                     /* UINT64 */
} PoolPropertyValue;

typedef struct PoolProperty {
        const char *bus_name;           /* "MainPID" */
        const char *json_key;           /* "pid" */
        const char *label;              /* poolctl status "Main PID"; NULL: not a line of its own */
        PoolPropertyType type;
        PoolPropertyFlags flags;
        void (*get)(const PoolEntry *e, PoolPropertyValue *ret);
} PoolProperty;

#define POOL_PROPERTIES_MAX 64

extern const PoolProperty pool_properties[];
extern const size_t pool_properties_n;

const PoolProperty *pool_property_by_bus_name(const char *name);
/* "s", "b", "u", "i" or "t". */
const char *pool_property_signature(const PoolProperty *p);
bool pool_property_value_equal(const PoolProperty *p, const PoolPropertyValue *a, const PoolPropertyValue *b);
/* Adds p's value to the JSON object o under p->json_key. */
int pool_property_to_json(const PoolProperty *p, const PoolPropertyValue *v, json_object *o);
