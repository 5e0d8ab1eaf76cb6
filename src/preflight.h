/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * GPU preflight (OC-POOL-3012): is CUDA available on this node? Yes when nvcc or nvidia-smi is
 * on PATH, or when NVML (libnvidia-ml.so.1, opened with dlopen() at run time so the daemon
 * runs on machines without a driver) reports at least one GPU. With GpuOnly=yes a preload
 * without CUDA fails fast; there is never a CPU fallback.
 */

#include <stdbool.h>

typedef struct CudaInfo {
        char *nvcc;                     /* full path, or NULL */
        char *nvidia_smi;               /* full path, or NULL */
        int nvml_gpus;                  /* GPUs NVML reports; -1 when NVML is unusable */
        char *nvml_error;               /* why NVML is unusable, or NULL */
        char *search_path;              /* the PATH that was searched */
} CudaInfo;

/* Probes with the given PATH (NULL: $PATH) and NVML library name (NULL: libnvidia-ml.so.1). */
int cuda_info_probe(const char *path, const char *nvml_library, CudaInfo *ret);
void cuda_info_done(CudaInfo *info);
bool cuda_info_available(const CudaInfo *info);
/* One line naming what was found, e.g. "nvidia-smi=/usr/bin/nvidia-smi, NVML: 2 GPUs". */
int cuda_info_describe(const CudaInfo *info, char **ret);
/* The GPU-only refusal: says GPU-only enforcement and names what was looked for. */
int cuda_info_gpu_only_error(const CudaInfo *info, char **ret);

/* Searches PATH-style list for an executable; returns its full path. -ENOENT when absent. */
int find_executable_in_path(const char *name, const char *path, char **ret);
