/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * bench/crash-watch: crash-detection, crash-to-restart and re-adoption timings, measured in C
 * so that no interpreter sits between an event and its timestamp. Every time is
 * CLOCK_MONOTONIC, in milliseconds since the kill() this program makes itself (or since it
 * started the restart command); -1 means "not measured".
 *
 * crash-watch crash [--samples=N] [--http=HOST:PORT] [--health] [--timeout-ms=MS] POOL...
 *     For each of N samples, round robin over the POOLs: wait until the pool is Ready with a
 *     MainPID, open a pidfd on that PID, then kill(MainPID, SIGKILL) and time
 *       dead    the pidfd turns readable: the kernel has the process gone
 *       unit    systemd's PropertiesChanged for the engine unit with ActiveState leaving
 *               "active" arrives (what the daemon itself learns from: the floor it cannot beat)
 *       false   PropertiesChanged of the pool object with Ready=false arrives
 *       http    (--http) the first GET /pools/<id>/status answering "ready":false; a second
 *               thread polls in a tight loop on one persistent HTTP/1.1 connection
 *       health  (--health) the engine answers GET /health with 200 again, after at least one
 *               failed attempt; a second thread polls every --health-interval-us on a fresh
 *               connection per attempt (as a health checker does)
 *       true    PropertiesChanged of the pool with Ready=true arrives again
 *     The bus matches are installed before the first kill. One line per sample:
 *       sample <i> <pool> <pid> <dead> <unit> <false> <http> <health> <true> <kill realtime us>
 *              <HTTP status requests> <health attempts>
 *
 * crash-watch kill-health --pid=PID --port=PORT [--host=ADDR]
 *     kill(PID, SIGKILL) and time "dead" and "health" as above (supervisord's engine, say).
 *     Prints: killhealth <dead> <health> <kill realtime us>
 *
 * crash-watch wait-ready --count=N [--interval-us=US] [-- COMMAND...]
 *     Starts COMMAND (if any), then calls GetManagedObjects every --interval-us (default 2000)
 *     until N pools are Ready (N=0: until the daemon answers at all). Prints "waitready <command exited> <first answer> <all ready>" and one line per
 *     pool: "pool <id> <state> <ready 0|1> <MainPID> <RestartCount> <CrashCount>".
 *
 * Common: --timeout-ms=MS (per sample; default 30000), --http-interval-us (0: tight loop),
 * --health-interval-us (default 200).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define PM_SERVICE "org.llorch.PoolManager1"
#define PM_PATH "/org/llorch/PoolManager1"
#define PM_MANAGER PM_SERVICE ".Manager"
#define PM_POOL PM_SERVICE ".Pool"

static uint64_t timeout_ms = 30000;
static unsigned http_interval_us = 0;
static unsigned health_interval_us = 200;

static uint64_t now_ns(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000000ULL + (uint64_t) t.tv_nsec;
}

static uint64_t realtime_us(void) {
        struct timespec t;

        clock_gettime(CLOCK_REALTIME, &t);
        return (uint64_t) t.tv_sec * 1000000ULL + (uint64_t) t.tv_nsec / 1000;
}

static double ms_since(uint64_t t0, uint64_t t) {
        return t == 0 ? -1.0 : (double) (t - t0) / 1e6;
}

static void sleep_us(unsigned us) {
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long) (us % 1000000) * 1000 };

        if (us > 0)
                nanosleep(&ts, NULL);
}

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

/* ---- Minimal HTTP/1.1 client ---- */

