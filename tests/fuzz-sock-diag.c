/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the parser of the kernel's inet_diag answers (NETLINK_SOCK_DIAG): a truncated, malformed
 * or hostile datagram must give an error with a message, or listeners that make sense, and never
 * a crash or a read out of bounds. The first two bytes choose the port filter (0: any).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sock-diag.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-sock-diag: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *err = NULL;
        PortListener *l = NULL;
        uint16_t port = 0;
        void *copy;
        size_t n = 0;
        int r;

        if (size >= 2) {
                port = (uint16_t) (data[0] << 8 | data[1]);
                data += 2;
                size -= 2;
        }
        /* An aligned copy of exactly size bytes, as recv() would leave it: reads past it are caught. */
        copy = malloc(size ?: 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);

        r = sock_diag_parse(copy, size, 42, 4242, port, &l, &n, &err);
        if (r < 0)
                check(r == -ENOMEM || err, "refused without an error message", NULL);
        for (size_t i = 0; i < n; i++) {
                check(l[i].family == AF_INET || l[i].family == AF_INET6, "a listener of another family", NULL);
                check(port == 0 || l[i].port == port, "a listener on another port", NULL);
                check(memchr(l[i].address, '\0', sizeof(l[i].address)) != NULL, "an address without its NUL", NULL);
        }
        port_listeners_free(l, n);
        free(copy);
        return 0;
}
