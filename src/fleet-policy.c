/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "fleet-policy.h"
#include "shared/macro.h"

usec_t fleet_write_due(const FleetWrite *w, usec_t now, usec_t interval) {
        if (!w->dirty || w->in_flight)
                return USEC_INFINITY;
        if (!w->ever_started || w->last_start + interval <= now)
                return now;
        return w->last_start + interval;
}

usec_t fleet_write_changed(FleetWrite *w, usec_t now, usec_t interval) {
        w->dirty = true;
        return fleet_write_due(w, now, interval);
}

void fleet_write_started(FleetWrite *w, usec_t now) {
        w->dirty = false;
        w->in_flight = true;
        w->ever_started = true;
        w->last_start = now;
}

usec_t fleet_write_done(FleetWrite *w, usec_t now, usec_t interval) {
        w->in_flight = false;
        return fleet_write_due(w, now, interval);
}

usec_t fleet_backoff(unsigned failures, usec_t initial, usec_t max, uint64_t random) {
        usec_t d = initial;

        if (failures == 0)
                return 0;
        for (unsigned i = 1; i < failures && d < max; i++)
                d = d > max / 2 ? max : d * 2;
        d = MIN(d, max);
        /* d * [0.75, 1.25] */
        d = d - d / 4 + random % (d / 2 + 1);
        return MIN(d, max);
}
