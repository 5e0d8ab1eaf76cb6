# SPDX-License-Identifier: GPL-3.0-or-later
@preload
Feature: The preload lifecycle
  A preload starts the engine as pool-engine-<pool>.service (states "starting", then
  "probing" once systemd runs it), records its pid, probes GET <url>/health every
  HealthInterval until an answer 200 (state "ready": handoff written, registry updated) or
  HealthTimeout (state "failed": unit stopped, pid file removed, last_error set). The pool
  is never ready before its engine is healthy.

  Background:
    Given a running pool-managerd

  Scenario: The engine runs from the PreparedEngine's binary_path
    When pool "lc-binary" is preloaded over HTTP
    Then the response status is 200
    And the engine process of pool "lc-binary" executes the fake engine binary
    And the unit "pool-engine-lc-binary.service" runs the fake engine binary as ExecStart

  Scenario: The engine gets every flag of the PreparedEngine, verbatim
    Each flag is one argument, as the predecessor passed them to the engine: nothing splits
    them, and nothing expands "$" in them (systemd expands ${VAR} and $$ in ExecStart= unless
    told not to).

    When pool "lc-flags" is preloaded over HTTP with engine flags "--slots=3" and the arguments:
      | argument                                       |
      | --stdout-line=two words, one flag              |
      | --stderr-line=${HOME} $HOME $$ %n stay as sent |
    Then the response status is 200
    And the command line of the engine of pool "lc-flags" is its binary_path followed by its flags
    And the engine of pool "lc-flags" received "--stdout-line=two words, one flag" as one argument
    And the journal of the engine of pool "lc-flags" has the line "${HOME} $HOME $$ %n stay as sent"

  Scenario: The engine's output goes to the journal under its unit
    The predecessor redirected stdout and stderr to a log file; with the default
    EngineLogs=journal both go to the journal, under the engine's unit and with the syslog
    identifier pool-engine-<pool>.

    When pool "lc-journal" is preloaded over HTTP with engine flags "--stdout-line=to-stdout --stderr-line=to-stderr"
    Then the response status is 200
    And the journal of the engine of pool "lc-journal" has the line "to-stdout"
    And the journal of the engine of pool "lc-journal" has the line "to-stderr"
    And the journal entries of the engine of pool "lc-journal" carry SYSLOG_IDENTIFIER "pool-engine-lc-journal"

  Scenario: The pid file is written before the first health probe
    When pool "lc-pidfirst" is preloaded over HTTP with engine flags "--ready-after=300"
    Then the response status is 200
    And the pid file of pool "lc-pidfirst" holds the MainPID of unit "pool-engine-lc-pidfirst.service"
    And the pid file of pool "lc-pidfirst" was written before the engine received its first probe

  Scenario: The health check polls the engine's HTTP health endpoint
    When pool "lc-poll" is preloaded over HTTP with engine flags "--ready-after=600"
    Then the response status is 200
    And the engine of pool "lc-poll" received at least 4 probes
    And the engine of pool "lc-poll" answered its probes 503 until it answered 200 once

  Scenario: The health check retries every 500 ms by default
    The daemon runs without HealthInterval=, so the default applies. Probes triggered by the
    engine's journal lines (next scenario) come on top of the grid.

    Given a running pool-managerd configured with:
      | key            | value   |
      | HealthInterval | (unset) |
    When pool "lc-interval" is preloaded over HTTP with engine flags "--ready-after=2300"
    Then the response status is 200
    And the engine of pool "lc-interval" received at least 5 probes
    And the engine of pool "lc-interval" was probed every 500 ms

  Scenario: The engine's log lines trigger probes besides the grid
    Each line the engine writes to the journal triggers a probe (at most one per 10 ms; at once
    for a known ready line such as llama-server's), so an engine that says it is ready is found
    ready within milliseconds, not at the next grid slot 2 s later. Ready still means 200.

    Given a running pool-managerd configured with:
      | key            | value |
      | HealthInterval | 2s    |
    When pool "lc-line" is preloaded over HTTP with engine flags "--ready-after=300" and the arguments:
      | argument                                                                       |
      | --ready-line=main: server is listening on http://127.0.0.1 - starting the main loop |
    Then the response status is 200
    And the engine of pool "lc-line" answered 200 within 500 ms of turning ready
    And the engine of pool "lc-line" answered its probes 503 until it answered 200 once

  Scenario: The health check stops at the first answer 200 and the pool is ready
    When pool "lc-first200" is preloaded over HTTP with engine flags "--ready-after=300"
    Then the response status is 200
    And the engine of pool "lc-first200" received exactly one answer 200
    And after 0.5 seconds the engine of pool "lc-first200" has received no further probe
    And the status of pool "lc-first200" shows:
      | field | value |
      | ready | true  |

  Scenario: The health check gives an engine 120 seconds by default
    Waiting the whole 120 s for a never-ready engine to fail is too long for a test. Instead:
    the configuration reference documents the default; a daemon given neither HealthTimeout=
    nor health.timeout_ms is still probing a never-ready engine after 3 s, not failing it; a
    configured timeout is the one applied, to the millisecond (next scenario).

    Given the configuration reference gives HealthTimeout= the default "120s"
    And a running pool-managerd configured with:
      | key           | value   |
      | HealthTimeout | (unset) |
    When pool "lc-patient" starts preloading over HTTP with engine flags "--never-ready"
    Then after 3 seconds the status of pool "lc-patient" shows:
      | field | value   |
      | state | probing |
      | live  | true    |
      | ready | false   |
    And the engine of pool "lc-patient" received at least 20 probes
    And the preload of pool "lc-patient" has not been answered yet

  Scenario: The health check fails at the configured HealthTimeout
    Given a running pool-managerd configured with:
      | key           | value |
      | HealthTimeout | 1s    |
    When pool "lc-short" is preloaded over HTTP with engine flags "--never-ready"
    Then the response is 504 HEALTH_TIMEOUT with the error "preload failed: health check timed out after 1000 ms (last probe: HTTP 503)"
    And the response took between 1.0 and 3 seconds

  Scenario Outline: The health check accepts HTTP/<version> answers
    When pool "<pool>" is preloaded over HTTP with engine flags "<flags>"
    Then the response status is 200
    And the engine of pool "<pool>" answered its probes 503 until it answered 200 once
    And the engine of pool "<pool>" answers in HTTP/<version>
    And the status of pool "<pool>" shows:
      | field | value |
      | ready | true  |

    Examples:
      | pool      | flags                      | version |
      | lc-http11 | --ready-after=300          | 1.1     |
      | lc-http10 | --ready-after=300 --http10 | 1.0     |

  @OC-POOL-3001
  Scenario: A pool is not ready while its engine is loading
    When pool "lc-loading" starts preloading over HTTP with engine flags "--ready-after=1500"
    Then within 5 seconds the status of pool "lc-loading" shows:
      | field | value   |
      | state | probing |
      | live  | true    |
      | ready | false   |
    And the D-Bus properties of pool "lc-loading" are:
      | property    | value |
      | Ready       | false |
      | HandoffPath |       |
    And pool "lc-loading" has no handoff file
    And the preload of pool "lc-loading" has not been answered yet
    And the preload of pool "lc-loading" answers 200

  @OC-POOL-3001
  Scenario: A pool becomes ready once its engine answers 200
    Given I monitor the daemon's D-Bus signals
    When pool "lc-becomes" is preloaded over HTTP with engine flags "--ready-after=500"
    Then the response status is 200
    And the State property of pool "lc-becomes" went through "starting, probing, ready"
    And the Ready property of pool "lc-becomes" changed only once, to true

  @OC-POOL-3001
  Scenario: The handoff file is written only after the engine is healthy
    When pool "lc-handoff" starts preloading over HTTP with engine flags "--ready-after=800"
    Then within 5 seconds the status of pool "lc-handoff" shows:
      | field | value   |
      | state | probing |
    And pool "lc-handoff" has no handoff file
    And the preload of pool "lc-handoff" answers 200
    And the handoff file of pool "lc-handoff" was written after the engine turned healthy

  @OC-POOL-3003
  Scenario: The registry shows the pool ready once the health check passed
    When pool "lc-registry" is preloaded over HTTP with engine flags "--ready-after=300"
    Then the response status is 200
    And the D-Bus properties of pool "lc-registry" are:
      | property    | value                                    |
      | State       | ready                                    |
      | Live        | true                                     |
      | Ready       | true                                     |
      | LastError   |                                          |
      | MainPID     | $MAINPID(lc-registry)                    |
      | HandoffPath | $RUNTIME_DIR/engines/lc-registry-r0.json |
    And the daemon's journal has an entry "Pool \"lc-registry\" is ready" with POOL_ID "lc-registry"

  @OC-POOL-3003
  Scenario: The registry carries the engine version
    When pool "lc-version" is preloaded over HTTP with:
      | field          | value                      |
      | engine_version | llamacpp-source:b4000-cuda |
    Then the response status is 200
    And the status of pool "lc-version" shows:
      | field          | value                      |
      | engine_version | llamacpp-source:b4000-cuda |
    And the D-Bus properties of pool "lc-version" are:
      | property      | value                      |
      | EngineVersion | llamacpp-source:b4000-cuda |

  @OC-POOL-3002
  Scenario: An engine that fails its health check is stopped
    When pool "lc-killed" is preloaded over HTTP with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 500} |
    Then the response status is 504
    And the engine process of pool "lc-killed" is gone
    And systemd has no unit "pool-engine-lc-killed.service"
    And the journal of the engine of pool "lc-killed" has the line "fake-engine: received SIGTERM, shutting down"

  @OC-POOL-3002
  Scenario: The pid file is removed when the preload fails
    When pool "lc-pidgone" starts preloading over HTTP with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 800} |
    Then within 5 seconds the pid file of pool "lc-pidgone" holds the MainPID of unit "pool-engine-lc-pidgone.service"
    And the preload of pool "lc-pidgone" answers 504
    And pool "lc-pidgone" has no pid file

  @OC-POOL-3002 @OC-POOL-3003
  Scenario: The registry records why a preload failed
    When pool "lc-lasterr" is preloaded over HTTP with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 500} |
    Then the response status is 504
    And the status of pool "lc-lasterr" shows:
      | field      | value                                                      |
      | last_error | health check timed out after 500 ms (last probe: HTTP 503) |
    And the D-Bus properties of pool "lc-lasterr" are:
      | property  | value                                                      |
      | LastError | health check timed out after 500 ms (last probe: HTTP 503) |
    And the daemon's journal has an entry with POOL_ID "lc-lasterr" and ERROR "health check timed out after 500 ms (last probe: HTTP 503)"

  @OC-POOL-3003
  Scenario: A preload that times out fails over D-Bus too
    The D-Bus error HealthTimeout carries the pool's LastError as its message
    (org.llorch.PoolManager1(5)).

    When pool "lc-dbus-timeout" is preloaded over D-Bus with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 500} |
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.HealthTimeout"
    And the D-Bus properties of pool "lc-dbus-timeout" are:
      | property  | value                                                      |
      | State     | failed                                                     |
      | LastError | health check timed out after 500 ms (last probe: HTTP 503) |
    And the LastError of pool "lc-dbus-timeout" is the D-Bus error message

  @OC-POOL-3002
  Scenario: A pool stays unready after its preload failed
    When pool "lc-unready" is preloaded over HTTP with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 500} |
    Then the response status is 504
    And after 1 seconds the status of pool "lc-unready" shows:
      | field | value  |
      | state | failed |
      | live  | false  |
      | ready | false  |
    And systemd has no unit "pool-engine-lc-unready.service"
    And pool "lc-unready" has no handoff file

  Scenario: The handoff file describes the running engine completely
    When pool "lc-meta" is preloaded over HTTP with:
      | field          | value                   |
      | engine_version | b4000-cuda              |
      | model_path     | /models/qwen2.5-7b.gguf |
      | device_mask    | 0                       |
      | slots_total    | 2                       |
    Then the response status is 200
    And the handoff file of pool "lc-meta" contains:
      | key               | value                           |
      | engine            | llamacpp                        |
      | engine_version    | b4000-cuda                      |
      | provisioning_mode | binary                          |
      | url               | http://127.0.0.1:$PORT(lc-meta) |
      | pool_id           | lc-meta                         |
      | replica_id        | r0                              |
      | model.path        | /models/qwen2.5-7b.gguf         |
      | model.id          | qwen2.5-7b                      |
      | flags             | $FLAGS(lc-meta)                 |
      | device_mask       | 0                               |
      | slots_total       | 2                               |
      | slots_free        | 2                               |
      | slots             | 2                               |
      | pid               | $MAINPID(lc-meta)               |
      | unit              | pool-engine-lc-meta.service     |
    And the handoff file of pool "lc-meta" has a "ready_at" timestamp after the engine turned healthy

  @OC-POOL-3001
  Scenario: A successful preload from start to ready, over D-Bus
    Given I monitor the daemon's D-Bus signals
    When pool "lc-success" is preloaded over D-Bus with engine flags "--ready-after=300"
    Then the D-Bus call returns the pool's object path, the engine's MainPID and the handoff path
    And the State property of pool "lc-success" went through "starting, probing, ready"
    And the pid file of pool "lc-success" holds the MainPID of unit "pool-engine-lc-success.service"
    And the handoff file of pool "lc-success" exists
    And the unit "pool-engine-lc-success.service" has the properties:
      | property    | value   |
      | ActiveState | active  |
      | SubState    | running |

  @OC-POOL-3002 @OC-POOL-3003
  Scenario: A failed preload from start to cleanup, over D-Bus
    Given I monitor the daemon's D-Bus signals
    When pool "lc-failure" is preloaded over D-Bus with engine flags "--ready-after=5000 --exit-after=400 --exit-code=3"
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.EngineFailed"
    And the State property of pool "lc-failure" went through "starting, probing, failed"
    And systemd has no unit "pool-engine-lc-failure.service"
    And pool "lc-failure" has no pid file
    And pool "lc-failure" has no handoff file
    And the D-Bus properties of pool "lc-failure" are:
      | property  | value                                             |
      | Ready     | false                                             |
      | LastError | engine exited with status 3 before becoming ready: "… |
    And the LastError of pool "lc-failure" is the D-Bus error message

  Scenario: The daemon creates its runtime directories
    Given a freshly started pool-managerd whose RuntimeDirectory does not exist yet
    Then its runtime directory has the subdirectories "engines, logs"
    When pool "lc-dirs" is preloaded over HTTP
    Then the response status is 200
    And the handoff file "engines/lc-dirs-r0.json" exists
