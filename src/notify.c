/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"
#include "shared/event-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "shared/time-util.h"

struct Notifier {
        sd_event *event;
        sd_event_source *io;            /* EPOLLOUT, on while messages wait */
        sd_event_source *watchdog;      /* WATCHDOG=1 every half of $WATCHDOG_USEC */
        usec_t watchdog_usec;
        int fd;                         /* -1: no manager to tell (or sd_notify() for its address) */
        bool fallback;                  /* an address this does not speak: sd_notify() */
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } address;
        socklen_t address_size;

        char **queue;                   /* oldest first; NULL-terminated */
        size_t n_queue;
};

/* One line that a newer one of its kind makes meaningless: a status, a keep-alive. */
static bool is_replaceable(const char *message, const char **ret_kind) {
        static const char *const kinds[] = { "STATUS=", "WATCHDOG=" };

        if (strchr(message, '\n'))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (strncmp(message, kinds[i], strlen(kinds[i])) == 0) {
                        *ret_kind = kinds[i];
                        return true;
                }
        return false;
}

static void queue_pop(Notifier *n) {
        free(n->queue[0]);
        /* With the terminating NULL. */
        memmove(n->queue, n->queue + 1, n->n_queue * sizeof(char *));
        n->n_queue--;
}

static int notifier_connect(Notifier *n) {
        if (connect(n->fd, &n->address.sa, n->address_size) < 0)
                return -errno;
        return 0;
}

static void notifier_flush(Notifier *n) {
        bool reconnected = false;
        int r;

        while (n->n_queue > 0) {
                const char *m = n->queue[0];

                if (send(n->fd, m, strlen(m), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
                        queue_pop(n);
                        continue;
                }
                if (errno == EAGAIN) {
                        /* The manager's queue is full: wait until it has room. */
                        r = sd_event_source_set_enabled(n->io, SD_EVENT_ON);
                        if (r >= 0)
                                return;
                        log_debug_errno(r, "Failed to wait for the service manager's notification socket: %m");
                        errno = EAGAIN;
                }
                /* The manager was re-executed (its socket is a new one at the same address), or
                 * was not there yet when we connected. */
                if ((errno == ECONNREFUSED || errno == ENOTCONN) && !reconnected) {
                        reconnected = true;
                        if (notifier_connect(n) >= 0)
                                continue;
                }
                log_debug_errno(-errno, "Dropping a notification for the service manager (%.*s): %m",
                                (int) strcspn(m, "\n"), m);
                queue_pop(n);
        }
        (void) sd_event_source_set_enabled(n->io, SD_EVENT_OFF);
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        notifier_flush(userdata);
        return 0;
}

/* $NOTIFY_SOCKET as a path or an abstract name; 0 when it is neither. */
static int parse_address(const char *e, Notifier *n) {
        size_t l = strlen(e);

        if ((e[0] != '/' && e[0] != '@') || l < 2 || l >= sizeof(n->address.un.sun_path))
                return 0;
        n->address.un.sun_family = AF_UNIX;
        memcpy(n->address.un.sun_path, e, l);
        if (e[0] == '@') {
                n->address.un.sun_path[0] = '\0';
                n->address_size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l);
        } else
                n->address_size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        return 1;
}

int notifier_new(Notifier **ret, sd_event *event) {
        _cleanup_(notifier_freep) Notifier *n = NULL;
        const char *e;
        int r;

        n = calloc(1, sizeof(Notifier));
        if (!n)
                return -ENOMEM;
        n->fd = -1;
        n->event = sd_event_ref(event);

        e = getenv("NOTIFY_SOCKET");
        if (isempty(e)) {
                *ret = TAKE_PTR(n);
                return 0;
        }
        if (parse_address(e, n) == 0) {
                n->fallback = true;
                *ret = TAKE_PTR(n);
                return 0;
        }

        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n->fd < 0)
                return -errno;
        /* Connected, so that EPOLLOUT says the manager's queue has room (unix_dgram_poll()). */
        r = notifier_connect(n);
        if (r < 0)
                log_warning_errno(r, "Failed to connect to the service manager's notification socket %s, "
                                  "its notifications are dropped: %m", e);

        r = sd_event_add_io(event, &n->io, n->fd, EPOLLOUT, on_writable, n);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(n->io, "notify");
        r = sd_event_source_set_enabled(n->io, SD_EVENT_OFF);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(n);
        return 0;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        sd_event_source_disable_unref(n->io);
        sd_event_source_disable_unref(n->watchdog);
        safe_close(n->fd);
        strv_free(n->queue);
        sd_event_unref(n->event);
        return mfree(n);
}

int notifier_send(Notifier *n, const char *message) {
        const char *kind, *other;
        char *m;
        int r;

        if (n->fallback) {
                (void) sd_notify(false, message);
                return 0;
        }
        if (n->fd < 0)
                return 0;

        m = strdup(message);
        if (!m)
                return -ENOMEM;

        /* A status (keep-alive) still waiting is replaced where it stands. */
        if (is_replaceable(m, &kind))
                for (size_t i = 0; i < n->n_queue; i++)
                        if (is_replaceable(n->queue[i], &other) && streq(kind, other)) {
                                free(n->queue[i]);
                                n->queue[i] = m;
                                return 0;
                        }

        r = strv_push(&n->queue, m);
        if (r < 0) {
                free(m);
                return r;
        }
        n->n_queue++;

        /* Already waiting for room: this goes after the others, in order. */
        if (n->n_queue == 1)
                notifier_flush(n);
        return 0;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        Notifier *n = userdata;
        int r;

        (void) notifier_send(n, "WATCHDOG=1");
        r = event_source_arm(s, usec + n->watchdog_usec / 2);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next watchdog keep-alive: %m");
        return 0;
}

int notifier_start_watchdog(Notifier *n) {
        int r;

        r = sd_watchdog_enabled(false, &n->watchdog_usec);
        if (r <= 0)
                return r;
        /* The first keep-alive at once, then every half interval; a loop that stops turning
         * sends none, which is the point. */
        r = event_reset_time_relative(n->event, &n->watchdog, CLOCK_MONOTONIC, 0, n->watchdog_usec / 8,
                                      on_watchdog, n, "watchdog");
        if (r < 0)
                return r;
        return 1;
}

size_t notifier_pending(const Notifier *n) {
        return n ? n->n_queue : 0;
}
