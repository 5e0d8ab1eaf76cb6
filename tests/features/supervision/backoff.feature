# SPDX-License-Identifier: GPL-3.0-or-later
@supervision @backoff
Feature: Backing off before restarting a crashed engine
  After a crash the pool waits in state "backoff" before its engine is started again:
  BackoffInitial= for the first crash in a row, twice as long for each further one, never
  more than BackoffMax= nor less than BackoffMin=, CudaBackoffFactor= times as long after a
  cuda_error, each delay scaled by a random factor within ±BackoffJitter= percent. An engine
  that ran StableAfter= since it became ready starts the sequence over. The delay is logged
  with the crash (BACKOFF_MS) and with the restart it schedules (NEXT_RESTART_AT), and
  published as BackoffMSec, NextRestartUSec and RestartCount, and in the HTTP status. The
  defaults (1 s, 60 s, 500 ms, ±10 %, 2, 300 s) are checked in a scenario of their own; the
  others scale time down: 50 ms initial, no jitter, StableAfter=500ms.

  Background:
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 50ms  |
      | BackoffMax       | 1s    |
      | BackoffMin       | 10ms  |
      | BackoffJitter    | 0     |
      | StableAfter      | 500ms |
      | BreakerThreshold | 10    |

  Scenario: Each further crash in a row doubles the delay
    Given a ready pool "bo-double" with engine flags "--crash-after=250"
    Then the crash entries of pool "bo-double" have BACKOFF_MS "50, 100, 200, 400"
    And the crash entries of pool "bo-double" have CRASH_COUNT "1, 2, 3, 4"
    And pool "bo-double" was started again each time its BACKOFF_MS after the crash, give or take 60 ms

  Scenario: Running for StableAfter= starts the sequence over
    Given a ready pool "bo-stable"
    When the engine of pool "bo-stable" is killed with SIGKILL
    Then within 3 seconds pool "bo-stable" serves again with a new engine process
    When the engine of pool "bo-stable" is killed with SIGKILL
    Then within 3 seconds pool "bo-stable" serves again with a new engine process
    And pool "bo-stable" serves for 0.7 seconds without a restart
    When the engine of pool "bo-stable" is killed with SIGKILL
    Then the crash entries of pool "bo-stable" have BACKOFF_MS "50, 100, 50"

  Scenario: The restart is logged with its delay, the crash count and when it will happen
    Given I monitor the daemon's D-Bus signals
    And a ready pool "bo-logged"
    When the engine of pool "bo-logged" is killed with SIGKILL
    Then the daemon's journal has an entry of pool "bo-logged" with:
      | field       | value                            |
      | BACKOFF_MS  | 50                              |
      | CRASH_COUNT | 1                               |
      | PRIORITY    | 5                               |
      | MESSAGE     | Pool "bo-logged": restart in 50 ms. |
    And the restart entry of pool "bo-logged" announces the NextRestartUSec the daemon published
    And the last crash entry of pool "bo-logged" has the fields:
      | field       | value |
      | BACKOFF_MS  | 50    |
      | CRASH_COUNT | 1     |

  Scenario: A cuda_error backs off CudaBackoffFactor= times as long, 2 by default
    Given a ready pool "bo-cuda" with engine flags "--crash-after=250 --stderr-line='CUDA error: unspecified launch failure'"
    Then the crash entries of pool "bo-cuda" have BACKOFF_MS "100, 200, 400"
    And the crash entries of pool "bo-cuda" have CRASH_REASON "cuda_error, cuda_error, cuda_error"

  Scenario: The delay, the next restart and the restart count are published
    The predecessor planned metrics backoff_delay_ms and restart_scheduled_total; until metrics
    exist, the same facts are the pool's properties and its HTTP status.

    Given I monitor the daemon's D-Bus signals
    And a ready pool "bo-published"
    When the engine of pool "bo-published" is killed with SIGKILL
    Then within 3 seconds pool "bo-published" serves again with a new engine process
    And the D-Bus signals announced State of pool "bo-published" passing through "backoff"
    And the D-Bus properties of pool "bo-published" are:
      | property        | value |
      | BackoffMSec     | 50    |
      | RestartCount    | 1     |
      | CrashCount      | 1     |
      | NextRestartUSec | 0     |
    And the status of pool "bo-published" shows:
      | field             | value  |
      | backoff_ms        | 50     |
      | restart_count     | 1      |
      | crash_count       | 1      |
      | next_restart_usec | null   |
      | circuit_state     | closed |
    And the status of pool "bo-published" agrees with its D-Bus properties on the supervision state

  Scenario: No delay is longer than BackoffMax=
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 50ms  |
      | BackoffMax       | 150ms |
      | BackoffMin       | 10ms  |
      | BackoffJitter    | 0     |
      | BreakerThreshold | 10    |
    And a ready pool "bo-cap" with engine flags "--crash-after=250"
    Then the crash entries of pool "bo-cap" have BACKOFF_MS "50, 100, 150, 150"

  Scenario: No delay is shorter than BackoffMin=
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 50ms  |
      | BackoffMax       | 1s    |
      | BackoffMin       | 120ms |
      | BackoffJitter    | 0     |
      | BreakerThreshold | 10    |
    And a ready pool "bo-floor" with engine flags "--crash-after=250"
    Then the crash entries of pool "bo-floor" have BACKOFF_MS "120, 120, 200"

  Scenario: Jitter spreads each delay within ±BackoffJitter= percent
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 20ms  |
      | BackoffInitial   | 50ms  |
      | BackoffMax       | 1s    |
      | BackoffMin       | 10ms  |
      | BackoffJitter    | 10    |
      | BreakerThreshold | 10    |
    And a ready pool "bo-jitter" with engine flags "--crash-after=250"
    Then the crash entries of pool "bo-jitter" have BACKOFF_MS values within 10 percent of "50, 100, 200, 400", not all of them exactly

  Scenario: By default the first delay is 1 s, give or take 10 percent
    Given a running pool-managerd configured with:
      | key            | value |
      | HealthInterval | 20ms  |
    And a ready pool "bo-default"
    When the engine of pool "bo-default" is killed with SIGKILL
    Then within 1 seconds the D-Bus properties of pool "bo-default" are:
      | property     | value   |
      | State        | backoff |
      | CircuitState | closed  |
    And the D-Bus property BackoffMSec of pool "bo-default" lies between 900 and 1100
    And the NextRestartUSec of pool "bo-default" lies 850 to 1100 ms after its last crash entry
    And within 2 seconds pool "bo-default" serves again with a new engine process
    And the configuration reference gives the defaults:
      | key               | default |
      | BackoffInitial    | 1s      |
      | BackoffMax        | 60s     |
      | BackoffMin        | 500ms   |
      | BackoffJitter     | 10      |
      | CudaBackoffFactor | 2       |
      | StableAfter       | 300s    |
