/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The slice of the NVIDIA Management Library's C API that pool-managerd uses, declared here
 * from NVML's public documentation rather than copied from NVIDIA's nvml.h (whose licence asks
 * for notices we do not want in every binary). The daemon resolves these functions with dlsym()
 * (src/nvml.c); tests/fake-nvml implements them. Names, numeric values, struct layouts and
 * function types must be exactly NVIDIA's: tests/test-nvml-api.c compares every item of
 * NVML_API_LAYOUT() and NVML_API_FUNCTIONS() with the real nvml.h when one is found at build
 * time (meson option nvml_include_dir, or the usual CUDA locations), and is skipped otherwise.
 *
 * Only the versioned entry points are used (nvmlInit_v2, nvmlDeviceGetCount_v2, ...): NVML keeps
 * the old, unversioned symbols for binary compatibility with other structs behind them.
 */

/* The header can stand in for nvml.h, or be read next to it by the comparison test. */
#ifndef NVML_API_VERSION

typedef enum nvmlReturn_enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_ALREADY_INITIALIZED = 5,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_INSUFFICIENT_POWER = 8,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_TIMEOUT = 10,
        NVML_ERROR_IRQ_ISSUE = 11,
        NVML_ERROR_LIBRARY_NOT_FOUND = 12,
        NVML_ERROR_FUNCTION_NOT_FOUND = 13,
        NVML_ERROR_CORRUPTED_INFOROM = 14,
        NVML_ERROR_GPU_IS_LOST = 15,
        NVML_ERROR_RESET_REQUIRED = 16,
        NVML_ERROR_OPERATING_SYSTEM = 17,
        NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
        NVML_ERROR_IN_USE = 19,
        NVML_ERROR_MEMORY = 20,
        NVML_ERROR_NO_DATA = 21,
        NVML_ERROR_UNKNOWN = 999,
} nvmlReturn_t;

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80

#define NVML_DEVICE_MIG_DISABLE 0x0
#define NVML_DEVICE_MIG_ENABLE 0x1

#define nvmlEventTypeXidCriticalError 0x0000000000000008LL

