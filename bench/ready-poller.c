/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * bench/ready-poller: the true moment each engine turned ready, as a client polling it every
 * 5 ms would see it. Polls GET /health on 127.0.0.1:PORT for every PORT given, one keep-alive
 * connection per engine (reconnecting while nothing listens), every 5 ms, until each answered
 * 200 once or TIMEOUT seconds passed. Prints "<port> <CLOCK_REALTIME us>" per engine at its
 * first 200, and "timeout <port>" for those that never answered. bench/preload-concurrency runs
 * it beside the daemon to measure the true all-ready time.
 *
 *     ready-poller [--timeout=SECONDS] PORT...
 */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_US 5000ULL

typedef struct Engine {
        uint16_t port;
        int fd;
        bool waiting;                   /* a request is out */
        bool done;
        char buf[4096];
        size_t n;
} Engine;

static uint64_t now_us(clockid_t c) {
        struct timespec ts;

        clock_gettime(c, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void engine_close(Engine *e) {
        if (e->fd >= 0)
                close(e->fd);
        e->fd = -1;
        e->waiting = false;
        e->n = 0;
}

static void engine_send(Engine *e) {
        static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

        if (e->fd < 0) {
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(e->port) };

                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                e->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (e->fd < 0)
                        return;
                /* Loopback: refused or accepted at once. */
                if (connect(e->fd, (struct sockaddr *) &a, sizeof(a)) < 0)
                        return engine_close(e);
        }
        if (write(e->fd, req, sizeof(req) - 1) != (ssize_t) sizeof(req) - 1)
                return engine_close(e);
        e->waiting = true;
}

/* Returns the status of a complete response in the buffer (consumed), 0 while incomplete. */
static int engine_response(Engine *e) {
        char *end = memmem(e->buf, e->n, "\r\n\r\n", 4), *cl;
        size_t head, body = 0, total;
        int status = 0;

        if (!end)
                return 0;
        head = (size_t) (end - e->buf) + 4;
        *end = '\0';
        cl = strcasestr(e->buf, "\r\nContent-Length:");
        if (cl)
                body = strtoul(cl + 17, NULL, 10);
        if (sscanf(e->buf, "HTTP/1.%*d %d", &status) != 1)
                status = -1;
        total = head + body;
        if (total > e->n) {
                *end = '\r';
                return 0;
        }
        memmove(e->buf, e->buf + total, e->n - total);
        e->n -= total;
        return status;
}

int main(int argc, char *argv[]) {
        double timeout_s = 120;
        Engine *engines;
        size_t n = 0, left;
        uint64_t deadline, next_tick;
        int first = 1;

        if (argc > 1 && strncmp(argv[1], "--timeout=", 10) == 0) {
                timeout_s = atof(argv[1] + 10);
                first = 2;
        }
        engines = calloc((size_t) argc, sizeof(Engine));
        if (!engines)
                return EXIT_FAILURE;
        for (int i = first; i < argc; i++)
                engines[n++] = (Engine) { .port = (uint16_t) atoi(argv[i]), .fd = -1 };
        left = n;

        deadline = now_us(CLOCK_MONOTONIC) + (uint64_t) (timeout_s * 1e6);
        next_tick = now_us(CLOCK_MONOTONIC);
        while (left > 0 && now_us(CLOCK_MONOTONIC) < deadline) {
                struct pollfd *pfd = calloc(n, sizeof(struct pollfd));
                uint64_t t = now_us(CLOCK_MONOTONIC);
                int ms;

                if (!pfd)
                        return EXIT_FAILURE;
                if (t >= next_tick) {
                        for (size_t i = 0; i < n; i++)
                                if (!engines[i].done && !engines[i].waiting)
                                        engine_send(&engines[i]);
                        next_tick += TICK_US;
                        if (next_tick <= t)
                                next_tick = t + TICK_US;
                }
                for (size_t i = 0; i < n; i++)
                        pfd[i] = (struct pollfd) { .fd = engines[i].waiting ? engines[i].fd : -1, .events = POLLIN };
                t = now_us(CLOCK_MONOTONIC);
                ms = next_tick > t ? (int) ((next_tick - t + 999) / 1000) : 0;
                if (poll(pfd, n, ms) < 0 && errno != EINTR)
                        return EXIT_FAILURE;
                for (size_t i = 0; i < n; i++) {
                        Engine *e = &engines[i];
                        ssize_t k;
                        int status;

                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        k = read(e->fd, e->buf + e->n, sizeof(e->buf) - 1 - e->n);
                        if (k <= 0) {
                                engine_close(e);
                                continue;
                        }
                        e->n += (size_t) k;
                        status = engine_response(e);
                        if (status == 0) {
                                if (e->n >= sizeof(e->buf) - 1)
                                        engine_close(e);
                                continue;
                        }
                        e->waiting = false;
                        if (status == 200) {
                                printf("%u %" PRIu64 "\n", e->port, now_us(CLOCK_REALTIME));
                                fflush(stdout);
                                e->done = true;
                                engine_close(e);
                                left--;
                        }
                }
                free(pfd);
        }
        for (size_t i = 0; i < n; i++)
                if (!engines[i].done)
                        printf("timeout %u\n", engines[i].port);
        return left > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
