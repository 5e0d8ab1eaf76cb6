/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "build-config.h"
#include "http-get.h"
#include "shared/string-util.h"

#define READ_CHUNK (16U * 1024U)
#define READS_PER_DISPATCH 4            /* then the loop serves others; epoll calls again */

struct HttpGet {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *timer;
        int fd;
        HttpUrl url;
        unsigned next_address;          /* index into url.address.families of the next one to try */
        int pending_error;              /* no address could be connected to at start: said at once */
        bool connected;
        bool peer_closed;               /* read the end of the connection */

        char *request;
        size_t request_size, sent;
        HttpResponse response;
        usec_t timeout;

        HttpGetCallback callback;
        void *userdata;
        char error[128];
};

void http_url_done(HttpUrl *u) {
        u->host = mfree(u->host);
        u->path = mfree(u->path);
}

int http_url_parse(const char *url, HttpUrl *ret) {
        const char *h, *path;
        HttpUrl u = {};

        if (strncmp(url, "http://", 7) != 0)
                return -EINVAL;
        h = url + 7;
        if (host_port_parse(h, &path, &u.address) < 0 || (*path && *path != '/'))
                return -EINVAL;
        for (const char *c = path; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f || *c == '#')
                        return -EINVAL;

        u.host = strndup(h, (size_t) (path - h));
        u.path = strdup(*path ? path : "/");
        if (!u.host || !u.path) {
                http_url_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

typedef union SockaddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} SockaddrUnion;

/* The family's address addr (in_addr or in6_addr; NULL: the wildcard) and port; returns its size. */
static socklen_t sockaddr_make(SockaddrUnion *u, int family, const unsigned char *addr, uint16_t port) {
        if (family == AF_INET) {
                u->in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port) };
                if (addr)
                        memcpy(&u->in.sin_addr, addr, sizeof(u->in.sin_addr));
                return sizeof(u->in);
        }
        u->in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        if (addr)
                memcpy(&u->in6.sin6_addr, addr, sizeof(u->in6.sin6_addr));
        return sizeof(u->in6);
}

/* A non-blocking socket bound to a port of the kernel's choice that is not peer_port. */
static int socket_away_from_port(int family, uint16_t peer_port) {
        SockaddrUnion local, bound;
        socklen_t len = sockaddr_make(&local, family, NULL, 0);

        for (unsigned attempt = 0; attempt < 8; attempt++) {
                _cleanup_close_ int fd = -EBADF;
                socklen_t blen = sizeof(bound);

                fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (bind(fd, &local.sa, len) < 0 || getsockname(fd, &bound.sa, &blen) < 0)
                        return -errno;
                if (ntohs(family == AF_INET ? bound.in.sin_port : bound.in6.sin6_port) != peer_port)
                        return TAKE_FD(fd);
                /* The kernel picked the engine's port: let go of it at once and pick again. */
        }
        return -EADDRINUSE;
}

/*
 * Closes the connection. Where the engine has not closed its side yet (an answer complete by
 * its length, a timeout), the close is an abort (RST): a normal close would leave this side in
 * TIME_WAIT for a minute, holding a local port that bind() then cannot hand out again, one per
 * probe. Where the engine closed first, the TIME_WAIT is the engine's, as with any
 * "Connection: close" answer.
 */
static void get_close(HttpGet *g) {
        if (g->fd >= 0 && g->connected && !g->peer_closed)
                (void) setsockopt(g->fd, SOL_SOCKET, SO_LINGER, &(struct linger) { .l_onoff = 1 },
                                  sizeof(struct linger));
        g->fd = safe_close(g->fd);
}

static void get_finish(HttpGet *g, int r, const char *error) {
        g->io = sd_event_source_disable_unref(g->io);
        get_close(g);
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        if (r < 0 && error != g->error)
                snprintf(g->error, sizeof(g->error), "%s", strna(error));
        g->callback(g, r, &g->response, r < 0 ? g->error : NULL, g->userdata);
        /* g may be gone */
}

