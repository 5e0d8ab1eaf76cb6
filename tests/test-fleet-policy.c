/* SPDX-License-Identifier: GPL-3.0-or-later */

/* Coalescing of key writes and the reconnect backoff. */

#include "fleet-policy.h"
#include "test-util.h"

#define MS USEC_PER_MSEC
#define I (50 * MS)

TEST(first_change_writes_at_once) {
        FleetWrite w = {};

        ASSERT_EQ(fleet_write_due(&w, 1000 * MS, I), USEC_INFINITY);   /* clean */
        ASSERT_EQ(fleet_write_changed(&w, 1000 * MS, I), 1000 * MS);
        fleet_write_started(&w, 1000 * MS);
        ASSERT_FALSE(w.dirty);
        ASSERT_EQ(fleet_write_done(&w, 1003 * MS, I), USEC_INFINITY);
        /* Long after: at once again. */
        ASSERT_EQ(fleet_write_changed(&w, 2000 * MS, I), 2000 * MS);
}

TEST(changes_in_flight_wait) {
        FleetWrite w = {};

        (void) fleet_write_changed(&w, 1000 * MS, I);
        fleet_write_started(&w, 1000 * MS);
        /* Changes while the write is in flight: none may start, the latest is taken later. */
        ASSERT_EQ(fleet_write_changed(&w, 1001 * MS, I), USEC_INFINITY);
        ASSERT_EQ(fleet_write_changed(&w, 1002 * MS, I), USEC_INFINITY);
        /* Done after 10 ms: the next is due at the interval. */
        ASSERT_EQ(fleet_write_done(&w, 1010 * MS, I), 1050 * MS);
        /* Done late (slow etcd): due at once. */
        fleet_write_started(&w, 1050 * MS);
        (void) fleet_write_changed(&w, 1051 * MS, I);
        ASSERT_EQ(fleet_write_done(&w, 1200 * MS, I), 1200 * MS);
}

TEST(burst_is_bounded) {
        /* 1000 changes, one per ms, writes taking 2 ms: every write at least 50 ms after the last,
         * and the state of the last change written at the end. */
        FleetWrite w = {};
        usec_t due = USEC_INFINITY, in_flight_until = 0, last_write = 0;
        unsigned writes = 0, last_change = 0, written_state = 0, state_in_flight = 0;

        for (usec_t t = 0; t <= 2000 * MS; t += MS) {
                if (w.in_flight && t >= in_flight_until) {
                        written_state = state_in_flight;
                        due = fleet_write_done(&w, t, I);
                }
                if (t < 1000 * MS) {
                        last_change = (unsigned) (t / MS) + 1;
                        due = fleet_write_changed(&w, t, I);
                }
                if (due != USEC_INFINITY && t >= due) {
                        if (writes > 0)
                                ASSERT_TRUE(t - last_write >= I);
                        fleet_write_started(&w, t);
                        state_in_flight = last_change;
                        in_flight_until = t + 2 * MS;
                        last_write = t;
                        writes++;
                        due = USEC_INFINITY;
                }
        }
        ASSERT_TRUE(writes <= 1 + 1000 / 50 + 1);
        ASSERT_TRUE(writes >= 1000 / 50);
        ASSERT_EQ(written_state, 1000);
        ASSERT_FALSE(w.dirty);
        ASSERT_FALSE(w.in_flight);
}

TEST(backoff) {
        usec_t initial = 200 * MS, max = 5 * USEC_PER_SEC;

        ASSERT_EQ(fleet_backoff(0, initial, max, 0), 0);
        /* random 0: the low end (-25%); the middle of the range is exactly the doubling. */
        ASSERT_EQ(fleet_backoff(1, initial, max, 0), 150 * MS);
        ASSERT_EQ(fleet_backoff(1, initial, max, 50 * MS), 200 * MS);
        ASSERT_EQ(fleet_backoff(2, initial, max, 100 * MS), 400 * MS);
        ASSERT_EQ(fleet_backoff(3, initial, max, 200 * MS), 800 * MS);
        ASSERT_EQ(fleet_backoff(4, initial, max, 400 * MS), 1600 * MS);
        /* Capped, jitter never past max. */
        ASSERT_EQ(fleet_backoff(10, initial, max, 0), 3750 * MS);
        ASSERT_EQ(fleet_backoff(10, initial, max, UINT64_MAX), fleet_backoff(10, initial, max, UINT64_MAX));
        for (uint64_t r = 0; r < 100000; r += 997) {
                usec_t d = fleet_backoff(1000, initial, max, r * 7919);

                ASSERT_TRUE(d >= max - max / 4 && d <= max);
                d = fleet_backoff(1, initial, max, r * 7919);
                ASSERT_TRUE(d >= 150 * MS && d <= 250 * MS);
        }
}

DEFINE_TEST_MAIN