static int http_connect(const char *host, unsigned port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        int fd, one = 1;

        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -EINVAL;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

/* Sends GET path and reads one response. Returns the status code (body in buf, NUL-terminated),
 * or a negative errno. The read is bounded by a 2 s poll per chunk. */
static int http_get(int fd, const char *host, const char *path, char *buf, size_t size, const char **body) {
        char req[512];
        size_t have = 0;
        long content_length = -1;
        char *hdr_end = NULL;
        int n, status;

        n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: crash-watch\r\n\r\n", path, host);
        if (send(fd, req, (size_t) n, MSG_NOSIGNAL) != n)
                return -EIO;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                if (hdr_end && content_length >= 0 && have >= (size_t) (hdr_end + 4 - buf) + (size_t) content_length)
                        break;
                if (have + 1 >= size)
                        return -E2BIG;
                if (poll(&p, 1, 2000) <= 0)
                        return -ETIMEDOUT;
                k = recv(fd, buf + have, size - have - 1, 0);
                if (k <= 0)
                        return k == 0 ? -ECONNRESET : -errno;
                have += (size_t) k;
                buf[have] = '\0';
                if (!hdr_end) {
                        hdr_end = strstr(buf, "\r\n\r\n");
                        if (hdr_end) {
                                for (char *l = strstr(buf, "\r\n"); l && l < hdr_end; l = strstr(l + 2, "\r\n"))
                                        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                                                content_length = strtol(l + 17, NULL, 10);
                                if (content_length < 0)
                                        content_length = 0;
                        }
                }
        }
        if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
                return -EBADMSG;
        if (body)
                *body = hdr_end + 4;
        return status;
}

/* "ready": false in a JSON body (plain or spaced). 1: false, 0: true, -1: not found. */
static int body_ready_false(const char *body) {
        const char *p = strstr(body, "\"ready\"");

        if (!p)
                return -1;
        p += 7;
        while (*p == ' ' || *p == ':')
                p++;
        return *p == 'f';
}

typedef struct Poller {
        pthread_t thread;
        pthread_barrier_t *barrier;
        const char *host;
        unsigned port;
        char path[256];
        uint64_t deadline_ns;
        uint64_t hit_ns;                /* absolute CLOCK_MONOTONIC; 0: never */
        unsigned attempts;
        char error[128];
} Poller;

/* Tight loop of GET /pools/<id>/status on one persistent connection until "ready":false. */
static void *status_poller(void *userdata) {
        Poller *p = userdata;
        static __thread char buf[16384];
        const char *body;
        int fd, r;

        fd = http_connect(p->host, p->port);
        pthread_barrier_wait(p->barrier);
        if (fd < 0) {
                snprintf(p->error, sizeof(p->error), "connect: %s", strerror(-fd));
                return NULL;
        }
        while (now_ns() < p->deadline_ns) {
                r = http_get(fd, p->host, p->path, buf, sizeof(buf), &body);
                p->attempts++;
                if (r == 200 && body_ready_false(body) == 1) {
                        p->hit_ns = now_ns();
                        break;
                }
                if (r < 0) {    /* reconnect */
                        close(fd);
                        fd = http_connect(p->host, p->port);
                        if (fd < 0) {
                                snprintf(p->error, sizeof(p->error), "reconnect: %s", strerror(-fd));
                                return NULL;
                        }
                }
                sleep_us(http_interval_us);
        }
        close(fd);
        return NULL;
}

/* GET /health on a fresh connection per attempt until 200, after at least one failure. */
static void *health_poller(void *userdata) {
        Poller *p = userdata;
        static __thread char buf[4096];
        bool failed = false;

        if (p->barrier)
                pthread_barrier_wait(p->barrier);
        while (now_ns() < p->deadline_ns) {
                int fd = http_connect(p->host, p->port), r = -1;

                if (fd >= 0) {
                        r = http_get(fd, p->host, "/health", buf, sizeof(buf), NULL);
                        close(fd);
                }
                p->attempts++;
                if (r == 200 && failed) {
                        p->hit_ns = now_ns();
                        break;
                }
                if (r != 200)
                        failed = true;
                sleep_us(health_interval_us);
        }
        return NULL;
}

/* ---- crash ---- */

