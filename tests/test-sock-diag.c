/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * port_listeners_find() against real listening sockets, each held by a child process of its own
 * with a comm of its own: IPv4 127.0.0.1 and 0.0.0.0, IPv6 ::1 and :: (IPV6_V6ONLY and dual-stack),
 * two SO_REUSEPORT listeners on one port from two processes, and all four on one port. Checks that
 * the lookup finds exactly the right sockets, with the right PIDs, comm, unit and cgroup id. Then
 * times 1000 lookups with 50 more listening sockets open.
 *
 * Runs inside tests/sandbox (then the unit is sandbox.scope) or alone.
 */

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "shared/cgroup-util.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "sock-diag.h"
#include "test-util.h"

typedef struct Child {
        pid_t pid;
        uint16_t port;
} Child;


static int make_listener(int family, const char *address, uint16_t port, int v6only, bool reuseport) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        int fd;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int) { 1 }, sizeof(int));
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &(int) { 1 }, sizeof(int)) < 0)
                return -errno;
        if (family == AF_INET6) {
                struct sockaddr_in6 *s = (struct sockaddr_in6 *) &ss;

                if (v6only >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(int)) < 0)
                        return -errno;
                s->sin6_family = AF_INET6;
                s->sin6_port = htons(port);
                ASSERT_EQ(inet_pton(AF_INET6, address, &s->sin6_addr), 1);
                len = sizeof(*s);
        } else {
                struct sockaddr_in *s = (struct sockaddr_in *) &ss;

                s->sin_family = AF_INET;
                s->sin_port = htons(port);
                ASSERT_EQ(inet_pton(AF_INET, address, &s->sin_addr), 1);
                len = sizeof(*s);
        }
        if (bind(fd, (struct sockaddr *) &ss, len) < 0 || listen(fd, 8) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        len = sizeof(ss);
        ASSERT_OK(getsockname(fd, (struct sockaddr *) &ss, &len));
        return fd;
}

/* Test cases run in no fixed order: ask each time. */
static bool have_ipv6(void) {
        int fd = make_listener(AF_INET6, "::1", 0, 1, false);

        if (fd < 0) {
                printf("# no IPv6 loopback (%s): skipping IPv6 cases\n", strerror(-fd));
                return false;
        }
        close(fd);
        return true;
}

static uint16_t fd_port(int fd) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(ss);

        ASSERT_OK(getsockname(fd, (struct sockaddr *) &ss, &len));
        return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port :
                                                ((struct sockaddr_in *) &ss)->sin_port);
}

/* A child named comm that listens on address:port (0: a free port) until killed. (Not a pipe to
 * stop it: later children inherit its write end.) */
