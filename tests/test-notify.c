/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "shared/macro.h"
#include "test-util.h"

/* A service manager's notification socket: a datagram socket bound to an address. */
typedef struct Manager {
        int fd;
        char env[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 1];
        char dir[64];
} Manager;

static void manager_open(Manager *m, bool abstract) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t size;

        m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(m->fd >= 0);
        if (abstract) {
                m->dir[0] = '\0';
                (void) snprintf(m->env, sizeof m->env, "@test-notify-%d", (int) getpid());
                memcpy(sa.sun_path + 1, m->env + 1, strlen(m->env) - 1);
                size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->env));
        } else {
                (void) snprintf(m->dir, sizeof m->dir, "/tmp/test-notify-XXXXXX");
                ASSERT_NOT_NULL(mkdtemp(m->dir));
                (void) snprintf(m->env, sizeof m->env, "%s/notify", m->dir);
                memcpy(sa.sun_path, m->env, strlen(m->env));
                size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->env) + 1);
        }
        ASSERT_OK(bind(m->fd, (struct sockaddr *) &sa, size) < 0 ? -errno : 0);
        ASSERT_OK(setenv("NOTIFY_SOCKET", m->env, 1));
}

static void manager_close(Manager *m) {
        safe_close(m->fd);
        if (m->dir[0]) {
                (void) unlink(m->env);
                (void) rmdir(m->dir);
        }
        ASSERT_OK(unsetenv("NOTIFY_SOCKET"));
}

/* The next message, or NULL when none is queued. */
static char *manager_recv(Manager *m) {
        char buf[256];
        ssize_t k = recv(m->fd, buf, sizeof buf - 1, MSG_DONTWAIT);

        if (k < 0) {
                ASSERT_EQ(errno, EAGAIN);
                return NULL;
        }
        buf[k] = '\0';
        return strdup(buf);
}

/* Fills the manager's queue from another sender until the kernel says it is full. */
static unsigned manager_fill(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        socklen_t size;
        unsigned n = 0;

        ASSERT_TRUE(fd >= 0);
        memcpy(sa.sun_path, m->env, strlen(m->env));
        if (m->env[0] == '@')
                sa.sun_path[0] = '\0';
        size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(m->env) + (m->env[0] == '@' ? 0 : 1));
        ASSERT_OK(connect(fd, (struct sockaddr *) &sa, size) < 0 ? -errno : 0);
        while (send(fd, "FILLER=1", 8, MSG_DONTWAIT | MSG_NOSIGNAL) == 8)
                n++;
        ASSERT_EQ(errno, EAGAIN);
        safe_close(fd);
        return n;
}

static void expect(Manager *m, const char *message) {
        _cleanup_free_ char *got = manager_recv(m);

        ASSERT_STREQ(got, message);
}

static void run_until_sent(sd_event *e, Notifier *n) {
        for (unsigned i = 0; i < 100 && notifier_pending(n) > 0; i++)
                ASSERT_TRUE(sd_event_run(e, 100 * 1000) >= 0);
        ASSERT_EQ(notifier_pending(n), 0U);
}

/* No manager, no watchdog asked for: nothing sent, nothing kept. */
TEST(no_socket) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;

        ASSERT_OK(unsetenv("NOTIFY_SOCKET"));
        ASSERT_OK(unsetenv("WATCHDOG_USEC"));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));
        ASSERT_OK(notifier_send(n, "READY=1"));
        ASSERT_EQ(notifier_pending(n), 0U);
        ASSERT_EQ(notifier_start_watchdog(n), 0);
}

static void test_sends(bool abstract) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;
        Manager m = {};

        manager_open(&m, abstract);
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));

        /* Room: straight through, in order. */
        ASSERT_OK(notifier_send(n, "READY=1"));
        ASSERT_OK(notifier_send(n, "STATUS=1 pool, 0 ready"));
        ASSERT_EQ(notifier_pending(n), 0U);
        expect(&m, "READY=1");
        expect(&m, "STATUS=1 pool, 0 ready");
        ASSERT_NULL(manager_recv(&m));

        manager_close(&m);
}

TEST(sends_path) {
        test_sends(false);
}

TEST(sends_abstract) {
        test_sends(true);
}

/* The manager's queue is full: nothing blocks, messages wait in order, a waiting status is
 * replaced by a newer one, and all goes out once the manager reads. */
