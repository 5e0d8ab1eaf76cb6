/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * libmicrohttpd glue. MHD runs "external epoll": it keeps one epoll fd for its connections and
 * its inter-thread channel (ITC, which MHD_ALLOW_SUSPEND_RESUME implies), and we watch that fd
 * as an sd-event io source. MHD_run() never blocks in this mode (it polls its epoll set with a
 * zero timeout), so every callback returns quickly; after each run the one-shot timer is
 * re-armed from MHD_get_timeout(), which is how idle connections are timed out and how MHD
 * asks to be run again at once (timeout 0) when it has work queued that the epoll set does not
 * show (edge-triggered sockets with data left).
 *
 * The listening socket is ours, not MHD's (MHD_USE_NO_LISTEN_SOCKET): we accept and hand each
 * connection to MHD with MHD_add_connection(). MHD 0.9.75 takes its own listening socket out of
 * its epoll set when it reaches the connection limit and puts it back only at the start of a
 * later MHD_run(); when the last connections then close, nothing runs MHD again (no event on
 * its epoll fd, no timeout without connections), the listening socket stays out for good and
 * the kernel's accept queue fills up. Accepting ourselves also means that a connection over the
 * limit is answered, 503 with Retry-After, instead of waiting unseen in the accept queue. Such
 * an answer is sent at once (the socket's send buffer is empty), the write side is shut down,
 * and the connection lingers, reading and discarding, until the client closes it or a second
 * has passed: closing a socket with unread input makes the kernel send RST, which may destroy
 * the answer before the client has read it.
 *
 * Requests that wait for the manager (preload, stop) are suspended: MHD takes the connection
 * out of its epoll set and out of the timeout list, so a 2-minute preload is neither timed out
 * nor polled. The manager's callback stores the answer and resumes the connection; MHD then
 * calls the access handler again, which queues the stored answer. Resuming writes to the ITC,
 * which wakes the io source, and a defer source runs MHD as well, so the answer leaves in the
 * same loop iteration.
 *
 * Streamed answers (GET /events) are chunked answers from a content reader that hands MHD what
 * is queued and, when nothing is, suspends the connection from inside the reader (which MHD
 * allows) and returns 0; the next write resumes it. A suspended connection is polled by nobody,
 * so its socket is watched for EPOLLRDHUP by a source of our own: a client that hangs up is
 * noticed at once, not at the next write. Such a connection is "routed" for its whole life:
 * the request deadline and the eviction below never touch it.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "http-api.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "shared/event-util.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/list.h"
#include "shared/string-util.h"

/* Limits. A suspended preload holds its connection (and counts against MaxConnections=)
 * for up to HealthTimeout=. The memory limit bounds MHD's per-connection pool (request line,
 * headers, read buffer); bodies are collected outside it, up to HTTP_BODY_MAX. */
#define HTTP_CONNECTION_MEMORY_LIMIT ((size_t) 16U * 1024U)   /* MHD zeroes it per request */
#define HTTP_CONNECTION_TIMEOUT_SEC 30U
/* Bodies over the cap are read and dropped, then answered 413. MHD lets us answer only before
 * the body is read or after all of it: an early answer makes MHD close the connection while the
 * client still sends, which may reset it before the client reads the answer. So a 413 is sent up
 * front only to clients that wait for "100 Continue" or announce more than this; a chunked body,
 * which announces nothing, is read to its end, within RequestTimeoutSec=. */
#define HTTP_BODY_DRAIN_MAX ((size_t) 1024U * 1024U)
#define HTTP_TOKEN_MAX ((size_t) 4096U)

/* Connections over the limit: at most this many linger (each holds an fd) for at most this
 * long; more are closed right after their 503. */
#define HTTP_OVERFLOW_LINGER_MAX 256U
#define HTTP_OVERFLOW_LINGER_USEC (1 * USEC_PER_SEC)
/* File descriptors kept for everything but HTTP: the bus, the journal, probes, state files. */
#define HTTP_FD_RESERVE 128U
/* Accepted per wake-up of the listening socket (level-triggered: the rest come next time), so
 * that a burst of connections cannot hold up the other sources of the loop. */
#define HTTP_ACCEPT_BATCH 64U
/* When accept() fails for want of resources (fds, memory), the next try comes this much later. */
#define HTTP_ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)
#define HTTP_OVERFLOW_LOG_INTERVAL_USEC (10 * USEC_PER_SEC)
/* Connections we shut down (slow, or closed to make room) stay MHD's until its next run: room for
 * them above MaxConnections= in MHD's own limit and in the file descriptors. */
#define HTTP_CLOSING_SLACK 256U

typedef union SockaddrUnion {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
} SockaddrUnion;

/* Every connection MHD serves, oldest request phase first (see "Slow clients" below). */
typedef struct HttpConn HttpConn;
struct HttpConn {
        HttpServer *server;
        struct MHD_Connection *connection;
        int fd;
        SockaddrUnion peer;             /* for MaxConnectionsPerAddress= */
        usec_t since;                   /* CLOCK_MONOTONIC: accepted, or its last request answered */
        bool routed;                    /* its request is complete and being handled: no deadline */
        bool closing;                   /* shut down by us; MHD has not noticed yet */
        HttpConn *prev, *next;
};

typedef struct HttpOverflow HttpOverflow;
struct HttpOverflow {
        HttpServer *server;
        int fd;
        sd_event_source *io_source;
        usec_t deadline;                /* CLOCK_MONOTONIC: closed then at the latest */
        HttpOverflow *prev, *next;      /* oldest first, so deadlines ascend */
};

struct HttpServer {
        Manager *manager;
        struct MHD_Daemon *daemon;

        sd_event_source *io_source;     /* MHD's epoll fd */
        sd_event_source *timer_source;  /* MHD_get_timeout(), one-shot */
        sd_event_source *run_source;    /* defer: run MHD after a connection was resumed or added */

        int listen_fd;                  /* ours (MHD_USE_NO_LISTEN_SOCKET) */
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;   /* re-enables listen_source after EMFILE & co */
        unsigned connection_limit;      /* [HTTP] MaxConnections=, fitted to RLIMIT_NOFILE */
        unsigned per_address_limit;     /* [HTTP] MaxConnectionsPerAddress=, 0: none */
        usec_t request_timeout;         /* [HTTP] RequestTimeoutSec= */
        HttpConn *conns_head, *conns_tail;
        unsigned n_conns, n_closing;
        sd_event_source *deadline_timer; /* closes connections past their request deadline */
        uint64_t n_timed_out, n_evicted;

        char *overflow_reply;           /* the 503, complete with status line and headers */
        char *timeout_reply;            /* the 408 of a connection closed for its slow request */
        size_t timeout_reply_size;
        size_t overflow_reply_size;
        HttpOverflow *overflow_head, *overflow_tail;
        unsigned n_overflow;
        sd_event_source *overflow_timer;        /* closes lingering connections past their deadline */
        uint64_t n_refused;             /* connections answered 503 since start */
        uint64_t n_refused_logged;      /* ... of which the last warning told */
        usec_t overflow_logged_usec;
        usec_t accept_error_logged_usec;

        char *token;                    /* NULL: no authentication */
        char *address;                  /* what we listen on, for messages */
        char *mhd_error;                /* MHD's last log message, for start-up errors */

        /* every request MHD presented to us and not yet completed, newest first */
        HttpRequest *requests_head, *requests_tail;
};

static int sockaddr_format(const struct sockaddr *sa, socklen_t len, char **ret) {
        char buf[INET6_ADDRSTRLEN];
        char *s;

        if (!sa || len < sizeof(sa_family_t))
                return -EINVAL;

        switch (sa->sa_family) {

        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                if (!inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)))
                        return -errno;
                if (asprintf(&s, "%s:%u", buf, (unsigned) ntohs(in->sin_port)) < 0)
                        return -ENOMEM;
                break;
        }

        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

                if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)))
                        return -errno;
                if (asprintf(&s, "[%s]:%u", buf, (unsigned) ntohs(in6->sin6_port)) < 0)
                        return -ENOMEM;
                break;
        }

        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *) sa;
                size_t n = len > offsetof(struct sockaddr_un, sun_path) ?
                        len - offsetof(struct sockaddr_un, sun_path) : 0;
                int k;

                if (n == 0 || (un->sun_path[0] == '\0' && n == 1))
                        k = asprintf(&s, "unix:(unnamed)");
                else if (un->sun_path[0] == '\0')      /* abstract */
                        k = asprintf(&s, "unix:@%.*s", (int) (n - 1), un->sun_path + 1);
                else
                        k = asprintf(&s, "unix:%.*s", (int) strnlen(un->sun_path, n), un->sun_path);
                if (k < 0)
                        return -ENOMEM;
                break;
        }

        default:
                if (asprintf(&s, "(address family %i)", sa->sa_family) < 0)
                        return -ENOMEM;
        }

        *ret = s;
        return 0;
}