typedef struct Pool {
        char *id;
        char *path;
        char *unit_path;
        char host[64];
        unsigned port;
        bool ready;
        uint32_t main_pid;
} Pool;

typedef struct Sample {
        Pool *pool;
        uint64_t t0, dead, unit, rfalse, rtrue;
        uint64_t t0_realtime_us;
        bool active;
} Sample;

static Pool *pools;
static size_t n_pools;
static Sample cur;
static sd_event *event;

static Pool *pool_by_path(const char *path) {
        for (size_t i = 0; i < n_pools; i++)
                if (strcmp(pools[i].path, path) == 0)
                        return pools + i;
        return NULL;
}

static void maybe_exit_loop(void);

static int on_pool_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t t = now_ns();
        Pool *p = pool_by_path(sd_bus_message_get_path(m));
        const char *interface;
        int r;

        if (!p)
                return 0;
        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || strcmp(interface, PM_POOL) != 0)
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (strcmp(name, "Ready") == 0) {
                        int b;

                        if (sd_bus_message_read(m, "v", "b", &b) < 0)
                                return 0;
                        p->ready = b;
                        if (cur.active && cur.pool == p) {
                                if (!b && !cur.rfalse)
                                        cur.rfalse = t;
                                else if (b && cur.rfalse && !cur.rtrue)
                                        cur.rtrue = t;
                        }
                } else if (strcmp(name, "MainPID") == 0) {
                        if (sd_bus_message_read(m, "v", "u", &p->main_pid) < 0)
                                return 0;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                r = sd_bus_message_exit_container(m);
        }
        maybe_exit_loop();
        return 0;
}

static int on_unit_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t t = now_ns();
        const char *interface;
        int r;

        if (!cur.active || cur.unit || strcmp(sd_bus_message_get_path(m), cur.pool->unit_path) != 0)
                return 0;
        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || strcmp(interface, "org.freedesktop.systemd1.Unit") != 0)
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *state;

                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (strcmp(name, "ActiveState") == 0) {
                        if (sd_bus_message_read(m, "v", "s", &state) < 0)
                                return 0;
                        if (strcmp(state, "active") != 0 && strcmp(state, "reloading") != 0 &&
                            strcmp(state, "activating") != 0)
                                cur.unit = t;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                r = sd_bus_message_exit_container(m);
        }
        maybe_exit_loop();
        return 0;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        if (!cur.dead)
                cur.dead = now_ns();
        sd_event_source_set_enabled(s, SD_EVENT_OFF);
        maybe_exit_loop();
        return 0;
}

/* What the loop waits for: before a kill, the pool ready; after, every bus/pidfd event. */
static bool waiting_for_ready, loop_done;

static void maybe_exit_loop(void) {
        if (waiting_for_ready)
                loop_done = cur.pool->ready && cur.pool->main_pid > 0;
        else
                loop_done = cur.active && cur.dead && cur.unit && cur.rfalse && cur.rtrue;
}

