/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu-device.h"
#include "shared/json-util.h"
#include "shared/strv.h"
#include "shared/string-table.h"

static const char *const gpu_health_table[_GPU_HEALTH_MAX] = {
        [GPU_HEALTH_HEALTHY] = "healthy",
        [GPU_HEALTH_UNHEALTHY] = "unhealthy",
        [GPU_HEALTH_LOST] = "lost",
};

DEFINE_STRING_TABLE_LOOKUP(gpu_health, GpuHealth);

bool xid_is_application_error(uint64_t xid) {
        return xid == 13 || xid == 31 || xid == 43 || xid == 45 || xid == 68;
}

void gpu_process_done(GpuProcess *p) {
        p->unit = mfree(p->unit);
}

static void gpu_process_array_free(GpuProcess *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                gpu_process_done(&a[i]);
        free(a);
}

void mig_device_done(MigDevice *m) {
        free(m->uuid);
        free(m->name);
        strv_free(m->cap_paths);
        gpu_process_array_free(m->processes, m->n_processes);
        *m = (MigDevice) {};
}

void gpu_device_done(GpuDevice *d) {
        free(d->uuid);
        free(d->name);
        free(d->pci_bus_id);
        for (size_t i = 0; i < d->n_mig; i++)
                mig_device_done(&d->mig[i]);
        free(d->mig);
        gpu_process_array_free(d->processes, d->n_processes);
        free(d->error);
        free(d->health_reason);
        *d = (GpuDevice) {};
}

GpuDevice *gpu_device_array_free(GpuDevice *a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                gpu_device_done(&a[i]);
        free(a);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int gpu_process_array_copy(const GpuProcess *a, size_t n, GpuProcess **ret) {
        GpuProcess *c;

        *ret = NULL;
        if (n == 0)
                return 0;
        c = calloc(n, sizeof(GpuProcess));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                c[i] = (GpuProcess) { .pid = a[i].pid, .used_memory = a[i].used_memory };
                if (strdup_or_null(a[i].unit, &c[i].unit) < 0) {
                        gpu_process_array_free(c, i);
                        return -ENOMEM;
                }
        }
        *ret = c;
        return 0;
}

