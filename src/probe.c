/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "build-config.h"
#include "curl-dl.h"
#include "log.h"
#include "probe-trigger.h"
#include "probe.h"
#include "shared/event-util.h"

struct Probe {
        sd_event *event;
        CurlGlue *glue;
        char *url;
        usec_t interval;
        usec_t timeout;
        ProbeCallback callback;
        ProbeCallback attempt_callback; /* after each attempt that did not answer 200 */
        void *userdata;

        usec_t start_usec;              /* CLOCK_MONOTONIC */
        usec_t ready_usec;
        unsigned attempts;
        CURL *running;                  /* the attempt in flight, if any */
        bool due;                       /* the next slot arrived while an attempt was running */
        bool finished;                  /* answered 200 or timed out */
        sd_event_source *tick;          /* next attempt */
        sd_event_source *deadline;
        sd_event_source *trigger;       /* a log-triggered attempt held back by the rate limit */
        usec_t last_trigger_usec;       /* when the last log-triggered attempt went out, 0: never */
        char *last_error;
};

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

static void probe_finish(Probe *p, int r) {
        p->finished = true;
        if (p->running) {
                curl_glue_cancel(p->glue, p->running);
                p->running = NULL;
        }
        (void) sd_event_source_set_enabled(p->tick, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->deadline, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->trigger, SD_EVENT_OFF);
        p->callback(p, r, p->userdata);
}

static void set_last_error(Probe *p, char *e) {
        free(p->last_error);
        p->last_error = e;
}

static int probe_launch(Probe *p);

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Probe *p = userdata;
        long code = 0;
        char *e = NULL;

        p->running = NULL;

        if (result == CURLE_OK) {
                (void) sym_curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
                if (code == 200) {
                        (void) sd_event_now(p->event, CLOCK_MONOTONIC, &p->ready_usec);
                        probe_finish(p, 0);
                        return;
                }
                if (asprintf(&e, "HTTP %ld", code) < 0)
                        e = NULL;
        } else
                e = strdup(sym_curl_easy_strerror(result));
        set_last_error(p, e);

        if (p->attempt_callback)
                p->attempt_callback(p, -EAGAIN, p->userdata);

        if (p->due) {
                p->due = false;
                (void) probe_launch(p);
        }
}

/*
 * Opens each probe connection's socket bound to port 0 of the family's wildcard address, so that
 * the kernel picks the source port before curl connects, and picks again if it chose the
 * engine's own port P: a connect from host:P to host:P while nothing listens on P yet connects to
 * itself (TCP simultaneous open) and then holds the port the engine is about to bind. That can
 * happen from any local address (127.0.0.1, ::1, the host's own) whenever P is in
 * ip_local_port_range. It uses curl's own destination address, so IPv4, IPv6 and "localhost"
 * are all covered. (Connecting from 127.0.0.2 instead, as before, covered 127.0.0.0/8 only.)
 */
curl_socket_t probe_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } local = {}, bound;
        uint16_t peer_port;
        socklen_t len;

        if (purpose != CURLSOCKTYPE_IPCXN || a->socktype != SOCK_STREAM)
                return CURL_SOCKET_BAD;
        if (a->family == AF_INET) {
                peer_port = ntohs(((const struct sockaddr_in *) &a->addr)->sin_port);
                local.in = (struct sockaddr_in) { .sin_family = AF_INET };
                len = sizeof(local.in);
        } else if (a->family == AF_INET6) {
                peer_port = ntohs(((const struct sockaddr_in6 *) &a->addr)->sin6_port);
                local.in6 = (struct sockaddr_in6) { .sin6_family = AF_INET6 };
                len = sizeof(local.in6);
        } else
                return CURL_SOCKET_BAD;

        for (unsigned attempt = 0; attempt < 8; attempt++) {
                _cleanup_close_ int fd = -EBADF;
                socklen_t blen = sizeof(bound);

                fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, a->protocol);   /* curl makes it nonblocking */
                if (fd < 0)
                        return CURL_SOCKET_BAD;
                if (bind(fd, &local.sa, len) < 0 || getsockname(fd, &bound.sa, &blen) < 0)
                        return CURL_SOCKET_BAD;
                if (ntohs(a->family == AF_INET ? bound.in.sin_port : bound.in6.sin6_port) != peer_port)
                        return TAKE_FD(fd);
                /* The kernel picked the engine's port: let go of it at once and pick again. */
        }
        return CURL_SOCKET_BAD;
}

int probe_request_new(CURL **ret, const char *url, usec_t timeout, curl_write_callback write_cb,
                      void *userdata) {
        CURL *easy;

        easy = sym_curl_easy_init();
        if (!easy)
                return -ENOMEM;

        if (sym_curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) MAX(timeout / USEC_PER_MSEC, 1U)) !=
                    CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_USERAGENT, "pool-managerd/" PACKAGE_VERSION) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_WRITEDATA, userdata) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, probe_open_socket) != CURLE_OK) {
                sym_curl_easy_cleanup(easy);
                return -EINVAL;
        }

        *ret = easy;
        return 0;
}

