/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/string-util.h"
#include "vram.h"

static void vram_reservation_done(VramReservation *r) {
        free(r->pool_id);
        free(r->unit);
        free(r->uuid);
}

void vram_ledger_done(VramLedger *l) {
        for (size_t i = 0; i < l->n; i++)
                vram_reservation_done(&l->reservations[i]);
        free(l->reservations);
        *l = (VramLedger) {};
}

void vram_ledger_release(VramLedger *l, const char *pool_id) {
        size_t j = 0;

        for (size_t i = 0; i < l->n; i++) {
                if (streq(l->reservations[i].pool_id, pool_id)) {
                        vram_reservation_done(&l->reservations[i]);
                        continue;
                }
                l->reservations[j++] = l->reservations[i];
        }
        l->n = j;
}

/* The device (GPU or MIG) of uuid: its memory and processes. */
static bool find_device(const GpuDevice *devices, size_t n, const char *uuid, uint64_t *ret_free,
                        const GpuProcess **ret_procs, size_t *ret_n_procs) {
        for (size_t i = 0; i < n; i++) {
                if (streq_ptr(devices[i].uuid, uuid)) {
                        *ret_free = devices[i].memory_free;
                        *ret_procs = devices[i].processes;
                        *ret_n_procs = devices[i].n_processes;
                        return true;
                }
                for (size_t j = 0; j < devices[i].n_mig; j++)
                        if (streq_ptr(devices[i].mig[j].uuid, uuid)) {
                                *ret_free = devices[i].mig[j].memory_free;
                                *ret_procs = devices[i].mig[j].processes;
                                *ret_n_procs = devices[i].mig[j].n_processes;
                                return true;
                        }
        }
        return false;
}

uint64_t vram_ledger_outstanding(const VramLedger *l, const GpuDevice *devices, size_t n, const char *uuid,
                                 const char *exclude_pool) {
        const GpuProcess *procs = NULL;
        size_t n_procs = 0;
        uint64_t free_bytes, total = 0;

        (void) find_device(devices, n, uuid, &free_bytes, &procs, &n_procs);

        for (size_t i = 0; i < l->n; i++) {
                const VramReservation *r = &l->reservations[i];
                uint64_t used = 0;

                if (!streq(r->uuid, uuid) || streq_ptr(r->pool_id, exclude_pool))
                        continue;
                for (size_t k = 0; k < n_procs; k++)
                        if (streq_ptr(procs[k].unit, r->unit) && procs[k].used_memory != GPU_MEMORY_UNKNOWN)
                                used = used > UINT64_MAX - procs[k].used_memory ? UINT64_MAX
                                                                                : used + procs[k].used_memory;
                if (r->bytes > used) {
                        uint64_t left = r->bytes - used;

                        total = total > UINT64_MAX - left ? UINT64_MAX : total + left;
                }
        }
        return total;
}

int vram_effective_free(const VramLedger *l, const GpuDevice *devices, size_t n, const char *uuid,
                        const char *exclude_pool, uint64_t *ret) {
        const GpuProcess *procs;
        size_t n_procs;
        uint64_t free_bytes, promised;

        if (!find_device(devices, n, uuid, &free_bytes, &procs, &n_procs))
                return -ENODEV;
        if (free_bytes == GPU_MEMORY_UNKNOWN)
                return -ENODATA;
        promised = vram_ledger_outstanding(l, devices, n, uuid, exclude_pool);
        *ret = free_bytes > promised ? free_bytes - promised : 0;
        return 0;
}

int vram_admit(VramLedger *l, const GpuDevice *devices, size_t n, const DeviceMask *mask, const uint64_t *required,
               const char *pool_id, const char *unit, char **ret_error) {
        /* Everything is checked before anything changes. */
        for (size_t i = 0; i < mask->n_entries; i++) {
                const DeviceMaskEntry *e = &mask->entries[i];
                uint64_t free_bytes, promised, nvml_free = 0;
                const GpuProcess *procs;
                size_t n_procs;
                int r;

                r = vram_effective_free(l, devices, n, e->uuid, pool_id, &free_bytes);
                if (r == -ENODEV || r == -ENODATA) {
                        if (asprintf(ret_error, "INSUFFICIENT_VRAM: device %s (GPU%u): %s", e->uuid, e->index,
                                     r == -ENODEV ? "not in the inventory any more" :
                                                    "NVML reports no memory figures for it") < 0)
                                *ret_error = NULL;
                        return -ENOSPC;
                }
                if (r < 0)
                        return r;
                if (free_bytes >= required[i])
                        continue;

                (void) find_device(devices, n, e->uuid, &nvml_free, &procs, &n_procs);
                promised = vram_ledger_outstanding(l, devices, n, e->uuid, pool_id);
                if (asprintf(ret_error, "INSUFFICIENT_VRAM: device %s (GPU%u%s) has %s free (%" PRIu64 " bytes: "
                             "%s by NVML, less %s promised to pools still starting), %s (%" PRIu64 " bytes) "
                             "required", e->uuid, e->index, e->mig >= 0 ? ", MIG" : "", FORMAT_BYTES(free_bytes),
                             free_bytes, FORMAT_BYTES(nvml_free), FORMAT_BYTES(promised),
                             FORMAT_BYTES(required[i]), required[i]) < 0)
                        *ret_error = NULL;
                return -ENOSPC;
        }

        return vram_record(l, mask, required, pool_id, unit);
}

int vram_record(VramLedger *l, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                const char *unit) {
        VramReservation *a;
        size_t added = 0;

        a = reallocarray(l->reservations, l->n + mask->n_entries, sizeof(VramReservation));
        if (!a)
                return -ENOMEM;
        l->reservations = a;
        for (size_t i = 0; i < mask->n_entries; i++) {
                VramReservation *r = &a[l->n + added];

                if (required[i] == 0)
                        continue;
                *r = (VramReservation) {
                        .pool_id = strdup(pool_id),
                        .unit = strdup(unit),
                        .uuid = strdup(mask->entries[i].uuid),
                        .bytes = required[i],
                };
                if (!r->pool_id || !r->unit || !r->uuid) {
                        vram_reservation_done(r);
                        for (size_t k = 0; k < added; k++)
                                vram_reservation_done(&a[l->n + k]);
                        return -ENOMEM;
                }
                added++;
        }
        /* Replace the pool's old reservations: drop them, keeping the new ones at the end. */
        for (size_t i = 0; i < l->n; ) {
                if (streq(a[i].pool_id, pool_id)) {
                        vram_reservation_done(&a[i]);
                        memmove(&a[i], &a[i + 1], (l->n + added - i - 1) * sizeof(VramReservation));
                        l->n--;
                        continue;
                }
                i++;
        }
        l->n += added;
        return 0;
}
