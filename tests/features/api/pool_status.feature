# SPDX-License-Identifier: GPL-3.0-or-later
@api
Feature: Pool status over HTTP
  GET /pools/{id}/status returns one pool's registry entry: the predecessor's fields (pool_id,
  live, ready, active_leases, engine_version) and ours (state, last_error, slots, unit, pid,
  url, handoff_path, supervision counters, ...). The orchestrator of the predecessor calls it with POST, which is
  served the same.

  Background:
    Given a running pool-managerd

  @OC-POOL-3003
  Scenario: The status of a ready pool has every field
    Given a ready pool "st-ready" with:
      | field          | value  |
      | engine_version | fake-1 |
      | slots_total    | 2      |
    When I GET /pools/st-ready/status
    Then the response status is 200
    And the response fields are:
      | field          | value                            |
      | pool_id        | st-ready                         |
      | live           | true                             |
      | ready          | true                             |
      | active_leases  | 0                                |
      | engine_version | fake-1                           |
      | last_error     | null                             |
      | state          | ready                            |
      | slots_total    | 2                                |
      | slots_free     | 2                                |
      | unit           | pool-engine-st-ready.service     |
      | pid            | $MAINPID(st-ready)               |
      | url            | http://127.0.0.1:$PORT(st-ready) |
    And the response has at least the fields "pool_id, live, ready, active_leases, engine_version, last_error, draining, slots_total, slots_free, device_mask, unit, pid, url, state, handoff_path, last_heartbeat_ms, crash_count, restart_count, backoff_ms, next_restart_usec, circuit_state"

  Scenario: The status of a pool that does not exist is 404
    When I GET /pools/missing-pool/status
    Then the response is 404 with the error "pool missing-pool not found"
    And the daemon has no pool "missing-pool"

  @OC-POOL-3003
  Scenario: The status follows the registry as it changes
    Given a ready pool "st-live"
    When I POST /pools/st-live/leases
    Then the status of pool "st-live" shows:
      | field         | value |
      | active_leases | 1     |
      | state         | ready |
    When I POST /pools/st-live/stop
    Then the response status is 200
    And the status of pool "st-live" shows:
      | field         | value   |
      | state         | stopped |
      | live          | false   |
      | ready         | false   |
      | pid           | null    |
      | handoff_path  | null    |
      | active_leases | 1       |

  Scenario Outline: engine_version is reported when the PreparedEngine gives one, null otherwise
    Given a ready pool "<pool>" with:
      | field          | value     |
      | engine_version | <version> |
    When I GET /pools/<pool>/status
    Then the response field "engine_version" is <reported>

    Examples:
      | pool      | version                    | reported                     |
      | st-with-v | llamacpp-source:b4000-cuda | "llamacpp-source:b4000-cuda" |
      | st-no-v   | (absent)                   | null                         |

  Scenario: POST /pools/{id}/status answers like GET, as the predecessor's orchestrator calls it
    Given a ready pool "st-post"
    When I POST /pools/st-post/status
    Then the response status is 200
    And the response is the same as the answer to GET /pools/st-post/status
