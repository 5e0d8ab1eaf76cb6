# SPDX-License-Identifier: GPL-3.0-or-later
@supervision @readoption
Feature: Engines outlive the daemon and are taken back
  Engines run in units of their own, so a daemon that is killed (kill -9 here, as the
  watchdog or an OOM kill would) leaves them running. The daemon saves the state of each
  pool in StateDirectory/pools/<pool>.json; when it starts again it asks systemd for the
  pool-engine-* units and re-adopts each one whose saved state says it should run: same
  process, same unit invocation, probed again, ready again, with its counts. A unit without
  such a state is an orphan: shown with its PID, never silently dropped, stoppable. A unit
  whose saved state says it was stopped is stopped. A pool whose saved state says it should run but
  whose unit is gone is started again, unless its circuit is open or a backoff is pending,
  which are waited out. The predecessor kept nothing across restarts. Each scenario has a
  daemon and a StateDirectory of its own.

  Background:
    Given a freshly started pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | HealthTimeout    | 500ms |
      | BackoffInitial   | 600ms |
      | BackoffJitter    | 0     |
      | BreakerThreshold | 2     |
      | BreakerTimeout   | 1s    |

  Scenario: After kill -9 of the daemon its engines are re-adopted, same process, same unit
    Given a ready pool "ro-adopt"
    And a ready pool "ro-adopt2" with engine flags "--slots=2"
    And the engine of pool "ro-adopt" runs as the main process of its unit, noted
    And the engine of pool "ro-adopt2" runs as the main process of its unit, noted
    When the daemon is killed with SIGKILL
    Then the engine of pool "ro-adopt" survived the daemon
    When the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "ro-adopt" are:
      | property | value              |
      | State    | ready              |
      | MainPID  | $MAINPID(ro-adopt) |
    And within 3 seconds the D-Bus properties of pool "ro-adopt2" are:
      | property | value |
      | State    | ready |
    And the unit of pool "ro-adopt" is the one noted before
    And the unit of pool "ro-adopt2" is the one noted before
    And the pid file of pool "ro-adopt" holds the MainPID of unit "pool-engine-ro-adopt.service"
    And the handoff file of pool "ro-adopt" contains:
      | key | value              |
      | pid | $MAINPID(ro-adopt) |
    And the daemon's journal says pool "ro-adopt" is ready again, its engine re-adopted with the same pid

  Scenario: Re-adoption is not a restart, and the supervision state comes back with the engine
    Given a ready pool "ro-counts"
    When the engine of pool "ro-counts" is killed with SIGKILL
    Then within 3 seconds pool "ro-counts" serves again with a new engine process
    And the engine of pool "ro-counts" runs as the main process of its unit, noted
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "ro-counts" are:
      | property     | value |
      | State        | ready |
      | CrashCount   | 1     |
      | RestartCount | 1     |
    And the unit of pool "ro-counts" is the one noted before
    And the journal has exactly 1 crash entries of pool "ro-counts"
    And the daemon's journal has 2 entries of pool "ro-counts" with:
      | field      | value                            |
      | MESSAGE_ID | b27c621a55f7417f8338f85e48bdd652 |

  Scenario: An engine unit without saved state is an orphan: tracked, shown and stoppable
    Given a unit "pool-engine-ro-orphan.service" started with systemd-run that is not the daemon's
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "ro-orphan" are:
      | property | value                        |
      | State    | orphan                       |
      | MainPID  | $MAINPID(ro-orphan)          |
      | Unit     | pool-engine-ro-orphan.service |
      | Ready    | false                        |
    And the daemon's journal has a message starting with "Pool \"ro-orphan\": engine unit pool-engine-ro-orphan.service runs, but it has no saved state" at priority 4
    And the unit "pool-engine-ro-orphan.service" is still active
    When I POST /pools/ro-orphan/stop
    Then the response status is 200
    And systemd has no unit "pool-engine-ro-orphan.service"
    And within 3 seconds the D-Bus properties of pool "ro-orphan" are:
      | property | value   |
      | State    | stopped |

  Scenario: An engine unit whose pool was stopped is stopped
    Given a ready pool "ro-stopped" that was stopped
    And the saved state of pool "ro-stopped" has:
      | key     | value |
      | running | false |
    And a unit "pool-engine-ro-stopped.service" started with systemd-run that is not the daemon's
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then the daemon's journal has the message "Engine unit pool-engine-ro-stopped.service has saved state saying it should be stopped; stopping it." at priority 4
    And systemd has no unit "pool-engine-ro-stopped.service"

  Scenario: A pool whose engine died while the daemon was away is started again
    Given a ready pool "ro-gone"
    When the daemon is killed with SIGKILL
    And the unit of pool "ro-gone" is stopped behind the daemon's back
    And the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "ro-gone" are:
      | property     | value |
      | State        | ready |
      | RestartCount | 1     |
      | CrashCount   | 0     |
    And the daemon's journal has the message "Pool \"ro-gone\": its engine is gone; restarting it." at priority 5
    And the engine of pool "ro-gone" answers GET /health with 200

  Scenario: A pool whose circuit was open stays failed until its breaker timeout
    Given a ready pool "ro-open" with engine flags "--crash-after=250"
    And within 4 seconds the D-Bus properties of pool "ro-open" are:
      | property     | value |
      | CircuitState | open  |
      | RestartCount | 1     |
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then the daemon's journal has the message "Pool \"ro-open\": circuit open, not restarting it before the breaker timeout." at priority 5
    And for 0.3 seconds the D-Bus properties of pool "ro-open" stay:
      | property     | value  |
      | State        | failed |
      | CircuitState | open   |
      | RestartCount | 1      |
    And systemd has no unit "pool-engine-ro-open.service"
    And the circuit of pool "ro-open" turned half-open between 0.9 and 1.6 seconds after it opened
    And within 2 seconds the D-Bus properties of pool "ro-open" are:
      | property     | value |
      | RestartCount | 2     |

  # A backoff long enough that the daemon is surely up again before it ends, however loaded the
  # machine: with 600 ms, a restart slower than 400 ms found the backoff already over.
  Scenario: A pool that was waiting to be restarted waits out its backoff
    Given a freshly started pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 3s    |
      | BackoffJitter    | 0     |
    And a ready pool "ro-backoff"
    When the engine of pool "ro-backoff" is killed with SIGKILL
    And within 2 seconds the D-Bus properties of pool "ro-backoff" are:
      | property | value   |
      | State    | backoff |
    And the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then pool "ro-backoff" is in backoff with a NextRestartUSec at least 200 ms ahead
    And the NextRestartUSec of pool "ro-backoff" is the next_restart_at of its saved state
    And within 6 seconds pool "ro-backoff" serves again with a new engine process
    And the engine of pool "ro-backoff" was started again no earlier than its NextRestartUSec

  Scenario: A re-adopted engine that does not answer in time has crashed
    Given a ready pool "ro-frozen"
    And the engine of pool "ro-frozen" is frozen with SIGSTOP
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then the last crash entry of pool "ro-frozen" has the fields:
      | field       | value |
      | CRASH_COUNT | 1     |
    And the D-Bus property LastError of pool "ro-frozen" starts with "health check timed out after 500 ms"
    And the frozen engine of pool "ro-frozen" is gone
    And within 3 seconds pool "ro-frozen" serves again with a new engine process

  Scenario: A pool of the pools directory that was re-adopted is not started a second time
    Given the pools directory holds the PreparedEngine of pool "ro-dir"
    And the daemon is stopped
    And the daemon is started again with the same configuration
    And within 3 seconds the D-Bus properties of pool "ro-dir" are:
      | property | value |
      | State    | ready |
    And the engine of pool "ro-dir" runs as the main process of its unit, noted
    When the daemon is killed with SIGKILL
    And the daemon is started again with the same configuration
    Then the daemon's journal says the pools directory file of pool "ro-dir" was kept as the pool runs
    And within 3 seconds the D-Bus properties of pool "ro-dir" are:
      | property | value |
      | State    | ready |
    And the unit of pool "ro-dir" is the one noted before
