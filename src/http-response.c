/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-response.h"
#include "shared/buffer.h"
#include "shared/macro.h"

#define CHUNK_SIZE_DIGITS_MAX 15        /* 2^60: more than any body_max */
#define BODY_ALLOCATION_MIN (16U * 1024U)

void http_response_init(HttpResponse *r, size_t body_max) {
        *r = (HttpResponse) {
                .body_max = body_max,
                .phase = HTTP_RESPONSE_HEAD,
        };
}

void http_response_done(HttpResponse *r) {
        r->body = mfree(r->body);
        r->head = mfree(r->head);
        r->size = r->allocated = r->head_size = 0;
}

static int fail(HttpResponse *r, int error, const char *what) {
        r->phase = HTTP_RESPONSE_FAILED;
        r->error = what;
        r->failure = error;
        r->head = mfree(r->head);
        return error;
}

static int body_append(HttpResponse *r, const char *p, size_t n) {
        if (n == 0 || r->body_max == 0)
                return 0;
        if (n > r->body_max - r->size)
                return fail(r, -EFBIG, "the body is larger than allowed");
        return buffer_append(&r->body, &r->size, &r->allocated, p, n, BODY_ALLOCATION_MIN, r->body_max);
}

static bool is_token_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("!#$%&'*+-.^_`|~", c);
}