/* Whether only this machine can reach the address. AF_UNIX counts: file permissions guard it. */
static bool sockaddr_is_loopback(const struct sockaddr *sa) {
        switch (sa->sa_family) {

        case AF_INET:
                return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;

        case AF_INET6: {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;

                return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }

        case AF_UNIX:
                return true;

        default:
                return false;
        }
}


/* Listen= (config.c has checked it): its first address; "localhost" is 127.0.0.1. */
static int listen_address_parse(const char *s, SockaddrUnion *ret, socklen_t *ret_len) {
        const char *end;
        SockaddrUnion u = {};
        HostPort hp;

        if (host_port_parse(s, &end, &hp) < 0 || *end != '\0')
                return -EINVAL;
        if (hp.families[0] == AF_INET6) {
                u.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(hp.port) };
                memcpy(&u.in6.sin6_addr, hp.addresses[0], sizeof(u.in6.sin6_addr));
                *ret_len = sizeof(struct sockaddr_in6);
        } else {
                u.in = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(hp.port) };
                memcpy(&u.in.sin_addr, hp.addresses[0], sizeof(u.in.sin_addr));
                *ret_len = sizeof(struct sockaddr_in);
        }
        *ret = u;
        return 0;
}

static int listen_socket_bind(const SockaddrUnion *u, socklen_t len) {
        _cleanup_close_ int fd = -1;
        const int one = 1;

        fd = socket(u->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A restarted daemon must not wait for TIME_WAIT connections of its predecessor. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (u->sa.sa_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, &u->sa, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int api_token_load(const Config *c, char **ret) {
        _cleanup_free_ char *text = NULL;
        const char *e;
        size_t size;
        int r;

        if (c->api_token_file) {
                r = read_full_file(c->api_token_file, HTTP_TOKEN_MAX, &text, &size);
                if (r == -EFBIG)
                        return log_error_errno(r, "API token file %s is larger than %zu bytes.",
                                               c->api_token_file, HTTP_TOKEN_MAX);
                if (r < 0)
                        return log_error_errno(r, "Failed to read API token file %s: %m", c->api_token_file);
                if (memchr(text, '\0', size))
                        return log_error_errno(EINVAL, "API token file %s contains a NUL byte.",
                                               c->api_token_file);
                strstrip_trailing(text);
                if (isempty(text))
                        return log_error_errno(EINVAL, "API token file %s is empty.", c->api_token_file);
                for (const char *p = text; *p; p++)
                        if ((unsigned char) *p <= ' ' || *p == 0x7f)
                                return log_error_errno(EINVAL, "API token file %s: the token contains "
                                                       "whitespace or control characters.",
                                                       c->api_token_file);
                *ret = TAKE_PTR(text);
                return 1;
        }

        e = getenv("LLORCH_API_TOKEN");
        if (!isempty(e)) {
                text = strdup(e);
                if (!text)
                        return log_oom();
                *ret = TAKE_PTR(text);
                return 1;
        }

        *ret = NULL;
        return 0;
}

static void request_free(HttpRequest *r) {
        HttpServer *s;

        if (!r)
                return;
        s = r->server;
        LIST_REMOVE(s->requests_head, s->requests_tail, r);

        free(r->client);
        free(r->body);
        free(r->reply);
        free(r->reply_header_name);
        free(r->reply_header_value);
        free(r->correlation_id);
        free(r->pool_id);
        free(r->stream);
        sd_event_source_disable_unref(r->stream_hangup_source);
        free(r);
}

static int request_new(HttpServer *s, struct MHD_Connection *connection, const char *url,
                       const char *method, HttpRequest **ret) {
        const union MHD_ConnectionInfo *info;
        HttpRequest *r;

        r = calloc(1, sizeof(HttpRequest));
        if (!r)
                return -ENOMEM;
        *r = (HttpRequest) {
                .server = s,
                .manager = s->manager,
                .connection = connection,
                .method = method,
                .path = url,
        };

        /* MHD does not say how long the address is; the inet families have fixed sizes. */
        info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
                (void) sockaddr_format(info->client_addr, sizeof(struct sockaddr_in), &r->client);
        else if (info && info->client_addr && info->client_addr->sa_family == AF_INET6)
                (void) sockaddr_format(info->client_addr, sizeof(struct sockaddr_in6), &r->client);
        if (!r->client)
                r->client = strdup(info && info->client_addr && info->client_addr->sa_family == AF_UNIX ?
                                   "unix" : "(unknown client)");
        if (!r->client) {
                free(r);
                return -ENOMEM;
        }

        LIST_PREPEND(s->requests_head, s->requests_tail, r);

        *ret = r;
        return 0;
}

static int request_append_body(HttpRequest *r, const char *data, size_t size) {
        char *n;

        if (r->body_too_large || size > HTTP_BODY_MAX - r->body_size) {
                /* Over the cap: drop what we have and count the rest. */
                r->body_too_large = true;
                r->body = mfree(r->body);
                r->body_discarded += r->body_size + size;
                r->body_size = 0;
                return 0;
        }

        n = realloc(r->body, r->body_size + size + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n + r->body_size, data, size);
        r->body_size += size;
        n[r->body_size] = '\0';
        r->body = n;
        return 0;
}

/* Whether the announced body is over the cap and the 413 can go out before it is read. */
static bool request_refuse_body_early(HttpRequest *r) {
        const char *length, *expect;
        unsigned long long n;
        char *end;

        length = http_request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!length)
                return false;
        errno = 0;
        n = strtoull(length, &end, 10);
        if (errno != 0 || end == length || *end != '\0' || n <= HTTP_BODY_MAX)
                return false;

        expect = http_request_header(r, MHD_HTTP_HEADER_EXPECT);
        return n > HTTP_BODY_DRAIN_MAX || (expect && strcasecmp(expect, "100-continue") == 0);
}

/* MHD asks for more of a streamed answer: what is queued, or nothing for now (the connection is
 * suspended until the next write resumes it), or the end. */
static ssize_t on_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        HttpRequest *r = cls;
        size_t n;

        if (r->stream_failed)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        n = MIN(max, r->stream_size - r->stream_sent);
        if (n > 0) {
                memcpy(buf, r->stream + r->stream_sent, n);
                r->stream_sent += n;
                if (r->stream_sent == r->stream_size)
                        r->stream_sent = r->stream_size = 0;
                return (ssize_t) n;
        }
        if (r->stream_ended)
                return MHD_CONTENT_READER_END_OF_STREAM;

        /* MHD allows suspending from a content reader; returning 0 then leaves the connection
         * waiting for data, out of MHD's epoll set and timeout list until resumed. */
        r->suspended = true;
        MHD_suspend_connection(r->connection);
        return 0;
}

static enum MHD_Result request_queue_reply(HttpRequest *r) {
        struct MHD_Response *response;
        enum MHD_Result ret;
        const char *body = r->reply ?: "";

        if (r->streaming)
                /* 4 KiB blocks at most: MHD's write buffer lives in the connection's memory pool. */
                response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, on_stream_read, r, NULL);
        else if (r->reply_static)
                response = MHD_create_response_from_buffer(r->reply_static_size, (void *) r->reply_static,
                                                           MHD_RESPMEM_PERSISTENT);
        else
                response = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!response)
                return MHD_NO;

        for (const char *const *h = r->reply_static_headers; h && h[0]; h += 2)
                if (MHD_add_response_header(response, h[0], h[1]) != MHD_YES) {
                        MHD_destroy_response(response);
                        return MHD_NO;
                }

        if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    r->reply_content_type ?: "application/json") != MHD_YES ||
            MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
            (r->reply_header_name &&
             MHD_add_response_header(response, r->reply_header_name, r->reply_header_value) != MHD_YES) ||
            (r->correlation_id &&
             MHD_add_response_header(response, HTTP_HEADER_CORRELATION_ID, r->correlation_id) != MHD_YES)) {
                MHD_destroy_response(response);
                return MHD_NO;
        }

        ret = MHD_queue_response(r->connection, r->status, response);
        MHD_destroy_response(response);

        log_struct(LOG_DEBUG,
                   "%s%s", r->correlation_id ? "CORRELATION_ID=" : "", strempty(r->correlation_id),
                   LOG_MESSAGE("HTTP %s %s from %s: %u", r->method, r->path, r->client, r->status),
                   NULL);
        return ret;
}

