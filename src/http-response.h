/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The answer to an HTTP/1.x GET, parsed as its bytes come (src/http-get.c feeds it what each
 * read returned). Pure: no I/O, no allocation but the body. What it accepts:
 *
 *   status line   "HTTP/1.0" or "HTTP/1.1", a space, three digits, optionally a reason;
 *                 1xx answers (100 Continue, 103 Early Hints) are skipped
 *   header lines  "name: value", lines ending in CRLF or a bare LF; a folded line (leading
 *                 space), a line with no colon, a name with a space, a control byte or a head
 *                 over HTTP_RESPONSE_HEAD_MAX are refused
 *   body          by Transfer-Encoding: chunked (extensions ignored, trailers read and
 *                 dropped), else Content-Length (digits only; two that differ are refused),
 *                 else until the connection closes; none for 204 and 304
 *
 * Refusals return -EBADMSG with `error` naming what is wrong; a body over body_max returns
 * -EFBIG. Nothing is read past the end of the answer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_HEAD_MAX (16U * 1024U)
#define HTTP_RESPONSE_LINE_MAX 1024U   /* a chunk-size or trailer line */

typedef enum HttpResponsePhase {
        HTTP_RESPONSE_HEAD,
        HTTP_RESPONSE_BODY_LENGTH,      /* `remaining` bytes of body left */
        HTTP_RESPONSE_BODY_CLOSE,       /* the body ends when the connection does */
        HTTP_RESPONSE_CHUNK_SIZE,
        HTTP_RESPONSE_CHUNK_DATA,       /* `remaining` bytes of this chunk left */
        HTTP_RESPONSE_CHUNK_END,        /* the CRLF after a chunk's data */
        HTTP_RESPONSE_TRAILER,
        HTTP_RESPONSE_DONE,
        HTTP_RESPONSE_FAILED,
} HttpResponsePhase;

typedef struct HttpResponse {
        size_t body_max;                /* 0: the body is read and dropped */

        unsigned status;                /* 0 until the status line was read */
        char *body;                     /* NUL-terminated after `size` bytes; NULL if none kept */
        size_t size;
        const char *error;              /* static text, set with -EBADMSG and -EFBIG */
        int failure;                    /* that negative errno, once refused */

        HttpResponsePhase phase;
        char *head;                     /* the head so far (HTTP_RESPONSE_HEAD_MAX at the most) */
        size_t head_size;
        char line[HTTP_RESPONSE_LINE_MAX];
        size_t line_size;
        uint64_t remaining;
        size_t allocated;
} HttpResponse;

void http_response_init(HttpResponse *r, size_t body_max);
void http_response_done(HttpResponse *r);

/* Feeds n bytes. 1: the answer is complete (later bytes are ignored); 0: more wanted;
 * -EBADMSG, -EFBIG: refused (see `error`; every later call returns the same); -ENOMEM. */
int http_response_feed(HttpResponse *r, const char *p, size_t n);
/* The peer closed the connection: 1 if that completes the answer, else -EBADMSG. */
int http_response_eof(HttpResponse *r);