static Child spawn_listener(const char *comm, int family, const char *address, uint16_t port, int v6only,
                            bool reuseport) {
        int ready[2];
        Child c = {};
        int32_t answer;

        ASSERT_OK(pipe2(ready, O_CLOEXEC));
        c.pid = fork();
        ASSERT_OK(c.pid);
        if (c.pid == 0) {
                int fd;

                (void) prctl(PR_SET_NAME, comm);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                fd = make_listener(family, address, port, v6only, reuseport);
                answer = fd < 0 ? fd : fd_port(fd);
                if (write(ready[1], &answer, sizeof(answer)) != sizeof(answer))
                        _exit(1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        ASSERT_EQ(read(ready[0], &answer, sizeof(answer)), sizeof(answer));
        close(ready[0]);
        if (answer < 0) {
                fprintf(stderr, "listener %s on %s:%u: %s\n", comm, address, port, strerror(-answer));
                abort();
        }
        c.port = (uint16_t) answer;
        return c;
}

static void stop_listener(Child *c) {
        int status;

        ASSERT_OK(kill(c->pid, SIGTERM));
        ASSERT_EQ(waitpid(c->pid, &status, 0), c->pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

typedef struct Found {
        PortListener *l;
        size_t n;
} Found;

static void found_done(Found *f) {
        port_listeners_free(f->l, f->n);
        *f = (Found) {};
}

static Found lookup_with(const char *host, uint16_t port, const pid_t *candidates, size_t n_candidates) {
        _cleanup_free_ char *error = NULL;
        Found f = {};
        int r;

        r = port_listeners_find_with_candidates(host, port, candidates, n_candidates, &f.l, &f.n, &error);
        if (r < 0) {
                fprintf(stderr, "lookup %s:%u: %s (%s)\n", strna(host), port, strerror(-r), strna(error));
                abort();
        }
        ASSERT_TRUE((f.n == 0) == (f.l == NULL));
        return f;
}

static Found lookup(const char *host, uint16_t port) {
        return lookup_with(host, port, NULL, 0);
}

static const PortListener *by_pid(const Found *f, pid_t pid) {
        for (size_t i = 0; i < f->n; i++)
                if (f->l[i].pid == pid)
                        return &f->l[i];
        return NULL;
}

static uint64_t own_cgroup_id(void) {
        _cleanup_free_ char *content = NULL;
        uint64_t id = 0;
        char *p;

        ASSERT_OK(read_full_file("/proc/self/cgroup", 65536, &content, NULL));
        p = strstr(content, "0::");
        if (!p || (p != content && p[-1] != '\n'))
                return 0;
        p += 3;
        p[strcspn(p, "\n")] = '\0';
        if (cg_path_get_id(p, &id) < 0)
                return 0;
        return id;
}

/* Checks that the lookup of host:port finds exactly the children given. */
static void expect(const char *host, uint16_t port, const Child *children, size_t n, const char *const *comms) {
        _cleanup_(found_done) Found f = lookup(host, port);
        _cleanup_free_ char *own_unit = NULL;
        uint64_t cgroup_id = own_cgroup_id();

        (void) cg_pid_get_unit(getpid(), &own_unit);
        if (f.n != n) {
                fprintf(stderr, "lookup %s:%u found %zu listeners, expected %zu\n", strna(host), port, f.n, n);
                for (size_t i = 0; i < f.n; i++) {
                        _cleanup_free_ char *d = port_listener_describe(&f.l[i]);
                        fprintf(stderr, "  %s\n", d);
                }
                abort();
        }
        for (size_t i = 0; i < n; i++) {
                const PortListener *l = by_pid(&f, children[i].pid);

                ASSERT_NOT_NULL(l);
                ASSERT_STREQ(l->comm, comms[i]);
                ASSERT_EQ(l->port, port);
                ASSERT_TRUE(l->inode != 0);
                ASSERT_EQ(l->uid, getuid());
                ASSERT_TRUE(streq_ptr(l->unit, own_unit));
                if (getenv("SANDBOX"))
                        ASSERT_STREQ(l->unit, "sandbox.scope");
                /* The kernel reports the creator's cgroup2 id (Linux >= 5.7). */
                if (l->cgroup_id != 0 && cgroup_id != 0)
                        ASSERT_EQ(l->cgroup_id, cgroup_id);
                ASSERT_TRUE(port_listener_is_owned(l, &children[i].pid, 1, 0));
                ASSERT_TRUE(port_listener_overlaps_host(l, host));
        }
}

#define COMMS(...) ((const char *const[]) { __VA_ARGS__ })

TEST(ipv4_loopback) {
        Child c = spawn_listener("sd-lo4", AF_INET, "127.0.0.1", 0, -1, false);

        expect("127.0.0.1", c.port, &c, 1, COMMS("sd-lo4"));
        expect("0.0.0.0", c.port, &c, 1, COMMS("sd-lo4"));
        expect("localhost", c.port, &c, 1, COMMS("sd-lo4"));
        expect("::", c.port, &c, 1, COMMS("sd-lo4"));
        expect(NULL, c.port, &c, 1, COMMS("sd-lo4"));
        expect("127.0.0.2", c.port, NULL, 0, NULL);
        expect("::1", c.port, NULL, 0, NULL);
        expect("127.0.0.1", (uint16_t) (c.port == 65535 ? 1 : c.port + 1), NULL, 0, NULL);
        stop_listener(&c);
        expect("127.0.0.1", c.port, NULL, 0, NULL);
}

TEST(ipv4_wildcard) {
        Child c = spawn_listener("sd-any4", AF_INET, "0.0.0.0", 0, -1, false);

        expect("127.0.0.1", c.port, &c, 1, COMMS("sd-any4"));
        expect("10.11.12.13", c.port, &c, 1, COMMS("sd-any4"));
        expect("0.0.0.0", c.port, &c, 1, COMMS("sd-any4"));
        expect("::1", c.port, NULL, 0, NULL);
        stop_listener(&c);
}

TEST(ipv6_loopback) {
        Child c;

        if (!have_ipv6())
                return;
        c = spawn_listener("sd-lo6", AF_INET6, "::1", 0, 1, false);
        expect("::1", c.port, &c, 1, COMMS("sd-lo6"));
        expect("localhost", c.port, &c, 1, COMMS("sd-lo6"));
        expect("::", c.port, &c, 1, COMMS("sd-lo6"));
        expect("127.0.0.1", c.port, NULL, 0, NULL);
        expect("0.0.0.0", c.port, NULL, 0, NULL);
        stop_listener(&c);
}

TEST(ipv6_wildcard_v6only_and_dual_stack) {
        Child v6only, dual;

        if (!have_ipv6())
                return;

        v6only = spawn_listener("sd-any6only", AF_INET6, "::", 0, 1, false);
        expect("::1", v6only.port, &v6only, 1, COMMS("sd-any6only"));
        expect("127.0.0.1", v6only.port, NULL, 0, NULL);
        {
                _cleanup_(found_done) Found f = lookup("::1", v6only.port);
                ASSERT_TRUE(f.l[0].v6only);
        }
        stop_listener(&v6only);

        dual = spawn_listener("sd-any6dual", AF_INET6, "::", 0, 0, false);
        expect("::1", dual.port, &dual, 1, COMMS("sd-any6dual"));
        expect("127.0.0.1", dual.port, &dual, 1, COMMS("sd-any6dual"));
        expect("192.0.2.1", dual.port, &dual, 1, COMMS("sd-any6dual"));
        {
                _cleanup_(found_done) Found f = lookup("::1", dual.port);
                ASSERT_FALSE(f.l[0].v6only);
        }
        stop_listener(&dual);
}

TEST(reuseport_two_processes) {
        /* What llama-server allows: a second instance on the same host:port. */
        Child c[2];
        pid_t first;

        c[0] = spawn_listener("sd-reuse-a", AF_INET, "127.0.0.1", 0, -1, true);
        c[1] = spawn_listener("sd-reuse-b", AF_INET, "127.0.0.1", c[0].port, -1, true);
        ASSERT_EQ(c[1].port, c[0].port);
        expect("127.0.0.1", c[0].port, c, 2, COMMS("sd-reuse-a", "sd-reuse-b"));

        /* The engine is c[0]: c[1] is foreign, and says who it is. */
        {
                _cleanup_(found_done) Found f = lookup("127.0.0.1", c[0].port);
                _cleanup_free_ char *d = NULL;
                const PortListener *foreign;

                first = c[0].pid;
                foreign = port_listeners_first_foreign(f.l, f.n, &first, 1, 0);
                ASSERT_NOT_NULL(foreign);
                ASSERT_EQ(foreign->pid, c[1].pid);
                d = port_listener_describe(foreign);
                ASSERT_CONTAINS(d, "(sd-reuse-b)");
                ASSERT_CONTAINS(d, "127.0.0.1:");
                printf("# %s\n", d);
                ASSERT_NULL(port_listeners_first_foreign(f.l, f.n, (pid_t[]) { c[0].pid, c[1].pid }, 2, 0));
        }
        stop_listener(&c[1]);
        expect("127.0.0.1", c[0].port, c, 1, COMMS("sd-reuse-a"));
        stop_listener(&c[0]);
}

TEST(several_listeners_one_port) {
        Child c[4];

        c[0] = spawn_listener("sd-m-lo4", AF_INET, "127.0.0.1", 0, -1, true);
        c[1] = spawn_listener("sd-m-any4", AF_INET, "0.0.0.0", c[0].port, -1, true);
        if (!have_ipv6()) {
                expect("127.0.0.1", c[0].port, c, 2, COMMS("sd-m-lo4", "sd-m-any4"));
                expect("10.0.0.1", c[0].port, c + 1, 1, COMMS("sd-m-any4"));
                stop_listener(&c[1]);
                stop_listener(&c[0]);
                return;
        }
        c[2] = spawn_listener("sd-m-lo6", AF_INET6, "::1", c[0].port, 1, true);
        c[3] = spawn_listener("sd-m-any6", AF_INET6, "::", c[0].port, 1, true);

        expect("127.0.0.1", c[0].port, c, 2, COMMS("sd-m-lo4", "sd-m-any4"));
        expect("10.0.0.1", c[0].port, c + 1, 1, COMMS("sd-m-any4"));
        expect("::1", c[0].port, c + 2, 2, COMMS("sd-m-lo6", "sd-m-any6"));
        expect("2001:db8::1", c[0].port, c + 3, 1, COMMS("sd-m-any6"));
        expect("localhost", c[0].port, c, 4, COMMS("sd-m-lo4", "sd-m-any4", "sd-m-lo6", "sd-m-any6"));
        expect(NULL, c[0].port, c, 4, COMMS("sd-m-lo4", "sd-m-any4", "sd-m-lo6", "sd-m-any6"));
        for (size_t i = 0; i < 4; i++)
                stop_listener(&c[i]);
}

TEST(own_listener_found_in_own_process) {
        int fd = make_listener(AF_INET, "127.0.0.1", 0, -1, false);
        uint16_t port = fd_port(fd);
        _cleanup_(found_done) Found f = lookup("127.0.0.1", port);
        _cleanup_free_ char *comm = NULL;

        ASSERT_OK(read_full_file("/proc/self/comm", 64, &comm, NULL));
        comm[strcspn(comm, "\n")] = '\0';
        ASSERT_EQ(f.n, 1);
        ASSERT_EQ(f.l[0].pid, getpid());
        ASSERT_STREQ(f.l[0].comm, comm);
        close(fd);
}

TEST(invalid_host) {
        _cleanup_free_ char *error = NULL;
        PortListener *l = NULL;
        size_t n = 0;

        ASSERT_EQ(port_listeners_find("example.com", 80, &l, &n, &error), -EINVAL);
        ASSERT_CONTAINS(error, "not an IP address");
}

static uint64_t now_nsec(void) {
        struct timespec ts;

        ASSERT_OK(clock_gettime(CLOCK_MONOTONIC, &ts));
        return (uint64_t) ts.tv_sec * 1000000000U + (uint64_t) ts.tv_nsec;
}

TEST(bench_1000_lookups_with_50_listeners) {
        int fds[50];
        Child c = spawn_listener("sd-bench", AF_INET, "127.0.0.1", 0, -1, false);
        uint64_t t0, t1, t2, t3;
        size_t procs = 0;

        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = make_listener(AF_INET, "127.0.0.1", 0, -1, false);
                ASSERT_OK(fds[i]);
        }

        t0 = now_nsec();
        for (int i = 0; i < 1000; i++) {
                _cleanup_(found_done) Found f = lookup("127.0.0.1", c.port);
                ASSERT_EQ(f.n, 1);
                ASSERT_EQ(f.l[0].pid, c.pid);
        }
        t1 = now_nsec();
        for (int i = 0; i < 1000; i++) {
                _cleanup_(found_done) Found f = lookup("127.0.0.1", fd_port(fds[0]) == 1 ? 2 : 1);
                ASSERT_EQ(f.n, 0);
        }
        t2 = now_nsec();
        for (int i = 0; i < 1000; i++) {
                _cleanup_(found_done) Found f = lookup_with("127.0.0.1", c.port, &c.pid, 1);
                ASSERT_EQ(f.n, 1);
                ASSERT_EQ(f.l[0].pid, c.pid);
        }
        t3 = now_nsec();

        {
                DIR *d = opendir("/proc");
                for (struct dirent *de; d && (de = readdir(d));)
                        if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
                                procs++;
                if (d)
                        closedir(d);
        }
        printf("# 1000 lookups each, %zu other listening sockets, %zu processes, per lookup: "
               "%.1f us for a port with a listener (netlink + scan of all /proc), "
               "%.1f us with its holder as the candidate, %.1f us for a free port (netlink only)\n",
               ELEMENTSOF(fds), procs, (double) (t1 - t0) / 1000.0 / 1000.0,
               (double) (t3 - t2) / 1000.0 / 1000.0, (double) (t2 - t1) / 1000.0 / 1000.0);

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        stop_listener(&c);
}

DEFINE_TEST_MAIN