typedef struct nvmlPciInfo_st {
        char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
        unsigned int domain;
        unsigned int bus;
        unsigned int device;
        unsigned int pciDeviceId;
        unsigned int pciSubSystemId;
        char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlMemory_st {
        unsigned long long total;
        unsigned long long free;
        unsigned long long used;
} nvmlMemory_t;

/* What nvmlDeviceGetComputeRunningProcesses_v3() fills in (NVIDIA's nvmlProcessInfo_v2_t). */
typedef struct nvmlProcessInfo_v2_st {
        unsigned int pid;
        unsigned long long usedGpuMemory;
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t, nvmlProcessInfo_t;

typedef struct nvmlEventData_st {
        nvmlDevice_t device;
        unsigned long long eventType;
        unsigned long long eventData;   /* the XID for nvmlEventTypeXidCriticalError */
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
} nvmlEventData_t;

#endif /* NVML_API_VERSION */

/* usedGpuMemory when the driver cannot tell (NVML_VALUE_NOT_AVAILABLE, as unsigned long long). */
#define NVML_API_VALUE_NOT_AVAILABLE ((unsigned long long) -1)

/*
 * Every function used: X(return type, name, parameter list). Expanded into function pointer
 * members (src/nvml.c), the fake's definitions' checks, and the comparison with nvml.h.
 */
#define NVML_API_FUNCTIONS(X)                                                                           \
        X(nvmlReturn_t, nvmlInit_v2, (void))                                                            \
        X(nvmlReturn_t, nvmlShutdown, (void))                                                           \
        X(const char *, nvmlErrorString, (nvmlReturn_t result))                                         \
        X(nvmlReturn_t, nvmlSystemGetDriverVersion, (char *version, unsigned int length))               \
        X(nvmlReturn_t, nvmlDeviceGetCount_v2, (unsigned int *deviceCount))                             \
        X(nvmlReturn_t, nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t *device))      \
        X(nvmlReturn_t, nvmlDeviceGetUUID, (nvmlDevice_t device, char *uuid, unsigned int length))      \
        X(nvmlReturn_t, nvmlDeviceGetName, (nvmlDevice_t device, char *name, unsigned int length))      \
        X(nvmlReturn_t, nvmlDeviceGetPciInfo_v3, (nvmlDevice_t device, nvmlPciInfo_t *pci))             \
        X(nvmlReturn_t, nvmlDeviceGetCudaComputeCapability, (nvmlDevice_t device, int *major, int *minor)) \
        X(nvmlReturn_t, nvmlDeviceGetMemoryInfo, (nvmlDevice_t device, nvmlMemory_t *memory))           \
        X(nvmlReturn_t, nvmlDeviceGetMinorNumber, (nvmlDevice_t device, unsigned int *minorNumber))     \
        X(nvmlReturn_t, nvmlDeviceGetMigMode, (nvmlDevice_t device, unsigned int *currentMode,          \
                                               unsigned int *pendingMode))                              \
        X(nvmlReturn_t, nvmlDeviceGetMaxMigDeviceCount, (nvmlDevice_t device, unsigned int *count))     \
        X(nvmlReturn_t, nvmlDeviceGetMigDeviceHandleByIndex, (nvmlDevice_t device, unsigned int index,  \
                                                              nvmlDevice_t *migDevice))                 \
        X(nvmlReturn_t, nvmlDeviceGetGpuInstanceId, (nvmlDevice_t device, unsigned int *id))            \
        X(nvmlReturn_t, nvmlDeviceGetComputeInstanceId, (nvmlDevice_t device, unsigned int *id))        \
        X(nvmlReturn_t, nvmlDeviceGetComputeRunningProcesses_v3, (nvmlDevice_t device,                  \
                                                                  unsigned int *infoCount,              \
                                                                  nvmlProcessInfo_t *infos))            \
        X(nvmlReturn_t, nvmlEventSetCreate, (nvmlEventSet_t *set))                                      \
        X(nvmlReturn_t, nvmlDeviceRegisterEvents, (nvmlDevice_t device, unsigned long long eventTypes,  \
                                                   nvmlEventSet_t set))                                 \
        X(nvmlReturn_t, nvmlEventSetWait_v2, (nvmlEventSet_t set, nvmlEventData_t *data,                \
                                              unsigned int timeoutms))                                  \
        X(nvmlReturn_t, nvmlEventSetFree, (nvmlEventSet_t set))

/*
 * What the comparison test checks besides the functions: constants (C), struct sizes (S) and
 * member offsets (O).
 */
#define NVML_API_LAYOUT(C, S, O)                                                                        \
        C(NVML_SUCCESS) C(NVML_ERROR_UNINITIALIZED) C(NVML_ERROR_INVALID_ARGUMENT)                      \
        C(NVML_ERROR_NOT_SUPPORTED) C(NVML_ERROR_NO_PERMISSION) C(NVML_ERROR_ALREADY_INITIALIZED)       \
        C(NVML_ERROR_NOT_FOUND) C(NVML_ERROR_INSUFFICIENT_SIZE) C(NVML_ERROR_INSUFFICIENT_POWER)        \
        C(NVML_ERROR_DRIVER_NOT_LOADED) C(NVML_ERROR_TIMEOUT) C(NVML_ERROR_IRQ_ISSUE)                   \
        C(NVML_ERROR_LIBRARY_NOT_FOUND) C(NVML_ERROR_FUNCTION_NOT_FOUND)                                \
        C(NVML_ERROR_CORRUPTED_INFOROM) C(NVML_ERROR_GPU_IS_LOST) C(NVML_ERROR_RESET_REQUIRED)          \
        C(NVML_ERROR_OPERATING_SYSTEM) C(NVML_ERROR_LIB_RM_VERSION_MISMATCH) C(NVML_ERROR_IN_USE)       \
        C(NVML_ERROR_MEMORY) C(NVML_ERROR_NO_DATA) C(NVML_ERROR_UNKNOWN)                                \
        C(NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE) C(NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE)                  \
        C(NVML_DEVICE_UUID_V2_BUFFER_SIZE) C(NVML_DEVICE_NAME_V2_BUFFER_SIZE)                           \
        C(NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE) C(NVML_DEVICE_MIG_DISABLE) C(NVML_DEVICE_MIG_ENABLE)  \
        C(nvmlEventTypeXidCriticalError)                                                                \
        S(nvmlPciInfo_t) O(nvmlPciInfo_t, busIdLegacy) O(nvmlPciInfo_t, domain) O(nvmlPciInfo_t, bus)   \
        O(nvmlPciInfo_t, device) O(nvmlPciInfo_t, pciDeviceId) O(nvmlPciInfo_t, pciSubSystemId)         \
        O(nvmlPciInfo_t, busId)                                                                         \
        S(nvmlMemory_t) O(nvmlMemory_t, total) O(nvmlMemory_t, free) O(nvmlMemory_t, used)              \
        S(nvmlProcessInfo_t) O(nvmlProcessInfo_t, pid) O(nvmlProcessInfo_t, usedGpuMemory)             \
        O(nvmlProcessInfo_t, gpuInstanceId) O(nvmlProcessInfo_t, computeInstanceId)                     \
        S(nvmlEventData_t) O(nvmlEventData_t, device) O(nvmlEventData_t, eventType)                     \
        O(nvmlEventData_t, eventData) O(nvmlEventData_t, gpuInstanceId)                                 \
        O(nvmlEventData_t, computeInstanceId)
