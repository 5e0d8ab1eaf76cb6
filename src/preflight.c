/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"
#include "shared/fileio.h"
#include "shared/macro.h"

/* The slice of NVML we use; symbols are resolved at run time. */
typedef int (*nvml_init_t)(void);
typedef int (*nvml_count_t)(unsigned *count);
typedef int (*nvml_shutdown_t)(void);
typedef const char *(*nvml_error_string_t)(int r);

int find_executable_in_path(const char *name, const char *path, char **ret) {
        _cleanup_free_ char *copy = NULL;
        char *state = NULL;

        if (isempty(path))
                return -ENOENT;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;

        for (char *dir = strtok_r(copy, ":", &state); dir; dir = strtok_r(NULL, ":", &state)) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (dir[0] != '/')      /* relative PATH entries depend on the cwd: ignore */
                        continue;
                p = path_join(dir, name);
                if (!p)
                        return -ENOMEM;
                if (stat(p, &st) >= 0 && S_ISREG(st.st_mode) && access(p, X_OK) >= 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}

static void probe_nvml(const char *library, CudaInfo *info) {
        void *dl;
        nvml_init_t init;
        nvml_count_t count;
        nvml_shutdown_t shutdown;
        nvml_error_string_t error_string;
        unsigned n = 0;
        int r;

        info->nvml_gpus = -1;

        dl = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                info->nvml_error = strdup(dlerror() ?: "dlopen failed");
                return;
        }

        init = (nvml_init_t) dlsym(dl, "nvmlInit_v2");
        count = (nvml_count_t) dlsym(dl, "nvmlDeviceGetCount_v2");
        shutdown = (nvml_shutdown_t) dlsym(dl, "nvmlShutdown");
        error_string = (nvml_error_string_t) dlsym(dl, "nvmlErrorString");
        if (!init || !count || !shutdown) {
                info->nvml_error = strdup("NVML library lacks nvmlInit_v2/nvmlDeviceGetCount_v2");
                goto finish;
        }

        r = init();
        if (r != 0) {
                if (asprintf(&info->nvml_error, "nvmlInit_v2() failed: %s",
                             error_string ? error_string(r) : "unknown error") < 0)
                        info->nvml_error = NULL;
                goto finish;
        }
        r = count(&n);
        if (r != 0) {
                if (asprintf(&info->nvml_error, "nvmlDeviceGetCount_v2() failed: %s",
                             error_string ? error_string(r) : "unknown error") < 0)
                        info->nvml_error = NULL;
        } else
                info->nvml_gpus = (int) n;
        (void) shutdown();

finish:
        (void) dlclose(dl);
}

int cuda_info_probe(const char *path, const char *nvml_library, CudaInfo *ret) {
        CudaInfo info = { .nvml_gpus = -1 };
        int r;

        if (!path)
                path = getenv("PATH");
        info.search_path = strdup(strempty(path));
        if (!info.search_path)
                return -ENOMEM;

        r = find_executable_in_path("nvcc", path, &info.nvcc);
        if (r < 0 && r != -ENOENT)
                goto fail;
        r = find_executable_in_path("nvidia-smi", path, &info.nvidia_smi);
        if (r < 0 && r != -ENOENT)
                goto fail;

        probe_nvml(nvml_library ?: "libnvidia-ml.so.1", &info);

        *ret = info;
        return 0;
fail:
        cuda_info_done(&info);
        return r;
}

void cuda_info_done(CudaInfo *info) {
        free(info->nvcc);
        free(info->nvidia_smi);
        free(info->nvml_error);
        free(info->search_path);
        *info = (CudaInfo) { .nvml_gpus = -1 };
}

bool cuda_info_available(const CudaInfo *info) {
        return info->nvcc || info->nvidia_smi || info->nvml_gpus > 0;
}

int cuda_info_describe(const CudaInfo *info, char **ret) {
        _cleanup_free_ char *nvml = NULL;
        char *s;

        if (info->nvml_gpus >= 0) {
                if (asprintf(&nvml, "%d GPU%s", info->nvml_gpus, info->nvml_gpus == 1 ? "" : "s") < 0)
                        return -ENOMEM;
        } else if (asprintf(&nvml, "unavailable (%s)", strna(info->nvml_error)) < 0)
                return -ENOMEM;

        if (asprintf(&s, "nvcc=%s, nvidia-smi=%s, NVML: %s",
                     info->nvcc ?: "not found", info->nvidia_smi ?: "not found", nvml) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int cuda_info_gpu_only_error(const CudaInfo *info, char **ret) {
        char *s;

        if (asprintf(&s,
                     "GPU-only enforcement: CUDA is not available on this node "
                     "(looked for nvcc and nvidia-smi on PATH=%s: not found; NVML: %s); "
                     "refusing to start the engine, there is no CPU fallback (set GpuOnly=no to allow CPU engines)",
                     strempty(info->search_path),
                     info->nvml_gpus == 0 ? "no GPUs reported" : strna(info->nvml_error)) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
