/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * bench/preload-client: sends every PreparedEngine given on the command line (JSON files) to
 * org.llorch.PoolManager1.Preload at once, asynchronously on one bus connection, and waits
 * for all replies. Prints "start <CLOCK_REALTIME us>", then one line per reply: "<pool file>
 * <ms since start> ok|error". The point is to measure the daemon, not the cost of starting one
 * client process per pool.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

static unsigned pending;
static int failures;
static struct timespec start;

static double elapsed_ms(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) (t.tv_sec - start.tv_sec) * 1e3 + (double) (t.tv_nsec - start.tv_nsec) / 1e6;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name = userdata;

        if (sd_bus_message_is_method_error(m, NULL)) {
                printf("%s %.1f error %s\n", name, elapsed_ms(), sd_bus_message_get_error(m)->message);
                failures++;
        } else
                printf("%s %.1f ok\n", name, elapsed_ms());
        pending--;
        return 0;
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}

int main(int argc, char *argv[]) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_user(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the user bus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        clock_gettime(CLOCK_MONOTONIC, &start);
        {
                struct timespec rt;

                /* The start on the wall clock, for bench/preload-concurrency's true all-ready time. */
                clock_gettime(CLOCK_REALTIME, &rt);
                printf("start %lld\n", (long long) rt.tv_sec * 1000000LL + rt.tv_nsec / 1000);
        }
        for (int i = 1; i < argc; i++) {
                sd_bus_message *m = NULL;
                char *json = read_file(argv[i]);

                if (!json) {
                        fprintf(stderr, "Failed to read %s\n", argv[i]);
                        return EXIT_FAILURE;
                }
                r = sd_bus_message_new_method_call(bus, &m, "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                                                   "org.llorch.PoolManager1.Manager", "Preload");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", json);
                if (r >= 0)
                        r = sd_bus_call_async(bus, NULL, m, on_reply, argv[i], 300 * 1000000ULL);
                sd_bus_message_unref(m);
                free(json);
                if (r < 0) {
                        fprintf(stderr, "Failed to send Preload: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                pending++;
        }

        while (pending > 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "Bus error: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        return EXIT_FAILURE;
        }
        sd_bus_unref(bus);
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
