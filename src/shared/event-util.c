/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <stdint.h>

#include "event-util.h"

int event_source_arm(sd_event_source *s, uint64_t usec) {
        int r;

        r = sd_event_source_set_time(s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int event_reset_time(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec, uint64_t accuracy,
                     sd_event_time_handler_t callback, void *userdata, const char *description) {
        int r;

        if (!*s) {
                r = sd_event_add_time(e, s, clock, usec, accuracy, callback, userdata);
                if (r < 0)
                        return r;
                if (description)
                        (void) sd_event_source_set_description(*s, description);
                return 0;
        }
        return event_source_arm(*s, usec);
}

int event_reset_time_relative(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec,
                              uint64_t accuracy, sd_event_time_handler_t callback, void *userdata,
                              const char *description) {
        uint64_t t;
        int r;

        r = sd_event_now(e, clock, &t);
        if (r < 0)
                return r;
        if (usec >= UINT64_MAX - t)
                return -EOVERFLOW;
        return event_reset_time(e, s, clock, t + usec, accuracy, callback, userdata, description);
}
