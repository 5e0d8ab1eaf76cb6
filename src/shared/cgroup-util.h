/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Which unit a process belongs to, and a unit's cgroup by id and by processes. Paths are as
 * systemd's ControlGroup= property gives them: relative to the root of the hierarchy, starting
 * with "/". The cgroup2 hierarchy is /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid,
 * as on this project's test machine); the v1 name=systemd hierarchy is the fallback for PIDs.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The unit named by the contents of a /proc/PID/cgroup file: the deepest path component ending in
 * ".service" or ".scope" of the cgroup2 line ("0::/...") or, where that is "/" or missing, of the
 * v1 "name=systemd" line; a leading "_" (systemd's escape of names such as "_foo" or "cgroup.x")
 * removed. Returns 1 with *ret set, 0 with *ret = NULL when there is no unit (a process in the
 * root cgroup, or in a slice), -ENOMEM.
 */
int cg_unit_from_proc_cgroup(const char *content, char **ret);

/* The same from /proc/PID/cgroup. -ESRCH (or the read's error) when the process is gone. */
int cg_pid_get_unit(pid_t pid, char **ret);

/* The cgroup2 path of a process ("/.../foo.service"): 1 with *ret, 0 with *ret = NULL when it is
 * in the root or there is no cgroup2 line, -ESRCH when the process is gone. */
int cg_pid_get_path(pid_t pid, char **ret);
/* The mount point of the cgroup2 hierarchy, or NULL if there is none. */
const char *cg_unified_mount(void);

/*
 * The id of a cgroup2 cgroup (what the kernel reports as INET_DIAG_CGROUP_ID, and bpf as
 * bpf_get_current_cgroup_id()): its file handle on cgroup2fs. -ENOMEDIUM without cgroup2, -ENOENT
 * when the cgroup is gone.
 */
int cg_path_get_id(const char *path, uint64_t *ret);

/*
 * The PIDs in a cgroup and its descendants (cgroup.procs, cgroup2, or name=systemd where cgroup2
 * has no processes), sorted. At most 65536 PIDs and 64 levels; -E2BIG beyond.
 */
int cg_path_get_pids(const char *path, pid_t **ret, size_t *ret_n);

/*
 * A number from a cgroup2 attribute file of path (as cg_pid_get_path() gives it): the whole
 * file ("memory.current", "pids.current") when key is NULL, else the value of the line
 * "<key> <value>" ("cpu.stat", "usage_usec"). -ENOENT when the controller is not enabled
 * there, -EINVAL for content that is not a number, -ENOMEDIUM without cgroup2.
 */
int cg_path_get_attribute_u64(const char *path, const char *file, const char *key, uint64_t *ret);
