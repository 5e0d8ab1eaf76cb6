/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * PreparedEngine: what the engine provisioner hands us, parsed once at the edge from JSON
 * into a typed struct and validated completely. Errors name the offending field.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "shared/macro.h"

#define PREPARED_ENGINE_MAX_SIZE (64U * 1024U)

typedef enum EngineKind {
        ENGINE_LLAMACPP,
        ENGINE_VLLM,
        ENGINE_TGI,
        ENGINE_TRITON,
        ENGINE_CUSTOM,
        _ENGINE_KIND_MAX,
        _ENGINE_KIND_INVALID = -EINVAL,
} EngineKind;

const char *engine_kind_to_string(EngineKind k);
EngineKind engine_kind_from_string(const char *s);

typedef struct PreparedEngine {
        char *binary_path;              /* absolute */
        char **flags;                   /* argv after the binary, never NULL */
        uint16_t port;                  /* 1..65535 */
        char *host;                     /* IP literal or "localhost", default "127.0.0.1" */
        char *model_path;               /* may be NULL */
        char *engine_version;           /* may be NULL */
        char *pool_id;
        char *replica_id;               /* default "r0" */
        char *device_mask;              /* NULL, "0,1", "GPU0,GPU1", "GPU-<uuid>", "MIG-<uuid>" */
        EngineKind engine;              /* default ENGINE_LLAMACPP */
        char *health_path;              /* default "/health" */
        uint64_t health_interval_ms;    /* 0: daemon default (HealthInterval=) */
        uint64_t health_timeout_ms;     /* 0: daemon default (HealthTimeout=) */
        char **env;                     /* "NAME=value", never NULL */
        int32_t slots_total;            /* -1: unset */
        uint64_t vram_required_bytes;   /* 0: unset (estimated from a GGUF model_path for llama.cpp) */
        bool split_auto;                /* "split": "auto": a SplitPlan over the masked GPUs */
} PreparedEngine;

/*
 * Parses and validates. On -EINVAL, *ret_error names the field and the problem, e.g.
 * "port: must be an integer in 1..65535". -EFBIG for documents over 64 KiB.
 */
int prepared_engine_from_json(const char *text, size_t size, PreparedEngine **ret, char **ret_error);
/* Same, from an already parsed object (the "prepared" member of an HTTP body). */
int prepared_engine_from_object(json_object *o, PreparedEngine **ret, char **ret_error);
int prepared_engine_to_json(const PreparedEngine *p, json_object **ret);
PreparedEngine *prepared_engine_free(PreparedEngine *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(PreparedEngine *, prepared_engine_free);
int prepared_engine_copy(const PreparedEngine *p, PreparedEngine **ret);

/* Device mask "GPU0,GPU1" or "0,1" -> "0,1" (CUDA_VISIBLE_DEVICES; UUID elements as given). NULL mask -> NULL. */
int device_mask_to_cuda_visible_devices(const char *mask, char **ret);
bool device_mask_is_valid(const char *mask);

/* "http://host:port" (IPv6 hosts in brackets). */
int prepared_engine_base_url(const PreparedEngine *p, char **ret);
