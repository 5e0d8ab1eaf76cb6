/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <stddef.h>

typedef struct Manager Manager;

/* The Content-Type of the text exposition format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* GET /metrics: every family of pool-managerd(8)'s METRICS, from the registry, the pools and the
 * GPU inventory as they are now. Nothing is fetched: no I/O, no waiting. */
int metrics_export(Manager *m, char **ret, size_t *ret_size);
