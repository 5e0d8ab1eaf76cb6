# SPDX-License-Identifier: GPL-3.0-or-later
@process
Feature: Engine processes under systemd
  The predecessor forked engines itself, wrote their pids to files, redirected their output
  and killed them with kill(1). pool-managerd leaves that to systemd: each engine is the main
  process of a transient unit pool-engine-<pool>.service in pool-engines.slice; systemd logs
  its output, and stops it with KillSignal= (SIGTERM), then SIGKILL after TimeoutStopSec=
  (StopTimeout=). These scenarios check the systemd-native equivalent of each of the
  predecessor's process behaviours.

  Background:
    Given a running pool-managerd

  Scenario: The engine is started from its binary as a unit in pool-engines.slice
    When pool "pr-spawn" is preloaded over HTTP
    Then the response status is 200
    And the unit "pool-engine-pr-spawn.service" runs the fake engine binary as ExecStart
    And the unit "pool-engine-pr-spawn.service" has the properties:
      | property | value              |
      | Slice    | pool-engines.slice |
      | Type     | exec               |
      | KillMode | control-group      |
    And the engine process of pool "pr-spawn" executes the fake engine binary

  Scenario: The unit's command line carries every flag
    When pool "pr-flags" is preloaded over HTTP with engine flags "--slots=2 --ready-after=100"
    Then the response status is 200
    And the ExecStart of unit "pool-engine-pr-flags.service" is the binary_path of pool "pr-flags" followed by its flags

  Scenario: The engine's standard output is kept
    With EngineLogs=file systemd appends standard output to <RuntimeDirectory>/logs/<pool>.log.

    Given a running pool-managerd configured with:
      | key        | value |
      | EngineLogs | file  |
    When pool "pr-stdout" is preloaded over HTTP with engine flags "--stdout-line='stdout of pr-stdout'"
    Then the response status is 200
    And the engine log file of pool "pr-stdout" contains "stdout of pr-stdout"

  Scenario: The engine's standard error is kept
    Given a running pool-managerd configured with:
      | key        | value |
      | EngineLogs | file  |
    When pool "pr-stderr" is preloaded over HTTP with engine flags "--stderr-line='stderr of pr-stderr'"
    Then the response status is 200
    And the engine log file of pool "pr-stderr" contains "stderr of pr-stderr"

  Scenario: The log file lives in the runtime directory, opened by systemd
    The predecessor used .runtime/engine-<pool>.log relative to its working directory; here it
    is <RuntimeDirectory>/logs/<pool>.log, given to systemd as StandardOutput=append:.

    Given a running pool-managerd configured with:
      | key        | value |
      | EngineLogs | file  |
    When pool "pr-logdir" is preloaded over HTTP
    Then the response status is 200
    And the engine log file of pool "pr-logdir" exists in the runtime directory's "logs" directory
    And the unit "pool-engine-pr-logdir.service" has the properties:
      | property       | value                                  |
      | StandardOutput | append:$RUNTIME_DIR/logs/pr-logdir.log |
      | StandardError  | append:$RUNTIME_DIR/logs/pr-logdir.log |

  Scenario: The log file is appended to, across restarts of the engine
    Given a running pool-managerd configured with:
      | key        | value |
      | EngineLogs | file  |
    And the engine log file of pool "pr-append" already holds "a line from before"
    When pool "pr-append" is preloaded over HTTP with engine flags "--stdout-line='first life'"
    And I POST /pools/pr-append/stop
    And pool "pr-append" is preloaded over HTTP again with engine flags "--stdout-line='second life'"
    Then the response status is 200
    And the engine log file of pool "pr-append" holds "a line from before", "first life", "second life" in this order

  Scenario: The pool's pid is the engine's real pid, taken from its unit
    When pool "pr-mainpid" is preloaded over HTTP
    Then the response status is 200
    And the engine's pid in the response is the MainPID of unit "pool-engine-pr-mainpid.service"
    And the process with the pid of pool "pr-mainpid" is running the fake engine with the pool's port
    And the D-Bus properties of pool "pr-mainpid" are:
      | property | value                |
      | MainPID  | $MAINPID(pr-mainpid) |

  Scenario: The pid is written to <RuntimeDirectory>/<pool>.pid
    When pool "pr-pidfile" is preloaded over HTTP
    Then the response status is 200
    And the pid file of pool "pr-pidfile" holds the MainPID of unit "pool-engine-pr-pidfile.service"

  Scenario: The pid file is plain text
    When pool "pr-pidtext" is preloaded over HTTP
    Then the response status is 200
    And the pid file of pool "pr-pidtext" is a decimal number and a newline, nothing else

  Scenario: Stopping goes by the unit, not by the pid file
    The predecessor read the pid file to know whom to kill. systemd knows the engine by its
    unit, so a pool is stopped even when its pid file has been removed by hand.

    Given a ready pool "pr-nopidfile"
    And the pid file of pool "pr-nopidfile" has been removed by hand
    When I POST /pools/pr-nopidfile/stop
    Then the response is 200 with the body {"pool_id": "pr-nopidfile", "stopped": true}
    And the engine process of pool "pr-nopidfile" is gone
    And systemd has no unit "pool-engine-pr-nopidfile.service"

  Scenario: Stopping sends SIGTERM first
    Given a ready pool "pr-sigterm"
    Then the unit "pool-engine-pr-sigterm.service" has the properties:
      | property   | value |
      | KillSignal | 15    |
    When I POST /pools/pr-sigterm/stop
    Then the response status is 200
    And the journal of the engine of pool "pr-sigterm" has the line "fake-engine: received SIGTERM, shutting down"
    And the engine process of pool "pr-sigterm" is gone

  Scenario: Stopping waits 5 seconds for the engine by default
    The daemon runs without StopTimeout=; the engine's unit gets TimeoutStopSec=5s.

    Given a running pool-managerd configured with:
      | key         | value   |
      | StopTimeout | (unset) |
    And a ready pool "pr-grace"
    Then the unit "pool-engine-pr-grace.service" has the properties:
      | property        | value   |
      | TimeoutStopUSec | 5000000 |
      | KillSignal      | 15      |

  Scenario: An engine that ignores SIGTERM is killed with SIGKILL after the grace period
    A short StopTimeout=2s stands in for the default 5 s.

    Given a running pool-managerd configured with:
      | key         | value |
      | StopTimeout | 2s    |
    And a ready pool "pr-sigkill" with engine flags "--ignore-sigterm"
    Then the unit "pool-engine-pr-sigkill.service" has the properties:
      | property        | value   |
      | TimeoutStopUSec | 2000000 |
    When I POST /pools/pr-sigkill/stop
    Then the response is 200 with the body {"pool_id": "pr-sigkill", "stopped": true}
    And the response took between 1.9 and 4 seconds
    And the engine process of pool "pr-sigkill" is gone
    And the journal of unit "pool-engine-pr-sigkill.service" has the line "pool-engine-pr-sigkill.service: State 'stop-sigterm' timed out. Killing."
    And the journal of unit "pool-engine-pr-sigkill.service" has a line matching "Killing process \d+ \(fake-engine\) with signal SIGKILL"

  Scenario: Stopping removes the pid file
    Given a ready pool "pr-rmpid"
    And the pid file of pool "pr-rmpid" holds the MainPID of unit "pool-engine-pr-rmpid.service"
    When I POST /pools/pr-rmpid/stop
    Then the response status is 200
    And pool "pr-rmpid" has no pid file
    And pool "pr-rmpid" has no handoff file

  Scenario Outline: Stopping a pool that has no engine fails
    The predecessor failed when the pid file was missing; here stopping an unknown pool, or
    one that is already stopped, is an error.

    Given <situation>
    When I POST /pools/<pool>/stop
    Then the response is <status> with the error "<error>"

    Examples:
      | situation                                  | pool       | status | error                                    |
      | a ready pool "pr-stopped" that was stopped | pr-stopped | 409    | pool pr-stopped is not running (stopped) |
      | the daemon has no pool "pr-unknown"        | pr-unknown | 404    | pool pr-unknown not found                |
