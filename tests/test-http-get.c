/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * http-get.c against a real TCP server on this loop: each case's server accepts one
 * connection, reads the request, answers with canned bytes (or not at all) and closes. And
 * http-poll.c, the grid of GETs built on it.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-get.h"
#include "http-poll.h"
#include "test-util.h"

typedef struct Server {
        sd_event *event;
        int listen_fd, fd;
        sd_event_source *accept_source, *io;
        const char *answer;             /* NULL: never answer */
        bool keep_open;                 /* after answering, leave the connection open */
        char request[4096];
        size_t request_size;
        unsigned connections;
} Server;

typedef struct Result {
        bool called;
        int r;
        unsigned status;
        char body[256];
        char error[128];
} Result;

static int on_server_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Server *srv = userdata;
        ssize_t n;

        n = read(fd, srv->request + srv->request_size, sizeof(srv->request) - 1 - srv->request_size);
        if (n <= 0)
                return 0;
        srv->request_size += (size_t) n;
        srv->request[srv->request_size] = 0;
        if (!strstr(srv->request, "\r\n\r\n") || !srv->answer)
                return 0;
        ASSERT_EQ(write(fd, srv->answer, strlen(srv->answer)), (ssize_t) strlen(srv->answer));
        srv->io = sd_event_source_disable_unref(srv->io);
        if (!srv->keep_open)
                srv->fd = safe_close(srv->fd);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Server *srv = userdata;

        srv->fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        ASSERT_TRUE(srv->fd >= 0);
        srv->connections++;
        ASSERT_OK(sd_event_add_io(srv->event, &srv->io, srv->fd, EPOLLIN, on_server_io, srv));
        return 0;
}

/* Listens on address (an IP literal) port 0; returns the port, 0 if the family is missing. */
static uint16_t server_start(Server *srv, sd_event *e, int family, const char *answer) {
        union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; } a = {};
        socklen_t len;

        *srv = (Server) { .event = e, .fd = -EBADF, .answer = answer };
        srv->listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_TRUE(srv->listen_fd >= 0);
        if (family == AF_INET) {
                a.in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                len = sizeof(a.in);
        } else {
                a.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
                len = sizeof(a.in6);
        }
        if (bind(srv->listen_fd, &a.sa, len) < 0) {
                srv->listen_fd = safe_close(srv->listen_fd);
                return 0;
        }
        ASSERT_TRUE(listen(srv->listen_fd, 8) >= 0);
        ASSERT_TRUE(getsockname(srv->listen_fd, &a.sa, &len) >= 0);
        ASSERT_OK(sd_event_add_io(e, &srv->accept_source, srv->listen_fd, EPOLLIN, on_accept, srv));
        return ntohs(family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

static void server_stop(Server *srv) {
        srv->accept_source = sd_event_source_disable_unref(srv->accept_source);
        srv->io = sd_event_source_disable_unref(srv->io);
        srv->fd = safe_close(srv->fd);
        srv->listen_fd = safe_close(srv->listen_fd);
}

static void on_done(HttpGet *g, int r, const HttpResponse *response, const char *error, void *userdata) {
        Result *res = userdata;

        ASSERT_FALSE(res->called);
        res->called = true;
        res->r = r;
        res->status = response->status;
        snprintf(res->body, sizeof(res->body), "%.*s", (int) response->size, response->body ?: "");
        snprintf(res->error, sizeof(res->error), "%s", error ?: "");
        http_get_free(g);               /* allowed from the callback */
}

/* Runs the loop until the callback came (or 5 s passed, a failure). */
static void run_until_called(sd_event *e, Result *res) {
        for (unsigned i = 0; i < 500 && !res->called; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_TRUE(res->called);
}

static void get(sd_event *e, const char *url, usec_t timeout, size_t body_max, Result *res) {
        HttpGet *g = NULL;

        *res = (Result) {};
        ASSERT_OK(http_get_start(&g, e, url, timeout, body_max, on_done, res));
        run_until_called(e, res);
}

/* Serves `answer` (NULL: none) on a fresh port of the family's loopback, GETs path there
 * through `host` ("127.0.0.1", "[::1]", "localhost"; NULL: the server's own address) and
 * stops. Returns false where the family is missing here. request: what the server read. */
static bool serve_and_get(int family, const char *host, const char *answer, const char *path, usec_t timeout,
                          size_t body_max, Result *res, char *request, size_t request_size) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char url[128];
        Server srv;
        uint16_t port;

        ASSERT_OK(sd_event_new(&e));
        port = server_start(&srv, e, family, answer);
        if (port == 0)
                return false;
        snprintf(url, sizeof(url), "http://%s:%u%s", host ?: family == AF_INET ? "127.0.0.1" : "[::1]",
                 port, path);
        get(e, url, timeout, body_max, res);
        if (request)
                snprintf(request, request_size, "%s", srv.request);
        ASSERT_EQ(srv.connections, 1);
        server_stop(&srv);
        return true;
}

TEST(answer) {
        char request[4096];
        Result res;

        ASSERT_TRUE(serve_and_get(AF_INET, NULL, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}",
                                  "/health", USEC_PER_SEC, 1024, &res, request, sizeof(request)));
        ASSERT_EQ(res.r, 0);
        ASSERT_EQ(res.status, 200);
        ASSERT_STREQ(res.body, "{\"status\":\"ok\"}");
        ASSERT_CONTAINS(request, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:");
        ASSERT_CONTAINS(request, "\r\nConnection: close\r\n\r\n");

        /* A 503 is an answer like any other; the body can be dropped. No path: "/". */
        ASSERT_TRUE(serve_and_get(AF_INET, NULL, "HTTP/1.1 503 Service Unavailable\r\n\r\nloading model", "",
                                  USEC_PER_SEC, 0, &res, request, sizeof(request)));
        ASSERT_EQ(res.r, 0);
        ASSERT_EQ(res.status, 503);
        ASSERT_STREQ(res.body, "");
        ASSERT_CONTAINS(request, "GET / HTTP/1.1\r\n");
}

/* An answer complete by its length while the engine keeps the connection: the client aborts it
 * (RST) rather than closing first, which would leave its port in TIME_WAIT for a minute. */
TEST(abort_not_time_wait) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char url[64], c;
        Server srv;
        Result res;
        uint16_t port;

        ASSERT_OK(sd_event_new(&e));
        port = server_start(&srv, e, AF_INET, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        srv.keep_open = true;
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
        get(e, url, USEC_PER_SEC, 16, &res);
        ASSERT_EQ(res.r, 0);
        ASSERT_STREQ(res.body, "ok");
        ASSERT_TRUE(srv.fd >= 0);
        ASSERT_EQ(poll(&(struct pollfd) { .fd = srv.fd, .events = POLLIN }, 1, 5000), 1);
        ASSERT_EQ(read(srv.fd, &c, 1), -1);
        ASSERT_EQ(errno, ECONNRESET);
        server_stop(&srv);
}

TEST(refused) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char url[64];
        Server srv;
        Result res;
        uint16_t port;

        ASSERT_OK(sd_event_new(&e));
        /* A port that was just free: nothing listens there. */
        port = server_start(&srv, e, AF_INET, NULL);
        server_stop(&srv);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
        get(e, url, USEC_PER_SEC, 0, &res);
        ASSERT_EQ(res.r, -ECONNREFUSED);
        ASSERT_STREQ(res.error, "Connection refused");
}

