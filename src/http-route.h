/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <stdbool.h>

/* "/pools/a%2Fb/status" -> { "pools", "a/b", "status" }; "/" -> { "" }. A bad escape or %00
 * keeps its segment as it came (it then matches no literal segment and is no valid pool id).
 * -EINVAL for a path that does not begin with "/". */
int http_path_split(const char *path, char ***ret);

/* Whether segments match pattern ("/pools/{id}/status": "{id}" matches any one segment, which
 * *ret_id then points to; NULL when the pattern has none). */
bool http_path_match(const char *pattern, char **segments, const char **ret_id);
