/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Placement (issue 9): where a pool's engine may run and what it is promised, decided before a
 * unit is asked for. From the PreparedEngine and the GPU inventory:
 *
 *   1. the device mask, resolved against the inventory (src/device-mask.h): CUDA_VISIBLE_DEVICES
 *      as UUIDs with CUDA_DEVICE_ORDER=PCI_BUS_ID, and DevicePolicy=closed + DeviceAllow= for the
 *      masked nodes; unknown, duplicate or empty elements, cordoned GPUs and a mask that cannot be
 *      checked under GpuOnly=yes are refused naming the element;
 *   2. the VRAM the engine needs: "vram_required_bytes", else for llama.cpp the estimate from the
 *      GGUF header of model_path (src/gguf.h) at the context size of its flags (-c/--ctx-size);
 *   3. with "split": "auto" a SplitPlan over the masked devices (src/split-plan.h), rendered as
 *      the engine's flags; without a split each of n masked devices must hold 1/n of the model;
 *   4. admission (OC-POOL-3002): each device must have its share effectively free (NVML's free
 *      less VRAM promised to pools still starting), else INSUFFICIENT_VRAM; on success the
 *      shares are promised to the pool until gpu_inventory_release().
 *
 * Device nodes that do not exist now are listed in warning: systemd drops a DeviceAllow= rule
 * whose node is missing without failing the unit, so the engine could never open it.
 */

#include <stdint.h>

#include "device-mask.h"
#include "prepared-engine.h"
#include "shared/pool-error.h"
#include "split-plan.h"

typedef struct GpuInventory GpuInventory;

typedef struct Placement {
        DeviceMask *mask;               /* NULL: no device_mask */
        SplitPlan *plan;                /* NULL: no split */
        char **engine_flags;            /* appended to the engine's flags (the split), never NULL */
        uint64_t vram_required;         /* the whole engine, bytes; 0: unknown */
        char *vram_source;              /* "vram_required_bytes", "GGUF estimate ...", or why none */
        char *tensor_split;             /* "0.6000,0.4000", NULL: no split */
        char *warning;                  /* missing device nodes, an estimate that failed; NULL: none */
} Placement;

Placement *placement_free(Placement *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Placement *, placement_free);

/*
 * Places pe for pool pool_id (engine unit unit) on g (NULL: no inventory). Errors, with
 * *ret_error set and nothing promised: INVALID_PREPARED_ENGINE (a bad mask element, a split
 * that cannot be made for this engine), NO_SUCH_DEVICE, GPU_REQUIRED (GpuOnly=yes without an
 * inventory, a MIG device that cannot be enforced), DEVICE_LOST (a cordoned or lost GPU),
 * INSUFFICIENT_VRAM. mode: what is done with the VRAM (PlacementMode).
 */
typedef enum PlacementMode {
        PLACEMENT_CHECK,        /* check only (a reload whose old engine still holds the VRAM) */
        PLACEMENT_ADMIT,        /* admission: refused unless free, then promised */
        PLACEMENT_ADOPT,        /* a re-adopted engine: recorded, never refused, no new split plan
                                 * (the engine runs with the flags it was started with) */
} PlacementMode;

int placement_compute(GpuInventory *g, const PreparedEngine *pe, bool gpu_only, const char *unit,
                      PlacementMode mode, Placement **ret, PoolError *ret_error);

/* The context size and KV cache type llama.cpp's flags ask for: -c/--ctx-size N,
 * -ctk/--cache-type-k T. 0 and GGML_TYPE_F16 when absent; -EINVAL for a bad value. */
int llamacpp_flags_context(char * const *flags, uint32_t *ret_n_ctx, uint32_t *ret_kv_type);
