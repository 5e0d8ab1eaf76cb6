# SPDX-License-Identifier: GPL-3.0-or-later
@supervision @storm
Feature: Restart storms are bounded
  Besides crashes in a row, the daemon counts the restarts of a pool within a sliding window
  of StormWindow=: at a crash when more than StormWarn= restarts fall in the window it logs a
  warning, and when StormLimit= or more do, it opens the circuit breaker at once, however few
  of the crashes were in a row. The restart times are saved in StateDirectory with the
  counts, so they survive a restart of the daemon. The defaults (a 60 s window, a warning
  above 5, the limit at 10) have a scenario of their own; the others use a 2 s window, a
  warning above 2 and the limit at 4. Engines here crash after running longer than
  StableAfter=, so every crash is the first in a row and only the storm rule can stop them.

  Background:
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 50ms  |
      | BackoffMin       | 10ms  |
      | BackoffJitter    | 0     |
      | StableAfter      | 100ms |
      | BreakerThreshold | 100   |
      | StormWindow      | 2s    |
      | StormWarn        | 2     |
      | StormLimit       | 4     |

  Scenario: StormLimit= restarts within the window open the circuit, though no crash was in a row
    Given a ready pool "st-limit" with engine flags "--crash-after=250"
    Then within 6 seconds the D-Bus properties of pool "st-limit" are:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
      | RestartCount | 4      |
      | CrashCount   | 5      |
    And the crash entries of pool "st-limit" have BACKOFF_MS "50, 50, 50, 50, 0"
    And for 0.5 seconds the D-Bus properties of pool "st-limit" stay:
      | property     | value |
      | RestartCount | 4     |
      | CircuitState | open  |

  Scenario: More than StormWarn= restarts within the window log a warning
    Given a ready pool "st-warn" with engine flags "--crash-after=250"
    Then the daemon's journal has the message "Pool \"st-warn\": 3 restarts within 2 s." at priority 4
    And crash entry 4 of pool "st-warn" has the fields:
      | field       | value |
      | CRASH_COUNT | 4     |
      | BACKOFF_MS  | 50    |

  Scenario: A storm opening the circuit is a critical alert
    Given a ready pool "st-crit" with engine flags "--crash-after=250"
    Then the daemon's journal has an entry of pool "st-crit" with:
      | field         | value                                                                                                             |
      | OLD_STATE     | closed                                                                                                            |
      | NEW_STATE     | open                                                                                                              |
      | FAILURE_COUNT | 1                                                                                                                 |
      | PRIORITY      | 2                                                                                                                 |
      | MESSAGE       | Pool "st-crit": circuit open after 1 consecutive failures (restart storm); no restarts until 300 s have passed or a reset. |

  Scenario: Restarts spread wider than the window never make a storm
    Given a ready pool "st-spread"
    When the engine of pool "st-spread" is killed with SIGKILL 3 times, each time once it serves again
    Then within 2 seconds pool "st-spread" serves again with a new engine process
    And pool "st-spread" serves for 2.2 seconds without a restart
    When the engine of pool "st-spread" is killed with SIGKILL 3 times, each time once it serves again
    Then within 2 seconds pool "st-spread" serves again with a new engine process
    And the D-Bus properties of pool "st-spread" are:
      | property     | value  |
      | RestartCount | 6      |
      | CircuitState | closed |

  Scenario: Once the window has passed, old restarts no longer count towards a warning
    Given a ready pool "st-quiet"
    When the engine of pool "st-quiet" is killed with SIGKILL 4 times, each time once it serves again
    Then the daemon's journal has the message "Pool \"st-quiet\": 3 restarts within 2 s." at priority 4
    And within 2 seconds pool "st-quiet" serves again with a new engine process
    And pool "st-quiet" serves for 2.2 seconds without a restart
    When the engine of pool "st-quiet" is killed with SIGKILL
    Then within 2 seconds pool "st-quiet" serves again with a new engine process
    And the daemon's journal has 1 lines matching "Pool \"st-quiet\": \d+ restarts within"
    And the D-Bus properties of pool "st-quiet" are:
      | property     | value  |
      | CrashCount   | 5      |
      | CircuitState | closed |

  Scenario: Engines that run out of memory in a loop make a storm like any other
    Given a ready pool "st-oom" with engine flags "--crash-after=250 --stderr-line='CUDA error: out of memory'"
    Then within 6 seconds the D-Bus properties of pool "st-oom" are:
      | property     | value |
      | CircuitState | open  |
    And the crash entries of pool "st-oom" have CRASH_REASON "out_of_memory, out_of_memory, out_of_memory, out_of_memory, out_of_memory"
    And the crash entries of pool "st-oom" have PRIORITY "2, 2, 2, 2, 2"
    And the daemon's journal has an entry of pool "st-oom" with:
      | field         | value |
      | NEW_STATE     | open  |
      | FAILURE_COUNT | 1     |

  Scenario: The restart count and the restarts in the window are published and saved
    The predecessor planned metrics restart_storm_total and restart_rate; until metrics exist,
    the same facts are the pool's properties, its HTTP status and its saved state.

    Given a ready pool "st-published" with engine flags "--crash-after=250"
    Then within 6 seconds the D-Bus properties of pool "st-published" are:
      | property     | value |
      | CircuitState | open  |
    And the status of pool "st-published" shows:
      | field         | value  |
      | restart_count | 4      |
      | crash_count   | 5      |
      | circuit_state | open   |
      | state         | failed |
    And the status of pool "st-published" agrees with its D-Bus properties on the supervision state
    And the saved state of pool "st-published" remembers 4 restarts, all within 2 seconds

  Scenario: The restart count survives a restart of the daemon, and so does the open circuit
    Given a ready pool "st-saved" with engine flags "--crash-after=250"
    And within 6 seconds the D-Bus properties of pool "st-saved" are:
      | property     | value |
      | CircuitState | open  |
    When the daemon is stopped
    And the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "st-saved" are:
      | property     | value  |
      | State        | failed |
      | CircuitState | open   |
      | RestartCount | 4      |
      | CrashCount   | 5      |
    And the saved state of pool "st-saved" has:
      | key                      | value |
      | running                  | true  |
      | supervisor.restart_count | 4     |
    And systemd has no unit "pool-engine-st-saved.service"

  Scenario: A reset after a storm allows exactly one more restart, and the count goes on
    The restarts before the reset stay in the window: the next crash opens the circuit again
    at once.

    Given a ready pool "st-reset" with engine flags "--crash-after=250"
    And within 6 seconds the D-Bus properties of pool "st-reset" are:
      | property     | value |
      | CircuitState | open  |
    When I POST /pools/st-reset/reset
    Then the response is 200 with the body {"pool_id": "st-reset", "circuit": "closed"}
    And within 3 seconds the D-Bus properties of pool "st-reset" are:
      | property     | value  |
      | CircuitState | open   |
      | State        | failed |
      | CrashCount   | 6      |
      | RestartCount | 5      |
    And crash entry 6 of pool "st-reset" has the fields:
      | field      | value |
      | BACKOFF_MS | 0     |

  Scenario: By default more than 5 restarts in 60 s warn and 10 open the circuit
    Only the backoff and StableAfter= are scaled down here; the storm settings are the defaults.

    Given a running pool-managerd configured with:
      | key            | value |
      | HealthInterval | 20ms  |
      | BackoffInitial | 20ms  |
      | BackoffMin     | 10ms  |
      | BackoffJitter  | 0     |
      | StableAfter    | 100ms |
    And a ready pool "st-default" with engine flags "--crash-after=250"
    Then within 10 seconds the D-Bus properties of pool "st-default" are:
      | property     | value |
      | CircuitState | open  |
      | RestartCount | 10    |
      | CrashCount   | 11    |
    And the daemon's journal has the message "Pool \"st-default\": 6 restarts within 60 s." at priority 4
    And the daemon's journal has an entry of pool "st-default" with:
      | field         | value |
      | NEW_STATE     | open  |
      | FAILURE_COUNT | 1     |
    And the configuration reference gives the defaults:
      | key         | default |
      | StormWindow | 60s     |
      | StormWarn   | 5       |
      | StormLimit  | 10      |
