/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * src/nvml.c against the fake NVML (build/tests/libfake-nvml.so): loading, the device read with
 * MIG and processes (more than fit the first buffer), injected failures, a lost GPU, XID events,
 * and NVML that cannot be loaded or initialised. The fake reads $FAKE_NVML_CONFIG, written here.
 */

#include <stdlib.h>
#include <sys/stat.h>

#include "build-config.h"
#include "nvml.h"
#include "shared/fileio.h"
#include "shared/string-util.h"
#include "test-util.h"

#define FAKE BUILD_DIR "/tests/libfake-nvml.so"

static char config_path[] = "/var/tmp/test-nvml.XXXXXX";

/* Replaces the fake's file, with a new mtime even within the same second. */
static void write_config(const char *json) {
        static unsigned generation;
        char tmp[sizeof(config_path) + 16];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.%u", config_path, generation++);
        f = fopen(tmp, "we");
        ASSERT_NOT_NULL(f);
        fputs(json, f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_EQ(rename(tmp, config_path), 0);
}

static void setup(void) {
        int fd;

        if (getenv("FAKE_NVML_CONFIG"))
                return;
        fd = mkstemp(config_path);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        ASSERT_EQ(setenv("FAKE_NVML_CONFIG", config_path, 1), 0);
}

TEST(open_read_and_events) {
        _cleanup_(nvml_closep) Nvml *n = NULL;
        _cleanup_free_ char *error = NULL, *json = NULL;
        GpuDevice *d = NULL;
        size_t count = 0;
        unsigned index;
        uint64_t xid;

        setup();
        /* 40 processes on GPU0: more than the first buffer holds. */
        for (int i = 0; i < 40; i++)
                ASSERT_OK(strextendf(&json, "%s{\"pid\": %d, \"used_memory\": %d}", i ? "," : "", 4194000 + i, i));
        {
                _cleanup_free_ char *doc = NULL;

                ASSERT_TRUE(asprintf(&doc,
                        "{\"driver_version\": \"535.1\", \"devices\": ["
                        "{\"uuid\": \"GPU-a\", \"minor\": 3, \"memory_total\": 100, \"memory_used\": 40,"
                        " \"compute_capability\": \"9.0\", \"pci_bus_id\": \"00000000:3B:00.0\", \"processes\": [%s]},"
                        "{\"uuid\": \"GPU-b\", \"mig_mode\": true, \"mig\": [{\"uuid\": \"MIG-1\", \"gpu_instance_id\": 2,"
                        " \"memory_total\": 10, \"memory_used\": 1, \"processes\": [{\"pid\": 7, \"used_memory\": 1}]}]}]}",
                        json) > 0);
                write_config(doc);
        }

        ASSERT_OK(nvml_open(FAKE, &n, &error));
        ASSERT_STREQ(nvml_driver_version(n), "535.1");
        ASSERT_NULL(nvml_events_error(n));
        ASSERT_OK(nvml_read_devices(n, &d, &count, &error));
        ASSERT_EQ(count, 2U);
        ASSERT_STREQ(d[0].uuid, "GPU-a");
        ASSERT_STREQ(d[0].pci_bus_id, "00000000:3B:00.0");
        ASSERT_EQ(d[0].cc_major, 9);
        ASSERT_TRUE(d[0].minor_known);
        ASSERT_EQ(d[0].minor, 3U);
        ASSERT_EQ(d[0].memory_free, 60U);
        ASSERT_EQ(d[0].n_processes, 40U);
        ASSERT_EQ(d[0].processes[39].pid, 4194039U);
        ASSERT_NULL(d[0].processes[0].unit);    /* no such process here */
        ASSERT_NULL(d[0].error);
        ASSERT_FALSE(d[0].mig_enabled);
        ASSERT_TRUE(d[1].mig_enabled);
        ASSERT_EQ(d[1].n_mig, 1U);
        ASSERT_STREQ(d[1].mig[0].uuid, "MIG-1");
        ASSERT_EQ(d[1].mig[0].gpu_instance_id, 2U);
        ASSERT_EQ(d[1].mig[0].memory_free, 9U);
        ASSERT_EQ(d[1].mig[0].n_processes, 1U);
        ASSERT_EQ(d[1].n_processes, 1U);         /* the aggregate of its MIG devices */
        d = gpu_device_array_free(d, count);

        /* No event yet; then one for GPU1, delivered once. */
        ASSERT_EQ(nvml_poll_event(n, &index, &xid, &error), 0);
        write_config("{\"devices\": [{\"uuid\": \"GPU-a\"}, {\"uuid\": \"GPU-b\"}],"
                     " \"xid_events\": [{\"device\": 1, \"xid\": 79}]}");
        ASSERT_OK(nvml_read_devices(n, &d, &count, &error));
        d = gpu_device_array_free(d, count);
        ASSERT_EQ(nvml_poll_event(n, &index, &xid, &error), 1);
        ASSERT_EQ(index, 1U);
        ASSERT_EQ(xid, 79U);
        ASSERT_EQ(nvml_poll_event(n, &index, &xid, &error), 0);

        /* Injected failures: processes not supported (no error), memory unknown (an error). A
         * lost GPU says so. */
        write_config("{\"devices\": [{\"uuid\": \"GPU-a\", \"lost\": true}, {\"uuid\": \"GPU-b\"}],"
                     " \"errors\": {\"nvmlDeviceGetComputeRunningProcesses_v3\": 3,"
                     " \"nvmlDeviceGetMemoryInfo\": 999}}");
        ASSERT_OK(nvml_read_devices(n, &d, &count, &error));
        ASSERT_EQ(d[0].health, GPU_HEALTH_LOST);
        ASSERT_NULL(d[0].uuid);
        ASSERT_CONTAINS(d[0].error, "nvmlDeviceGetUUID() failed: GPU is lost");
        ASSERT_EQ(d[1].health, GPU_HEALTH_HEALTHY);
        ASSERT_STREQ(d[1].uuid, "GPU-b");
        ASSERT_EQ(d[1].memory_free, GPU_MEMORY_UNKNOWN);
        ASSERT_EQ(d[1].n_processes, 0U);
        ASSERT_CONTAINS(d[1].error, "nvmlDeviceGetMemoryInfo() failed: Unknown Error");
        d = gpu_device_array_free(d, count);

        /* The whole read failing. */
        write_config("{\"devices\": [], \"errors\": {\"nvmlDeviceGetCount_v2\": 9}}");
        ASSERT_ERROR(nvml_read_devices(n, &d, &count, &error), EIO);
        ASSERT_STREQ(error, "nvmlDeviceGetCount_v2() failed: Driver Not Loaded");
        (void) unlink(config_path);
}

TEST(cannot_open) {
        _cleanup_(nvml_closep) Nvml *n = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;

        setup();
        ASSERT_ERROR(nvml_open("/nonexistent/libnvidia-ml.so.1", &n, &e1), ENOENT);
        ASSERT_CONTAINS(e1, "/nonexistent/libnvidia-ml.so.1: cannot open shared object file");
        /* A library without NVML's symbols. */
        ASSERT_ERROR(nvml_open("libc.so.6", &n, &e2), EOPNOTSUPP);
        ASSERT_CONTAINS(e2, "libc.so.6 lacks nvmlInit_v2");
        write_config("{\"init_error\": 18}");
        ASSERT_ERROR(nvml_open(FAKE, &n, &e3), EIO);
        ASSERT_STREQ(e3, "nvmlInit_v2() failed: Driver/library version mismatch");
        ASSERT_NULL(n);
        (void) unlink(config_path);
}

DEFINE_TEST_MAIN