/* sd_event_exit() would end the loop for good: iterate by hand until loop_done or ms pass. */
static int run_loop_until(uint64_t ms) {
        uint64_t deadline = now_ns() + ms * 1000000ULL;
        int r;

        loop_done = false;
        while (!loop_done) {
                uint64_t t = now_ns();

                if (t >= deadline)
                        return -ETIMEDOUT;
                r = sd_event_run(event, (deadline - t) / 1000);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int get_pool(sd_bus *bus, Pool *p) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path, *unit = NULL, *url = NULL;
        int r;

        r = sd_bus_call_method(bus, PM_SERVICE, PM_PATH, PM_MANAGER, "GetPool", &error, &reply, "s", p->id);
        if (r < 0) {
                fprintf(stderr, "GetPool(%s): %s\n", p->id, error.message ?: strerror(-r));
                return r;
        }
        if (sd_bus_message_read(reply, "o", &path) < 0 || !(p->path = strdup(path)))
                return -ENOMEM;
        reply = sd_bus_message_unref(reply);

        r = sd_bus_call_method(bus, PM_SERVICE, p->path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", PM_POOL);
        if (r < 0) {
                fprintf(stderr, "GetAll(%s): %s\n", p->id, error.message ?: strerror(-r));
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;
                int b;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        break;
                if (strcmp(name, "Ready") == 0) {
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        p->ready = b;
                } else if (strcmp(name, "MainPID") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &p->main_pid);
                else if (strcmp(name, "Unit") == 0)
                        r = sd_bus_message_read(reply, "v", "s", &unit);
                else if (strcmp(name, "Url") == 0)
                        r = sd_bus_message_read(reply, "v", "s", &url);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        break;
                if (unit && !p->unit_path &&
                    sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &p->unit_path) < 0)
                        return -ENOMEM;
                if (url && !p->port &&
                    sscanf(url, "http://%63[^:]:%u", p->host, &p->port) != 2)
                        p->port = 0;
                r = sd_bus_message_exit_container(reply);
        }
        sd_bus_message_unref(reply);
        if (r < 0 || !p->unit_path) {
                fprintf(stderr, "Failed to read the properties of pool %s\n", p->id);
                return -EBADMSG;
        }
        return 0;
}

static int cmd_crash(int argc, char **argv, unsigned samples, const char *http) {
        char http_host[64] = "127.0.0.1";
        unsigned http_port = 0;
        bool health = getenv("CRASH_WATCH_HEALTH") != NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;
        int r;

        if (http && sscanf(http, "%63[^:]:%u", http_host, &http_port) != 2) {
                fprintf(stderr, "--http=HOST:PORT expected\n");
                return 2;
        }
        n_pools = (size_t) argc;
        pools = calloc(n_pools, sizeof(Pool));
        if (!pools || n_pools == 0)
                return 2;

        if (sd_event_default(&event) < 0 || sd_bus_open_user(&bus) < 0 ||
            sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL) < 0) {
                fprintf(stderr, "Failed to set up the bus connection\n");
                return 1;
        }
        /* Matches first, state second: nothing can change unseen in between. */
        r = sd_bus_add_match(bus, NULL,
                             "type='signal',sender='" PM_SERVICE "',interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',path_namespace='" PM_PATH "'",
                             on_pool_changed, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.systemd1',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='/org/freedesktop/systemd1/unit',"
                                     "arg0='org.freedesktop.systemd1.Unit'",
                                     on_unit_changed, NULL);
        if (r < 0) {
                fprintf(stderr, "Failed to add matches: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", &error, NULL, NULL);
        if (r < 0)      /* the daemon subscribes anyway; ours is belt and braces */
                sd_bus_error_free(&error);

        for (size_t i = 0; i < n_pools; i++) {
                pools[i].id = argv[i];
                r = get_pool(bus, pools + i);
                if (r < 0)
                        return 1;
                if (health && pools[i].port == 0) {
                        fprintf(stderr, "Pool %s has no Url to probe\n", pools[i].id);
                        return 1;
                }
        }

        for (unsigned i = 0; i < samples; i++) {
                Pool *p = pools + i % n_pools;
                Poller status = {}, hp = {};
                pthread_barrier_t barrier;
                sd_event_source *pidfd_source = NULL;
                int pidfd, n_threads = 0;
                uint32_t pid;

                cur = (Sample) { .pool = p };
                waiting_for_ready = true;
                if (!(p->ready && p->main_pid > 0)) {
                        r = run_loop_until(timeout_ms);
                        if (r < 0) {
                                fprintf(stderr, "Pool %s not ready within %llu ms\n", p->id,
                                        (unsigned long long) timeout_ms);
                                return 1;
                        }
                }
                waiting_for_ready = false;
                pid = p->main_pid;

                pidfd = pidfd_open_((pid_t) pid);
                if (pidfd < 0) {
                        fprintf(stderr, "pidfd_open(%u): %m\n", pid);
                        return 1;
                }
                r = sd_event_add_io(event, &pidfd_source, pidfd, EPOLLIN, on_pidfd, NULL);
                if (r < 0)
                        return 1;

                pthread_barrier_init(&barrier, NULL, 1 + (http ? 1 : 0) + (health ? 1 : 0));
                if (http) {
                        status = (Poller) { .barrier = &barrier, .host = http_host, .port = http_port,
                                            .deadline_ns = now_ns() + timeout_ms * 1000000ULL };
                        snprintf(status.path, sizeof(status.path), "/pools/%s/status", p->id);
                        pthread_create(&status.thread, NULL, status_poller, &status);
                        n_threads++;
                }
                if (health) {
                        hp = (Poller) { .barrier = &barrier, .host = p->host, .port = p->port,
                                        .deadline_ns = now_ns() + timeout_ms * 1000000ULL };
                        pthread_create(&hp.thread, NULL, health_poller, &hp);
                        n_threads++;
                }
                pthread_barrier_wait(&barrier);

                cur.t0_realtime_us = realtime_us();
                cur.t0 = now_ns();
                if (kill((pid_t) pid, SIGKILL) < 0) {
                        fprintf(stderr, "kill(%u): %m\n", pid);
                        return 1;
                }
                cur.active = true;
                r = run_loop_until(timeout_ms);
                cur.active = false;
                if (http)
                        pthread_join(status.thread, NULL);
                if (health)
                        pthread_join(hp.thread, NULL);
                pthread_barrier_destroy(&barrier);
                sd_event_source_disable_unref(pidfd_source);
                close(pidfd);
                if (r < 0) {
                        fprintf(stderr, "Sample %u (pool %s): timed out (dead %.1f unit %.1f false %.1f true %.1f)\n",
                                i, p->id, ms_since(cur.t0, cur.dead), ms_since(cur.t0, cur.unit),
                                ms_since(cur.t0, cur.rfalse), ms_since(cur.t0, cur.rtrue));
                        return 1;
                }
                if (status.error[0] || hp.error[0])
                        fprintf(stderr, "Sample %u: %s %s\n", i, status.error, hp.error);
                printf("sample %u %s %u %.3f %.3f %.3f %.3f %.3f %.3f %" PRIu64 " %u %u\n", i, p->id, pid,
                       ms_since(cur.t0, cur.dead), ms_since(cur.t0, cur.unit), ms_since(cur.t0, cur.rfalse),
                       http ? ms_since(cur.t0, status.hit_ns) : -1.0, health ? ms_since(cur.t0, hp.hit_ns) : -1.0,
                       ms_since(cur.t0, cur.rtrue), cur.t0_realtime_us, status.attempts, hp.attempts);
                fflush(stdout);
        }
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        return 0;
}

/* ---- kill-health ---- */

static int cmd_kill_health(pid_t pid, const char *host, unsigned port) {
        Poller hp = { .host = host, .port = port };
        uint64_t t0, t0_rt, dead = 0;
        int pidfd;

        pidfd = pidfd_open_(pid);
        if (pidfd < 0) {
                fprintf(stderr, "pidfd_open(%d): %m\n", (int) pid);
                return 1;
        }
        /* The health poller runs in a thread, the pidfd is watched here: neither waits for the other. */
        hp.deadline_ns = now_ns() + timeout_ms * 1000000ULL;
        t0_rt = realtime_us();
        t0 = now_ns();
        if (kill(pid, SIGKILL) < 0) {
                fprintf(stderr, "kill(%d): %m\n", (int) pid);
                return 1;
        }
        pthread_create(&hp.thread, NULL, health_poller, &hp);
        {
                struct pollfd pf = { .fd = pidfd, .events = POLLIN };

                if (poll(&pf, 1, (int) timeout_ms) == 1)
                        dead = now_ns();
        }
        pthread_join(hp.thread, NULL);
        close(pidfd);
        printf("killhealth %.3f %.3f %" PRIu64 "\n", ms_since(t0, dead), ms_since(t0, hp.hit_ns), t0_rt);
        return hp.hit_ns ? 0 : 1;
}

/* ---- wait-ready ---- */

typedef struct PoolInfo {
        char id[128], state[32];
        int ready;
        uint32_t main_pid, restarts, crashes;
} PoolInfo;

/* GetManagedObjects -> infos; returns the number of pools or a negative errno. */
static int snapshot(sd_bus *bus, PoolInfo *infos, size_t max, size_t *ready) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        size_t n = 0;
        int r;

        *ready = 0;
        r = sd_bus_call_method(bus, PM_SERVICE, PM_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                               &error, &reply, NULL);
        if (r < 0) {
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                PoolInfo pi = { .ready = -1 };
                const char *path;

                if ((r = sd_bus_message_read(reply, "o", &path)) < 0 ||
                    (r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}")) < 0)
                        break;
                while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *interface;

                        if ((r = sd_bus_message_read(reply, "s", &interface)) < 0)
                                goto fail;
                        if (strcmp(interface, PM_POOL) != 0) {
                                if ((r = sd_bus_message_skip(reply, "a{sv}")) < 0)
                                        goto fail;
                        } else {
                                if ((r = sd_bus_message_enter_container(reply, 'a', "{sv}")) < 0)
                                        goto fail;
                                while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                                        const char *name, *s;
                                        int b;

                                        if ((r = sd_bus_message_read(reply, "s", &name)) < 0)
                                                goto fail;
                                        if (strcmp(name, "PoolId") == 0 || strcmp(name, "State") == 0) {
                                                r = sd_bus_message_read(reply, "v", "s", &s);
                                                if (r >= 0)
                                                        snprintf(name[0] == 'P' ? pi.id : pi.state,
                                                                 name[0] == 'P' ? sizeof(pi.id) : sizeof(pi.state),
                                                                 "%s", s);
                                        } else if (strcmp(name, "Ready") == 0) {
                                                r = sd_bus_message_read(reply, "v", "b", &b);
                                                pi.ready = b;
                                        } else if (strcmp(name, "MainPID") == 0)
                                                r = sd_bus_message_read(reply, "v", "u", &pi.main_pid);
                                        else if (strcmp(name, "RestartCount") == 0)
                                                r = sd_bus_message_read(reply, "v", "u", &pi.restarts);
                                        else if (strcmp(name, "CrashCount") == 0)
                                                r = sd_bus_message_read(reply, "v", "u", &pi.crashes);
                                        else
                                                r = sd_bus_message_skip(reply, "v");
                                        if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                                                goto fail;
                                }
                                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                                        goto fail;
                        }
                        if ((r = sd_bus_message_exit_container(reply)) < 0)
                                goto fail;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0 ||
                    (r = sd_bus_message_exit_container(reply)) < 0)
                        break;
                if (pi.ready < 0)
                        continue;
                if (pi.ready)
                        (*ready)++;
                if (n < max)
                        infos[n] = pi;
                n++;
        }
