# SPDX-License-Identifier: GPL-3.0-or-later
@lifecycle @drain
Feature: Draining a pool
  A drain takes a pool out of service gently: from the moment it is asked for, new leases
  are refused while the leases already held can still be released; the engine is stopped
  once no lease is held, or at the deadline with the leases still held. The predecessor
  polled its lease count every 100 ms while holding the registry and never cleared the
  draining flag; here the last release triggers the stop, the answer (POST
  /pools/{id}/drain, D-Bus Drain) comes when the engine's unit is gone, and the pool ends
  "stopped", neither live, ready nor draining. A drained pool is not restarted: the backoff
  below is short so that a restart would show.

  Background:
    Given a running pool-managerd configured with:
      | key            | value |
      | BackoffInitial | 100ms |
      | BackoffJitter  | 0     |

  Scenario: The pool is marked as draining as soon as the drain is asked for
    With ?wait=false the answer comes at once, while the drain waits for the lease.

    Given a ready pool "dr-flag"
    And pool "dr-flag" holds 1 lease
    When I POST /pools/dr-flag/drain?wait=false with the body:
      """
      {"deadline_ms": 10000}
      """
    Then the response is 202 with the body {"pool_id": "dr-flag", "draining": true, "deadline_ms": 10000}
    And the status of pool "dr-flag" shows:
      | field         | value |
      | draining      | true  |
      | state         | ready |
      | ready         | true  |
      | active_leases | 1     |
    And the D-Bus properties of pool "dr-flag" are:
      | property | value |
      | Draining | true  |

  Scenario: New leases are refused while the pool drains, and so is a second drain
    Given a ready pool "dr-refuse"
    And pool "dr-refuse" holds 1 lease
    And I start draining pool "dr-refuse" over HTTP with a deadline of 10000 ms
    When I POST /pools/dr-refuse/leases
    Then the response is 409 with the error "pool dr-refuse is draining: new leases are refused"
    When I call AllocateLease("dr-refuse") on the manager over D-Bus
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.Draining"
    When I POST /pools/dr-refuse/drain with the body:
      """
      {"deadline_ms": 1000}
      """
    Then the response is 409 with the error "pool dr-refuse is already draining"
    And the status of pool "dr-refuse" shows:
      | field         | value |
      | active_leases | 1     |
      | draining      | true  |

  Scenario: Leases already held can be released, and the engine serves while one is still held
    Given a ready pool "dr-release"
    And pool "dr-release" holds 2 leases
    And I start draining pool "dr-release" over HTTP with a deadline of 10000 ms
    When I DELETE /pools/dr-release/leases
    Then the response is 200 with the body {"pool_id": "dr-release", "active_leases": 1}
    And the engine of pool "dr-release" answers GET /health with 200
    And the status of pool "dr-release" shows:
      | field    | value |
      | state    | ready |
      | ready    | true  |
      | draining | true  |
    And the unit "pool-engine-dr-release.service" is still active
    And after 0.3 seconds the drain of pool "dr-release" has not been answered yet

  Scenario: The drain stops the engine as soon as the leases are back to zero
    Given a ready pool "dr-wait"
    And pool "dr-wait" holds 2 leases
    When I start draining pool "dr-wait" over HTTP with a deadline of 10000 ms
    Then after 0.5 seconds the drain of pool "dr-wait" has not been answered yet
    When I DELETE /pools/dr-wait/leases 2 times
    Then the drain of pool "dr-wait" answers within 5 seconds
    And the response status is 200
    And the response has exactly the fields "pool_id, force_stopped, duration_ms, final_lease_count"
    And the response fields are:
      | field             | value   |
      | pool_id           | dr-wait |
      | force_stopped     | false   |
      | final_lease_count | 0       |
    And the response field "duration_ms" lies between 500 and 5000
    And the engine process of pool "dr-wait" is gone

  Scenario: At the deadline the engine is stopped with the leases still held
    Given a ready pool "dr-force"
    And pool "dr-force" holds 2 leases
    When I drain pool "dr-force" over HTTP with a deadline of 1000 ms
    Then the response status is 200
    And the response fields are:
      | field             | value    |
      | pool_id           | dr-force |
      | force_stopped     | true     |
      | final_lease_count | 2        |
    And the response field "duration_ms" lies between 1000 and 2500
    And the response took between 1 and 3 seconds
    And the engine process of pool "dr-force" is gone
    And the status of pool "dr-force" shows:
      | field         | value   |
      | state         | stopped |
      | active_leases | 2       |

  Scenario: After the drain the engine's unit, pid file and handoff file are gone
    Given a ready pool "dr-files"
    And the pid file of pool "dr-files" holds the MainPID of unit "pool-engine-dr-files.service"
    When I call Drain(5000) on the object of pool "dr-files" over D-Bus
    Then the Drain reply says force_stopped false, final_lease_count 0 and a duration between 0 and 2000 ms
    And the engine process of pool "dr-files" is gone
    And systemd has no unit "pool-engine-dr-files.service"
    And pool "dr-files" has no pid file
    And pool "dr-files" has no handoff file

  Scenario: A drained pool is neither live, ready nor draining, and is not restarted
    Given a ready pool "dr-health"
    And pool "dr-health" holds 1 lease
    When I drain pool "dr-health" over HTTP with a deadline of 500 ms
    Then the response status is 200
    And the status of pool "dr-health" shows:
      | field        | value   |
      | live         | false   |
      | ready        | false   |
      | draining     | false   |
      | state        | stopped |
      | pid          | null    |
      | handoff_path | null    |
    And the D-Bus properties of pool "dr-health" are:
      | property | value   |
      | Live     | false   |
      | Ready    | false   |
      | Draining | false   |
      | State    | stopped |
      | MainPID  | 0       |
    And after 0.5 seconds the status of pool "dr-health" shows:
      | field         | value   |
      | state         | stopped |
      | restart_count | 0       |
      | crash_count   | 0       |

  Scenario: Without leases the drain stops the engine at once
    Given a ready pool "dr-idle"
    When I call Drain("dr-idle", 60000) on the manager over D-Bus
    Then the Drain reply says force_stopped false, final_lease_count 0 and a duration between 0 and 1000 ms
    And the D-Bus call took less than 2 seconds
    And the D-Bus properties of pool "dr-idle" are:
      | property | value   |
      | State    | stopped |
      | Draining | false   |

  Scenario: The drain's outcome and duration are recorded in the journal
    The predecessor planned a metric drain_duration_ms; until metrics exist, the journal entry
    that ends each drain carries its duration and outcome as fields.

    Given a ready pool "dr-record"
    And pool "dr-record" holds 1 lease
    And I start draining pool "dr-record" over HTTP with a deadline of 10000 ms
    When I DELETE /pools/dr-record/leases
    Then the drain of pool "dr-record" answers within 5 seconds
    And the response status is 200
    And the daemon's journal records the drain of pool "dr-record" as the response says, at priority 6
    And the drain entry says "Pool \"dr-record\": drain done after $DURATION_MS ms"

  Scenario: A stop forced by the deadline is logged as a warning, naming the leases in flight
    Given a ready pool "dr-warn"
    And pool "dr-warn" holds 1 lease
    When I drain pool "dr-warn" over HTTP with a deadline of 500 ms
    Then the response status is 200
    And the daemon's journal has the message "Pool \"dr-warn\": drain deadline passed with 1 active lease; stopping the engine anyway." at priority 4
    And the daemon's journal records the drain of pool "dr-warn" as the response says, at priority 4
    And the drain entry says "Pool \"dr-warn\": drain done after $DURATION_MS ms (force-stopped with leases in flight)"