static void http_server_schedule_run(HttpServer *s) {
        if (s->run_source)
                (void) sd_event_source_set_enabled(s->run_source, SD_EVENT_ONESHOT);
}

/* An answer is set: a deferred request's connection goes on. */
static void request_resume(HttpRequest *r) {
        if (!r->suspended)
                return;
        r->suspended = false;
        MHD_resume_connection(r->connection);
        http_server_schedule_run(r->server);
}

int http_request_reply_full(HttpRequest *r, unsigned status, json_object *body,
                            const char *header_name, const char *header_value) {
        const char *text = NULL;
        int ret = 0;

        if (r->replied)
                return 0;
        r->replied = true;
        r->status = status;

        if (body) {
                text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
                if (!text || asprintf(&r->reply, "%s\n", text) < 0) {
                        r->reply = NULL;
                        ret = -ENOMEM;
                }
        }
        if (ret >= 0 && header_name) {
                r->reply_header_name = strdup(header_name);
                r->reply_header_value = strdup(header_value);
                if (!r->reply_header_name || !r->reply_header_value)
                        ret = -ENOMEM;
        }
        if (ret < 0) {
                /* Send a bare 500 rather than half an answer. */
                r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                r->reply = mfree(r->reply);
                r->reply_header_name = mfree(r->reply_header_name);
                r->reply_header_value = mfree(r->reply_header_value);
        }

        request_resume(r);
        return ret;
}

/* Takes the answer's status and Content-Type; false when the request was answered already. */
static bool request_answer(HttpRequest *r, unsigned status, const char *content_type) {
        if (r->replied)
                return false;
        r->replied = true;
        r->status = status;
        r->reply_content_type = content_type;
        return true;
}

int http_request_reply_text(HttpRequest *r, unsigned status, const char *content_type, char *text) {
        if (!request_answer(r, status, content_type)) {
                free(text);
                return 0;
        }
        r->reply = text;
        request_resume(r);
        return 0;
}

int http_request_reply_static(HttpRequest *r, unsigned status, const char *content_type, const char *body,
                              size_t size, const char *const *headers) {
        if (!request_answer(r, status, content_type))
                return 0;
        r->reply_static = body;
        r->reply_static_size = size;
        r->reply_static_headers = headers;
        request_resume(r);
        return 0;
}

