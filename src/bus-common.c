/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "bus-common.h"
#include "manager.h"

int bus_error_set(sd_bus_error *error, PoolErrorCode code, const char *format, ...) {
        _cleanup_(pool_error_done) PoolError e = POOL_ERROR_NULL;
        va_list ap;

        va_start(ap, format);
        (void) pool_error_setv(&e, code, format, ap);
        va_end(ap);
        if (!e.message)
                return -ENOMEM;
        return sd_bus_error_set(error, pool_error_info(code)->bus_name ?: SD_BUS_ERROR_FAILED, e.message);
}

int bus_reply_pool_error(sd_bus_message *m, const PoolError *e) {
        const PoolErrorInfo *info = pool_error_info(e->code);

        return sd_bus_reply_method_errorf(m, info->bus_name ?: SD_BUS_ERROR_FAILED, "%s", pool_error_message(e));
}

int bus_reply_refusal(sd_bus_message *m, int r, const PoolError *e) {
        if (!pool_error_is_set(e))
                return r;
        return bus_reply_pool_error(m, e);
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
