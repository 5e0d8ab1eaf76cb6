/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Feeds arbitrary bytes to config_load() as a main configuration file. The file lives in a
 * memfd and is opened through /proc/self/fd/, so nothing touches the disk and "<path>.d" can
 * never exist. Warnings are expected; crashes, leaks and hangs are not.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_close_ int fd = -1;
        char path[sizeof("/proc/self/fd/") + 3 * sizeof(int)];

        log_set_max_level(LOG_CRIT);

        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        for (size_t n = 0; n < size; ) {
                ssize_t k = write(fd, data + n, size - n);

                if (k <= 0)
                        return 0;
                n += (size_t) k;
        }
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%i", fd);

        if (config_new(&c, false) < 0)
                return 0;
        (void) config_load(c, path);

        return 0;
}