/* The client closed its end of a stream. A suspended connection is out of MHD's epoll set, so
 * MHD would notice only at the next write; the stream ends now instead, and its place (streams are
 * capped) is free at once. */
static int on_stream_hangup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        HttpRequest *r = userdata;

        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
        r->stream_failed = true;
        request_resume(r);
        return 0;
}

int http_request_reply_stream(HttpRequest *r, const char *content_type, HttpStreamCloseCallback on_close,
                              void *userdata) {
        const union MHD_ConnectionInfo *info;
        int k;

        if (r->replied)
                return -EALREADY;
        info = MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info && info->connect_fd >= 0) {
                /* EPOLLRDHUP alone: the client's requests (it sends none) do not wake us. */
                k = sd_event_add_io(r->manager->event, &r->stream_hangup_source, info->connect_fd, EPOLLRDHUP,
                                    on_stream_hangup, r);
                if (k < 0)
                        return k;
                (void) sd_event_source_set_description(r->stream_hangup_source, "http-stream-hangup");
        }
        (void) request_answer(r, MHD_HTTP_OK, content_type);
        r->streaming = true;
        r->stream_close = on_close;
        r->stream_userdata = userdata;
        request_resume(r);
        return 0;
}

int http_request_stream_write(HttpRequest *r, const char *data, size_t size) {
        char *n;

        if (!r->streaming || r->stream_ended || r->stream_failed)
                return -EPIPE;

        /* What was sent goes; the rest moves to the front. */
        if (r->stream_sent > 0) {
                memmove(r->stream, r->stream + r->stream_sent, r->stream_size - r->stream_sent);
                r->stream_size -= r->stream_sent;
                r->stream_sent = 0;
        }
        if (size > HTTP_STREAM_BUFFER_MAX - r->stream_size) {
                /* The client reads slower than we write: drop it rather than buffer without end. */
                r->stream_failed = true;
                r->stream = mfree(r->stream);
                r->stream_size = 0;
                request_resume(r);
                return -ENOBUFS;
        }
        n = realloc(r->stream, r->stream_size + size);
        if (!n)
                return -ENOMEM;
        memcpy(n + r->stream_size, data, size);
        r->stream = n;
        r->stream_size += size;
        request_resume(r);
        return 0;
}

void http_request_stream_end(HttpRequest *r) {
        if (!r->streaming || r->stream_ended)
                return;
        r->stream_ended = true;
        request_resume(r);
}

unsigned http_server_connection_limit(const HttpServer *s) {
        return s->connection_limit;
}

int http_request_reply_error(HttpRequest *r, PoolErrorCode code, const char *format, ...) {
        _cleanup_(pool_error_done) PoolError e = POOL_ERROR_NULL;
        va_list ap;

        va_start(ap, format);
        (void) pool_error_setv(&e, code, format, ap);
        va_end(ap);
        return http_request_reply_pool_error(r, &e);
}

int http_request_reply_pool_error_full(HttpRequest *r, const PoolError *e, const char *header_name,
                                       const char *header_value) {
        const PoolErrorInfo *info = pool_error_info(e->code);
        _cleanup_json_ json_object *o = NULL;

        o = json_object_new_object();
        if (!o || json_add_string(o, "error", pool_error_message(e)) < 0 ||
            json_add_string(o, "code", info->code) < 0) {
                (void) http_request_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
                return -ENOMEM;
        }
        return http_request_reply_full(r, info->http_status, o, header_name, header_value);
}

void http_request_defer(HttpRequest *r, HttpRequestAbandonCallback abandon) {
        r->deferred = true;
        r->abandon = abandon;
}

void http_request_hold(HttpRequest *r) {
        r->held = true;
        http_request_defer(r, NULL);
}

void http_server_release_held(HttpServer *s) {
        /* Routing a request may answer it (which resumes its connection) or defer it again; it
         * never frees one (MHD does, from MHD_run()), so the list stays intact meanwhile. */
        for (HttpRequest *r = s->requests_head; r; r = r->next) {
                if (!r->held)
                        continue;
                r->held = false;
                r->deferred = false;
                http_api_handle(r);
        }
}

const char *http_request_header(HttpRequest *r, const char *name) {
        return MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND, name);
}

bool http_request_authorized(HttpRequest *r) {
        const char *h, *given;

        if (!r->server->token)
                return true;

        h = http_request_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h)
                return false;
        /* RFC 9110: the scheme is case-insensitive. */
        if (strncasecmp(h, "Bearer ", 7) != 0)
                return false;
        given = h + 7;
        given += strspn(given, " ");

        /* Time depends on the length of what the client sent only. */
        return streq_consttime(given, r->server->token);
}

static void conn_routed(struct MHD_Connection *connection);
static void conn_answered(HttpServer *s, struct MHD_Connection *connection);

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        HttpServer *s = cls;
        HttpRequest *r = *con_cls;

        if (!r) {
                /* First call: headers only. The body (if any) follows in later calls. */
                if (request_new(s, connection, url, method, &r) < 0) {
                        log_oom();
                        return MHD_NO;
                }
                *con_cls = r;

                if (request_refuse_body_early(r)) {
                        (void) http_request_reply_error(r, POOL_ERROR_BODY_TOO_LARGE,
                                                        "request body too large (limit %u bytes)", HTTP_BODY_MAX);
                        return request_queue_reply(r);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                if (request_append_body(r, upload_data, *upload_data_size) < 0) {
                        log_oom();
                        return MHD_NO;
                }
                *upload_data_size = 0;
                /* Over the cap, the rest is read and dropped, however long it is (a chunked body
                 * announces no length): RequestTimeoutSec= bounds it. Then 413. */
                return MHD_YES;
        }

        /* The request is complete (or was resumed): route it once. */
        if (!r->replied && !r->deferred) {
                conn_routed(connection);
                http_api_handle(r);
        }

        if (r->replied)
                return request_queue_reply(r);

        if (r->deferred) {
                if (!r->suspended) {
                        r->suspended = true;
                        MHD_suspend_connection(connection);
                }
                return MHD_YES;
        }

        log_error("HTTP %s %s: the handler neither answered nor deferred.", r->method, r->path);
        (void) http_request_reply_error(r, POOL_ERROR_INTERNAL, "internal error");
        return request_queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        HttpRequest *r = *con_cls;

        if (!r)
                return;

        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                log_debug("HTTP %s %s from %s ended without a complete answer (reason %i).",
                          r->method, r->path, r->client, (int) toe);

        /* Whoever would answer later must forget this request before it is freed. */
        if (r->deferred && !r->replied && r->abandon)
                r->abandon(r);
        if (r->streaming && r->stream_close)
                TAKE_PTR(r->stream_close)(r, r->stream_userdata);

        conn_answered(r->server, connection);
        request_free(r);
        *con_cls = NULL;
}

