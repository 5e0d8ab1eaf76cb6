/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>
#include <sys/epoll.h>

#include "curl-dl.h"
#include "curl-glue.h"
#include "log.h"
#include "shared/event-util.h"
#include "shared/list.h"

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        /* Every socket's io source is kept as curl's per-socket pointer (curl_multi_assign)
         * and also in this list, so curl_glue_free() can release them all. */
        sd_event_source **ios;
        size_t n_ios;
        /* Running transfers, so curl_glue_free() can release them. */
        struct Transfer *transfers_head, *transfers_tail;
};

typedef struct Transfer {
        CURL *easy;
        CurlDoneCallback callback;
        void *userdata;
        struct Transfer *prev, *next;
} Transfer;

static void transfer_unlink(CurlGlue *g, Transfer *t) {
        LIST_REMOVE(g->transfers_head, g->transfers_tail, t);
        free(t);
}

static void curl_glue_check_finished(CurlGlue *g) {
        CURLMsg *msg;
        int k;

        while ((msg = sym_curl_multi_info_read(g->multi, &k))) {
                Transfer *t = NULL;
                CURL *easy;
                CURLcode result;

                if (msg->msg != CURLMSG_DONE)
                        continue;

                easy = msg->easy_handle;
                result = msg->data.result;
                (void) sym_curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
                (void) sym_curl_multi_remove_handle(g->multi, easy);

                /* The callback may add new transfers (the next probe) or cancel others; this
                 * handle is gone from the multi handle already, so both are safe. */
                if (t) {
                        CurlDoneCallback cb = t->callback;
                        void *userdata = t->userdata;

                        transfer_unlink(g, t);
                        if (cb)
                                cb(g, easy, result, userdata);
                }
                sym_curl_easy_cleanup(easy);
        }
}

/* Tells curl that fd is ready for action (CURL_SOCKET_TIMEOUT: its timer fired), then hands out
 * what finished. */
static int curl_glue_act(CurlGlue *g, curl_socket_t fd, int action) {
        int running;

        if (sym_curl_multi_socket_action(g->multi, fd, action, &running) != CURLM_OK)
                return log_error_errno(EINVAL, "curl_multi_socket_action() failed.");

        curl_glue_check_finished(g);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlGlue *g = userdata;
        int action = 0;

        if (revents & (EPOLLIN | EPOLLHUP))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;

        return curl_glue_act(g, fd, action);
}

static void ios_remove(CurlGlue *g, sd_event_source *s) {
        for (size_t i = 0; i < g->n_ios; i++)
                if (g->ios[i] == s) {
                        g->ios[i] = g->ios[--g->n_ios];
                        return;
                }
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        CurlGlue *g = userdata;
        sd_event_source *s = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        ios_remove(g, s);
                        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                        sd_event_source_unref(s);
                        (void) sym_curl_multi_assign(g->multi, fd, NULL);
                }
                return 0;
        }

        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (s) {
                r = sd_event_source_set_io_events(s, events);
                if (r < 0)
                        return -1;
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
                if (r < 0)
                        return -1;
                return 0;
        }

        sd_event_source **n = reallocarray(g->ios, g->n_ios + 1, sizeof(sd_event_source *));
        if (!n)
                return -1;
        g->ios = n;

        r = sd_event_add_io(g->event, &s, fd, events, on_io, g);
        if (r < 0)
                return -1;
        (void) sd_event_source_set_description(s, "curl-io");
        g->ios[g->n_ios++] = s;

        if (sym_curl_multi_assign(g->multi, fd, s) != CURLM_OK) {
                ios_remove(g, s);
                sd_event_source_unref(s);
                return -1;
        }
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return curl_glue_act(userdata, CURL_SOCKET_TIMEOUT, 0);
}

static int on_timer_update(CURLM *multi, long timeout_ms, void *userdata) {
        CurlGlue *g = userdata;
        uint64_t usec;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(g->timer, SD_EVENT_OFF) < 0 ? -1 : 0;

        /* Accuracy 1 ms: curl's timeouts drive connection setup and retries, and the default
         * 250 ms slack would add directly to the ready-detection lag. */
        if (sd_event_now(g->event, CLOCK_MONOTONIC, &usec) < 0)
                return -1;
        usec += (uint64_t) timeout_ms * 1000U;
        return event_source_arm(g->timer, usec) < 0 ? -1 : 0;
}

int curl_glue_new(CurlGlue **ret, sd_event *event) {
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        int r;

        g = calloc(1, sizeof(CurlGlue));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);

        g->multi = sym_curl_multi_init();
        if (!g->multi)
                return -ENOMEM;

        r = sd_event_add_time(event, &g->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(g->timer, "curl-timer");

        if (sym_curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            sym_curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            sym_curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timer_update) != CURLM_OK ||
            sym_curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK)
                return -EINVAL;

        *ret = TAKE_PTR(g);
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;

        /* Free remaining transfers without calling their callbacks. */
        while (g->transfers_head)
                curl_glue_cancel(g, g->transfers_head->easy);
        if (g->multi)
                sym_curl_multi_cleanup(g->multi);
        for (size_t i = 0; i < g->n_ios; i++)
                sd_event_source_disable_unref(g->ios[i]);
        free(g->ios);
        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        return mfree(g);
}

int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneCallback cb, void *userdata) {
        Transfer *t;

        t = malloc(sizeof(Transfer));
        if (!t)
                return -ENOMEM;
        *t = (Transfer) { .easy = easy, .callback = cb, .userdata = userdata };

        if (sym_curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK) {
                free(t);
                return -EINVAL;
        }
        if (sym_curl_multi_add_handle(g->multi, easy) != CURLM_OK) {
                free(t);
                (void) sym_curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                return -EINVAL;
        }

        LIST_PREPEND(g->transfers_head, g->transfers_tail, t);
        return 0;
}

void curl_glue_cancel(CurlGlue *g, CURL *easy) {
        Transfer *t = NULL;

        if (!easy)
                return;
        (void) sym_curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        (void) sym_curl_multi_remove_handle(g->multi, easy);
        if (t)
                transfer_unlink(g, t);
        sym_curl_easy_cleanup(easy);
}
