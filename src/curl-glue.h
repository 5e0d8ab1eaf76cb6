/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * libcurl multi driven by sd-event: every socket curl wants watched becomes an sd-event io
 * source, curl's single timeout an sd-event timer (accuracy 1 ms). No thread, no blocking
 * call. Modelled on systemd's src/import/curl-util.c.
 *
 * libcurl is not linked but loaded (curl-dl.h): dlopen_curl() must have succeeded before
 * curl_glue_new() or any other use.
 */

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

typedef struct CurlGlue CurlGlue;

/* Called once per transfer when it finished (result CURLE_OK or an error). The callback owns
 * nothing: the easy handle is removed from the multi handle and freed by the caller's
 * curl_glue_cancel() or by returning; see curl_glue_add(). */
typedef void (*CurlDoneCallback)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(CurlGlue **ret, sd_event *event);
CurlGlue *curl_glue_free(CurlGlue *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlGlue *, curl_glue_free);

/*
 * Starts a transfer. On completion the callback runs and afterwards the easy handle is
 * removed and cleaned up by the glue (the callback must not free it). Returns negative errno.
 */
int curl_glue_add(CurlGlue *g, CURL *easy, CurlDoneCallback cb, void *userdata);
/* Aborts a running transfer without calling its callback and frees the handle. NULL is fine. */
void curl_glue_cancel(CurlGlue *g, CURL *easy);