TEST(full_queue) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;
        Manager m = {};
        unsigned filled;

        manager_open(&m, false);
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));
        filled = manager_fill(&m);
        ASSERT_TRUE(filled > 0);

        /* Would hang here with a blocking send (the alarm ends the test then). */
        alarm(10);
        ASSERT_OK(notifier_send(n, "RELOADING=1"));
        ASSERT_OK(notifier_send(n, "STATUS=3 pools, 1 ready"));
        ASSERT_OK(notifier_send(n, "READY=1"));
        ASSERT_OK(notifier_send(n, "STATUS=3 pools, 2 ready"));
        ASSERT_OK(notifier_send(n, "STOPPING=1\nSTATUS=Shutting down"));
        alarm(0);
        ASSERT_EQ(notifier_pending(n), 4U);

        /* Nothing moves while the queue stays full. */
        ASSERT_TRUE(sd_event_run(e, 50 * 1000) >= 0);
        ASSERT_EQ(notifier_pending(n), 4U);

        for (unsigned i = 0; i < filled; i++)
                expect(&m, "FILLER=1");
        run_until_sent(e, n);
        expect(&m, "RELOADING=1");
        expect(&m, "STATUS=3 pools, 2 ready");
        expect(&m, "READY=1");
        expect(&m, "STOPPING=1\nSTATUS=Shutting down");
        ASSERT_NULL(manager_recv(&m));

        manager_close(&m);
}

/* The manager re-executed: its socket is a new one at the same path. */
TEST(manager_reexecuted) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Manager m = {};

        manager_open(&m, false);
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));
        ASSERT_OK(notifier_send(n, "STATUS=before"));
        expect(&m, "STATUS=before");

        safe_close(m.fd);
        ASSERT_OK(unlink(m.env));
        m.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(m.fd >= 0);
        memcpy(sa.sun_path, m.env, strlen(m.env));
        ASSERT_OK(bind(m.fd, (struct sockaddr *) &sa, sizeof sa) < 0 ? -errno : 0);

        ASSERT_OK(notifier_send(n, "STATUS=after"));
        ASSERT_EQ(notifier_pending(n), 0U);
        expect(&m, "STATUS=after");

        /* Not there when the notifier connected: connected at the first message. */
        notifier_free(TAKE_PTR(n));
        safe_close(m.fd);
        ASSERT_OK(unlink(m.env));
        ASSERT_OK(notifier_new(&n, e));
        m.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(m.fd >= 0);
        ASSERT_OK(bind(m.fd, (struct sockaddr *) &sa, sizeof sa) < 0 ? -errno : 0);
        ASSERT_OK(notifier_send(n, "READY=1"));
        ASSERT_EQ(notifier_pending(n), 0U);
        expect(&m, "READY=1");

        /* And gone for good: dropped, not kept forever. */
        safe_close(m.fd);
        ASSERT_OK(notifier_send(n, "STATUS=nobody"));
        ASSERT_EQ(notifier_pending(n), 0U);
        m.fd = -1;
        manager_close(&m);
}

/* Keep-alives every half of $WATCHDOG_USEC, from the loop; while the manager's queue is full,
 * one waits, whatever the number of intervals that pass. */
TEST(watchdog) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;
        char pid[32];
        Manager m = {};
        unsigned filled, got = 0;
        uint64_t start, t;

        manager_open(&m, false);
        (void) snprintf(pid, sizeof pid, "%d", (int) getpid());
        ASSERT_OK(setenv("WATCHDOG_USEC", "40000", 1));
        ASSERT_OK(setenv("WATCHDOG_PID", pid, 1));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));
        ASSERT_EQ(notifier_start_watchdog(n), 1);

        /* The first at once, then one every 20 ms or later (timers never fire early): three
         * take at least 40 ms. Bounded by events, not by a time, to stay true on a busy machine. */
        ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &start));
        do {
                _cleanup_free_ char *msg = NULL;

                ASSERT_TRUE(sd_event_run(e, 10 * 1000) >= 0);
                while ((msg = manager_recv(&m))) {
                        ASSERT_STREQ(msg, "WATCHDOG=1");
                        got++;
                        msg = mfree(msg);
                }
                ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &t));
        } while (got < 3 && t < start + 10 * 1000 * 1000);
        ASSERT_EQ(got, 3U);
        ASSERT_TRUE(t >= start + 40 * 1000);

        /* Queue full: keep-alives come due (at least one within 20 ms) and replace each other. */
        filled = manager_fill(&m);
        ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &start));
        do {
                ASSERT_TRUE(sd_event_run(e, 10 * 1000) >= 0);
                ASSERT_OK(sd_event_now(e, CLOCK_MONOTONIC, &t));
        } while (t < start + 100 * 1000);
        ASSERT_EQ(notifier_pending(n), 1U);
        for (unsigned i = 0; i < filled; i++)
                expect(&m, "FILLER=1");
        run_until_sent(e, n);
        expect(&m, "WATCHDOG=1");

        ASSERT_OK(unsetenv("WATCHDOG_USEC"));
        ASSERT_OK(unsetenv("WATCHDOG_PID"));
        manager_close(&m);
}

/* An address this does not speak goes to sd_notify(), which drops it quietly here. */
TEST(other_address) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(notifier_freep) Notifier *n = NULL;

        ASSERT_OK(setenv("NOTIFY_SOCKET", "vsock:2:1234", 1));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(notifier_new(&n, e));
        ASSERT_OK(notifier_send(n, "READY=1"));
        ASSERT_EQ(notifier_pending(n), 0U);
        ASSERT_OK(unsetenv("NOTIFY_SOCKET"));
}

DEFINE_TEST_MAIN
