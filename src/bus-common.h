/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* What the D-Bus interfaces share: names, error mapping, caller authorization. */

#include <systemd/sd-bus.h>

#include "shared/pool-error.h"

typedef struct Manager Manager;

#define POOL_MANAGER_BUS_NAME "org.llorch.PoolManager1"
#define POOL_MANAGER_PATH "/org/llorch/PoolManager1"
#define POOL_MANAGER_POOL_PREFIX "/org/llorch/PoolManager1/pool"
#define POOL_MANAGER_INTERFACE "org.llorch.PoolManager1.Manager"
#define POOL_INTERFACE "org.llorch.PoolManager1.Pool"


/* The group whose members may call mutating methods on the system instance. */
#define POOL_MANAGER_GROUP "pool-managerd"

/* Sets error to the D-Bus error of code (shared/pool-error.c's table) with the formatted message;
 * returns the negative errno that a method handler returns after it. */
int bus_error_set(sd_bus_error *error, PoolErrorCode code, const char *format, ...) _printf_(3, 4);
/* Replies to m with e's D-Bus error. */
int bus_reply_pool_error(sd_bus_message *m, const PoolError *e);
/* A synchronous refusal of a manager operation: r < 0 with e set, or -ENOMEM (and other
 * failures without a PoolError, which sd-bus answers itself). */
int bus_reply_refusal(sd_bus_message *m, int r, const PoolError *e);

/* Mutating methods: on the system bus only root and members of POOL_MANAGER_GROUP (the bus
 * policy says the same; this is the second lock). Returns 0 when allowed, else sets error. */
int bus_check_authorized(Manager *manager, sd_bus_message *m, sd_bus_error *error);

/* Pool object path <-> id. */
int pool_bus_path(const char *id, char **ret);
