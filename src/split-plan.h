/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Heterogeneous split (B-HETERO-001..006, OC-POOL-3021): how a model is spread over the GPUs of
 * a mask. Opt-in ("split": "auto"); the default is no split. The plan gives each device a share
 * of the model proportional to its capacity (total VRAM), capped at what it has free: a device
 * whose proportional share does not fit gets exactly its free VRAM and the rest is spread over
 * the others by the same rule (water-filling), so the smallest GPU never holds more than fits.
 * Ratios sum to exactly 1 (in units of 1/10000). A model larger than the devices' free VRAM
 * together is refused, naming each device's free figure.
 *
 * Rendered for llama.cpp as "--tensor-split a,b,... --split-mode layer". vLLM's tensor
 * parallelism needs equal shards: an uneven plan is refused, an even one is
 * "--tensor-parallel-size N". Pure.
 */

#include <stddef.h>
#include <stdint.h>

#include "prepared-engine.h"

#define SPLIT_RATIO_ONE 10000U

typedef struct SplitDevice {
        unsigned index;                 /* NVML index, for messages */
        const char *uuid;               /* for messages; may be NULL */
        uint64_t capacity;              /* total VRAM, bytes (0: use free) */
        uint64_t free;                  /* VRAM free for this model: NVML's free less promised VRAM */
} SplitDevice;

typedef struct SplitPlan {
        size_t n;
        unsigned *index;                /* copied from the input, in its order */
        uint64_t *bytes;                /* each device's share of the model; they sum to the model */
        unsigned *ratio;                /* each device's share in 1/10000; they sum to 10000 */
        bool even;                      /* every share equal: equal capacities, none capped */
        uint64_t model_bytes;
} SplitPlan;

SplitPlan *split_plan_free(SplitPlan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(SplitPlan *, split_plan_free);

/*
 * Computes the plan of model_bytes over devices (n >= 1). -ENOSPC with *ret_error when the
 * model does not fit in their free VRAM together, -EINVAL for no devices or an empty model.
 */
int split_plan_compute(const SplitDevice *devices, size_t n, uint64_t model_bytes, SplitPlan **ret,
                       char **ret_error);

/* "0.6000,0.4000": the ratios in the order of the devices. */
int split_plan_ratios_string(const SplitPlan *p, char **ret);

/*
 * The engine flags that carry the plan: llama.cpp "--tensor-split", "0.6000,0.4000",
 * "--split-mode", "layer" (nothing for one device); vLLM "--tensor-parallel-size", "N" for an
 * even plan. -EINVAL with *ret_error for an uneven vLLM plan, -EOPNOTSUPP for engines whose
 * split flags are not known (TGI, Triton, custom).
 */
int split_plan_engine_flags(const SplitPlan *p, EngineKind engine, char ***ret, char **ret_error);

/* {"devices": [{"index", "ratio", "bytes"}...], "tensor_split": "...", "even": bool, "model_bytes"} */
int split_plan_to_json(const SplitPlan *p, json_object **ret);
