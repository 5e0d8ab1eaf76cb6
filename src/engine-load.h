/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * EngineLoad: what an engine's own /metrics says about its load, normalized across engines
 * for routers. Pure: parses the Prometheus text exposition format (0.0.4, and what
 * OpenMetrics adds that a reader of 0.0.4 can skip: "# EOF", "# UNIT") and picks out the
 * few names below; no I/O, no clock.
 *
 *   requests_running      llamacpp:requests_processing   vllm:num_requests_running
 *   requests_waiting      llamacpp:requests_deferred     vllm:num_requests_waiting
 *   kv_cache_usage_ratio  llamacpp:kv_cache_usage_ratio  vllm:gpu_cache_usage_perc,
 *                                                        vllm:kv_cache_usage_perc
 *
 * vLLM's *_cache_usage_perc is a fraction, 0 to 1, despite its name (its HELP says "1 means
 * 100 percent usage"), as llama.cpp's ratio is: both are taken as they are.
 *
 * Series of one name with different labels (vLLM labels by model_name) are added up for the
 * request counts; the KV-cache ratio takes the largest. A line that is not a valid sample
 * (garbage, a malformed label set, a line longer than ENGINE_LOAD_LINE_MAX, a value that is
 * not finite or is negative) is skipped: one bad line never spoils the others.
 */

#include <stdbool.h>
#include <stddef.h>

#include "shared/macro.h"

/* Longer lines are skipped (vLLM's longest, a histogram bucket with its labels, is ~200 bytes). */
#define ENGINE_LOAD_LINE_MAX (16U * 1024U)

typedef enum EngineLoadField {
        ENGINE_LOAD_REQUESTS_RUNNING,
        ENGINE_LOAD_REQUESTS_WAITING,
        ENGINE_LOAD_KV_CACHE_USAGE_RATIO,
        _ENGINE_LOAD_FIELD_MAX,
        _ENGINE_LOAD_FIELD_INVALID = -EINVAL,
} EngineLoadField;

typedef struct EngineLoad {
        double value[_ENGINE_LOAD_FIELD_MAX];   /* NAN: the engine did not report it */
} EngineLoad;

/* All fields NAN. */
void engine_load_init(EngineLoad *l);
/* Whether any field has a value. */
bool engine_load_is_set(const EngineLoad *l);

/* Parses the exposition in [text, text + size) (NUL bytes are garbage, not an end) into *ret.
 * Returns the number of samples of known names taken (0: none of them, which is no error). */
int engine_load_parse(const char *text, size_t size, EngineLoad *ret);
