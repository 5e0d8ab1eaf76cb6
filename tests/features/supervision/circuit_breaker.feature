# SPDX-License-Identifier: GPL-3.0-or-later
@supervision @circuit
Feature: The circuit breaker stops restarting an engine that keeps crashing
  The circuit of a pool is "closed" while crashes are followed by restarts. The crash that
  makes BreakerThreshold= crashes in a row opens it: the pool is "failed" and nothing is
  restarted. After BreakerTimeout= it is "half-open" and the engine is started once more, as
  a trial; a trial that runs BreakerCloseAfter= closes the circuit, one that crashes opens it
  again for twice as long. A reset (POST /pools/{id}/reset, D-Bus ResetPool and Pool.Reset,
  poolctl reset) closes it at once and restarts a failed pool. Each pool has its own circuit.
  Every change is logged with OLD_STATE, NEW_STATE, FAILURE_COUNT and POOL_ID. The defaults
  (5 crashes, 300 s, 60 s) have a scenario of their own; the others use 3 crashes, a 1 s
  timeout and BreakerCloseAfter=500ms, with 50 ms between a crash and its restart.

  Background:
    Given a running pool-managerd configured with:
      | key               | value |
      | HealthInterval    | 20ms  |
      | BackoffInitial    | 50ms  |
      | BackoffMin        | 10ms  |
      | BackoffJitter     | 0     |
      | StableAfter       | 10s   |
      | BreakerThreshold  | 3     |
      | BreakerTimeout    | 1s    |
      | BreakerCloseAfter | 500ms |
      | StormLimit        | 50    |

  Scenario: The third crash in a row opens the circuit and the pool fails
    Given a ready pool "cb-open" with engine flags "--crash-after=250"
    Then within 5 seconds the D-Bus properties of pool "cb-open" are:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
      | Ready        | false  |
      | CrashCount   | 3      |
      | RestartCount | 2      |
    And the crash entries of pool "cb-open" have BACKOFF_MS "50, 100, 0"
    And systemd has no unit "pool-engine-cb-open.service"

  Scenario: While the circuit is open no engine is started
    Given a ready pool "cb-quiet" with engine flags "--crash-after=250"
    And within 5 seconds the D-Bus properties of pool "cb-quiet" are:
      | property     | value |
      | CircuitState | open  |
    Then for 0.7 seconds the D-Bus properties of pool "cb-quiet" stay:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
      | CrashCount   | 3      |
      | RestartCount | 2      |
      | MainPID      | 0      |
    And no engine of pool "cb-quiet" was started after its circuit opened
    And systemd has no unit "pool-engine-cb-quiet.service"

  Scenario: After BreakerTimeout= the circuit is half-open and one trial restart is made
    Given a ready pool "cb-trial" with engine flags "--crash-after=250"
    Then the circuit of pool "cb-trial" turned half-open between 0.9 and 1.4 seconds after it opened
    And the daemon's journal has an entry of pool "cb-trial" with:
      | field         | value                                          |
      | OLD_STATE     | open                                           |
      | NEW_STATE     | half-open                                      |
      | FAILURE_COUNT | 3                                              |
      | PRIORITY      | 4                                              |
      | MESSAGE       | Pool "cb-trial": circuit half-open, one trial restart. |
    And within 3 seconds the D-Bus properties of pool "cb-trial" are:
      | property     | value  |
      | CircuitState | open   |
      | CrashCount   | 4      |
      | RestartCount | 3      |

  Scenario: A trial engine that runs BreakerCloseAfter= closes the circuit, and crashes count from one again
    Given a ready pool "cb-close"
    When the engine of pool "cb-close" is killed with SIGKILL 3 times, each time once it serves again
    Then within 1 seconds the D-Bus properties of pool "cb-close" are:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
    And within 2 seconds the D-Bus properties of pool "cb-close" are:
      | property     | value     |
      | CircuitState | half-open |
      | State        | ready     |
    And within 2 seconds the D-Bus properties of pool "cb-close" are:
      | property     | value  |
      | CircuitState | closed |
      | State        | ready  |
    And the daemon's journal has an entry of pool "cb-close" with:
      | field     | value                                            |
      | OLD_STATE | half-open                                        |
      | NEW_STATE | closed                                           |
      | PRIORITY  | 5                                                |
      | MESSAGE   | Pool "cb-close": circuit closed after stable running. |
    When the engine of pool "cb-close" is killed with SIGKILL
    Then crash entry 4 of pool "cb-close" has the fields:
      | field      | value |
      | BACKOFF_MS | 50    |
    And within 2 seconds pool "cb-close" serves again with a new engine process

  Scenario: A trial that crashes opens the circuit again, for twice as long
    Given a ready pool "cb-double" with engine flags "--crash-after=250"
    Then the daemon's journal has an entry of pool "cb-double" with:
      | field         | value                                                                                            |
      | OLD_STATE     | half-open                                                                                        |
      | NEW_STATE     | open                                                                                             |
      | FAILURE_COUNT | 4                                                                                                |
      | MESSAGE       | Pool "cb-double": circuit open after 4 consecutive failures; no restarts until 2 s have passed or a reset. |
    And after it opened again, the circuit of pool "cb-double" turned half-open between 1.9 and 2.5 seconds later

  Scenario: Opening the circuit is logged as critical, with the old and new state and the failure count
    Given a ready pool "cb-logged" with engine flags "--crash-after=250"
    Then the daemon's journal has an entry of pool "cb-logged" with:
      | field         | value                                                                                            |
      | POOL_ID       | cb-logged                                                                                        |
      | OLD_STATE     | closed                                                                                           |
      | NEW_STATE     | open                                                                                             |
      | FAILURE_COUNT | 3                                                                                                |
      | PRIORITY      | 2                                                                                                |
      | MESSAGE       | Pool "cb-logged": circuit open after 3 consecutive failures; no restarts until 1 s have passed or a reset. |

  Scenario: The state of the circuit is published and saved
    The predecessor planned metrics circuit_breaker_state and circuit_breaker_open_total;
    until metrics exist, the same facts are the pool's CircuitState, its HTTP status and its
    saved state.

    Given I monitor the daemon's D-Bus signals
    And a ready pool "cb-published" with engine flags "--crash-after=250"
    Then the D-Bus signals announced CircuitState of pool "cb-published" as ["closed", "open"]
    And the status of pool "cb-published" shows:
      | field         | value  |
      | circuit_state | open   |
      | state         | failed |
      | crash_count   | 3      |
    And the status of pool "cb-published" agrees with its D-Bus properties on the supervision state
    And the saved state of pool "cb-published" has:
      | key                             | value   |
      | running                         | true    |
      | supervisor.circuit              | open    |
      | supervisor.consecutive_failures | 3       |
      | supervisor.circuit_timeout      | 1000000 |

  Scenario: A reset over HTTP closes the circuit and restarts the pool at once
    Given a ready pool "cb-reset" with engine flags "--crash-after=250"
    And within 5 seconds the D-Bus properties of pool "cb-reset" are:
      | property     | value |
      | CircuitState | open  |
    When I POST /pools/cb-reset/reset
    Then the response is 200 with the body {"pool_id": "cb-reset", "circuit": "closed"}
    And the D-Bus properties of pool "cb-reset" are:
      | property     | value  |
      | CircuitState | closed |
      | RestartCount | 3      |
    And the daemon's journal has an entry of pool "cb-reset" with:
      | field     | value                                     |
      | NEW_STATE | closed                                    |
      | PRIORITY  | 5                                         |
      | MESSAGE   | Pool "cb-reset": circuit reset by request. |
    And crash entry 4 of pool "cb-reset" has the fields:
      | field       | value |
      | BACKOFF_MS  | 50    |
      | CRASH_COUNT | 4     |

  Scenario: ResetPool, Pool.Reset and poolctl reset close the circuit too
    Given a ready pool "cb-bus" with engine flags "--crash-after=250"
    And a ready pool "cb-obj" with engine flags "--crash-after=250"
    And a ready pool "cb-ctl" with engine flags "--crash-after=250"
    And within 5 seconds the D-Bus properties of pool "cb-ctl" are:
      | property     | value |
      | CircuitState | open  |
    And the D-Bus properties of pool "cb-bus" are:
      | property     | value |
      | CircuitState | open  |
    And the D-Bus properties of pool "cb-obj" are:
      | property     | value |
      | CircuitState | open  |
    When I call ResetPool("cb-bus") on the manager over D-Bus
    And I call Reset() on the object of pool "cb-obj" over D-Bus
    And I run poolctl reset cb-ctl
    Then the D-Bus properties of pool "cb-bus" are:
      | property     | value  |
      | CircuitState | closed |
      | RestartCount | 3      |
    And the D-Bus properties of pool "cb-obj" are:
      | property     | value  |
      | CircuitState | closed |
      | RestartCount | 3      |
    And the D-Bus properties of pool "cb-ctl" are:
      | property     | value  |
      | CircuitState | closed |
      | RestartCount | 3      |

  Scenario: Each pool has a circuit of its own
    Given a ready pool "cb-bad" with engine flags "--crash-after=250"
    And a ready pool "cb-good"
    Then within 5 seconds the D-Bus properties of pool "cb-bad" are:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
    And the D-Bus properties of pool "cb-good" are:
      | property     | value  |
      | CircuitState | closed |
      | State        | ready  |
      | CrashCount   | 0      |
    And the engine of pool "cb-good" answers GET /health with 200

  Scenario: By default five crashes in a row open the circuit for 300 seconds
    Only the backoff is scaled down here; the breaker's settings are the defaults.

    Given a running pool-managerd configured with:
      | key            | value |
      | HealthInterval | 20ms  |
      | BackoffInitial | 20ms  |
      | BackoffMax     | 100ms |
      | BackoffMin     | 10ms  |
    And a ready pool "cb-default" with engine flags "--crash-after=250"
    Then the daemon's journal has an entry of pool "cb-default" with:
      | field         | value                                                                                              |
      | NEW_STATE     | open                                                                                               |
      | FAILURE_COUNT | 5                                                                                                  |
      | MESSAGE       | Pool "cb-default": circuit open after 5 consecutive failures; no restarts until 300 s have passed or a reset. |
    And the D-Bus properties of pool "cb-default" are:
      | property     | value  |
      | CircuitState | open   |
      | CrashCount   | 5      |
    And the configuration reference gives the defaults:
      | key               | default |
      | BreakerThreshold  | 5       |
      | BreakerTimeout    | 300s    |
      | BreakerCloseAfter | 60s     |