/* MHD's own messages: client errors mostly, hence debug; the last one is kept for start-up
 * errors, which MHD reports only through its log. */
_printf_(2, 0)
static void on_mhd_log(void *cls, const char *format, va_list ap) {
        HttpServer *s = cls;
        char *m;

        if (vasprintf(&m, format, ap) < 0)
                return;
        strstrip_trailing(m);
        log_debug("libmicrohttpd: %s", m);
        free(s->mhd_error);
        s->mhd_error = m;
}

/* The URL is kept percent-encoded: http-api.c splits it into segments first and decodes each,
 * so "/pools/a%2Fb/status" names the pool "a/b" (and is refused) rather than another path. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s) {
        return strlen(s);
}

static void http_server_run(HttpServer *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        uint64_t usec;

        if (MHD_run(s->daemon) != MHD_YES)
                log_debug("MHD_run() failed.");

        if (MHD_get_timeout(s->daemon, &timeout_ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
                return;
        }
        if (sd_event_now(s->manager->event, CLOCK_MONOTONIC, &usec) < 0)
                usec = now(CLOCK_MONOTONIC);
        usec += MIN((uint64_t) timeout_ms, (uint64_t) 24 * 3600 * 1000) * USEC_PER_MSEC;
        if (event_source_arm(s->timer_source, usec) < 0)
                log_warning("Failed to arm the HTTP timer.");
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        http_server_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        http_server_run(userdata);
        return 0;
}

static int on_run(sd_event_source *source, void *userdata) {
        http_server_run(userdata);
        return 0;
}

/*
 * Slow clients. MHD's own timeout is an idle timeout, which a client sending one byte a second
 * never reaches, so a request must also arrive whole, headers and body, within
 * RequestTimeoutSec= of its connection's accept (or of the previous answer on a kept-alive
 * connection). Past that deadline the daemon answers 408 itself and shuts the socket down; MHD
 * notices and closes it. A request that has arrived and is being handled (a preload waiting for
 * its engine) has no deadline. At MaxConnections= the connection with the oldest incomplete
 * request is closed the same way to make room, and the newcomer is served; only when every
 * connection holds a request being handled is the newcomer answered 503. MaxConnectionsPerAddress=
 * does the same among the connections of one client address. So slow or idle clients can delay
 * nobody for long, whatever their number.
 */

static bool sockaddr_same_host(const SockaddrUnion *a, const SockaddrUnion *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        switch (a->sa.sa_family) {
        case AF_INET:
                return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        case AF_INET6:
                return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
        default:
                return false;   /* AF_UNIX: no address to limit by */
        }
}

static void conn_unlink(HttpServer *s, HttpConn *c) {
        LIST_REMOVE(s->conns_head, s->conns_tail, c);
}

static void conn_link_tail(HttpServer *s, HttpConn *c) {
        LIST_APPEND(s->conns_head, s->conns_tail, c);
}

/* Waiting for its request, with a deadline, and not being closed already. */
static bool conn_is_waiting(const HttpConn *c) {
        return !c->routed && !c->closing;
}

/* The list is in order of since: the first waiting connection has the next deadline. */
static void conn_arm_deadline(HttpServer *s) {
        for (HttpConn *c = s->conns_head; c; c = c->next)
                if (conn_is_waiting(c)) {
                        if (event_source_arm(s->deadline_timer, c->since + s->request_timeout) < 0)
                                log_warning("Failed to arm the HTTP request deadline timer.");
                        return;
                }
        (void) sd_event_source_set_enabled(s->deadline_timer, SD_EVENT_OFF);
}

static void http_server_schedule_run(HttpServer *s);

/* Answers 408 on the socket itself (no response is queued on a waiting connection) and shuts it
 * down; MHD sees the end of the stream at its next run and frees the connection. */
static void conn_close(HttpServer *s, HttpConn *c) {
        if (c->closing)
                return;
        (void) send(c->fd, s->timeout_reply, s->timeout_reply_size, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) shutdown(c->fd, SHUT_RDWR);
        c->closing = true;
        s->n_closing++;
        http_server_schedule_run(s);
}

static int on_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpServer *s = userdata;
        unsigned n = 0;

        for (HttpConn *c = s->conns_head; c; c = c->next) {
                if (!conn_is_waiting(c))
                        continue;
                if (c->since + s->request_timeout > usec)
                        break;
                conn_close(s, c);
                n++;
        }
        if (n > 0) {
                s->n_timed_out += n;
                char buf[FORMAT_DURATION_MAX];

                log_debug("HTTP: closed %u connection%s whose request did not arrive within %s.", n,
                          n == 1 ? "" : "s", format_duration(buf, sizeof(buf), s->request_timeout));
        }
        conn_arm_deadline(s);
        return 0;
}

static void on_connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                                 enum MHD_ConnectionNotificationCode code) {
        HttpServer *s = cls;
        HttpConn *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *fd, *addr;

                c = calloc(1, sizeof(HttpConn));
                if (!c) {
                        log_oom();
                        return;         /* untracked: MHD's idle timeout still applies */
                }
                fd = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                addr = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                *c = (HttpConn) {
                        .server = s,
                        .connection = connection,
                        .fd = fd ? fd->connect_fd : -1,
                };
                if (addr && addr->client_addr) {
                        if (addr->client_addr->sa_family == AF_INET)
                                memcpy(&c->peer.in, addr->client_addr, sizeof(struct sockaddr_in));
                        else if (addr->client_addr->sa_family == AF_INET6)
                                memcpy(&c->peer.in6, addr->client_addr, sizeof(struct sockaddr_in6));
                }
                if (sd_event_now(s->manager->event, CLOCK_MONOTONIC, &c->since) < 0)
                        c->since = now(CLOCK_MONOTONIC);
                conn_link_tail(s, c);
                s->n_conns++;
                *socket_context = c;
                if (c == s->conns_head || !sd_event_source_get_enabled(s->deadline_timer, NULL))
                        conn_arm_deadline(s);
                return;
        }

        /* MHD_CONNECTION_NOTIFY_CLOSED: MHD frees it now. */
        if (!c)
                return;
        conn_unlink(s, c);
        s->n_conns--;
        if (c->closing)
                s->n_closing--;
        free(c);
        *socket_context = NULL;
        conn_arm_deadline(s);
}

