/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <inttypes.h>
#include <stdlib.h>

#include "gpu.h"
#include "log.h"
#include "nvml.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/time-util.h"

#define MESSAGE_GPU_UNHEALTHY "5d1d1e2e0b6a4f0f9a3f4b7c2c9e6a11"
#define GPU_SOON_USEC (100 * USEC_PER_MSEC)
#define GPU_SLOW_REFRESH_USEC (500 * USEC_PER_MSEC)
#define MIG_MINORS_MAX (64U * 1024U)

/* What is known about a GPU's health, by UUID, across refreshes. */
typedef struct GpuHealthRecord {
        char *uuid;
        GpuHealth health;
        char *reason;
        bool cordoned;
        uint64_t last_xid;
        unsigned xid_count;
        unsigned driver_resets;
} GpuHealthRecord;

struct GpuInventory {
        sd_event *event;
        sd_event_source *timer;
        usec_t interval;
        usec_t next;                    /* when the timer fires next (CLOCK_MONOTONIC) */
        char *library;

        Nvml *nvml;
        unsigned ticks_without_nvml;
        char *state;                    /* "ok" or "no NVML: ..." */
        char *events_warned;            /* the event error last logged */
        bool slow_warned;

        GpuDevice *devices;
        size_t n_devices;
        GpuHealthRecord *health;
        size_t n_health;

        VramLedger ledger;

        GpuInventoryCallback callback;
        GpuInventoryUsageCallback usage_callback;
        void *userdata;
};

int gpu_inventory_new(GpuInventory **ret, sd_event *event, const char *library, usec_t interval,
                      GpuInventoryCallback callback, void *userdata) {
        _cleanup_(gpu_inventory_freep) GpuInventory *g = NULL;

        g = calloc(1, sizeof(GpuInventory));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->interval = interval;
        g->callback = callback;
        g->userdata = userdata;
        g->library = strdup(library);
        g->state = strdup("no NVML: not opened yet");
        if (!g->library || !g->state)
                return -ENOMEM;
        *ret = TAKE_PTR(g);
        return 0;
}

GpuInventory *gpu_inventory_free(GpuInventory *g) {
        if (!g)
                return NULL;
        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        nvml_close(g->nvml);
        gpu_device_array_free(g->devices, g->n_devices);
        for (size_t i = 0; i < g->n_health; i++) {
                free(g->health[i].uuid);
                free(g->health[i].reason);
        }
        free(g->health);
        vram_ledger_done(&g->ledger);
        free(g->library);
        free(g->state);
        free(g->events_warned);
        return mfree(g);
}

const char *gpu_inventory_state(const GpuInventory *g) {
        return g->state;
}

const char *gpu_inventory_error(const GpuInventory *g) {
        return streq(g->state, "ok") ? NULL : g->state;
}

const char *gpu_inventory_driver_version(const GpuInventory *g) {
        return g->nvml ? nvml_driver_version(g->nvml) : NULL;
}

const char *gpu_inventory_library(const GpuInventory *g) {
        return g->library;
}

const GpuDevice *gpu_inventory_devices(const GpuInventory *g, size_t *ret_n) {
        *ret_n = g->n_devices;
        return g->devices;
}

static GpuHealthRecord *health_record(GpuInventory *g, const char *uuid, bool create) {
        GpuHealthRecord *a;

        if (!uuid)
                return NULL;
        for (size_t i = 0; i < g->n_health; i++)
                if (streq(g->health[i].uuid, uuid))
                        return &g->health[i];
        if (!create)
                return NULL;
        a = reallocarray(g->health, g->n_health + 1, sizeof(GpuHealthRecord));
        if (!a)
                return NULL;
        g->health = a;
        a[g->n_health] = (GpuHealthRecord) { .uuid = strdup(uuid) };
        if (!a[g->n_health].uuid)
                return NULL;
        return &a[g->n_health++];
}

static int health_copy_to_device(const GpuHealthRecord *h, GpuDevice *d) {
        d->health = h->health;
        d->cordoned = h->cordoned;
        d->last_xid = h->last_xid;
        d->xid_count = h->xid_count;
        d->driver_resets = h->driver_resets;
        return free_and_strdup(&d->health_reason, h->reason);
}