/* The line [p, end) without its CR, if any. */
static size_t line_length(const char *p, const char *end) {
        size_t n = (size_t) (end - p);
        return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

static int parse_status_line(HttpResponse *r, const char *p, size_t n) {
        unsigned status = 0;

        if (n < 12 || (memcmp(p, "HTTP/1.0 ", 9) != 0 && memcmp(p, "HTTP/1.1 ", 9) != 0))
                return fail(r, -EBADMSG, "not an HTTP/1.x status line");
        for (size_t i = 9; i < 12; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return fail(r, -EBADMSG, "the status code is not three digits");
                status = status * 10 + (unsigned) (p[i] - '0');
        }
        if (status < 100 || (n > 12 && p[12] != ' '))
                return fail(r, -EBADMSG, "the status code is not three digits");
        for (size_t i = 12; i < n; i++)
                if ((unsigned char) p[i] < ' ' && p[i] != '\t')
                        return fail(r, -EBADMSG, "a control byte in the status line");
        r->status = status;
        return 0;
}

static int parse_content_length(HttpResponse *r, const char *v, size_t n, uint64_t *length, bool *seen) {
        uint64_t l = 0;

        if (n == 0 || n > 19)
                return fail(r, -EBADMSG, "Content-Length is not a number");
        for (size_t i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return fail(r, -EBADMSG, "Content-Length is not a number");
                l = l * 10 + (uint64_t) (v[i] - '0');
        }
        if (*seen && l != *length)
                return fail(r, -EBADMSG, "two Content-Length headers that differ");
        *length = l;
        *seen = true;
        return 0;
}

/* Whether the last transfer coding listed is "chunked". */
static bool ends_chunked(const char *v, size_t n) {
        const char *last = v;

        for (size_t i = 0; i < n; i++)
                if (v[i] == ',')
                        last = v + i + 1;
        while (last < v + n && (*last == ' ' || *last == '\t'))
                last++;
        n = (size_t) (v + n - last);
        while (n > 0 && (last[n - 1] == ' ' || last[n - 1] == '\t'))
                n--;
        return n == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* The head [head, head + size), up to and including the empty line that ends it. */
static int parse_head(HttpResponse *r, const char *head, size_t size) {
        const char *p = head, *end = head + size;
        bool first = true, seen_length = false, has_encoding = false, chunked = false;
        uint64_t length = 0;
        int k;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = line_length(p, nl);
                const char *colon, *v;
                size_t name_size, vn;

                if (n == 0)
                        break;          /* the empty line */
                if (memchr(p, '\r', n))
                        return fail(r, -EBADMSG, "a CR inside a line of the head");
                if (first) {
                        k = parse_status_line(r, p, n);
                        if (k < 0)
                                return k;
                        first = false;
                        p = nl + 1;
                        continue;
                }
                if (p[0] == ' ' || p[0] == '\t')
                        return fail(r, -EBADMSG, "a folded header line");
                colon = memchr(p, ':', n);
                if (!colon || colon == p)
                        return fail(r, -EBADMSG, "a header line without a name and a colon");
                name_size = (size_t) (colon - p);
                for (size_t i = 0; i < name_size; i++)
                        if (!is_token_char(p[i]))
                                return fail(r, -EBADMSG, "a header name with a byte not allowed in it");
                v = colon + 1;
                vn = (size_t) (p + n - v);
                for (size_t i = 0; i < vn; i++)
                        if ((unsigned char) v[i] < ' ' && v[i] != '\t')
                                return fail(r, -EBADMSG, "a control byte in a header value");
                while (vn > 0 && (*v == ' ' || *v == '\t'))
                        v++, vn--;
                while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                        vn--;

                if (name_size == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
                        k = parse_content_length(r, v, vn, &length, &seen_length);
                        if (k < 0)
                                return k;
                } else if (name_size == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
                        has_encoding = true;
                        chunked = ends_chunked(v, vn);
                }
                p = nl + 1;
        }

        if (r->status < 200) {
                r->status = 0;          /* an interim answer: the real one follows */
                return 0;
        }
        if (r->status == 204 || r->status == 304)
                r->phase = HTTP_RESPONSE_DONE;
        else if (has_encoding)          /* it overrides Content-Length (RFC 9112, 6.3) */
                r->phase = chunked ? HTTP_RESPONSE_CHUNK_SIZE : HTTP_RESPONSE_BODY_CLOSE;
        else if (seen_length) {
                r->remaining = length;
                if (r->body_max > 0 && length > r->body_max)
                        return fail(r, -EFBIG, "the body is larger than allowed");
                r->phase = length == 0 ? HTTP_RESPONSE_DONE : HTTP_RESPONSE_BODY_LENGTH;
        } else
                r->phase = HTTP_RESPONSE_BODY_CLOSE;
        return 0;
}

/* Collects bytes of the head; returns how many of p it took (the rest is body), or < 0. */
static ssize_t feed_head(HttpResponse *r, const char *p, size_t n) {
        size_t take = 0, end = 0;
        int k;

        if (!r->head) {
                r->head = malloc(HTTP_RESPONSE_HEAD_MAX);
                if (!r->head)
                        return -ENOMEM;
        }
        /* Look for the empty line: "\n\n" or "\n\r\n", where the previous bytes may be old. */
        for (; take < n; take++) {
                char c = p[take];
                size_t h = r->head_size;

                if (h >= HTTP_RESPONSE_HEAD_MAX)
                        return fail(r, -EBADMSG, "the head is larger than 16 KiB");
                r->head[r->head_size++] = c;
                if (c == '\n' && h > 0 && (r->head[h - 1] == '\n' ||
                                           (r->head[h - 1] == '\r' && h > 1 && r->head[h - 2] == '\n'))) {
                        end = r->head_size;
                        take++;
                        break;
                }
        }
        if (end == 0)
                return (ssize_t) take;

        k = parse_head(r, r->head, end);
        if (k < 0)
                return k;
        r->head_size = 0;               /* the next head, after an interim answer, starts afresh */
        if (r->phase != HTTP_RESPONSE_HEAD)
                r->head = mfree(r->head);
        return (ssize_t) take;
}

/* Collects one line of the chunked framing; true once it is complete (in r->line, no CRLF). */
static int feed_line(HttpResponse *r, const char **p, size_t *n, bool *complete) {
        *complete = false;
        while (*n > 0) {
                char c = **p;

                (*p)++, (*n)--;
                if (c == '\n') {
                        if (r->line_size > 0 && r->line[r->line_size - 1] == '\r')
                                r->line_size--;
                        *complete = true;
                        return 0;
                }
                if (r->line_size >= sizeof(r->line) - 1)
                        return fail(r, -EBADMSG, "a chunk-size or trailer line over 1 KiB");
                r->line[r->line_size++] = c;
        }
        return 0;
}

static int parse_chunk_size(HttpResponse *r) {
        uint64_t size = 0;
        size_t i = 0;

        for (; i < r->line_size; i++) {
                char c = r->line[i];
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (unsigned) (c - 'A' + 10);
                else
                        break;
                if (i >= CHUNK_SIZE_DIGITS_MAX)
                        return fail(r, -EBADMSG, "a chunk size over 15 hex digits");
                size = size * 16 + d;
        }
        if (i == 0)
                return fail(r, -EBADMSG, "a chunk size that is not hex digits");
        while (i < r->line_size && (r->line[i] == ' ' || r->line[i] == '\t'))
                i++;
        if (i < r->line_size && r->line[i] != ';')
                return fail(r, -EBADMSG, "a chunk size that is not hex digits");
        r->remaining = size;
        r->phase = size == 0 ? HTTP_RESPONSE_TRAILER : HTTP_RESPONSE_CHUNK_DATA;
        return 0;
}

int http_response_feed(HttpResponse *r, const char *p, size_t n) {
        bool complete;
        int k;

        while (n > 0 || r->phase == HTTP_RESPONSE_DONE || r->phase == HTTP_RESPONSE_FAILED) {
                switch (r->phase) {

                case HTTP_RESPONSE_HEAD: {
                        ssize_t t = feed_head(r, p, n);
                        if (t < 0)
                                return (int) t;
                        p += t, n -= (size_t) t;
                        break;
                }

                case HTTP_RESPONSE_BODY_LENGTH:
                case HTTP_RESPONSE_CHUNK_DATA: {
                        size_t t = (size_t) MIN((uint64_t) n, r->remaining);

                        k = body_append(r, p, t);
                        if (k < 0)
                                return k;
                        p += t, n -= t;
                        r->remaining -= t;
                        if (r->remaining == 0)
                                r->phase = r->phase == HTTP_RESPONSE_BODY_LENGTH ? HTTP_RESPONSE_DONE :
                                                                                   HTTP_RESPONSE_CHUNK_END;
                        break;
                }

                case HTTP_RESPONSE_BODY_CLOSE:
                        k = body_append(r, p, n);
                        if (k < 0)
                                return k;
                        return 0;

                case HTTP_RESPONSE_CHUNK_SIZE:
                case HTTP_RESPONSE_CHUNK_END:
                case HTTP_RESPONSE_TRAILER:
                        k = feed_line(r, &p, &n, &complete);
                        if (k < 0)
                                return k;
                        if (!complete)
                                return 0;
                        if (r->phase == HTTP_RESPONSE_CHUNK_SIZE)
                                k = parse_chunk_size(r);
                        else if (r->phase == HTTP_RESPONSE_CHUNK_END && r->line_size > 0)
                                k = fail(r, -EBADMSG, "a chunk's data longer than its size");
                        else if (r->phase == HTTP_RESPONSE_CHUNK_END)
                                r->phase = HTTP_RESPONSE_CHUNK_SIZE;
                        else if (r->line_size == 0)
                                r->phase = HTTP_RESPONSE_DONE;
                        r->line_size = 0;
                        if (k < 0)
                                return k;
                        break;

                case HTTP_RESPONSE_DONE:
                        return 1;

                case HTTP_RESPONSE_FAILED:
                        return r->failure;
                }
        }
        return 0;
}

int http_response_eof(HttpResponse *r) {
        switch (r->phase) {
        case HTTP_RESPONSE_DONE:
        case HTTP_RESPONSE_BODY_CLOSE:
                r->phase = HTTP_RESPONSE_DONE;
                return 1;
        case HTTP_RESPONSE_FAILED:
                return r->failure;
        case HTTP_RESPONSE_HEAD:
                return fail(r, -EBADMSG, r->head_size == 0 ? "the connection closed without an answer" :
                                                             "the connection closed inside the answer's head");
        default:
                return fail(r, -EBADMSG, "the connection closed before the end of the body");
        }
}
