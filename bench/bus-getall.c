/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * bench/bus-getall: round-trip latency of one D-Bus method call, repeated, from one client on
 * one connection to the user bus. Each call is synchronous (sd_bus_call): the next one is sent
 * only after the previous reply arrived, so the time of one iteration is one full round trip
 * client -> bus daemon -> service -> bus daemon -> client.
 *
 *     bus-getall [--count N] [--warmup N] getall DEST PATH INTERFACE
 *     bus-getall [--count N] [--warmup N] ping DEST PATH
 *
 * "getall" calls org.freedesktop.DBus.Properties.GetAll(INTERFACE) and reads every property of
 * the reply (so that a reply with a wrong signature fails); "ping" calls
 * org.freedesktop.DBus.Peer.Ping, which sd-bus answers inside the service without looking at
 * any object: the baseline round trip of that service. Prints one line:
 *
 *     calls=N errors=N wall_s=S calls_per_s=R p50_us=U p90_us=U p99_us=U max_us=U
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

static unsigned arg_count = 10000;
static unsigned arg_warmup = 1000;

static uint64_t now_ns(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * UINT64_C(1000000000) + (uint64_t) t.tv_nsec;
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p) {
        size_t i = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);

        return sorted[i < n ? i : n - 1];
}

/* Skips the a{sv} of a GetAll reply entry by entry: the client does the work a real reader does. */
static int read_properties(sd_bus_message *reply) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(reply);
}

static int call_once(sd_bus *bus, bool getall, const char *dest, const char *path, const char *interface,
                     sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        int r;

        if (getall)
                r = sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Properties", "GetAll", error,
                                       &reply, "s", interface);
        else
                r = sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Peer", "Ping", error, &reply,
                                       "");
        if (r >= 0 && getall)
                r = read_properties(reply);
        sd_bus_message_unref(reply);
        return r;
}

static void help(const char *name) {
        printf("%s [--count N] [--warmup N] getall DEST PATH INTERFACE\n"
               "%s [--count N] [--warmup N] ping DEST PATH\n\n"
               "Synchronous D-Bus calls in a loop on the user bus; prints calls/s and latency percentiles.\n",
               name, name);
}

static int parse_uint(const char *s, unsigned min, unsigned *ret) {
        unsigned long v;
        char *end;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > 100000000UL)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help",   no_argument,       NULL, 'h' },
                { "count",  required_argument, NULL, 'n' },
                { "warmup", required_argument, NULL, 'w' },
                {}
        };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *dest, *path, *interface = NULL;
        uint64_t *lat, start, wall, sum = 0;
        unsigned errors = 0;
        sd_bus *bus = NULL;
        bool getall;
        int c, r;

        while ((c = getopt_long(argc, argv, "hn:w:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(argv[0]);
                        return EXIT_SUCCESS;
                case 'n':
                        if (parse_uint(optarg, 1, &arg_count) < 0) {
                                fprintf(stderr, "Invalid --count=%s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case 'w':
                        if (parse_uint(optarg, 0, &arg_warmup) < 0) {
                                fprintf(stderr, "Invalid --warmup=%s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                default:
                        return EXIT_FAILURE;
                }

        if (argc - optind == 4 && strcmp(argv[optind], "getall") == 0) {
                getall = true;
                interface = argv[optind + 3];
        } else if (argc - optind == 3 && strcmp(argv[optind], "ping") == 0)
                getall = false;
        else {
                help(argv[0]);
                return EXIT_FAILURE;
        }
        dest = argv[optind + 1];
        path = argv[optind + 2];

        lat = calloc(arg_count, sizeof(uint64_t));
        if (!lat) {
                fprintf(stderr, "Out of memory.\n");
                return EXIT_FAILURE;
        }

        r = sd_bus_open_user(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the user bus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        /* Warm-up: the connection's Hello, the service's first object lookups, page faults. A
         * failure here is fatal: it means the target is wrong, not that the daemon is slow. */
        for (unsigned i = 0; i < arg_warmup; i++) {
                r = call_once(bus, getall, dest, path, interface, &error);
                if (r < 0) {
                        fprintf(stderr, "Call failed: %s\n", error.message ?: strerror(-r));
                        return EXIT_FAILURE;
                }
                sd_bus_error_free(&error);
        }

        start = now_ns();
        for (unsigned i = 0; i < arg_count; i++) {
                uint64_t t = now_ns();

                r = call_once(bus, getall, dest, path, interface, &error);
                lat[i] = now_ns() - t;
                sum += lat[i];
                if (r < 0)
                        errors++;
                sd_bus_error_free(&error);
        }
        wall = now_ns() - start;

        qsort(lat, arg_count, sizeof(uint64_t), compare_u64);
        printf("calls=%u errors=%u wall_s=%.3f calls_per_s=%.0f mean_us=%.1f p50_us=%.1f p90_us=%.1f "
               "p99_us=%.1f max_us=%.1f\n",
               arg_count, errors, (double) wall / 1e9, (double) arg_count / ((double) wall / 1e9),
               (double) sum / arg_count / 1e3,
               (double) percentile(lat, arg_count, 50) / 1e3, (double) percentile(lat, arg_count, 90) / 1e3,
               (double) percentile(lat, arg_count, 99) / 1e3, (double) lat[arg_count - 1] / 1e3);

        free(lat);
        sd_bus_flush_close_unref(bus);
        return errors ? EXIT_FAILURE : EXIT_SUCCESS;
}