static int probe_launch(Probe *p) {
        CURL *easy;
        int r;

        /* A request may take as long as one interval, but at least a second: a loaded engine
         * answering slowly is still answering. */
        r = probe_request_new(&easy, p->url, MAX(p->interval, USEC_PER_SEC), discard_body, NULL);
        if (r < 0)
                return r;

        r = curl_glue_add(p->glue, easy, on_done, p);
        if (r < 0) {
                sym_curl_easy_cleanup(easy);
                return r;
        }
        p->running = easy;
        p->attempts++;
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Probe *p = userdata;
        int r;

        r = event_source_arm(s, grid_next_slot(p->start_usec, p->interval, usec));
        if (r < 0)
                log_warning_errno(r, "Failed to schedule next health probe of %s: %m", p->url);

        if (p->running) {
                p->due = true;
                return 0;
        }
        r = probe_launch(p);
        if (r < 0)
                log_warning_errno(r, "Failed to start health probe of %s: %m", p->url);
        return 0;
}

/* An attempt now, outside the grid; one in flight is followed by another at once, since it may
 * have been sent before what triggered this. */
static void probe_attempt_now(Probe *p, usec_t t) {
        int r;

        p->last_trigger_usec = t;
        if (p->running) {
                p->due = true;
                return;
        }
        r = probe_launch(p);
        if (r < 0)
                log_warning_errno(r, "Failed to start health probe of %s: %m", p->url);
}

static int on_trigger(sd_event_source *s, uint64_t usec, void *userdata) {
        probe_attempt_now(userdata, usec);
        return 0;
}

void probe_trigger(Probe *p, bool ready_line) {
        usec_t t, at;
        int r;

        /* Finished (answered 200 or timed out): nothing left to trigger. */
        if (!p->tick || p->finished)
                return;
        r = sd_event_now(p->event, CLOCK_MONOTONIC, &t);
        if (r < 0)
                return;
        at = probe_trigger_when(p->last_trigger_usec, t, ready_line);
        if (at <= t) {
                (void) sd_event_source_set_enabled(p->trigger, SD_EVENT_OFF);
                return probe_attempt_now(p, t);
        }
        /* Rate-limited: one attempt when the gap has passed, for however many lines came. */
        if (sd_event_source_get_enabled(p->trigger, NULL) > 0)
                return;
        r = event_reset_time(p->event, &p->trigger, CLOCK_MONOTONIC, at, USEC_PER_MSEC, on_trigger, p,
                             "probe-trigger");
        if (r < 0)
                log_warning_errno(r, "Failed to schedule triggered health probe of %s: %m", p->url);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        probe_finish(userdata, -ETIMEDOUT);
        return 0;
}

int probe_new(Probe **ret, sd_event *event, CurlGlue *glue, const char *url, usec_t interval,
              usec_t timeout, ProbeCallback cb, void *userdata) {
        _cleanup_(probe_freep) Probe *p = NULL;

        if (interval == 0)
                return -EINVAL;

        p = calloc(1, sizeof(Probe));
        if (!p)
                return -ENOMEM;
        *p = (Probe) {
                .event = sd_event_ref(event),
                .glue = glue,
                .interval = interval,
                .timeout = timeout,
                .callback = cb,
                .userdata = userdata,
        };
        p->url = strdup(url);
        if (!p->url)
                return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}

Probe *probe_free(Probe *p) {
        if (!p)
                return NULL;
        if (p->running)
                curl_glue_cancel(p->glue, p->running);
        sd_event_source_disable_unref(p->tick);
        sd_event_source_disable_unref(p->deadline);
        sd_event_source_disable_unref(p->trigger);
        sd_event_unref(p->event);
        free(p->last_error);
        free(p->url);
        return mfree(p);
}

int probe_start(Probe *p) {
        int r;

        r = sd_event_now(p->event, CLOCK_MONOTONIC, &p->start_usec);
        if (r < 0)
                return r;

        /* Accuracy 1 ms on both: the default slack of 250 ms would be added to the ready lag
         * and would stretch the configured timeout. */
        r = sd_event_add_time(p->event, &p->tick, CLOCK_MONOTONIC, p->start_usec + p->interval, 1000,
                              on_tick, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->tick, "probe-tick");

        if (p->timeout != USEC_INFINITY) {
                r = sd_event_add_time(p->event, &p->deadline, CLOCK_MONOTONIC, p->start_usec + p->timeout,
                                      1000, on_deadline, p);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(p->deadline, "probe-deadline");
        }

        /* The first attempt goes out at once. */
        return probe_launch(p);
}

const char *probe_last_error(const Probe *p) {
        return p->last_error;
}

void probe_set_attempt_callback(Probe *p, ProbeCallback cb) {
        p->attempt_callback = cb;
}

unsigned probe_attempts(const Probe *p) {
        return p->attempts;
}

usec_t probe_ready_usec(const Probe *p) {
        return p->ready_usec;
}