TEST(timeout) {
        Result res;

        ASSERT_TRUE(serve_and_get(AF_INET, NULL, NULL, "/health", 100 * USEC_PER_MSEC, 0, &res, NULL, 0));
        ASSERT_EQ(res.r, -ETIMEDOUT);
        ASSERT_STREQ(res.error, "timed out after 100 ms");
}

TEST(not_http) {
        Result res;

        ASSERT_TRUE(serve_and_get(AF_INET, NULL, "SSH-2.0-OpenSSH_9.2\r\n\r\n", "/health", USEC_PER_SEC, 0, &res,
                                  NULL, 0));
        ASSERT_EQ(res.r, -EBADMSG);
        ASSERT_STREQ(res.error, "not an HTTP/1.x status line");

        /* Closed without a byte, as an engine that accepts before it can serve. */
        ASSERT_TRUE(serve_and_get(AF_INET, NULL, "", "/health", USEC_PER_SEC, 0, &res, NULL, 0));
        ASSERT_EQ(res.r, -EBADMSG);
        ASSERT_STREQ(res.error, "the connection closed without an answer");

        ASSERT_TRUE(serve_and_get(AF_INET, NULL, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\nabc", "/metrics",
                                  USEC_PER_SEC, 1000, &res, NULL, 0));
        ASSERT_EQ(res.r, -EFBIG);
}

TEST(ipv6) {
        Result res;

        /* "localhost" tries 127.0.0.1 first (refused here, as a rule: a fresh port of ::1 is
         * rarely taken on 127.0.0.1), then ::1. */
        if (!serve_and_get(AF_INET6, "localhost", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "/health",
                           USEC_PER_SEC, 0, &res, NULL, 0)) {
                fprintf(stderr, "no ::1 here, skipped\n");
                return;
        }
        ASSERT_EQ(res.r, 0);
        ASSERT_EQ(res.status, 200);

        ASSERT_TRUE(serve_and_get(AF_INET6, NULL, "HTTP/1.1 204 No Content\r\n\r\n", "/health", USEC_PER_SEC, 0,
                                  &res, NULL, 0));
        ASSERT_EQ(res.r, 0);
        ASSERT_EQ(res.status, 204);
}

