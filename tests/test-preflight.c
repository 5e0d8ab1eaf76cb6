/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * GPU preflight (OC-POOL-3012): what counts as CUDA, and the GPU-only refusal message. NVML is
 * exercised through its real dlopen() path: absent here, and on a GPU machine
 * POOL_MANAGERD_EXPECT_GPUS=N makes the last case require that NVML reports at least N GPUs.
 */

#include <stdlib.h>
#include <sys/stat.h>

#include "preflight.h"
#include "shared/macro.h"
#include "shared/fileio.h"
#include "test-util.h"

static char *make_dir_with(const char *tool) {
        char *dir = strdup("/tmp/test-preflight.XXXXXX");

        ASSERT_NOT_NULL(mkdtemp(dir));
        if (tool) {
                _cleanup_free_ char *p = path_join(dir, tool);
                ASSERT_OK(write_file_atomic(p, "#!/bin/sh\nexit 0\n", 17, 0755));
        }
        return dir;
}

static void remove_dir(char *dir) {
        _cleanup_free_ char *cmd = NULL;

        ASSERT_TRUE(asprintf(&cmd, "rm -rf '%s'", dir) >= 0);
        ASSERT_EQ(system(cmd), 0);
        free(dir);
}

TEST(nvcc_on_path_means_cuda) {
        char *dir = make_dir_with("nvcc");
        CudaInfo info;

        ASSERT_OK(cuda_info_probe(dir, "libnvidia-ml-absent.so.1", &info));
        ASSERT_NOT_NULL(info.nvcc);
        ASSERT_CONTAINS(info.nvcc, "/nvcc");
        ASSERT_NULL(info.nvidia_smi);
        ASSERT_TRUE(cuda_info_available(&info));
        cuda_info_done(&info);
        remove_dir(dir);
}

TEST(nvidia_smi_on_path_means_cuda) {
        char *dir = make_dir_with("nvidia-smi");
        CudaInfo info;

        ASSERT_OK(cuda_info_probe(dir, "libnvidia-ml-absent.so.1", &info));
        ASSERT_NULL(info.nvcc);
        ASSERT_NOT_NULL(info.nvidia_smi);
        ASSERT_TRUE(cuda_info_available(&info));
        cuda_info_done(&info);
        remove_dir(dir);
}

TEST(neither_tool_nor_nvml_means_no_cuda) {
        char *dir = make_dir_with(NULL);
        _cleanup_free_ char *error = NULL, *desc = NULL;
        CudaInfo info;

        ASSERT_OK(cuda_info_probe(dir, "libnvidia-ml-absent.so.1", &info));
        ASSERT_FALSE(cuda_info_available(&info));
        ASSERT_EQ(info.nvml_gpus, -1);
        ASSERT_CONTAINS(info.nvml_error, "libnvidia-ml-absent.so.1");

        ASSERT_OK(cuda_info_gpu_only_error(&info, &error));
        ASSERT_CONTAINS(error, "GPU-only enforcement");
        ASSERT_CONTAINS(error, "nvcc");
        ASSERT_CONTAINS(error, "nvidia-smi");
        ASSERT_CONTAINS(error, dir);
        ASSERT_CONTAINS(error, "no CPU fallback");

        ASSERT_OK(cuda_info_describe(&info, &desc));
        ASSERT_CONTAINS(desc, "nvcc=not found, nvidia-smi=not found, NVML: unavailable");
        cuda_info_done(&info);
        remove_dir(dir);
}

TEST(non_executable_or_relative_entries_do_not_count) {
        char *dir = make_dir_with("nvcc");
        _cleanup_free_ char *p = path_join(dir, "nvcc"), *found = NULL;

        ASSERT_OK(chmod(p, 0644));
        ASSERT_ERROR(find_executable_in_path("nvcc", dir, &found), ENOENT);
        ASSERT_OK(chmod(p, 0755));
        /* Relative PATH entries depend on the working directory: ignored. */
        ASSERT_OK(chdir("/tmp"));
        ASSERT_ERROR(find_executable_in_path("nvcc", strrchr(dir, '/') + 1, &found), ENOENT);
        ASSERT_ERROR(find_executable_in_path("nvcc", "", &found), ENOENT);
        {
                _cleanup_free_ char *multi = NULL;
                ASSERT_TRUE(asprintf(&multi, "/nonexistent::%s", dir) >= 0);
                ASSERT_OK(find_executable_in_path("nvcc", multi, &found));
                ASSERT_STREQ(found, p);
        }
        remove_dir(dir);
}

TEST(real_nvml) {
        const char *expect = getenv("POOL_MANAGERD_EXPECT_GPUS");
        _cleanup_free_ char *desc = NULL;
        CudaInfo info;

        /* Empty PATH: only NVML can say yes. */
        ASSERT_OK(cuda_info_probe("", NULL, &info));
        ASSERT_OK(cuda_info_describe(&info, &desc));
        fprintf(stderr, "NVML probe: %s\n", desc);
        if (expect) {
                ASSERT_TRUE(info.nvml_gpus >= atoi(expect));
                ASSERT_TRUE(cuda_info_available(&info));
        } else
                /* Without a driver the library is absent or reports no GPU: never a false yes. */
                ASSERT_TRUE(info.nvml_gpus <= 0 || cuda_info_available(&info));
        cuda_info_done(&info);
}

DEFINE_TEST_MAIN