fail:
        sd_bus_message_unref(reply);
        return r < 0 ? r : (int) n;
}

static int cmd_wait_ready(unsigned count, unsigned interval_us, char **command) {
        PoolInfo *infos = calloc(4096, sizeof(PoolInfo));
        uint64_t t0, t_cmd = 0, t_first = 0, t_all = 0, deadline;
        pid_t child = 0;
        sd_bus *bus = NULL;
        int n = 0, status = 0;
        size_t ready = 0;

        if (!infos || sd_bus_open_user(&bus) < 0) {
                fprintf(stderr, "Failed to connect to the user bus\n");
                return 1;
        }
        t0 = now_ns();
        deadline = t0 + timeout_ms * 1000000ULL;
        if (command && command[0]) {
                child = fork();
                if (child < 0)
                        return 1;
                if (child == 0) {
                        execvp(command[0], command);
                        _exit(127);
                }
        }

        while (now_ns() < deadline) {
                if (child > 0 && !t_cmd && waitpid(child, &status, WNOHANG) == child) {
                        t_cmd = now_ns();
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                                fprintf(stderr, "%s failed (status %d)\n", command[0], status);
                                return 1;
                        }
                }
                n = snapshot(bus, infos, 4096, &ready);
                if (n >= 0) {
                        if (!t_first)
                                t_first = now_ns();
                        if (ready >= count) {
                                t_all = now_ns();
                                break;
                        }
                }
                sleep_us(interval_us);
        }
        if (child > 0 && !t_cmd) {
                (void) waitpid(child, &status, 0);
                t_cmd = now_ns();
        }
        printf("waitready %.3f %.3f %.3f\n", child > 0 ? ms_since(t0, t_cmd) : -1.0, ms_since(t0, t_first),
               ms_since(t0, t_all));
        for (int i = 0; i < n && i < 4096; i++)
                printf("pool %s %s %d %u %u %u\n", infos[i].id, infos[i].state[0] ? infos[i].state : "-",
                       infos[i].ready, infos[i].main_pid, infos[i].restarts, infos[i].crashes);
        sd_bus_flush_close_unref(bus);
        free(infos);
        return t_all ? 0 : 1;
}