static void get_fail_errno(HttpGet *g, int r) {
        snprintf(g->error, sizeof(g->error), "%s", strerror(-r));
        get_finish(g, r, g->error);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Connects to the next address there is. 0: connecting (or connected); < 0: none was left. */
static int get_connect_next(HttpGet *g, int error) {
        while (g->next_address < ELEMENTSOF(g->url.address.families) &&
               g->url.address.families[g->next_address] != AF_UNSPEC) {
                unsigned i = g->next_address++;
                int family = g->url.address.families[i], r;
                SockaddrUnion peer;
                socklen_t len = sockaddr_make(&peer, family, g->url.address.addresses[i], g->url.address.port);

                g->io = sd_event_source_disable_unref(g->io);
                g->fd = safe_close(g->fd);
                r = socket_away_from_port(family, g->url.address.port);
                if (r < 0) {
                        error = r;
                        continue;
                }
                g->fd = r;
                if (connect(g->fd, &peer.sa, len) < 0 && errno != EINPROGRESS) {
                        error = -errno;
                        continue;
                }
                r = sd_event_add_io(g->event, &g->io, g->fd, EPOLLOUT | EPOLLIN, on_io, g);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(g->io, "http-get");
                return 0;
        }
        return error;
}

static int get_send(HttpGet *g) {
        while (g->sent < g->request_size) {
                ssize_t n = send(g->fd, g->request + g->sent, g->request_size - g->sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
                g->sent += (size_t) n;
        }
        return sd_event_source_set_io_events(g->io, EPOLLIN);
}

/* 1: the answer is complete; 0: more to come; < 0: failed (g->response.error for -EBADMSG). */
static int get_receive(HttpGet *g) {
        char buf[READ_CHUNK];

        for (unsigned i = 0; i < READS_PER_DISPATCH; i++) {
                ssize_t n = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT);
                int r;

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                if (n == 0) {
                        g->peer_closed = true;
                        return http_response_eof(&g->response);
                }
                r = http_response_feed(&g->response, buf, (size_t) n);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpGet *g = userdata;
        int r;

        if (!g->connected) {
                int error = 0;
                socklen_t len = sizeof(error);

                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error == 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
                        return 0;
                if (error != 0) {
                        r = get_connect_next(g, -error);
                        if (r < 0)
                                get_fail_errno(g, r);
                        return 0;
                }
                g->connected = true;
        }

        r = get_send(g);
        if (r < 0) {
                get_fail_errno(g, r);
                return 0;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        r = get_receive(g);
        if (r > 0)
                get_finish(g, 0, NULL);
        else if (r == -EBADMSG || r == -EFBIG)
                get_finish(g, r, g->response.error);
        else if (r < 0)
                get_fail_errno(g, r);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpGet *g = userdata;

        if (g->pending_error < 0) {
                get_fail_errno(g, g->pending_error);
                return 0;
        }

        snprintf(g->error, sizeof(g->error), "timed out after %" PRIu64 " ms", g->timeout / USEC_PER_MSEC);
        get_finish(g, -ETIMEDOUT, g->error);
        return 0;
}

int http_get_start(HttpGet **ret, sd_event *event, const char *url, usec_t timeout, size_t body_max,
                   HttpGetCallback cb, void *userdata) {
        _cleanup_(http_get_freep) HttpGet *g = NULL;
        int r;

        g = malloc(sizeof(HttpGet));
        if (!g)
                return -ENOMEM;
        *g = (HttpGet) {
                .event = sd_event_ref(event),
                .fd = -EBADF,
                .timeout = MAX(timeout, USEC_PER_MSEC),
                .callback = cb,
                .userdata = userdata,
        };
        http_response_init(&g->response, body_max);

        r = http_url_parse(url, &g->url);
        if (r < 0)
                return r;
        r = asprintf(&g->request,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: pool-managerd/" PACKAGE_VERSION "\r\n"
                     "Accept: */*\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     g->url.path, g->url.host);
        if (r < 0) {
                g->request = NULL;
                return -ENOMEM;
        }
        g->request_size = (size_t) r;

        r = sd_event_add_time_relative(event, &g->timer, CLOCK_MONOTONIC, g->timeout, USEC_PER_MSEC,
                                       on_timeout, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->timer, "http-get-timeout");

        /* A connect that fails at once (no such address here, ...) is an answer like any other,
         * told through the callback from the loop, as when it fails later. */
        r = get_connect_next(g, -EINVAL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                g->pending_error = r;
                r = sd_event_source_set_time(g->timer, 1);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(g);
        return 0;
}

HttpGet *http_get_free(HttpGet *g) {
        if (!g)
                return NULL;
        sd_event_source_disable_unref(g->io);
        sd_event_source_disable_unref(g->timer);
        get_close(g);
        http_response_done(&g->response);
        http_url_done(&g->url);
        free(g->request);
        sd_event_unref(g->event);
        return mfree(g);
}
