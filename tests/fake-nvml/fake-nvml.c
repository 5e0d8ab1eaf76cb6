/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * libfake-nvml.so: a test double at the hardware boundary. It exports the NVML entry points
 * that pool-managerd uses (src/nvml-api.h, whose declarations are checked against NVIDIA's
 * nvml.h) and describes GPUs from the JSON file named by $FAKE_NVML_CONFIG. The file is read
 * again whenever its mtime, size or inode changes, checked on every call, so a test changes
 * free memory, loses a GPU or appends an XID while the daemon runs. See tests/fake-nvml/README.md
 * for the format.
 *
 * Not thread-safe (the daemon is single-threaded); real NVML is, which the daemon does not rely
 * on. Handles are stable pointers into static tables, valid across re-reads of the file.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nvml-api.h"

#define FAKE_MAX_GPUS 64
#define FAKE_MAX_MIG 8
#define FAKE_MAX_PROCS 64

#define FAKE_EXPORT __attribute__((visibility("default")))

/* Every exported function has NVIDIA's type: a mismatch with src/nvml-api.h fails the build. */
#define X(ret, name, params) FAKE_EXPORT ret name params;
NVML_API_FUNCTIONS(X)
#undef X

typedef struct FakeProcess {
        unsigned pid;
        unsigned long long used;
} FakeProcess;

typedef struct FakeMig {
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        unsigned gpu_instance_id, compute_instance_id;
        unsigned long long total, used;
        FakeProcess procs[FAKE_MAX_PROCS];
        unsigned n_procs;
} FakeMig;

typedef struct FakeGpu {
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
        unsigned pci_device_id;
        unsigned minor;
        int cc_major, cc_minor;
        unsigned long long total, used;
        bool lost;
        bool mig_capable;
        unsigned mig_mode, mig_pending;
        FakeMig mig[FAKE_MAX_MIG];
        unsigned n_mig;
        FakeProcess procs[FAKE_MAX_PROCS];
        unsigned n_procs;
} FakeGpu;

typedef struct FakeXid {
        unsigned gpu;
        unsigned long long xid;
} FakeXid;

typedef struct FakeState {
        bool loaded;
        struct timespec mtime;
        off_t size;
        ino_t ino;
        nvmlReturn_t init_error;
        char control_node[256];         /* opened read-write by nvmlInit_v2(), as the real one does */
        char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        FakeGpu gpus[FAKE_MAX_GPUS];
        unsigned n_gpus;
        FakeXid *xids;
        size_t n_xids;
        json_object *errors;            /* {"nvmlFunctionName": code}: injected failures */
} FakeState;

/* A handle: a GPU, or one MIG device of it (mig >= 0). */
struct nvmlDevice_st {
        unsigned gpu;
        int mig;
};

struct nvmlEventSet_st {
        bool registered[FAKE_MAX_GPUS];
        size_t cursor;                  /* the next entry of xid_events to deliver */
};

static FakeState state;
static struct timespec bad_mtime;              /* of a file that did not parse: warned about once */
static unsigned init_count;
static struct nvmlDevice_st gpu_handles[FAKE_MAX_GPUS];
static struct nvmlDevice_st mig_handles[FAKE_MAX_GPUS][FAKE_MAX_MIG];

static void copy_string(char *dst, size_t size, json_object *o, const char *key, const char *fallback) {
        json_object *v;
        const char *s = fallback;

        if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                s = json_object_get_string(v);
        snprintf(dst, size, "%s", s);
}

