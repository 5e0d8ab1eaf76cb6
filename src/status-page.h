/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The status page of GET / (status-page.html, embedded at build time by status-page-gen.py) and the
 * Content-Security-Policy it is served with: only its own inline script and style, by hash, and
 * connections to the daemon itself.
 */

#include <stddef.h>

extern const char status_page_html[];
extern const size_t status_page_html_size;
extern const char status_page_csp[];
