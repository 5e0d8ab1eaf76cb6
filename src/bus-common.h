/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* What the D-Bus interfaces share: names, error mapping, caller authorization. */

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

#define POOL_MANAGER_BUS_NAME "org.llorch.PoolManager1"
#define POOL_MANAGER_PATH "/org/llorch/PoolManager1"
#define POOL_MANAGER_POOL_PREFIX "/org/llorch/PoolManager1/pool"
#define POOL_MANAGER_INTERFACE "org.llorch.PoolManager1.Manager"
#define POOL_INTERFACE "org.llorch.PoolManager1.Pool"

#define BUS_ERROR_NO_SUCH_POOL "org.llorch.PoolManager1.Error.NoSuchPool"
#define BUS_ERROR_INVALID_ARGUMENT "org.llorch.PoolManager1.Error.InvalidArgument"
#define BUS_ERROR_ALREADY_RUNNING "org.llorch.PoolManager1.Error.AlreadyRunning"
#define BUS_ERROR_NOT_RUNNING "org.llorch.PoolManager1.Error.NotRunning"
#define BUS_ERROR_DRAINING "org.llorch.PoolManager1.Error.Draining"
#define BUS_ERROR_PRELOAD_FAILED "org.llorch.PoolManager1.Error.PreloadFailed"
#define BUS_ERROR_GPU_REQUIRED "org.llorch.PoolManager1.Error.GpuRequired"
#define BUS_ERROR_STARTING "org.llorch.PoolManager1.Error.Starting"
#define BUS_ERROR_PORT_IN_USE "org.llorch.PoolManager1.Error.PortInUse"
#define BUS_ERROR_FLEET_OFF "org.llorch.PoolManager1.Error.FleetOff"
#define BUS_ERROR_FLEET_UNAVAILABLE "org.llorch.PoolManager1.Error.FleetUnavailable"

/* The group whose members may call mutating methods on the system instance. */
#define POOL_MANAGER_GROUP "pool-managerd"

/*
 * Maps a manager_* return value and its message to a named error: -ENOENT NoSuchPool,
 * -EINVAL InvalidArgument, -EBUSY (AlreadyRunning or Draining, per busy_error), -ESRCH
 * NotRunning, -ENODEV GpuRequired, -EADDRINUSE PortInUse, anything else fallback_error.
 */
int bus_reply_manager_error(sd_bus_message *m, int r, const char *message, const char *busy_error,
                            const char *fallback_error);

/* Mutating methods: on the system bus only root and members of POOL_MANAGER_GROUP (the bus
 * policy says the same; this is the second lock). Returns 0 when allowed, else sets error. */
int bus_check_authorized(Manager *manager, sd_bus_message *m, sd_bus_error *error);

/* Pool object path <-> id. */
int pool_bus_path(const char *id, char **ret);