/* Marks the GPU unhealthy (or lost) and cordons it; a driver reset. */
static int health_fail(GpuHealthRecord *h, GpuHealth health, const char *reason) {
        int r;

        r = free_and_strdup(&h->reason, reason);
        if (r < 0)
                return r;
        h->health = health;
        h->cordoned = true;
        h->driver_resets++;
        return 0;
}

static void log_unhealthy(const GpuDevice *d) {
        log_struct(LOG_WARNING,
                   LOG_MESSAGE_ID(MESSAGE_GPU_UNHEALTHY),
                   "GPU_INDEX=%u", d->index,
                   "GPU_UUID=%s", strna(d->uuid),
                   "GPU_HEALTH=%s", gpu_health_to_string(d->health),
                   "DRIVER_RESETS=%u", d->driver_resets,
                   LOG_MESSAGE("GPU%u (%s) is %s: %s; cordoned until \"poolctl device uncordon %u\".", d->index,
                               strna(d->uuid), gpu_health_to_string(d->health), strna(d->health_reason), d->index),
                   NULL);
}

static int set_state(GpuInventory *g, const char *state, bool *changed) {
        if (streq(g->state, state))
                return 0;
        if (streq(state, "ok"))
                log_info("GPU inventory: NVML %s opened%s%s.", g->library,
                         gpu_inventory_driver_version(g) ? ", driver " : "", strempty(gpu_inventory_driver_version(g)));
        else
                /* Losing NVML is news; not having it (a CPU node, a driver not loaded yet) is a state. */
                log_full(streq(g->state, "ok") ? LOG_WARNING : LOG_NOTICE, "GPU inventory: %s", state);
        *changed = true;
        return free_and_strdup(&g->state, state);
}

/* NVML is gone or unusable: no devices (health records stay), state says why. */
static int inventory_fail(GpuInventory *g, const char *why, bool *changed) {
        _cleanup_free_ char *state = NULL;

        g->nvml = nvml_close(g->nvml);
        g->ticks_without_nvml = 1;     /* the next attempt in NVML_RETRY_TICKS - 1 ticks */
        if (g->n_devices > 0)
                *changed = true;
        g->devices = gpu_device_array_free(g->devices, g->n_devices);
        g->n_devices = 0;
        if (asprintf(&state, "no NVML: %s", why) < 0)
                return -ENOMEM;
        return set_state(g, state, changed);
}