/* ---- main ---- */

static void usage(FILE *f) {
        fputs("crash-watch crash [--samples=N] [--http=HOST:PORT] [--health] POOL...\n"
              "crash-watch kill-health --pid=PID --port=PORT [--host=ADDR]\n"
              "crash-watch wait-ready --count=N [--interval-us=US] [-- COMMAND...]\n"
              "common: --timeout-ms=MS --http-interval-us=US --health-interval-us=US\n", f);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "samples",            required_argument, NULL, 's' },
                { "http",               required_argument, NULL, 'H' },
                { "health",             no_argument,       NULL, 'e' },
                { "pid",                required_argument, NULL, 'p' },
                { "port",               required_argument, NULL, 'P' },
                { "host",               required_argument, NULL, 'o' },
                { "count",              required_argument, NULL, 'c' },
                { "interval-us",        required_argument, NULL, 'i' },
                { "timeout-ms",         required_argument, NULL, 't' },
                { "http-interval-us",   required_argument, NULL, 'I' },
                { "health-interval-us", required_argument, NULL, 'E' },
                { "help",               no_argument,       NULL, 'h' },
                {}
        };
        unsigned samples = 100, port = 0, interval_us = 2000;
        long count = -1;
        const char *http = NULL, *host = "127.0.0.1", *cmd;
        pid_t pid = 0;
        int c;

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        cmd = argv[1];
        argv++;
        argc--;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 's': samples = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'H': http = optarg; break;
                case 'e': setenv("CRASH_WATCH_HEALTH", "1", 1); break;
                case 'p': pid = (pid_t) strtol(optarg, NULL, 10); break;
                case 'P': port = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'o': host = optarg; break;
                case 'c': count = strtol(optarg, NULL, 10); break;
                case 'i': interval_us = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't': timeout_ms = strtoull(optarg, NULL, 10); break;
                case 'I': http_interval_us = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'E': health_interval_us = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }

        if (strcmp(cmd, "crash") == 0)
                return cmd_crash(argc - optind, argv + optind, samples, http);
        if (strcmp(cmd, "kill-health") == 0) {
                if (pid <= 0 || port == 0) {
                        usage(stderr);
                        return 2;
                }
                return cmd_kill_health(pid, host, port);
        }
        if (strcmp(cmd, "wait-ready") == 0) {
                if (count < 0) {
                        usage(stderr);
                        return 2;
                }
                return cmd_wait_ready((unsigned) count, interval_us, argv + optind);
        }
        usage(stderr);
        return 2;
}