static unsigned long long get_u64(json_object *o, const char *key, unsigned long long fallback) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return fallback;
        return (unsigned long long) json_object_get_uint64(v);
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static unsigned parse_processes(json_object *o, FakeProcess procs[]) {
        json_object *a;
        unsigned n = 0;

        if (!json_object_object_get_ex(o, "processes", &a) || !json_object_is_type(a, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(a) && n < FAKE_MAX_PROCS; i++) {
                json_object *p = json_object_array_get_idx(a, i);

                procs[n].pid = (unsigned) get_u64(p, "pid", 0);
                procs[n].used = get_u64(p, "used_memory", 0);
                n++;
        }
        return n;
}

static void parse_gpu(json_object *o, unsigned index, FakeGpu *g) {
        json_object *v;
        char cc[16];

        *g = (FakeGpu) {};
        {
                char fallback[64];

                snprintf(fallback, sizeof(fallback), "GPU-00000000-0000-0000-0000-%012x", index);
                copy_string(g->uuid, sizeof(g->uuid), o, "uuid", fallback);
                snprintf(fallback, sizeof(fallback), "00000000:%02X:00.0", 0x10 + index);
                copy_string(g->bus_id, sizeof(g->bus_id), o, "pci_bus_id", fallback);
        }
        copy_string(g->name, sizeof(g->name), o, "name", "NVIDIA Fake GPU");
        copy_string(cc, sizeof(cc), o, "compute_capability", "8.0");
        if (sscanf(cc, "%d.%d", &g->cc_major, &g->cc_minor) != 2)
                g->cc_major = 8, g->cc_minor = 0;
        g->pci_device_id = (unsigned) get_u64(o, "pci_device_id", 0x20B010DE);
        g->minor = (unsigned) get_u64(o, "minor", index);
        g->total = get_u64(o, "memory_total", 24ULL << 30);
        g->used = get_u64(o, "memory_used", 0);
        if (g->used > g->total)
                g->used = g->total;
        g->lost = get_bool(o, "lost");
        g->n_procs = parse_processes(o, g->procs);

        g->mig_capable = json_object_object_get_ex(o, "mig_mode", NULL) ||
                         json_object_object_get_ex(o, "mig", NULL);
        g->mig_mode = get_bool(o, "mig_mode") ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        g->mig_pending = g->mig_mode;
        if (g->mig_mode && json_object_object_get_ex(o, "mig", &v) && json_object_is_type(v, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v) && g->n_mig < FAKE_MAX_MIG; i++) {
                        json_object *m = json_object_array_get_idx(v, i);
                        FakeMig *mig = &g->mig[g->n_mig];
                        char fallback[64];

                        snprintf(fallback, sizeof(fallback), "MIG-00000000-0000-0000-%04x-%012zx", index, i);
                        copy_string(mig->uuid, sizeof(mig->uuid), m, "uuid", fallback);
                        copy_string(mig->name, sizeof(mig->name), m, "name", g->name);
                        mig->gpu_instance_id = (unsigned) get_u64(m, "gpu_instance_id", 1 + i);
                        mig->compute_instance_id = (unsigned) get_u64(m, "compute_instance_id", 0);
                        mig->total = get_u64(m, "memory_total", 10ULL << 30);
                        mig->used = get_u64(m, "memory_used", 0);
                        mig->n_procs = parse_processes(m, mig->procs);
                        g->n_mig++;
                }
}

static void fake_forget(void) {
        if (state.loaded) {
                json_object_put(state.errors);
                free(state.xids);
        }
        state = (FakeState) {};
}

/* Re-reads the file when it changed. A file that cannot be parsed keeps the last good state. */
static void fake_reload(void) {
        const char *path = getenv("FAKE_NVML_CONFIG");
        json_object *root, *v;
        struct stat st;

        if (!path || stat(path, &st) < 0) {
                fake_forget();
                return;
        }
        if (state.loaded && st.st_mtim.tv_sec == state.mtime.tv_sec && st.st_mtim.tv_nsec == state.mtime.tv_nsec &&
            st.st_size == state.size && st.st_ino == state.ino)
                return;

        root = json_object_from_file(path);
        if (!root || !json_object_is_type(root, json_type_object)) {
                if (st.st_mtim.tv_sec != bad_mtime.tv_sec || st.st_mtim.tv_nsec != bad_mtime.tv_nsec)
                        fprintf(stderr, "fake-nvml: cannot parse %s, keeping the last state: %s\n", path,
                                json_util_get_last_err() ?: "not an object");
                bad_mtime = st.st_mtim;
                json_object_put(root);
                return;
        }

        fake_forget();
        state = (FakeState) {
                .loaded = true,
                .mtime = st.st_mtim,
                .size = st.st_size,
                .ino = st.st_ino,
        };
        state.init_error = (nvmlReturn_t) get_u64(root, "init_error", NVML_SUCCESS);
        copy_string(state.driver_version, sizeof(state.driver_version), root, "driver_version", "550.54.15");
        copy_string(state.control_node, sizeof(state.control_node), root, "control_node", "");
        if (json_object_object_get_ex(root, "devices", &v) && json_object_is_type(v, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v) && state.n_gpus < FAKE_MAX_GPUS; i++) {
                        parse_gpu(json_object_array_get_idx(v, i), state.n_gpus, &state.gpus[state.n_gpus]);
                        state.n_gpus++;
                }
        if (json_object_object_get_ex(root, "xid_events", &v) && json_object_is_type(v, json_type_array)) {
                size_t n = json_object_array_length(v);

                state.xids = calloc(n ?: 1, sizeof(FakeXid));
                if (state.xids)
                        for (size_t i = 0; i < n; i++) {
                                json_object *e = json_object_array_get_idx(v, i);

                                state.xids[i] = (FakeXid) {
                                        .gpu = (unsigned) get_u64(e, "device", 0),
                                        .xid = get_u64(e, "xid", 999),
                                };
                                state.n_xids++;
                        }
        }
        if (json_object_object_get_ex(root, "errors", &v) && json_object_is_type(v, json_type_object))
                state.errors = json_object_get(v);
        json_object_put(root);
}

/* An injected failure for this function, or NVML_SUCCESS. */
static nvmlReturn_t injected(const char *function) {
        json_object *v;

        if (state.errors && json_object_object_get_ex(state.errors, function, &v))
                return (nvmlReturn_t) json_object_get_int(v);
        return NVML_SUCCESS;
}

#define ENTER()                                                         \
        do {                                                            \
                nvmlReturn_t _r_;                                       \
                fake_reload();                                          \
                if (init_count == 0)                                    \
                        return NVML_ERROR_UNINITIALIZED;                \
                _r_ = injected(__func__);                               \
                if (_r_ != NVML_SUCCESS)                                \
                        return _r_;                                     \
        } while (0)

/* ENTER() and the handle resolved into g (and m, the MIG device or NULL), or return the error. */
#define ENTER_DEVICE(device, g, m)                                      \
        FakeGpu *g;                                                     \
        FakeMig *m;                                                     \
        do {                                                            \
                nvmlReturn_t _k_;                                       \
                ENTER();                                                \
                _k_ = resolve(device, &g, &m);                          \
                if (_k_ != NVML_SUCCESS)                                \
                        return _k_;                                     \
        } while (0)

/* The same for calls that take no MIG device handle. */
#define ENTER_GPU(device, g)                                            \
        FakeGpu *g;                                                     \
        do {                                                            \
                nvmlReturn_t _k_;                                       \
                ENTER();                                                \
                _k_ = resolve(device, &g, NULL);                        \
                if (_k_ != NVML_SUCCESS)                                \
                        return _k_;                                     \
        } while (0)

/* Resolves a handle to its GPU (and MIG device): INVALID_ARGUMENT for a stale one, GPU_IS_LOST. */
static nvmlReturn_t resolve(nvmlDevice_t device, FakeGpu **ret_gpu, FakeMig **ret_mig) {
        FakeGpu *g;

        if (!device || device->gpu >= state.n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        g = &state.gpus[device->gpu];
        if (g->lost)
                return NVML_ERROR_GPU_IS_LOST;
        if (device->mig >= 0 && (unsigned) device->mig >= g->n_mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret_gpu = g;
        if (ret_mig)
                *ret_mig = device->mig >= 0 ? &g->mig[device->mig] : NULL;
        else if (device->mig >= 0)
                return NVML_ERROR_NOT_SUPPORTED;
        return NVML_SUCCESS;
}

static nvmlReturn_t copy_out(char *dst, unsigned length, const char *s) {
        if (!dst)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (strlen(s) >= length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(dst, s, strlen(s) + 1);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
        nvmlReturn_t r;

        fake_reload();
        if (!state.loaded)
                return NVML_ERROR_DRIVER_NOT_LOADED;
        if (state.init_error != NVML_SUCCESS)
                return state.init_error;
        if (state.control_node[0] != '\0') {
                /* libnvidia-ml opens /dev/nvidiactl O_RDWR first: a device cgroup that denies it
                 * (EPERM) makes the real one fail with Insufficient Permissions. ENXIO is an
                 * allowed node without a driver behind it, as in a test's mknod'ed /dev. */
                int fd = open(state.control_node, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        close(fd);
                else if (errno == EPERM || errno == EACCES)
                        return NVML_ERROR_NO_PERMISSION;
                else if (errno != ENXIO)
                        return NVML_ERROR_DRIVER_NOT_LOADED;
        }
        r = injected(__func__);
        if (r != NVML_SUCCESS)
                return r;
        init_count++;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        /* The last user gone: nothing may stay referenced from this library's data, which
         * dlclose() unmaps (and leak checkers would report). */
        if (--init_count == 0)
                fake_forget();
        return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
        switch (result) {
        case NVML_SUCCESS:                      return "Success";
        case NVML_ERROR_UNINITIALIZED:          return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT:       return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED:          return "Not Supported";
        case NVML_ERROR_NO_PERMISSION:          return "Insufficient Permissions";
        case NVML_ERROR_NOT_FOUND:              return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE:      return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED:      return "Driver Not Loaded";
        case NVML_ERROR_TIMEOUT:                return "Timeout";
        case NVML_ERROR_GPU_IS_LOST:            return "GPU is lost";
        case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "Driver/library version mismatch";
        case NVML_ERROR_NO_DATA:                return "No data";
        default:                                return "Unknown Error";
        }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
        ENTER();
        return copy_out(version, length, state.driver_version);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
        ENTER();
        if (!deviceCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        *deviceCount = state.n_gpus;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
        ENTER();
        if (!device || index >= state.n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        gpu_handles[index] = (struct nvmlDevice_st) { .gpu = index, .mig = -1 };
        *device = &gpu_handles[index];
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
        ENTER_DEVICE(device, g, m);
        return copy_out(uuid, length, m ? m->uuid : g->uuid);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
        ENTER_DEVICE(device, g, m);
        return copy_out(name, length, m ? m->name : g->name);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
        unsigned domain = 0, bus = 0, dev = 0;
        ENTER_GPU(device, g);
        if (!pci)
                return NVML_ERROR_INVALID_ARGUMENT;
        (void) sscanf(g->bus_id, "%x:%x:%x.", &domain, &bus, &dev);
        *pci = (nvmlPciInfo_t) {
                .domain = domain,
                .bus = bus,
                .device = dev,
                .pciDeviceId = g->pci_device_id,
                .pciSubSystemId = 0x145F10DE,
        };
        snprintf(pci->busId, sizeof(pci->busId), "%s", g->bus_id);
        snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.0", domain & 0xFFFF, bus & 0xFF,
                 dev & 0xFF);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
        ENTER_DEVICE(device, g, m);
        if (!major || !minor)
                return NVML_ERROR_INVALID_ARGUMENT;
        *major = g->cc_major;
        *minor = g->cc_minor;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
        unsigned long long total, used;
        ENTER_DEVICE(device, g, m);
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        total = m ? m->total : g->total;
        used = m ? m->used : g->used;
        *memory = (nvmlMemory_t) { .total = total, .used = used, .free = total - used };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber) {
        ENTER_GPU(device, g);
        if (!minorNumber)
                return NVML_ERROR_INVALID_ARGUMENT;
        *minorNumber = g->minor;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode) {
        ENTER_GPU(device, g);
        if (!currentMode || !pendingMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *currentMode = g->mig_mode;
        *pendingMode = g->mig_pending;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
        ENTER_GPU(device, g);
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *count = 7;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice) {
        ENTER_GPU(device, g);
        if (!migDevice)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        if (index >= g->n_mig)
                return NVML_ERROR_NOT_FOUND;
        mig_handles[device->gpu][index] = (struct nvmlDevice_st) { .gpu = device->gpu, .mig = (int) index };
        *migDevice = &mig_handles[device->gpu][index];
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
        ENTER_DEVICE(device, g, m);
        if (!id || !m)
                return NVML_ERROR_INVALID_ARGUMENT;
        *id = m->gpu_instance_id;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
        ENTER_DEVICE(device, g, m);
        if (!id || !m)
                return NVML_ERROR_INVALID_ARGUMENT;
        *id = m->compute_instance_id;
        return NVML_SUCCESS;
}

static void add_processes(nvmlProcessInfo_t *infos, unsigned *n, unsigned cap, const FakeProcess *procs,
                          unsigned n_procs, unsigned gi, unsigned ci) {
        for (unsigned i = 0; i < n_procs; i++) {
                if (infos && *n < cap)
                        infos[*n] = (nvmlProcessInfo_t) {
                                .pid = procs[i].pid,
                                .usedGpuMemory = procs[i].used,
                                .gpuInstanceId = gi,
                                .computeInstanceId = ci,
                        };
                (*n)++;
        }
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                     nvmlProcessInfo_t *infos) {
        unsigned n = 0, cap;
        ENTER_DEVICE(device, g, m);
        if (!infoCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        cap = *infoCount;
        if (m)
                add_processes(infos, &n, cap, m->procs, m->n_procs, m->gpu_instance_id, m->compute_instance_id);
        else {
                /* A MIG-enabled GPU's own handle gives the aggregate, as for a privileged caller. */
                add_processes(infos, &n, cap, g->procs, g->n_procs, 0xFFFFFFFF, 0xFFFFFFFF);
                for (unsigned i = 0; i < g->n_mig; i++)
                        add_processes(infos, &n, cap, g->mig[i].procs, g->mig[i].n_procs,
                                      g->mig[i].gpu_instance_id, g->mig[i].compute_instance_id);
        }
        *infoCount = n;
        if (n > cap)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        if (n > 0 && !infos)
                return NVML_ERROR_INVALID_ARGUMENT;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
        ENTER();
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        *set = calloc(1, sizeof(struct nvmlEventSet_st));
        if (!*set)
                return NVML_ERROR_MEMORY;
        /* Like the driver: only events after the set exists are delivered. */
        (*set)->cursor = state.n_xids;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
        ENTER_GPU(device, g);
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (eventTypes & ~(unsigned long long) nvmlEventTypeXidCriticalError)
                return NVML_ERROR_NOT_SUPPORTED;
        set->registered[device->gpu] = true;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
        ENTER();
        if (!set || !data)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* The list may have been replaced by a shorter one: start over from its end. */
        if (set->cursor > state.n_xids)
                set->cursor = state.n_xids;
        while (set->cursor < state.n_xids) {
                const FakeXid *x = &state.xids[set->cursor++];

                if (x->gpu >= state.n_gpus || !set->registered[x->gpu])
                        continue;
                gpu_handles[x->gpu] = (struct nvmlDevice_st) { .gpu = x->gpu, .mig = -1 };
                *data = (nvmlEventData_t) {
                        .device = &gpu_handles[x->gpu],
                        .eventType = nvmlEventTypeXidCriticalError,
                        .eventData = x->xid,
                        .gpuInstanceId = 0xFFFFFFFF,
                        .computeInstanceId = 0xFFFFFFFF,
                };
                return NVML_SUCCESS;
        }
        if (timeoutms > 0)
                (void) usleep((useconds_t) (timeoutms > 1000 ? 1000 : timeoutms) * 1000);
        return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        free(set);
        return NVML_SUCCESS;
}