static HttpConn *conn_of(struct MHD_Connection *connection) {
        const union MHD_ConnectionInfo *info;

        info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info ? info->socket_context : NULL;
}

/* Its request arrived and is routed: no deadline while it is handled. */
static void conn_routed(struct MHD_Connection *connection) {
        HttpConn *c = conn_of(connection);

        if (c)
                c->routed = true;
}

/* Answered: the next request on this connection has a deadline of its own. */
static void conn_answered(HttpServer *s, struct MHD_Connection *connection) {
        HttpConn *c = conn_of(connection);

        if (!c)
                return;
        c->routed = false;
        if (sd_event_now(s->manager->event, CLOCK_MONOTONIC, &c->since) < 0)
                c->since = now(CLOCK_MONOTONIC);
        conn_unlink(s, c);
        conn_link_tail(s, c);
        conn_arm_deadline(s);
}

/* The waiting connection to close to make room: the oldest, of peer's address when peer is
 * given. NULL when there is none. */
static HttpConn *conn_oldest_waiting(HttpServer *s, const SockaddrUnion *peer) {
        for (HttpConn *c = s->conns_head; c; c = c->next)
                if (conn_is_waiting(c) && (!peer || sockaddr_same_host(&c->peer, peer)))
                        return c;
        return NULL;
}

static unsigned conn_count_host(HttpServer *s, const SockaddrUnion *peer) {
        unsigned n = 0;

        for (HttpConn *c = s->conns_head; c; c = c->next)
                if (!c->closing && sockaddr_same_host(&c->peer, peer))
                        n++;
        return n;
}

static bool conn_host_full(HttpServer *s, const SockaddrUnion *peer) {
        return s->per_address_limit > 0 && (peer->sa.sa_family == AF_INET || peer->sa.sa_family == AF_INET6) &&
                conn_count_host(s, peer) >= s->per_address_limit;
}

static bool conn_full(HttpServer *s, const SockaddrUnion *peer) {
        return s->n_conns - s->n_closing >= s->connection_limit || conn_host_full(s, peer);
}

/* Whether a new connection from peer may be served, closing a waiting one to make room where
 * needed. false: answer it 503. */
static bool conn_make_room(HttpServer *s, const SockaddrUnion *peer) {
        HttpConn *victim;

        if (conn_host_full(s, peer)) {
                victim = conn_oldest_waiting(s, peer);
                if (!victim)
                        return false;
                conn_close(s, victim);
                s->n_evicted++;
        }
        if (s->n_conns - s->n_closing >= s->connection_limit) {
                victim = conn_oldest_waiting(s, NULL);
                if (!victim)
                        return false;
                conn_close(s, victim);
                s->n_evicted++;
        }
        return true;
}

/* Connections over the limit. */

static HttpOverflow *http_overflow_free(HttpOverflow *o) {
        HttpServer *s;

        if (!o)
                return NULL;
        s = o->server;
        LIST_REMOVE(s->overflow_head, s->overflow_tail, o);
        s->n_overflow--;

        o->io_source = sd_event_source_disable_unref(o->io_source);
        safe_close(o->fd);
        return mfree(o);
}

static void http_overflow_arm_timer(HttpServer *s) {
        if (!s->overflow_head) {
                (void) sd_event_source_set_enabled(s->overflow_timer, SD_EVENT_OFF);
                return;
        }
        if (event_source_arm(s->overflow_timer, s->overflow_head->deadline) < 0)
                log_warning("Failed to arm the HTTP overflow timer.");
}

/* Reads and drops what the client sends; closes on EOF, error, or a hang-up. */
static int on_overflow_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        HttpOverflow *o = userdata;
        HttpServer *s = o->server;
        char buf[4096];
        bool was_head;

        for (unsigned i = 0;; i++) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (n > 0) {
                        if (i < 16)
                                continue;
                        return 0;       /* more next time (level-triggered) */
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                break;  /* EOF or error: the client is done */
        }

        was_head = o == s->overflow_head;
        http_overflow_free(o);
        if (was_head)
                http_overflow_arm_timer(s);
        return 0;
}

static int on_overflow_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpServer *s = userdata;

        while (s->overflow_head && s->overflow_head->deadline <= usec)
                http_overflow_free(s->overflow_head);
        http_overflow_arm_timer(s);
        return 0;
}

static void http_overflow_log(HttpServer *s, usec_t t) {
        if (s->overflow_logged_usec != 0 && t < s->overflow_logged_usec + HTTP_OVERFLOW_LOG_INTERVAL_USEC)
                return;
        log_warning("HTTP connection limit reached (MaxConnections=%u), every connection busy with a request: "
                    "answered %" PRIu64 " new "
                    "connection%s with 503 since %s.", s->connection_limit, s->n_refused - s->n_refused_logged,
                    s->n_refused - s->n_refused_logged == 1 ? "" : "s",
                    s->overflow_logged_usec == 0 ? "start-up" : "the last message");
        s->overflow_logged_usec = t;
        s->n_refused_logged = s->n_refused;
}

/* Answers 503 on a connection that MHD cannot take, then lets it linger (see the top). */
static void http_overflow_reject(HttpServer *s, int fd, usec_t t) {
        HttpOverflow *o;
        char buf[4096];
        int r;

        s->n_refused++;
        http_overflow_log(s, t);

        /* Take what the client has sent so far, so that the close below is no RST. */
        (void) recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        (void) send(fd, s->overflow_reply, s->overflow_reply_size, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) shutdown(fd, SHUT_WR);

        if (s->n_overflow >= HTTP_OVERFLOW_LINGER_MAX) {
                safe_close(fd);
                return;
        }

        o = calloc(1, sizeof(HttpOverflow));
        if (!o) {
                safe_close(fd);
                return;
        }
        *o = (HttpOverflow) {
                .server = s,
                .fd = fd,
                .deadline = t + HTTP_OVERFLOW_LINGER_USEC,
        };
        LIST_APPEND(s->overflow_head, s->overflow_tail, o);
        s->n_overflow++;

        r = sd_event_add_io(s->manager->event, &o->io_source, fd, EPOLLIN | EPOLLRDHUP, on_overflow_io, o);
        if (r < 0) {
                http_overflow_free(o);
                return;
        }
        (void) sd_event_source_set_description(o->io_source, "http-overflow");
        if (o == s->overflow_head)
                http_overflow_arm_timer(s);
}