static int poll_events(GpuInventory *g, bool *changed) {
        for (unsigned i = 0; g->nvml && i < GPU_MAX_EVENTS_PER_TICK; i++) {
                _cleanup_free_ char *error = NULL, *reason = NULL;
                GpuHealthRecord *h;
                unsigned index;
                uint64_t xid;
                int r;

                r = nvml_poll_event(g->nvml, &index, &xid, &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* Logged once per different message; a lost GPU shows in the next read. */
                        if (!streq_ptr(g->events_warned, error)) {
                                log_warning("GPU inventory: %s", strna(error));
                                if (free_and_strdup(&g->events_warned, error) < 0)
                                        return -ENOMEM;
                        }
                        return 0;
                }
                if (r == 0)
                        return 0;
                if (index >= g->n_devices || !g->devices[index].uuid)
                        continue;

                h = health_record(g, g->devices[index].uuid, true);
                if (!h)
                        return -ENOMEM;
                h->last_xid = xid;
                h->xid_count++;
                if (xid_is_application_error(xid)) {
                        log_notice("GPU%u (%s): XID %" PRIu64 ", an application error; the GPU stays in service.",
                                   index, g->devices[index].uuid, xid);
                } else {
                        if (asprintf(&reason, "XID %" PRIu64, xid) < 0)
                                return -ENOMEM;
                        r = health_fail(h, GPU_HEALTH_UNHEALTHY, reason);
                        if (r < 0)
                                return r;
                        r = health_copy_to_device(h, &g->devices[index]);
                        if (r < 0)
                                return r;
                        log_unhealthy(&g->devices[index]);
                        *changed = true;
                        if (g->callback)
                                g->callback(g, &g->devices[index], g->userdata);
                }
                if (health_copy_to_device(h, &g->devices[index]) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Whether two snapshots differ in more than memory and processes. */
static bool devices_differ(const GpuDevice *a, size_t n_a, const GpuDevice *b, size_t n_b) {
        if (n_a != n_b)
                return true;
        for (size_t i = 0; i < n_a; i++)
                if (!streq_ptr(a[i].uuid, b[i].uuid) || a[i].health != b[i].health || a[i].cordoned != b[i].cordoned ||
                    a[i].n_mig != b[i].n_mig || a[i].mig_enabled != b[i].mig_enabled ||
                    a[i].driver_resets != b[i].driver_resets || a[i].xid_count != b[i].xid_count ||
                    !streq_ptr(a[i].error, b[i].error))
                        return true;
        return false;
}

static int read_devices(GpuInventory *g, bool *changed) {
        _cleanup_free_ char *error = NULL, *mig_minors = NULL;
        GpuDevice *devices = NULL;
        size_t n = 0;
        int r;

        r = nvml_read_devices(g->nvml, &devices, &n, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return inventory_fail(g, strna(error), changed);

        /* The MIG devices' capability nodes, for DeviceAllow=; absent without MIG. */
        (void) read_full_file(GPU_MIG_MINORS_PATH, MIG_MINORS_MAX, &mig_minors, NULL);

        for (size_t i = 0; i < n; i++) {
                GpuDevice *d = &devices[i];
                GpuHealthRecord *h;

                /* A GPU lost before its UUID was read: the one at its index in the last snapshot. */
                if (!d->uuid && i < g->n_devices && g->devices[i].uuid) {
                        r = free_and_strdup(&d->uuid, g->devices[i].uuid);
                        if (r >= 0)
                                r = free_and_strdup(&d->name, g->devices[i].name);
                        if (r >= 0)
                                r = free_and_strdup(&d->pci_bus_id, g->devices[i].pci_bus_id);
                        if (r < 0)
                                goto fail;
                        d->minor = g->devices[i].minor;
                        d->minor_known = g->devices[i].minor_known;
                }
                r = gpu_device_set_mig_caps(d, mig_minors);
                if (r < 0)
                        goto fail;
                h = health_record(g, d->uuid, true);
                if (!h) {
                        if (!d->uuid)
                                continue;       /* never identified: nothing to keep */
                        r = -ENOMEM;
                        goto fail;
                }

                if (d->health == GPU_HEALTH_LOST && h->health != GPU_HEALTH_LOST) {
                        r = health_fail(h, GPU_HEALTH_LOST, strna(d->error));
                        if (r < 0 || (r = health_copy_to_device(h, d)) < 0)
                                goto fail;
                        log_unhealthy(d);
                        if (g->callback)
                                g->callback(g, d, g->userdata);
                } else if (d->health != GPU_HEALTH_LOST && h->health == GPU_HEALTH_LOST) {
                        /* Back on the bus: not trusted until someone uncordons it. */
                        h->health = GPU_HEALTH_UNHEALTHY;
                        r = free_and_strdup(&h->reason, "was lost, answers again");
                        if (r < 0)
                                goto fail;
                }
                r = health_copy_to_device(h, d);
                if (r < 0)
                        goto fail;
        }

        if (devices_differ(g->devices, g->n_devices, devices, n))
                *changed = true;
        gpu_device_array_free(g->devices, g->n_devices);
        g->devices = devices;
        g->n_devices = n;
        return set_state(g, "ok", changed);

fail:
        gpu_device_array_free(devices, n);
        return r;
}

int gpu_inventory_refresh(GpuInventory *g) {
        usec_t begin = now(CLOCK_MONOTONIC), took;
        bool changed = false;
        int r;

        if (!g->nvml) {
                _cleanup_free_ char *error = NULL;

                /* dlopen() and nvmlInit_v2() again only every NVML_RETRY_TICKS ticks. */
                if (g->ticks_without_nvml++ % NVML_RETRY_TICKS != 0 && !streq(g->state, "no NVML: not opened yet"))
                        return 0;
                r = nvml_open(g->library, &g->nvml, &error);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0) {
                        r = inventory_fail(g, strna(error), &changed);
                        goto finish;
                }
                if (nvml_events_error(g->nvml))
                        log_notice("GPU inventory: no XID events: %s", nvml_events_error(g->nvml));
        }

        r = poll_events(g, &changed);
        if (r >= 0)
                r = read_devices(g, &changed);

finish:
        if (r < 0)
                return log_error_errno(r, "GPU inventory: failed to refresh: %m");

        took = now(CLOCK_MONOTONIC) - begin;
        if (took > GPU_SLOW_REFRESH_USEC && !g->slow_warned) {
                log_warning("GPU inventory: a refresh took %" PRIu64 " ms (NVML is slow: is the persistence daemon "
                            "running?).", took / USEC_PER_MSEC);
                g->slow_warned = true;
        }
        if (changed && g->callback)
                g->callback(g, NULL, g->userdata);
        if (g->nvml && g->usage_callback)
                g->usage_callback(g, g->userdata);
        return 0;
}

void gpu_inventory_set_usage_callback(GpuInventory *g, GpuInventoryUsageCallback callback) {
        g->usage_callback = callback;
}

static uint64_t processes_usage(const GpuProcess *procs, size_t n, const char *unit) {
        uint64_t sum = 0;

        for (size_t i = 0; i < n; i++)
                if (streq_ptr(procs[i].unit, unit) && procs[i].used_memory != GPU_MEMORY_UNKNOWN)
                        sum += procs[i].used_memory;
        return sum;
}

uint64_t gpu_inventory_unit_usage(const GpuInventory *g, const char *unit) {
        uint64_t sum = 0;

        if (!g || !unit)
                return 0;
        for (size_t i = 0; i < g->n_devices; i++) {
                const GpuDevice *d = &g->devices[i];

                /* A MIG-enabled GPU's own list already holds its MIG devices' processes. */
                sum += processes_usage(d->processes, d->n_processes, unit);
                if (!d->mig_enabled || d->n_processes == 0)
                        for (size_t j = 0; j < d->n_mig; j++)
                                sum += processes_usage(d->mig[j].processes, d->mig[j].n_processes, unit);
        }
        return sum;
}

static int arm_timer(GpuInventory *g, usec_t when) {
        g->next = when;
        return sd_event_source_set_time(g->timer, when);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        GpuInventory *g = userdata;

        (void) gpu_inventory_refresh(g);
        (void) arm_timer(g, now(CLOCK_MONOTONIC) + g->interval);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int gpu_inventory_start(GpuInventory *g) {
        int r;

        r = gpu_inventory_refresh(g);
        if (r < 0)
                return r;
        g->next = now(CLOCK_MONOTONIC) + g->interval;
        r = sd_event_add_time(g->event, &g->timer, CLOCK_MONOTONIC, g->next, USEC_PER_MSEC, on_timer, g);
        if (r < 0)
                return log_error_errno(r, "Failed to add the GPU inventory timer: %m");
        (void) sd_event_source_set_description(g->timer, "gpu-inventory");
        return 0;
}

void gpu_inventory_refresh_soon(GpuInventory *g) {
        usec_t soon;

        if (!g || !g->timer)
                return;
        soon = now(CLOCK_MONOTONIC) + GPU_SOON_USEC;
        if (soon < g->next)
                (void) arm_timer(g, soon);
}

int gpu_inventory_uncordon(GpuInventory *g, const char *element, unsigned *ret_index, char **ret_error) {
        GpuHealthRecord *h;
        GpuDevice *d;
        size_t gpu;
        int mig, r;

        if (gpu_inventory_error(g)) {
                if (asprintf(ret_error, "no GPU inventory: %s", g->state) < 0)
                        *ret_error = NULL;
                return -ENODEV;
        }
        r = device_mask_find_element(element, g->devices, g->n_devices, &gpu, &mig, ret_error);
        if (r < 0)
                return r;
        d = &g->devices[gpu];
        if (d->health == GPU_HEALTH_LOST) {
                if (asprintf(ret_error, "GPU%u (%s) is lost (%s): it cannot return to service before NVML reaches "
                             "it again", d->index, strna(d->uuid), strna(d->health_reason)) < 0)
                        *ret_error = NULL;
                return -EBUSY;
        }
        h = health_record(g, d->uuid, true);
        if (!h)
                return -ENOMEM;
        h->health = GPU_HEALTH_HEALTHY;
        h->cordoned = false;
        h->reason = mfree(h->reason);
        r = health_copy_to_device(h, d);
        if (r < 0)
                return r;
        log_struct(LOG_NOTICE,
                   "GPU_INDEX=%u", d->index,
                   "GPU_UUID=%s", strna(d->uuid),
                   LOG_MESSAGE("GPU%u (%s) uncordoned: it takes new engines again.", d->index, strna(d->uuid)),
                   NULL);
        if (g->callback)
                g->callback(g, NULL, g->userdata);
        *ret_index = d->index;
        return 0;
}

int gpu_inventory_to_json(const GpuInventory *g, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *a = NULL;

        o = json_object_new_object();
        a = json_object_new_array();
        if (!o || !a)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_devices; i++) {
                json_object *d;
                int r;

                r = gpu_device_to_json(&g->devices[i], &d);
                if (r < 0)
                        return r;
                if (json_object_array_add(a, d) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
        }
        if (json_add_string(o, "state", g->state) < 0 ||
            json_add_string(o, "nvml_library", g->library) < 0 ||
            json_add_string(o, "driver_version", gpu_inventory_driver_version(g)) < 0 ||
            json_add_uint64(o, "refresh_interval_usec", g->interval) < 0 ||
            json_add_take(o, "devices", TAKE_PTR(a)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int gpu_inventory_resolve_mask(GpuInventory *g, const char *spec, bool gpu_only, DeviceMask **ret, char **ret_error) {
        return device_mask_resolve(spec, g->devices, g->n_devices, gpu_inventory_error(g), gpu_only, ret, ret_error);
}

int gpu_inventory_plan_split(GpuInventory *g, const DeviceMask *mask, uint64_t model_bytes, const char *pool_id,
                             SplitPlan **ret, char **ret_error) {
        _cleanup_free_ SplitDevice *devices = NULL;

        if (!mask->enforced || mask->n_entries == 0) {
                if (asprintf(ret_error, "a split needs a device mask checked against the GPU inventory (%s)",
                             g->state) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        devices = calloc(mask->n_entries, sizeof(SplitDevice));
        if (!devices)
                return -ENOMEM;
        for (size_t i = 0; i < mask->n_entries; i++) {
                const DeviceMaskEntry *e = &mask->entries[i];
                const GpuDevice *d = &g->devices[e->gpu];
                uint64_t total = e->mig >= 0 ? d->mig[e->mig].memory_total : d->memory_total;
                int r;

                devices[i] = (SplitDevice) {
                        .index = e->index,
                        .uuid = e->uuid,
                        .capacity = total == GPU_MEMORY_UNKNOWN ? 0 : total,
                };
                r = vram_effective_free(&g->ledger, g->devices, g->n_devices, e->uuid, pool_id, &devices[i].free);
                if (r < 0)
                        devices[i].free = 0;
        }
        return split_plan_compute(devices, mask->n_entries, model_bytes, ret, ret_error);
}

int gpu_inventory_admit(GpuInventory *g, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                        const char *unit, char **ret_error) {
        return vram_admit(&g->ledger, g->devices, g->n_devices, mask, required, pool_id, unit, ret_error);
}

int gpu_inventory_record(GpuInventory *g, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                         const char *unit) {
        return vram_record(&g->ledger, mask, required, pool_id, unit);
}

void gpu_inventory_release(GpuInventory *g, const char *pool_id) {
        if (g)
                vram_ledger_release(&g->ledger, pool_id);
}