TEST(cancel) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char url[64];
        HttpGet *g = NULL;
        Server srv;
        Result res = {};
        uint16_t port;

        ASSERT_OK(sd_event_new(&e));
        port = server_start(&srv, e, AF_INET, NULL);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
        ASSERT_OK(http_get_start(&g, e, url, 50 * USEC_PER_MSEC, 0, on_done, &res));
        ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        http_get_free(g);
        for (unsigned i = 0; i < 10; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_FALSE(res.called);
        server_stop(&srv);
}

TEST(url) {
        HttpUrl u;

        ASSERT_OK(http_url_parse("http://127.0.0.1:8080/health", &u));
        ASSERT_EQ(u.address.families[0], AF_INET);
        ASSERT_EQ(u.address.families[1], AF_UNSPEC);
        ASSERT_EQ(u.address.port, 8080);
        ASSERT_STREQ(u.host, "127.0.0.1:8080");
        ASSERT_STREQ(u.path, "/health");
        http_url_done(&u);

        ASSERT_OK(http_url_parse("http://[::1]:65535", &u));
        ASSERT_EQ(u.address.families[0], AF_INET6);
        ASSERT_STREQ(u.host, "[::1]:65535");
        ASSERT_STREQ(u.path, "/");
        http_url_done(&u);

        ASSERT_OK(http_url_parse("http://localhost:1/v1/models?x=1", &u));
        ASSERT_EQ(u.address.families[0], AF_INET);
        ASSERT_EQ(u.address.families[1], AF_INET6);
        ASSERT_STREQ(u.path, "/v1/models?x=1");
        http_url_done(&u);

        ASSERT_ERROR(http_url_parse("https://127.0.0.1:8080/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://example.com:8080/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1:0/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1:65536/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1:80x/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://[::1/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://::1:80/", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1:80/a b", &u), EINVAL);
        ASSERT_ERROR(http_url_parse("http://127.0.0.1:80/a\r\nX: y", &u), EINVAL);
}

static void on_poll_done(HttpGet *g, int r, const HttpResponse *response, const char *error, void *userdata) {
        HttpPoll *p = userdata;

        ASSERT_TRUE(g == p->running);
        ASSERT_OK(r);
        ASSERT_EQ(response->status, 200u);
        http_poll_finished(p);
}

static int on_poll_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        return 0;
}

TEST(poll) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const usec_t interval = 200 * USEC_PER_MSEC;
        HttpPoll p;
        uint64_t at;
        char url[64];
        Server srv;
        uint16_t port;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_ERROR(http_poll_init(&p, e, "http://127.0.0.1:1/", 0), EINVAL);
        http_poll_done(&p);
        ASSERT_ERROR(http_poll_init(&p, e, "http://127.0.0.1:1/", USEC_INFINITY), EINVAL);
        http_poll_done(&p);

        port = server_start(&srv, e, AF_INET, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
        ASSERT_OK(http_poll_init(&p, e, url, interval));

        /* The first slot is one interval after the start. */
        ASSERT_OK(http_poll_start(&p, USEC_PER_MSEC, on_poll_tick, NULL, "test-tick"));
        ASSERT_OK(sd_event_source_get_time(p.tick, &at));
        ASSERT_EQ(at, p.start_usec + interval);

        /* A late tick: the slots already past are skipped, not made up. */
        ASSERT_OK(http_poll_arm_next(&p, p.start_usec + 2 * interval + interval / 2));
        ASSERT_OK(sd_event_source_get_time(p.tick, &at));
        ASSERT_EQ(at, p.start_usec + 3 * interval);
        ASSERT_OK(http_poll_arm_next(&p, p.start_usec + 3 * interval));
        ASSERT_OK(sd_event_source_get_time(p.tick, &at));
        ASSERT_EQ(at, p.start_usec + 4 * interval);

        /* A GET through it, ended by its callback. */
        ASSERT_OK(http_poll_launch(&p, USEC_PER_SEC, 16, on_poll_done, &p));
        ASSERT_TRUE(p.running);
        for (unsigned i = 0; i < 500 && p.running; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_FALSE(p.running);
        ASSERT_EQ(srv.connections, 1u);

        /* Done with a GET in flight: cancelled, its callback never called (on_poll_done would
         * fail: nothing answers). */
        server_stop(&srv);
        ASSERT_OK(http_poll_launch(&p, USEC_PER_SEC, 0, on_poll_done, &p));
        http_poll_done(&p);
        ASSERT_TRUE(!p.running && !p.tick && !p.url && !p.event);
        ASSERT_OK(sd_event_run(e, 50 * USEC_PER_MSEC));
}

DEFINE_TEST_MAIN