/* accept(2): errors of one connection that was on the queue, or an interrupted call. */
static bool accept_error_is_transient(int e) {
        switch (e) {
        case EINTR: case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN: case ENOPROTOOPT:
        case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
                return true;
        default:
                return false;
        }
}

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpServer *s = userdata;

        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        return 0;
}

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        HttpServer *s = userdata;
        bool added = false, ran = false;
        usec_t t;

        if (sd_event_now(s->manager->event, CLOCK_MONOTONIC, &t) < 0)
                t = now(CLOCK_MONOTONIC);

        for (unsigned i = 0; i < HTTP_ACCEPT_BATCH; i++) {
                SockaddrUnion sa;
                socklen_t len = sizeof(sa);
                int cfd;

                cfd = accept4(fd, &sa.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (accept_error_is_transient(errno))
                                continue;       /* that client's problem, see accept(2) */

                        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the queue. */
                        if (s->accept_error_logged_usec == 0 ||
                            t >= s->accept_error_logged_usec + HTTP_OVERFLOW_LOG_INTERVAL_USEC) {
                                log_warning_errno(errno, "Failed to accept an HTTP connection (%u open): %m; "
                                                  "trying again in %u ms.", s->n_conns,
                                                  (unsigned) (HTTP_ACCEPT_RETRY_USEC / USEC_PER_MSEC));
                                s->accept_error_logged_usec = t;
                        }
                        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
                        if (event_source_arm(s->accept_retry_source, t + HTTP_ACCEPT_RETRY_USEC) < 0)
                                (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
                        break;
                }

                if (!ran && conn_full(s, &sa)) {
                        /* Before closing anyone's connection to make room: let MHD read the requests
                         * that have arrived (they are then handled, not "incomplete") and see the
                         * connections that their clients closed. Once per batch. */
                        http_server_run(s);
                        ran = true;
                }
                if (!conn_make_room(s, &sa)) {
                        http_overflow_reject(s, cfd, t);
                        continue;
                }

                /* MHD owns cfd from here, and closes it itself when it fails. */
                if (MHD_add_connection(s->daemon, cfd, &sa.sa, len) != MHD_YES)
                        log_debug_errno(errno, "libmicrohttpd refused a new connection: %m");
                else
                        added = true;
        }

        if (added)
                http_server_schedule_run(s);
        return 0;
}

/* Raises the soft RLIMIT_NOFILE as far as the connection limit needs (the hard limit allows it
 * under systemd; the daemon uses epoll, not select()), or lowers the connection limit to fit. */
static unsigned http_connection_limit_fit(unsigned wanted) {
        rlim_t need = (rlim_t) wanted + HTTP_CLOSING_SLACK + HTTP_OVERFLOW_LINGER_MAX + HTTP_FD_RESERVE;
        struct rlimit rl;
        unsigned fitted;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return wanted;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
                struct rlimit raised = {
                        .rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : MIN(need, rl.rlim_max),
                        .rlim_max = rl.rlim_max,
                };

                if (setrlimit(RLIMIT_NOFILE, &raised) >= 0)
                        rl = raised;
        }
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
                return wanted;

        fitted = rl.rlim_cur > HTTP_CLOSING_SLACK + HTTP_OVERFLOW_LINGER_MAX + HTTP_FD_RESERVE + 16 ?
                (unsigned) (rl.rlim_cur - HTTP_CLOSING_SLACK - HTTP_OVERFLOW_LINGER_MAX - HTTP_FD_RESERVE) : 16;
        log_warning("MaxConnections=%u needs %llu file descriptors, but RLIMIT_NOFILE allows %llu; "
                    "serving at most %u HTTP connections (raise LimitNOFILE= of the service).",
                    wanted, (unsigned long long) need, (unsigned long long) rl.rlim_cur, fitted);
        return fitted;
}

/* A complete answer written on the socket itself: status line, headers, a JSON error. */
static int canned_reply(const char *status_line, const char *extra_header, PoolErrorCode code, const char *error,
                        char **ret, size_t *ret_size) {
        _cleanup_free_ char *body = NULL;
        int k;

        if (asprintf(&body, "{\"error\":\"%s\",\"code\":\"%s\"}\n", error, pool_error_code_to_string(code)) < 0)
                return -ENOMEM;
        k = asprintf(ret,
                     "HTTP/1.1 %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s"
                     "Connection: close\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n"
                     "%s", status_line, extra_header, strlen(body), body);
        if (k < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        *ret_size = (size_t) k;
        return 0;
}

static int http_overflow_reply_build(HttpServer *s) {
        _cleanup_free_ char *overflow = NULL, *timeout = NULL;
        char buf[FORMAT_DURATION_MAX];

        if (asprintf(&overflow, "too many connections: the HTTP connection limit (%u) is reached and every "
                     "connection is busy with a request; retry later", s->connection_limit) < 0 ||
            asprintf(&timeout, "request not received within %s (RequestTimeoutSec=), or the connection was "
                     "closed to make room for others", format_duration(buf, sizeof(buf), s->request_timeout)) < 0)
                return -ENOMEM;
        if (canned_reply("503 Service Unavailable", "Retry-After: 1\r\n", POOL_ERROR_TOO_MANY_CONNECTIONS, overflow,
                         &s->overflow_reply, &s->overflow_reply_size) < 0 ||
            canned_reply("408 Request Timeout", "", POOL_ERROR_REQUEST_TIMEOUT, timeout, &s->timeout_reply,
                         &s->timeout_reply_size) < 0)
                return -ENOMEM;
        return 0;
}

int http_server_new(HttpServer **ret, Manager *m) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;

        s = calloc(1, sizeof(HttpServer));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->listen_fd = -1;

        *ret = TAKE_PTR(s);
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;

        s->io_source = sd_event_source_disable_unref(s->io_source);
        s->timer_source = sd_event_source_disable_unref(s->timer_source);
        s->run_source = sd_event_source_disable_unref(s->run_source);
        s->listen_source = sd_event_source_disable_unref(s->listen_source);
        s->accept_retry_source = sd_event_source_disable_unref(s->accept_retry_source);
        while (s->overflow_head)
                http_overflow_free(s->overflow_head);
        s->overflow_timer = sd_event_source_disable_unref(s->overflow_timer);
        s->deadline_timer = sd_event_source_disable_unref(s->deadline_timer);
        s->listen_fd = safe_close(s->listen_fd);

        if (s->daemon) {
                /* MHD_stop_daemon() with a suspended connection is an API violation (MHD panics):
                 * resume them all. Their requests end unanswered; MHD_stop_daemon() completes
                 * them, which runs their abandon callbacks. */
                for (HttpRequest *r = s->requests_head; r; r = r->next)
                        if (r->suspended) {
                                r->suspended = false;
                                MHD_resume_connection(r->connection);
                        }
                MHD_stop_daemon(s->daemon);
        }

        while (s->requests_head)
                request_free(s->requests_head);

        free(s->token);
        free(s->address);
        free(s->mhd_error);
        free(s->overflow_reply);
        free(s->timeout_reply);
        while (s->conns_head) {         /* only if MHD could not even be stopped cleanly */
                HttpConn *c = s->conns_head;

                conn_unlink(s, c);
                free(c);
        }
        return mfree(s);
}

