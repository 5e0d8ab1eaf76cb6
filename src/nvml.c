/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "nvml-api.h"
#include "nvml.h"
#include "shared/cgroup-util.h"

struct Nvml {
        void *dl;
        bool initialized;
        char *driver_version;
        nvmlEventSet_t events;
        char *events_error;
        nvmlDevice_t registered[NVML_MAX_DEVICES];      /* handles registered for XID events */
        nvmlDevice_t handles[NVML_MAX_DEVICES];         /* of the last read, by index */
        unsigned n_handles;

#define X(ret, name, params) ret (*name) params;
        NVML_API_FUNCTIONS(X)
#undef X
};

static const char *nvml_strerror(Nvml *n, nvmlReturn_t r) {
        const char *s = n->nvmlErrorString ? n->nvmlErrorString(r) : NULL;

        return s ?: "unknown error";
}

_printf_(2, 3)
static int set_error(char **ret_error, const char *format, ...) {
        va_list ap;
        int k;

        if (!ret_error)
                return 0;
        free(*ret_error);
        va_start(ap, format);
        k = vasprintf(ret_error, format, ap);
        va_end(ap);
        if (k < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return 0;
}

Nvml *nvml_close(Nvml *n) {
        if (!n)
                return NULL;
        if (n->events && n->nvmlEventSetFree)
                (void) n->nvmlEventSetFree(n->events);
        if (n->initialized)
                (void) n->nvmlShutdown();
        if (n->dl)
                (void) dlclose(n->dl);
        free(n->driver_version);
        free(n->events_error);
        return mfree(n);
}

int nvml_open(const char *library, Nvml **ret, char **ret_error) {
        _cleanup_(nvml_closep) Nvml *n = NULL;
        char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        nvmlReturn_t r;

        n = calloc(1, sizeof(Nvml));
        if (!n)
                return -ENOMEM;

        n->dl = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (!n->dl)
                return set_error(ret_error, "%s", dlerror() ?: "dlopen() failed") ?: -ENOENT;

#define X(ret_type, name, params) n->name = (ret_type (*) params) dlsym(n->dl, #name);
        NVML_API_FUNCTIONS(X)
#undef X
        /* The minimum for an inventory; the rest is optional (older drivers lack MIG calls). */
        if (!n->nvmlInit_v2 || !n->nvmlShutdown || !n->nvmlDeviceGetCount_v2 ||
            !n->nvmlDeviceGetHandleByIndex_v2 || !n->nvmlDeviceGetUUID || !n->nvmlDeviceGetMemoryInfo)
                return set_error(ret_error, "%s lacks nvmlInit_v2, nvmlDeviceGetCount_v2, "
                                 "nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetUUID or nvmlDeviceGetMemoryInfo",
                                 library) ?: -EOPNOTSUPP;

        r = n->nvmlInit_v2();
        if (r != NVML_SUCCESS)
                return set_error(ret_error, "nvmlInit_v2() failed: %s", nvml_strerror(n, r)) ?: -EIO;
        n->initialized = true;

        if (n->nvmlSystemGetDriverVersion &&
            n->nvmlSystemGetDriverVersion(version, sizeof(version)) == NVML_SUCCESS &&
            !(n->driver_version = strndup(version, sizeof(version))))
                return -ENOMEM;

        if (!n->nvmlEventSetCreate || !n->nvmlDeviceRegisterEvents || !n->nvmlEventSetWait_v2 ||
            !n->nvmlEventSetFree) {
                if (set_error(&n->events_error, "%s has no event API", library) < 0)
                        return -ENOMEM;
        } else {
                r = n->nvmlEventSetCreate(&n->events);
                if (r != NVML_SUCCESS) {
                        n->events = NULL;
                        if (set_error(&n->events_error, "nvmlEventSetCreate() failed: %s",
                                      nvml_strerror(n, r)) < 0)
                                return -ENOMEM;
                }
        }

        *ret = TAKE_PTR(n);
        return 0;
}

const char *nvml_driver_version(Nvml *n) {
        return n->driver_version;
}

const char *nvml_events_error(Nvml *n) {
        return n->events_error;
}

/* Records the first query that failed; GPU_IS_LOST marks the GPU lost. Returns r. */
static nvmlReturn_t device_failed(Nvml *n, GpuDevice *d, const char *call, nvmlReturn_t r) {
        if (r == NVML_SUCCESS || r == NVML_ERROR_NOT_SUPPORTED)
                return r;
        if (r == NVML_ERROR_GPU_IS_LOST)
                d->health = GPU_HEALTH_LOST;
        if (!d->error)
                (void) set_error(&d->error, "%s() failed: %s", call, nvml_strerror(n, r));
        return r;
}

#define QUERY(n, d, call, ...) device_failed((n), (d), #call, (n)->call ? (n)->call(__VA_ARGS__) : NVML_ERROR_NOT_SUPPORTED)

static int read_processes(Nvml *n, GpuDevice *d, nvmlDevice_t h, GpuProcess **ret, size_t *ret_n) {
        _cleanup_free_ nvmlProcessInfo_t *infos = NULL;
        unsigned count = 32;
        GpuProcess *p;
        nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;

        *ret = NULL;
        *ret_n = 0;
        if (!n->nvmlDeviceGetComputeRunningProcesses_v3)
                return 0;
        /* The list can grow between the calls: try twice, then give up for this round. */
        for (int attempt = 0; attempt < 3 && r == NVML_ERROR_INSUFFICIENT_SIZE; attempt++) {
                unsigned cap = MIN(count + 8, (unsigned) NVML_MAX_PROCESSES);

                free(infos);
                infos = calloc(cap, sizeof(nvmlProcessInfo_t));
                if (!infos)
                        return -ENOMEM;
                count = cap;
                r = n->nvmlDeviceGetComputeRunningProcesses_v3(h, &count, infos);
                if (r == NVML_ERROR_INSUFFICIENT_SIZE && cap == NVML_MAX_PROCESSES) {
                        count = cap;    /* bounded: the first NVML_MAX_PROCESSES are enough */
                        r = NVML_SUCCESS;
                }
        }
        if (device_failed(n, d, "nvmlDeviceGetComputeRunningProcesses_v3", r) != NVML_SUCCESS)
                return 0;
        if (count == 0)
                return 0;

        p = calloc(count, sizeof(GpuProcess));
        if (!p)
                return -ENOMEM;
        for (unsigned i = 0; i < count; i++) {
                p[i] = (GpuProcess) {
                        .pid = infos[i].pid,
                        .used_memory = infos[i].usedGpuMemory == NVML_API_VALUE_NOT_AVAILABLE ?
                                       GPU_MEMORY_UNKNOWN : infos[i].usedGpuMemory,
                };
                /* Which engine it is: its unit (processes of other PID namespaces have none here). */
                if (infos[i].pid > 0 && cg_pid_get_unit((pid_t) infos[i].pid, &p[i].unit) == -ENOMEM) {
                        for (unsigned k = 0; k < i; k++)
                                gpu_process_done(&p[k]);
                        free(p);
                        return -ENOMEM;
                }
        }
        *ret = p;
        *ret_n = count;
        return 0;
}

static int read_mig(Nvml *n, GpuDevice *d, nvmlDevice_t h) {
        unsigned current = 0, pending = 0, max = 0;
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        int k;

        if (QUERY(n, d, nvmlDeviceGetMigMode, h, &current, &pending) != NVML_SUCCESS ||
            current != NVML_DEVICE_MIG_ENABLE)
                return 0;
        d->mig_enabled = true;
        if (QUERY(n, d, nvmlDeviceGetMaxMigDeviceCount, h, &max) != NVML_SUCCESS)
                return 0;
        max = MIN(max, (unsigned) NVML_MAX_MIG);
        d->mig = calloc(max ?: 1, sizeof(MigDevice));
        if (!d->mig)
                return -ENOMEM;

        for (unsigned i = 0; i < max; i++) {
                MigDevice *m = &d->mig[d->n_mig];
                nvmlDevice_t mh;
                nvmlMemory_t mem;
                nvmlReturn_t r;

                r = n->nvmlDeviceGetMigDeviceHandleByIndex ? n->nvmlDeviceGetMigDeviceHandleByIndex(h, i, &mh)
                                                           : NVML_ERROR_NOT_SUPPORTED;
                if (r == NVML_ERROR_NOT_FOUND)  /* MIG slots need not be filled */
                        continue;
                if (device_failed(n, d, "nvmlDeviceGetMigDeviceHandleByIndex", r) != NVML_SUCCESS)
                        break;
                *m = (MigDevice) {
                        .index = i,
                        .memory_total = GPU_MEMORY_UNKNOWN,
                        .memory_used = GPU_MEMORY_UNKNOWN,
                        .memory_free = GPU_MEMORY_UNKNOWN,
                };
                d->n_mig++;
                if (QUERY(n, d, nvmlDeviceGetUUID, mh, buf, sizeof(buf)) == NVML_SUCCESS &&
                    !(m->uuid = strndup(buf, sizeof(buf))))
                        return -ENOMEM;
                if (QUERY(n, d, nvmlDeviceGetName, mh, buf, sizeof(buf)) == NVML_SUCCESS &&
                    !(m->name = strndup(buf, sizeof(buf))))
                        return -ENOMEM;
                (void) QUERY(n, d, nvmlDeviceGetGpuInstanceId, mh, &m->gpu_instance_id);
                (void) QUERY(n, d, nvmlDeviceGetComputeInstanceId, mh, &m->compute_instance_id);
                if (QUERY(n, d, nvmlDeviceGetMemoryInfo, mh, &mem) == NVML_SUCCESS) {
                        m->memory_total = mem.total;
                        m->memory_used = mem.used;
                        m->memory_free = mem.free;
                }
                k = read_processes(n, d, mh, &m->processes, &m->n_processes);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int read_device(Nvml *n, unsigned index, GpuDevice *d) {
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        nvmlPciInfo_t pci;
        nvmlMemory_t mem;
        nvmlDevice_t h;
        int k;

        *d = (GpuDevice) {
                .index = index,
                .cc_major = -1,
                .cc_minor = -1,
                .memory_total = GPU_MEMORY_UNKNOWN,
                .memory_used = GPU_MEMORY_UNKNOWN,
                .memory_free = GPU_MEMORY_UNKNOWN,
        };

        if (QUERY(n, d, nvmlDeviceGetHandleByIndex_v2, index, &h) != NVML_SUCCESS)
                return 0;
        n->handles[index] = h;

        /* A lost GPU fails every query: the first failure says enough. */
        if (QUERY(n, d, nvmlDeviceGetUUID, h, buf, sizeof(buf)) == NVML_SUCCESS &&
            !(d->uuid = strndup(buf, sizeof(buf))))
                return -ENOMEM;
        if (d->health == GPU_HEALTH_LOST)
                return 0;
        if (QUERY(n, d, nvmlDeviceGetName, h, buf, sizeof(buf)) == NVML_SUCCESS &&
            !(d->name = strndup(buf, sizeof(buf))))
                return -ENOMEM;
        if (QUERY(n, d, nvmlDeviceGetPciInfo_v3, h, &pci) == NVML_SUCCESS &&
            !(d->pci_bus_id = strndup(pci.busId, sizeof(pci.busId))))
                return -ENOMEM;
        if (QUERY(n, d, nvmlDeviceGetCudaComputeCapability, h, &d->cc_major, &d->cc_minor) != NVML_SUCCESS)
                d->cc_major = d->cc_minor = -1;
        d->minor_known = QUERY(n, d, nvmlDeviceGetMinorNumber, h, &d->minor) == NVML_SUCCESS;
        if (QUERY(n, d, nvmlDeviceGetMemoryInfo, h, &mem) == NVML_SUCCESS) {
                d->memory_total = mem.total;
                d->memory_used = mem.used;
                d->memory_free = mem.free;
        }
        k = read_mig(n, d, h);
        if (k < 0)
                return k;
        k = read_processes(n, d, h, &d->processes, &d->n_processes);
        if (k < 0)
                return k;

        /* XID events of a GPU seen for the first time (a handle is stable while NVML is open). */
        if (n->events && n->registered[index] != h) {
                nvmlReturn_t r = n->nvmlDeviceRegisterEvents(h, nvmlEventTypeXidCriticalError, n->events);

                if (r == NVML_SUCCESS)
                        n->registered[index] = h;
                else if (r != NVML_ERROR_NOT_SUPPORTED)
                        (void) device_failed(n, d, "nvmlDeviceRegisterEvents", r);
        }
        return 0;
}

int nvml_read_devices(Nvml *n, GpuDevice **ret, size_t *ret_n, char **ret_error) {
        GpuDevice *devices;
        unsigned count = 0;
        nvmlReturn_t r;
        int k;

        r = n->nvmlDeviceGetCount_v2(&count);
        if (r != NVML_SUCCESS)
                return set_error(ret_error, "nvmlDeviceGetCount_v2() failed: %s", nvml_strerror(n, r)) ?: -EIO;
        count = MIN(count, (unsigned) NVML_MAX_DEVICES);

        devices = calloc(count ?: 1, sizeof(GpuDevice));
        if (!devices)
                return -ENOMEM;
        n->n_handles = count;
        for (unsigned i = 0; i < count; i++) {
                k = read_device(n, i, &devices[i]);
                if (k < 0) {
                        gpu_device_array_free(devices, i + 1);
                        return k;
                }
        }
        *ret = devices;
        *ret_n = count;
        return 0;
}

int nvml_poll_event(Nvml *n, unsigned *ret_index, uint64_t *ret_xid, char **ret_error) {
        nvmlEventData_t data = {};
        nvmlReturn_t r;

        if (!n->events)
                return 0;
        r = n->nvmlEventSetWait_v2(n->events, &data, 0);
        if (r == NVML_ERROR_TIMEOUT)
                return 0;
        if (r != NVML_SUCCESS) {
                int k = set_error(ret_error, "nvmlEventSetWait_v2() failed: %s", nvml_strerror(n, r));

                return k < 0 ? k : r == NVML_ERROR_GPU_IS_LOST ? -ENODEV : -EIO;
        }
        if (!(data.eventType & nvmlEventTypeXidCriticalError))
                return 0;
        for (unsigned i = 0; i < n->n_handles; i++)
                if (n->handles[i] == data.device) {
                        *ret_index = i;
                        *ret_xid = data.eventData;
                        return 1;
                }
        return 0;       /* a device not (or no longer) listed */
}
