# SPDX-License-Identifier: GPL-3.0-or-later
@supervision @crash
Feature: Detecting and classifying engine crashes
  Once an engine is ready, the daemon follows its unit: every end it did not ask for is a crash,
  a clean exit with status 0 included. The pool turns unready at once, says why in LastError, counts the
  crash (CrashCount, kept in StateDirectory) and logs one structured entry (MESSAGE_ID
  a9c67e90bd4f4c2abc598512cf3a98d3) whose CRASH_REASON comes from the unit's result and the
  engine's last log lines: exit_code, signal, out_of_memory (at priority crit), cuda_error,
  clean_exit, or health_failure when the daemon stopped an engine that failed its liveness probes. The
  predecessor only had these as unused types; nothing watched its engines. Liveness is probed
  every 100 ms here instead of every 5 s, and the restart after a crash waits 500 ms.

  Background:
    Given a running pool-managerd configured with:
      | key              | value |
      | BackoffInitial   | 500ms |
      | BackoffJitter    | 0     |
      | LivenessInterval | 100ms |
      | LivenessFailures | 3     |

  Scenario: An engine that exits with a non-zero status has crashed, with that status
    Given a ready pool "cd-exit" with engine flags "--exit-after=400 --exit-code=42"
    Then within 3 seconds the D-Bus properties of pool "cd-exit" are:
      | property   | value                       |
      | State      | backoff                     |
      | CrashCount | 1                           |
      | LastError  | engine exited with status 42: "… |
    And the last crash entry of pool "cd-exit" has the fields:
      | field        | value                        |
      | CRASH_REASON | exit_code                    |
      | EXIT_CODE    | 1                            |
      | EXIT_STATUS  | 42                           |
      | UNIT_RESULT  | exit-code                    |
      | ERROR        | engine exited with status 42: "… |

  Scenario: An engine that fails three liveness probes in a row is stopped and counted as crashed
    A frozen engine (SIGSTOP) accepts connections but never answers.

    Given a ready pool "cd-live"
    When the engine of pool "cd-live" is frozen with SIGSTOP
    Then the daemon's journal has a message starting with "Pool \"cd-live\": engine failed 3 liveness probes in a row (last: " at priority 3
    And the last crash entry of pool "cd-live" has the fields:
      | field        | value                                                  |
      | CRASH_REASON | health_failure                                         |
      | CRASH_COUNT  | 1                                                      |
      | ERROR        | engine failed 3 liveness probes in a row and was stopped |
    And the frozen engine of pool "cd-live" is gone
    And within 3 seconds pool "cd-live" serves again with a new engine process

  Scenario: "CUDA error" among the engine's last log lines makes the crash a cuda_error
    Given a ready pool "cd-cuda" with engine flags "--stderr-line='CUDA error: an illegal memory access was encountered' --exit-after=400 --exit-code=1"
    Then the last crash entry of pool "cd-cuda" has the fields:
      | field        | value                       |
      | CRASH_REASON | cuda_error                  |
      | EXIT_STATUS  | 1                           |
      | ERROR        | engine exited with status 1: "… |
      | PRIORITY     | 3                           |
    And the D-Bus properties of pool "cd-cuda" are:
      | property  | value                       |
      | LastError | engine exited with status 1: "… |

  Scenario: A crash makes the pool unready at once and says why
    Given a ready pool "cd-unready"
    And I monitor the daemon's D-Bus signals
    When the engine of pool "cd-unready" is killed with SIGKILL
    Then within 0.5 seconds the D-Bus properties of pool "cd-unready" are:
      | property  | value                             |
      | Ready     | false                             |
      | Live      | false                             |
      | MainPID   | 0                                 |
      | LastError | engine was killed by signal SIGKILL: "… |
    And the status of pool "cd-unready" shows:
      | field        | value   |
      | ready        | false   |
      | state        | backoff |
      | pid          | null    |
      | handoff_path | null    |
    And pool "cd-unready" has no pid file
    And pool "cd-unready" has no handoff file
    And the D-Bus signals announced Ready of pool "cd-unready" as [false, true]

  Scenario: An engine that dies of SIGSEGV has crashed by a signal
    Given a ready pool "cd-segv" with engine flags "--crash-after=250"
    Then the last crash entry of pool "cd-segv" has the fields:
      | field        | value  |
      | CRASH_REASON | signal |
      | EXIT_STATUS  | 11     |
      | UNIT_RESULT  | signal |
    And the D-Bus property LastError of pool "cd-segv" starts with "engine was killed by signal SIGSEGV"

  Scenario: An engine that exits with status 0 on its own has crashed all the same, and is restarted
    Given a ready pool "cd-clean" with engine flags "--exit-after=400 --exit-code=0"
    Then within 3 seconds the D-Bus properties of pool "cd-clean" are:
      | property   | value                                                |
      | State      | backoff                                              |
      | Ready      | false                                                |
      | CrashCount | 1                                                    |
      | LastError  | engine exited with status 0, without being asked to: "… |
    And the last crash entry of pool "cd-clean" has the fields:
      | field        | value      |
      | CRASH_REASON | clean_exit |
      | EXIT_CODE    | 1          |
      | EXIT_STATUS  | 0          |
      | UNIT_RESULT  | success    |
    And within 3 seconds the D-Bus properties of pool "cd-clean" are:
      | property     | value |
      | State        | ready |
      | RestartCount | 1     |

  Scenario: The crash entry names the pool, the engine version, its uptime and how it ended
    Given a ready pool "cd-fields" with engine flags "--exit-after=1500 --exit-code=9" with:
      | field          | value    |
      | engine_version | fake-7.1 |
    Then within 4 seconds the journal has 1 crash entries of pool "cd-fields"
    And the last crash entry of pool "cd-fields" has the fields:
      | field          | value                       |
      | MESSAGE_ID     | a9c67e90bd4f4c2abc598512cf3a98d3 |
      | POOL_ID        | cd-fields                   |
      | UNIT           | pool-engine-cd-fields.service |
      | ENGINE_VERSION | fake-7.1                    |
      | CRASH_REASON   | exit_code                   |
      | UPTIME_SECONDS | 1                           |
      | EXIT_CODE      | 1                           |
      | EXIT_STATUS    | 9                           |
      | CRASH_COUNT    | 1                           |
      | BACKOFF_MS     | 500                         |
      | PRIORITY       | 3                           |
      | MESSAGE        | Pool "cd-fields": engine exited with status 9: "fake-engine: … |

  Scenario: The crash count is saved and survives a restart of the daemon
    Given a ready pool "cd-saved"
    When the engine of pool "cd-saved" is killed with SIGKILL
    Then within 3 seconds pool "cd-saved" serves again with a new engine process
    And the saved state of pool "cd-saved" has:
      | key                      | value  |
      | running                  | true   |
      | supervisor.crash_count   | 1      |
      | supervisor.restart_count | 1      |
      | supervisor.last_reason   | signal |
    And the saved state of pool "cd-saved" is a private file in the state directory
    When the daemon is stopped
    And the daemon is started again with the same configuration
    Then within 3 seconds the D-Bus properties of pool "cd-saved" are:
      | property     | value |
      | State        | ready |
      | CrashCount   | 1     |
      | RestartCount | 1     |
    And the status of pool "cd-saved" shows:
      | field         | value |
      | crash_count   | 1     |
      | restart_count | 1     |

  Scenario: An engine that runs out of memory crashes as out_of_memory, logged as critical
    Given a ready pool "cd-oom" with engine flags "--stderr-line='llama_model_load: error loading model: out of memory' --exit-after=400 --exit-code=1"
    Then the last crash entry of pool "cd-oom" has the fields:
      | field        | value                       |
      | CRASH_REASON | out_of_memory               |
      | PRIORITY     | 2                           |
      | ERROR        | engine exited with status 1: "… |

  Scenario: By default liveness is probed every 5 seconds and three failures in a row are a crash
    Only the probe interval is scaled down here; the number of failures is the default.

    Given a running pool-managerd configured with:
      | key              | value |
      | BackoffInitial   | 500ms |
      | LivenessInterval | 100ms |
    And a ready pool "cd-default"
    When the engine of pool "cd-default" is frozen with SIGSTOP
    Then the last crash entry of pool "cd-default" has the fields:
      | field        | value                                                  |
      | CRASH_REASON | health_failure                                         |
      | ERROR        | engine failed 3 liveness probes in a row and was stopped |
    And the configuration reference gives the defaults:
      | key              | default |
      | LivenessInterval | 5s      |
      | LivenessFailures | 3       |