static int http_server_open_socket(HttpServer *s, bool *ret_activated) {
        SockaddrUnion u;
        socklen_t len;
        int fd, n, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");
        if (n > 0) {
                if (n > 1)
                        log_warning("systemd passed %i sockets; serving HTTP on the first only.", n);
                fd = SD_LISTEN_FDS_START;
                r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
                if (r < 0)
                        return log_error_errno(r, "Failed to check the socket passed by systemd: %m");
                if (r == 0)
                        return log_error_errno(EINVAL, "The socket passed by systemd is not a listening "
                                               "stream socket.");
                /* MHD accepts in a loop until EAGAIN. */
                r = fcntl(fd, F_GETFL);
                if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "Failed to make the passed socket non-blocking: %m");
                *ret_activated = true;
                return fd;
        }

        r = listen_address_parse(s->manager->config->listen, &u, &len);
        if (r < 0)
                return log_error_errno(r, "Invalid Listen=%s: %m", s->manager->config->listen);

        /* Checked again on the bound address below; refusing here avoids binding at all. */
        if (!s->token && !sockaddr_is_loopback(&u.sa))
                return log_error_errno(EPERM, "Refusing to listen on %s without an API token: set "
                                       "ApiTokenFile= (or $LLORCH_API_TOKEN), or listen on a loopback "
                                       "address.", s->manager->config->listen);

        fd = listen_socket_bind(&u, len);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s: %m", s->manager->config->listen);
        *ret_activated = false;
        return fd;
}

/* A timer that stays off until armed with event_source_arm(). */
static int http_timer_add(HttpServer *s, sd_event_source **ret, usec_t accuracy,
                          sd_event_time_handler_t callback, const char *description) {
        int r;

        r = sd_event_add_time(s->manager->event, ret, CLOCK_MONOTONIC, UINT64_MAX, accuracy, callback, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the %s timer: %m", description);
        (void) sd_event_source_set_enabled(*ret, SD_EVENT_OFF);
        (void) sd_event_source_set_description(*ret, description);
        return 0;
}

const char *http_server_address(const HttpServer *s) {
        return s ? s->address : NULL;
}

int http_server_start(HttpServer *s) {
        const union MHD_DaemonInfo *info;
        sd_event *event = s->manager->event;
        _cleanup_close_ int fd = -1;
        SockaddrUnion bound = {};
        socklen_t len = sizeof(bound);
        bool activated = false;
        unsigned flags;
        int r;

        r = api_token_load(s->manager->config, &s->token);
        if (r < 0)
                return r;

        fd = http_server_open_socket(s, &activated);
        if (fd < 0)
                return fd;

        if (getsockname(fd, &bound.sa, &len) < 0)
                return log_error_errno(errno, "Failed to get the address of the HTTP socket: %m");
        r = sockaddr_format(&bound.sa, len, &s->address);
        if (r < 0)
                return log_error_errno(r, "Failed to format the address of the HTTP socket: %m");
        if (!s->token && !sockaddr_is_loopback(&bound.sa))
                return log_error_errno(EPERM, "Refusing to serve HTTP on %s%s without an API token: set "
                                       "ApiTokenFile= (or $LLORCH_API_TOKEN), or listen on a loopback "
                                       "address.", s->address, activated ? " (passed by systemd)" : "");

        s->connection_limit = http_connection_limit_fit(s->manager->config->http_max_connections);
        s->per_address_limit = s->manager->config->http_max_per_address;
        s->request_timeout = s->manager->config->http_request_timeout;
        r = http_overflow_reply_build(s);
        if (r < 0)
                return log_oom();

        /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD has no thread; we poll its epoll fd. No
         * listening socket either: we accept (see the top). */
        flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;

        s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s,
                                     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                                     MHD_OPTION_CONNECTION_LIMIT, s->connection_limit + HTTP_CLOSING_SLACK,
                                     MHD_OPTION_NOTIFY_CONNECTION, on_connection_notify, s,
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY_LIMIT,
                                     MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT_SEC,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                     MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, s,
                                     MHD_OPTION_END);
        if (!s->daemon)
                return log_error_errno(EIO, "Failed to start the HTTP server on %s: %s", s->address,
                                       s->mhd_error ?: "libmicrohttpd refused to start");
        s->listen_fd = TAKE_FD(fd);

        r = sd_event_add_io(event, &s->listen_source, s->listen_fd, EPOLLIN, on_listen, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP listening socket: %m");
        (void) sd_event_source_set_description(s->listen_source, "http-listen");

        r = http_timer_add(s, &s->accept_retry_source, USEC_PER_MSEC, on_accept_retry, "http-accept-retry");
        if (r < 0)
                return r;

        r = http_timer_add(s, &s->overflow_timer, 10 * USEC_PER_MSEC, on_overflow_timer, "http-overflow-timer");
        if (r < 0)
                return r;
        r = http_timer_add(s, &s->deadline_timer, 10 * USEC_PER_MSEC, on_deadline, "http-request-deadline");
        if (r < 0)
                return r;

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return log_error_errno(EIO, "Failed to get libmicrohttpd's epoll fd.");

        r = sd_event_add_io(event, &s->io_source, info->epoll_fd, EPOLLIN, on_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server's epoll fd: %m");
        (void) sd_event_source_set_description(s->io_source, "http-io");

        /* Accuracy 1 ms: MHD uses a zero timeout to ask for another run at once. */
        r = http_timer_add(s, &s->timer_source, USEC_PER_MSEC, on_timer, "http-timer");
        if (r < 0)
                return r;

        r = sd_event_add_defer(event, &s->run_source, on_run, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP run source: %m");
        (void) sd_event_source_set_enabled(s->run_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->run_source, "http-run");

        http_server_run(s);

        log_info("Listening on http://%s%s%s, at most %u connections.", s->address,
                 activated ? " (socket passed by systemd)" : "", s->token ? ", API token required" : "",
                 s->connection_limit);
        return 0;
}