static int mig_device_copy(const MigDevice *m, MigDevice *ret) {
        MigDevice c = {
                .index = m->index,
                .gpu_instance_id = m->gpu_instance_id,
                .compute_instance_id = m->compute_instance_id,
                .memory_total = m->memory_total,
                .memory_used = m->memory_used,
                .memory_free = m->memory_free,
                .n_processes = m->n_processes,
        };

        if (strdup_or_null(m->uuid, &c.uuid) < 0 || strdup_or_null(m->name, &c.name) < 0 ||
            (m->cap_paths && !(c.cap_paths = strv_copy(m->cap_paths))) ||
            gpu_process_array_copy(m->processes, m->n_processes, &c.processes) < 0) {
                c.n_processes = 0;
                mig_device_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int gpu_device_copy(const GpuDevice *d, GpuDevice *ret) {
        GpuDevice c = *d;

        /* Every pointer is replaced before anything can fail, so gpu_device_done() is safe. */
        c.uuid = c.name = c.pci_bus_id = c.error = c.health_reason = NULL;
        c.mig = NULL;
        c.n_mig = 0;
        c.processes = NULL;
        c.n_processes = 0;

        if (strdup_or_null(d->uuid, &c.uuid) < 0 || strdup_or_null(d->name, &c.name) < 0 ||
            strdup_or_null(d->pci_bus_id, &c.pci_bus_id) < 0 || strdup_or_null(d->error, &c.error) < 0 ||
            strdup_or_null(d->health_reason, &c.health_reason) < 0 ||
            gpu_process_array_copy(d->processes, d->n_processes, &c.processes) < 0)
                goto fail;
        c.n_processes = d->n_processes;
        if (d->n_mig > 0) {
                c.mig = calloc(d->n_mig, sizeof(MigDevice));
                if (!c.mig)
                        goto fail;
                for (size_t i = 0; i < d->n_mig; i++) {
                        if (mig_device_copy(&d->mig[i], &c.mig[i]) < 0)
                                goto fail;
                        c.n_mig++;
                }
        }
        *ret = c;
        return 0;
fail:
        gpu_device_done(&c);
        return -ENOMEM;
}

/* "gpu3/gi1/access 21" or "gpu3/gi1/ci0/access 22": 2 or 3 numbers and the minor. */
static int parse_mig_minor_line(const char *line, unsigned *gpu, unsigned *gi, int *ci, unsigned *cap) {
        int n = 0;

        if (sscanf(line, "gpu%u/gi%u/ci%d/access %u%n", gpu, gi, ci, cap, &n) == 4 && n > 0 &&
            line[n] == '\0' && *ci >= 0)
                return 0;
        n = 0;
        *ci = -1;
        if (sscanf(line, "gpu%u/gi%u/access %u%n", gpu, gi, cap, &n) == 3 && n > 0 && line[n] == '\0')
                return 0;
        return -EINVAL;
}

int gpu_device_set_mig_caps(GpuDevice *d, const char *mig_minors) {
        if (!d->minor_known || !mig_minors)
                return 0;

        for (size_t i = 0; i < d->n_mig; i++) {
                MigDevice *m = &d->mig[i];
                int gi_cap = -1, ci_cap = -1;

                for (const char *p = mig_minors; *p; ) {
                        size_t n = strcspn(p, "\n");
                        _cleanup_free_ char *line = strndup(p, n);
                        unsigned gpu, gi, cap;
                        int ci;

                        if (!line)
                                return -ENOMEM;
                        p += n + (p[n] == '\n');
                        if (parse_mig_minor_line(line, &gpu, &gi, &ci, &cap) < 0 || gpu != d->minor ||
                            gi != m->gpu_instance_id || cap > INT32_MAX)
                                continue;
                        if (ci < 0)
                                gi_cap = (int) cap;
                        else if ((unsigned) ci == m->compute_instance_id)
                                ci_cap = (int) cap;
                }

                m->cap_paths = strv_free(m->cap_paths);
                if (gi_cap < 0 || ci_cap < 0)
                        continue;
                for (int k = 0; k < 2; k++) {
                        char *s;

                        if (asprintf(&s, "/dev/nvidia-caps/nvidia-cap%d", k == 0 ? gi_cap : ci_cap) < 0)
                                return -ENOMEM;
                        if (strv_push(&m->cap_paths, s) < 0) {
                                free(s);
                                return -ENOMEM;
                        }
                }
        }
        return 0;
}

/* Memory figures: null when unknown. */
static int json_add_u64(json_object *o, const char *key, uint64_t v) {
        if (v == GPU_MEMORY_UNKNOWN)
                return json_add_take(o, key, NULL);
        return json_add_uint64(o, key, v);
}

static int processes_to_json(const GpuProcess *a, size_t n, json_object **ret) {
        _cleanup_json_ json_object *arr = json_object_new_array();

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *p = json_object_new_object();

                if (!p || json_add_int(p, "pid", a[i].pid) < 0 ||
                    json_add_u64(p, "used_memory_bytes", a[i].used_memory) < 0 ||
                    json_add_string(p, "unit", a[i].unit) < 0 ||
                    json_object_array_add(arr, p) < 0)
                        return -ENOMEM;
                TAKE_PTR(p);
        }
        *ret = TAKE_PTR(arr);
        return 0;
}

int gpu_device_to_json(const GpuDevice *d, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *mig = NULL;
        json_object *procs = NULL;
        char cc[32];

        o = json_object_new_object();
        mig = json_object_new_array();
        if (!o || !mig)
                return -ENOMEM;
        if (d->cc_major >= 0)
                (void) snprintf(cc, sizeof(cc), "%d.%d", d->cc_major, d->cc_minor);

        if (json_add_int(o, "index", d->index) < 0 ||
            json_add_string(o, "uuid", d->uuid) < 0 ||
            json_add_string(o, "name", d->name) < 0 ||
            json_add_string(o, "pci_bus_id", d->pci_bus_id) < 0 ||
            json_add_string(o, "compute_capability", d->cc_major >= 0 ? cc : NULL) < 0 ||
            (d->minor_known ? json_add_int(o, "minor", d->minor) :
                              json_object_object_add(o, "minor", NULL)) < 0 ||
            json_add_u64(o, "memory_total_bytes", d->memory_total) < 0 ||
            json_add_u64(o, "memory_used_bytes", d->memory_used) < 0 ||
            json_add_u64(o, "memory_free_bytes", d->memory_free) < 0 ||
            json_add_bool(o, "mig_enabled", d->mig_enabled) < 0 ||
            json_add_string(o, "health", gpu_health_to_string(d->health)) < 0 ||
            json_add_string(o, "health_reason", d->health_reason) < 0 ||
            json_add_bool(o, "cordoned", d->cordoned) < 0 ||
            (d->last_xid > 0 ? json_add_int(o, "last_xid", (int64_t) MIN(d->last_xid, (uint64_t) INT64_MAX)) :
                               json_object_object_add(o, "last_xid", NULL)) < 0 ||
            json_add_int(o, "xid_count", d->xid_count) < 0 ||
            json_add_int(o, "driver_resets", d->driver_resets) < 0 ||
            json_add_string(o, "error", d->error) < 0)
                return -ENOMEM;

        for (size_t i = 0; i < d->n_mig; i++) {
                const MigDevice *m = &d->mig[i];
                _cleanup_json_ json_object *j = json_object_new_object();
                json_object *p = NULL;

                if (!j || json_add_int(j, "index", m->index) < 0 ||
                    json_add_string(j, "uuid", m->uuid) < 0 ||
                    json_add_string(j, "name", m->name) < 0 ||
                    json_add_int(j, "gpu_instance_id", m->gpu_instance_id) < 0 ||
                    json_add_int(j, "compute_instance_id", m->compute_instance_id) < 0 ||
                    json_add_u64(j, "memory_total_bytes", m->memory_total) < 0 ||
                    json_add_u64(j, "memory_used_bytes", m->memory_used) < 0 ||
                    json_add_u64(j, "memory_free_bytes", m->memory_free) < 0 ||
                    json_add_strv(j, "cap_paths", m->cap_paths) < 0 ||
                    processes_to_json(m->processes, m->n_processes, &p) < 0 ||
                    json_add_take(j, "processes", p) < 0 ||
                    json_object_array_add(mig, j) < 0)
                        return -ENOMEM;
                TAKE_PTR(j);
        }
        if (json_add_take(o, "mig_devices", TAKE_PTR(mig)) < 0 ||
            processes_to_json(d->processes, d->n_processes, &procs) < 0 ||
            json_add_take(o, "processes", procs) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(o);
        return 0;
}
