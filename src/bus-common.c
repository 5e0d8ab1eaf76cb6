/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "bus-common.h"
#include "manager.h"

int bus_reply_manager_error(sd_bus_message *m, int r, const char *message, const char *busy_error,
                            const char *fallback_error) {
        const char *name;

        switch (r) {
        case -ENOENT:
                name = BUS_ERROR_NO_SUCH_POOL;
                break;
        case -EINVAL:
        case -EFBIG:
                name = BUS_ERROR_INVALID_ARGUMENT;
                break;
        case -EBUSY:
                name = busy_error;
                break;
        case -ESRCH:
                name = BUS_ERROR_NOT_RUNNING;
                break;
        case -ENODEV:
                name = BUS_ERROR_GPU_REQUIRED;
                break;
        case -EADDRINUSE:
                name = BUS_ERROR_PORT_IN_USE;
                break;
        case -ENOMEM:
                return -ENOMEM;
        default:
                name = fallback_error;
        }
        return sd_bus_reply_method_errorf(m, name, "%s", message ?: strerror(-r));
}

int bus_check_authorized(Manager *manager, sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        uid_t euid;
        gid_t egid;
        int r, n;

        /* A user instance lives on the user's own bus: every peer there is that user. */
        if (manager->user)
                return 0;

        /* AUGMENT: dbus-daemon passes only the uid; the groups come from /proc of the peer. The
         * uid (the bus's own, trustworthy) decides root; the augmented groups only widen access
         * for members of the group, as the bus policy already does. */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                                      SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                return r;
        if (euid == 0)
                return 0;

        if (manager->api_gid != (gid_t) -1) {
                if (sd_bus_creds_get_egid(creds, &egid) >= 0 && egid == manager->api_gid)
                        return 0;
                n = sd_bus_creds_get_supplementary_gids(creds, &gids);
                for (int i = 0; i < n; i++)
                        if (gids[i] == manager->api_gid)
                                return 0;
        }

        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Only root and members of group \"%s\" may call %s.%s().",
                                 POOL_MANAGER_GROUP, sd_bus_message_get_interface(m),
                                 sd_bus_message_get_member(m));
}

int pool_bus_path(const char *id, char **ret) {
        return sd_bus_path_encode(POOL_MANAGER_POOL_PREFIX, id, ret);
}
