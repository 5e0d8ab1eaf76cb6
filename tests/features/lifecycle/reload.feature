# SPDX-License-Identifier: GPL-3.0-or-later
@lifecycle @reload
Feature: Reloading a pool with another engine
  A reload (POST /pools/{id}/reload, D-Bus Reload) replaces the engine of a ready pool with
  another PreparedEngine for the same pool id: the pool is drained first, for at most
  ReloadDrainTimeout=; the old engine is stopped; the new one is started under the same unit
  and answers once it is healthy. If the new engine fails, the old one is started again (a
  rollback) and really serves again. The predecessor continued after a forced drain, and
  "rolled back" only its registry entry without restarting the old engine; it staged models
  through a provisioner, which pool-managerd leaves to whoever writes the PreparedEngine.
  ReloadDrainTimeout=2s here stands in for the default 30 s.

  Background:
    Given a running pool-managerd configured with:
      | key                | value |
      | ReloadDrainTimeout | 2s    |

  Scenario: The reload drains the pool first and waits for its leases
    Given a ready pool "rl-drain" with:
      | field          | value |
      | engine_version | v1    |
    And pool "rl-drain" holds 1 lease
    When I start reloading pool "rl-drain" over HTTP with engine flags "--slots=2" and:
      | field          | value |
      | engine_version | v2    |
    Then after 0.5 seconds the reload of pool "rl-drain" has not been answered yet
    And the status of pool "rl-drain" shows:
      | field          | value |
      | draining       | true  |
      | ready          | true  |
      | engine_version | v1    |
    And the previous engine of pool "rl-drain" still serves, as the same process
    When I POST /pools/rl-drain/leases
    Then the response is 409 with the error "pool rl-drain is draining: new leases are refused"
    When I DELETE /pools/rl-drain/leases
    Then the reload of pool "rl-drain" answers within 5 seconds
    And the response is 200 with the body {"pool_id": "rl-drain", "success": true, "rolled_back": false, "engine_version": "v2", "error": null}

  Scenario: The new engine is started exactly as its PreparedEngine says
    The model is the PreparedEngine's to name: the new engine gets the new model_path and
    flags, and the handoff file names the new model.

    Given a ready pool "rl-model" with engine flags "--model=/models/a.gguf" with:
      | field      | value           |
      | model_path | /models/a.gguf  |
    When I reload pool "rl-model" over HTTP with engine flags "--model=/models/b.gguf" and:
      | field      | value          |
      | model_path | /models/b.gguf |
    Then the response status is 200
    And the ExecStart of unit "pool-engine-rl-model.service" is the binary_path of pool "rl-model" followed by its flags
    And the command line of the engine of pool "rl-model" is its binary_path followed by its flags
    And the handoff file of pool "rl-model" contains:
      | key        | value          |
      | model.path | /models/b.gguf |

  Scenario: The old engine is stopped before the new one starts, under the same unit and pool id
    Given a ready pool "rl-swap"
    When I reload pool "rl-swap" over HTTP
    Then the response status is 200
    And the previous engine process of pool "rl-swap" is gone
    And the engine of pool "rl-swap" was stopped before the new one was started
    And the pid file of pool "rl-swap" holds the new engine's pid
    And the D-Bus properties of pool "rl-swap" are:
      | property | value                        |
      | PoolId   | rl-swap                      |
      | Unit     | pool-engine-rl-swap.service  |
      | MainPID  | $MAINPID(rl-swap)            |
    And GET /pools lists pool "rl-swap" exactly once

  Scenario: The answer waits until the new engine answers its health check
    Given a ready pool "rl-health"
    When I reload pool "rl-health" over HTTP with engine flags "--ready-after=800"
    Then the response status is 200
    And the response came after the engine of pool "rl-health" turned healthy
    And the response took between 0.8 and 5 seconds
    And the engine of pool "rl-health" answered its probes 503 until it answered 200 once

  Scenario: After a reload the pool is ready with the new engine, and no restart was counted
    Given a ready pool "rl-ready" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-ready" over HTTP with:
      | field          | value |
      | engine_version | v2    |
    Then the response is 200 with the body {"pool_id": "rl-ready", "success": true, "rolled_back": false, "engine_version": "v2", "error": null}
    And the status of pool "rl-ready" shows:
      | field          | value                   |
      | state          | ready                   |
      | live           | true                    |
      | ready          | true                    |
      | draining       | false                   |
      | engine_version | v2                      |
      | last_error     | null                    |
      | url            | http://127.0.0.1:$PORT(rl-ready) |
    And the engine of pool "rl-ready" answers GET /health with 200
    And the D-Bus properties of pool "rl-ready" are:
      | property     | value  |
      | CrashCount   | 0      |
      | RestartCount | 0      |
      | CircuitState | closed |
    And the journal has no crash entry of pool "rl-ready"

  Scenario: A new engine that exits before it is ready is rolled back to the old one
    Given a ready pool "rl-exit" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-exit" over HTTP with engine flags "--ready-after=5000 --exit-after=200 --exit-code=3" and:
      | field          | value |
      | engine_version | v2    |
    Then the response status is 502
    And the response fields are:
      | field          | value                                                  |
      | code           | RELOAD_FAILED                                          |
      | pool_id        | rl-exit                                                |
      | success        | false                                                  |
      | rolled_back    | true                                                   |
      | engine_version | v1                                                     |
      | error          | engine exited with status 3 before becoming ready: "… |
    And the previous engine of pool "rl-exit" serves again on its port
    And the status of pool "rl-exit" shows:
      | field          | value |
      | state          | ready |
      | engine_version | v1    |
      | draining       | false |

  Scenario: A new engine that never becomes healthy is stopped and rolled back
    Given a ready pool "rl-never" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-never" over HTTP with engine flags "--never-ready" and:
      | field          | value               |
      | engine_version | v2                  |
      | health         | {"timeout_ms": 500} |
    Then the response status is 502
    And the response fields are:
      | field          | value   |
      | code           | RELOAD_FAILED |
      | success        | false   |
      | rolled_back    | true    |
      | engine_version | v1      |
    And the response field "error" starts with "health check timed out after 500 ms"
    And nothing listens on the port of the new engine of pool "rl-never"
    And the previous engine of pool "rl-never" serves again on its port

  Scenario: The engine version and the handoff file follow the new engine, also over D-Bus
    Given a ready pool "rl-dbus" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-dbus" over D-Bus with engine flags "--slots=3" and:
      | field          | value |
      | engine_version | v2    |
    Then the D-Bus reply is success true, rolled_back false, engine_version "v2" and no error
    And the D-Bus properties of pool "rl-dbus" are:
      | property      | value |
      | EngineVersion | v2    |
      | State         | ready |
    And the handoff file of pool "rl-dbus" contains:
      | key            | value                           |
      | engine_version | v2                              |
      | url            | http://127.0.0.1:$PORT(rl-dbus) |
      | pid            | $MAINPID(rl-dbus)               |

  Scenario: The device mask is kept unless the new engine sets its own
    Given a ready pool "rl-mask" with:
      | field       | value |
      | device_mask | 0,1   |
    When I reload pool "rl-mask" over HTTP
    Then the response status is 200
    And the D-Bus properties of pool "rl-mask" are:
      | property   | value |
      | DeviceMask | 0,1   |
    And the unit "pool-engine-rl-mask.service" has the properties:
      | property    | value                  |
      | Environment | CUDA_VISIBLE_DEVICES=0,1 |
    When I reload pool "rl-mask" over HTTP with:
      | field       | value |
      | device_mask | 2     |
    Then the response status is 200
    And the D-Bus properties of pool "rl-mask" are:
      | property   | value |
      | DeviceMask | 2     |
    And the unit "pool-engine-rl-mask.service" has the properties:
      | property    | value                  |
      | Environment | CUDA_VISIBLE_DEVICES=2 |

  Scenario: A reload to an engine binary that does not exist is refused before anything changes
    The binary is checked before the drain: the request is bad input (422 BINARY_NOT_FOUND,
    BinaryNotFound on D-Bus) and the old engine keeps serving, as the same process.

    Given a ready pool "rl-nobin"
    When I reload pool "rl-nobin" over HTTP with:
      | field       | value               |
      | binary_path | /nonexistent/engine |
    Then the response is 422 BINARY_NOT_FOUND with the error "binary_path: engine binary not found: /nonexistent/engine"
    When I reload pool "rl-nobin" over D-Bus with:
      | field       | value               |
      | binary_path | /nonexistent/engine |
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.BinaryNotFound"
    And the D-Bus error message is "binary_path: engine binary not found: /nonexistent/engine"
    And the previous engine of pool "rl-nobin" still serves, as the same process
    And the status of pool "rl-nobin" shows:
      | field    | value |
      | state    | ready |
      | draining | false |

  Scenario: A failed reload keeps the old engine serving, and the pool stays ready for leases
    Given a ready pool "rl-keep" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-keep" over HTTP with engine flags "--exit-after=100 --ready-after=5000" and:
      | field          | value |
      | engine_version | v2    |
    Then the response status is 502
    And the previous engine of pool "rl-keep" serves again on its port
    When I POST /pools/rl-keep/leases
    Then the response is 200 with the body {"pool_id": "rl-keep", "active_leases": 1}
    And the D-Bus properties of pool "rl-keep" are:
      | property      | value |
      | Ready         | true  |
      | Draining      | false |
      | EngineVersion | v1    |
      | LastError     |       |

  Scenario: Each reload's outcome is recorded in the journal
    The predecessor planned metrics reload_success_total and reload_failure_total; until
    metrics exist, the entry that ends each reload carries its outcome as fields.

    Given a ready pool "rl-record" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-record" over HTTP with:
      | field          | value |
      | engine_version | v2    |
    Then the response status is 200
    And the daemon's journal has an entry of pool "rl-record" with:
      | field          | value                             |
      | RELOAD_SUCCESS | 1                                 |
      | ROLLED_BACK    | 0                                 |
      | ENGINE_VERSION | v2                                |
      | PRIORITY       | 6                                 |
      | MESSAGE        | Pool "rl-record": reload succeeded |
    When I reload pool "rl-record" over HTTP with engine flags "--ready-after=5000 --exit-after=100 --exit-code=7" and:
      | field          | value |
      | engine_version | v3    |
    Then the response status is 502
    And the daemon's journal has an entry of pool "rl-record" with:
      | field          | value                                                                                                 |
      | RELOAD_SUCCESS | 0                                                                                                     |
      | ROLLED_BACK    | 1                                                                                                     |
      | ENGINE_VERSION | v2                                                                                                    |
      | PRIORITY       | 4                                                                                                     |
      | MESSAGE        | Pool "rl-record": reload failed and was rolled back: engine exited with status 7 before becoming ready: "… |

  Scenario: Leases still held at the drain deadline abort the reload; the old engine keeps serving
    Given a ready pool "rl-abort" with:
      | field          | value |
      | engine_version | v1    |
    And pool "rl-abort" holds 1 lease
    When I reload pool "rl-abort" over HTTP with:
      | field          | value |
      | engine_version | v2    |
    Then the response is 409 with the body {"pool_id": "rl-abort", "success": false, "rolled_back": false, "engine_version": "v1", "error": "reload aborted: drain deadline passed with 1 active lease; the old engine keeps serving", "code": "RELOAD_ABORTED"}
    And the response took between 2 and 4 seconds
    And the previous engine of pool "rl-abort" still serves, as the same process
    And the status of pool "rl-abort" shows:
      | field          | value |
      | state          | ready |
      | draining       | false |
      | active_leases  | 1     |
      | engine_version | v1    |
    When I POST /pools/rl-abort/leases
    Then the response is 200 with the body {"pool_id": "rl-abort", "active_leases": 2}

  Scenario: The drain of a reload waits 30 seconds for leases by default
    Given a running pool-managerd configured with:
      | key                | value   |
      | ReloadDrainTimeout | (unset) |
    And a ready pool "rl-default" with:
      | field          | value |
      | engine_version | v1    |
    When I reload pool "rl-default" over HTTP with:
      | field          | value |
      | engine_version | v2    |
    Then the response status is 200
    And the daemon's journal has the message "Pool \"rl-default\": reloading to engine v2, draining first (up to 30000 ms)." at priority 6
    And the configuration reference gives the defaults:
      | key                | default |
      | ReloadDrainTimeout | 30s     |
