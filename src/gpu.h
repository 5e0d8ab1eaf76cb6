/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The GPU inventory: what NVML says about this node's GPUs, refreshed on an sd-event timer
 * (RefreshInterval= of [GPU]) and soon after engines start or stop, with their health. Each tick
 * polls NVML's XID events without waiting and re-reads the devices (bounded, see src/nvml.h).
 *
 * Health (issue 9): XIDs 13, 31, 43, 45 and 68 are the application's and only recorded; any
 * other XID, and a GPU lost from the bus (NVML_ERROR_GPU_IS_LOST), make the GPU unhealthy and
 * cordon it, counted as a driver reset. A cordoned GPU takes no new engines (the device-mask
 * resolver refuses it) until gpu_inventory_uncordon(). Health is kept by UUID across refreshes,
 * NVML failures and reopenings.
 *
 * NVML absent or failing is a state, never a crash: gpu_inventory_state() is "ok" or
 * "no NVML: <why>", and the library is tried again every NVML_RETRY_TICKS ticks.
 *
 * VRAM promised to starting pools is kept here too (the ledger of src/vram.h), so that admission
 * sees the same devices as the mask resolver.
 */

#include <stdbool.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "device-mask.h"
#include "gpu-device.h"
#include "shared/time-util.h"
#include "split-plan.h"
#include "vram.h"

#define NVML_RETRY_TICKS 10
#define GPU_MAX_EVENTS_PER_TICK 32
#define GPU_MIG_MINORS_PATH "/proc/driver/nvidia-caps/mig-minors"

typedef struct GpuInventory GpuInventory;

/* Called after a refresh that changed more than memory figures: devices came or went, health,
 * cordon or the state changed. unhealthy: a device that just became unhealthy or lost (the pools
 * on it are to be drained), else NULL. */
typedef void (*GpuInventoryCallback)(GpuInventory *g, const GpuDevice *unhealthy, void *userdata);

/* Called after every refresh that read the devices: per-process VRAM figures may have moved. */
typedef void (*GpuInventoryUsageCallback)(GpuInventory *g, void *userdata);
void gpu_inventory_set_usage_callback(GpuInventory *g, GpuInventoryUsageCallback callback);
/* The VRAM NVML sees the processes of unit use, over every GPU and MIG device, in bytes. */
uint64_t gpu_inventory_unit_usage(const GpuInventory *g, const char *unit);

int gpu_inventory_new(GpuInventory **ret, sd_event *event, const char *library, usec_t interval,
                      GpuInventoryCallback callback, void *userdata);
GpuInventory *gpu_inventory_free(GpuInventory *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(GpuInventory *, gpu_inventory_free);

/* Opens NVML and reads the devices once (now), then starts the timer. Logs NVML's absence once. */
int gpu_inventory_start(GpuInventory *g);
/* A refresh within 100 ms (coalesced): after an engine started or stopped. */
void gpu_inventory_refresh_soon(GpuInventory *g);
/* A refresh now (on the loop: bounded like every refresh). */
int gpu_inventory_refresh(GpuInventory *g);

/* "ok", or "no NVML: <reason>". */
const char *gpu_inventory_state(const GpuInventory *g);
/* NULL when the inventory is usable, else the state: what device_mask_resolve() takes. */
const char *gpu_inventory_error(const GpuInventory *g);
const char *gpu_inventory_driver_version(const GpuInventory *g);
const char *gpu_inventory_library(const GpuInventory *g);
const GpuDevice *gpu_inventory_devices(const GpuInventory *g, size_t *ret_n);

/*
 * Returns the GPU that element names ("1", "GPU1", "GPU-<uuid>", or a MIG device's UUID: its GPU)
 * to service: healthy, not cordoned. -EINVAL/-ENOENT bad or unknown element, -EBUSY the GPU is still lost,
 * -ENODEV no inventory; *ret_error says why. *ret_index: the GPU's index.
 */
int gpu_inventory_uncordon(GpuInventory *g, const char *element, unsigned *ret_index, char **ret_error);

/* {"state", "nvml_library", "driver_version", "refresh_interval_usec", "devices": [...]} */
int gpu_inventory_to_json(const GpuInventory *g, json_object **ret);

/*
 * The start path of a pool (to be called by pool start once the pool refactor lands):
 *
 *   1. gpu_inventory_resolve_mask(g, prepared->device_mask, config->gpu_only, &mask, &error)
 *      -> mask->cuda_visible_devices (CUDA_VISIBLE_DEVICES, with CUDA_DEVICE_ORDER=PCI_BUS_ID)
 *      and mask->device_allow (DevicePolicy=closed + DeviceAllow=<node> rw each, when
 *      mask->enforced).
 *   2. optionally gpu_inventory_plan_split(g, mask, model_bytes, pool_id, &plan, &error)
 *      -> split_plan_engine_flags(plan, engine, ...) appended to the flags; plan->bytes[i] is
 *      what device i must hold.
 *   3. gpu_inventory_admit(g, mask, required, pool_id, unit, &error): INSUFFICIENT_VRAM or a
 *      reservation; gpu_inventory_release(g, pool_id) on stop, failure, or once ready.
 */
int gpu_inventory_resolve_mask(GpuInventory *g, const char *spec, bool gpu_only, DeviceMask **ret, char **ret_error);
int gpu_inventory_plan_split(GpuInventory *g, const DeviceMask *mask, uint64_t model_bytes, const char *pool_id,
                             SplitPlan **ret, char **ret_error);
int gpu_inventory_admit(GpuInventory *g, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                        const char *unit, char **ret_error);
/* Records the reservation without admission (a re-adopted engine's: src/vram.h). */
int gpu_inventory_record(GpuInventory *g, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                         const char *unit);
void gpu_inventory_release(GpuInventory *g, const char *pool_id);
