# SPDX-License-Identifier: GPL-3.0-or-later
@api
Feature: Preloading a pool over HTTP
  POST /pools/{id}/preload {"prepared": PreparedEngine} starts the engine as the transient unit
  pool-engine-<id>.service and answers once the engine is healthy, with the pool id, the
  engine's pid and the handoff file; or with an error and its code once the preload failed (502
  ENGINE_FAILED, 504 HEALTH_TIMEOUT), or at once when the request is wrong (422). The
  connection waits; the daemon does not (other requests are served meanwhile).

  Background:
    Given a running pool-managerd configured with:
      | key        | value |
      | EngineLogs | file  |

  Scenario: A PreparedEngine is accepted and answered once the engine is healthy
    When pool "pl-accept" is preloaded over HTTP with engine flags "--ready-after=400"
    Then the response status is 200
    And the response came after the engine of pool "pl-accept" turned healthy
    And the status of pool "pl-accept" shows:
      | field | value |
      | state | ready |
      | ready | true  |

  Scenario: A successful preload returns the pool id, the engine's pid and the handoff path
    When pool "pl-answer" is preloaded over HTTP
    Then the response status is 200
    And the response has exactly the fields "pool_id, pid, handoff_path"
    And the response fields are:
      | field        | value                                  |
      | pool_id      | pl-answer                              |
      | pid          | $MAINPID(pl-answer)                    |
      | handoff_path | $RUNTIME_DIR/engines/pl-answer-r0.json |
    And the handoff file of pool "pl-answer" exists

  Scenario: A missing engine binary is the caller's mistake: 422, and nothing changes
    When pool "pl-nobin" is preloaded over HTTP with:
      | field       | value               |
      | binary_path | /nonexistent/engine |
    Then the response is 422 BINARY_NOT_FOUND with the error "binary_path: engine binary not found: /nonexistent/engine"
    And systemd has no unit "pool-engine-pl-nobin.service"
    And the daemon has no pool "pl-nobin"

  Scenario: An engine that cannot be executed fails the preload with 502
    The predecessor's "spawn error". The unit is Type=exec, so systemd's start job fails when
    the exec fails (status 203/EXEC) and the preload fails with it.

    Given an executable file "not-an-engine" in the scenario directory that is not a program
    When pool "pl-noexec" is preloaded over HTTP with:
      | field       | value               |
      | binary_path | $WORK/not-an-engine |
    Then the response is 502 ENGINE_FAILED with the error "preload failed: start job for pool-engine-pl-noexec.service failed: engine could not be executed (status 203/EXEC)"
    And systemd has no unit "pool-engine-pl-noexec.service"

  Scenario: An engine that never becomes healthy fails the preload with 504 at the timeout
    When pool "pl-timeout" is preloaded over HTTP with engine flags "--never-ready" and:
      | field  | value               |
      | health | {"timeout_ms": 700} |
    Then the response is 504 HEALTH_TIMEOUT with the error "preload failed: health check timed out after 700 ms (last probe: HTTP 503)"
    And the response took between 0.7 and 3 seconds
    And systemd has no unit "pool-engine-pl-timeout.service"

  Scenario: A preload of a pool whose unit someone else runs is 409, and that unit is tracked
    The predecessor answered 500 when its registry lock was poisoned. pool-managerd runs on one
    single-threaded event loop and has no lock that could fail; what it can meet at that point
    is a unit of the pool's name that it did not start. It asks systemd first (GetUnit), leaves
    that unit alone, tracks it as an orphan pool, and refuses the preload with nothing changed.

    Given a unit "pool-engine-pl-taken.service" started with systemd-run that is not the daemon's
    When pool "pl-taken" is preloaded over HTTP
    Then the response is 409 with the error "engine unit pool-engine-pl-taken.service is already loaded in systemd, but not as this daemon's engine: tracked as an orphan; stop it first (poolctl stop pl-taken)"
    And the unit "pool-engine-pl-taken.service" is still active
    And pool "pl-taken" has no pid file
    And the status of pool "pl-taken" shows:
      | field | value  |
      | state | orphan |
      | ready | false  |
      | pid   | $MAINPID(pl-taken) |

  Scenario: A preload creates the engine's log file
    With EngineLogs=file systemd appends the engine's output to <RuntimeDirectory>/logs/<pool>.log.

    When pool "pl-log" is preloaded over HTTP with engine flags "--stdout-line='hello from pl-log'"
    Then the response status is 200
    And the engine log file of pool "pl-log" contains "hello from pl-log"

  Scenario: A preload creates the pid file
    When pool "pl-pid" is preloaded over HTTP
    Then the response status is 200
    And the pid file of pool "pl-pid" holds the MainPID of unit "pool-engine-pl-pid.service"

  Scenario: A preload creates the handoff file
    When pool "pl-handoff" is preloaded over HTTP
    Then the response status is 200
    And the handoff file of pool "pl-handoff" contains:
      | key     | value                              |
      | pool_id | pl-handoff                         |
      | url     | http://127.0.0.1:$PORT(pl-handoff) |
      | pid     | $MAINPID(pl-handoff)               |

  Scenario: Several pools preload at the same time, each with its own files
    The predecessor wrote every handoff to the same engine.json; here each pool has its own.

    When pool "pl-multi-a" starts preloading over HTTP with engine flags "--ready-after=500"
    And pool "pl-multi-b" starts preloading over HTTP with engine flags "--ready-after=500"
    Then the preload of pool "pl-multi-a" answers 200
    And the preload of pool "pl-multi-b" answers 200
    And the pid file of pool "pl-multi-a" holds the MainPID of unit "pool-engine-pl-multi-a.service"
    And the pid file of pool "pl-multi-b" holds the MainPID of unit "pool-engine-pl-multi-b.service"
    And the handoff files of pools "pl-multi-a" and "pl-multi-b" are different files naming their own pool
    And GET /pools lists the pools "pl-multi-a, pl-multi-b" as ready

  Scenario: Every field of the PreparedEngine is used
    When pool "pl-full" is preloaded over HTTP with engine flags "--ready-after=300" and:
      | field          | value                                                       |
      | host           | 127.0.0.1                                                   |
      | model_path     | /models/llama-7b.gguf                                       |
      | engine         | vllm                                                        |
      | engine_version | vllm-0.6.1                                                  |
      | replica_id     | r1                                                          |
      | device_mask    | GPU0,GPU1                                                   |
      | env            | {"LLAMA_ARG_CTX_SIZE": "8192"}                              |
      | health         | {"path": "/health", "interval_ms": 50, "timeout_ms": 10000} |
      | slots_total    | 3                                                           |
    Then the response status is 200
    And the unit "pool-engine-pl-full.service" has the properties:
      | property    | value                            |
      | Description | LLM engine vllm for pool pl-full |
      | Environment | LLAMA_ARG_CTX_SIZE=8192          |
      | Environment | CUDA_VISIBLE_DEVICES=0,1         |
      | Environment | POOL_ID=pl-full                  |
    And the engine of pool "pl-full" was probed every 50 ms
    And the handoff file "engines/pl-full-r1.json" contains:
      | key            | value                           |
      | engine         | vllm                            |
      | engine_version | vllm-0.6.1                      |
      | replica_id     | r1                              |
      | model.path     | /models/llama-7b.gguf           |
      | model.id       | llama-7b                        |
      | device_mask    | GPU0,GPU1                       |
      | slots_total    | 3                               |
      | url            | http://127.0.0.1:$PORT(pl-full) |
    And the status of pool "pl-full" shows:
      | field          | value      |
      | engine_version | vllm-0.6.1 |
      | device_mask    | GPU0,GPU1  |
      | slots_total    | 3          |

  Scenario: The pool id in the path must be the PreparedEngine's
    The predecessor ignored the id in the path; a mismatch is refused before anything starts.

    When I POST /pools/pl-path/preload with the PreparedEngine of pool "pl-body"
    Then the response is 422 INVALID_PREPARED_ENGINE with the error "pool id in the path (pl-path) differs from prepared.pool_id (pl-body)"
    And the daemon has no pool "pl-path"
    And the daemon has no pool "pl-body"

  Scenario: A PreparedEngine with a bad field is refused with 422
    When I POST /pools/pl-bad/preload with the body:
      """
      {"prepared": {"pool_id": "pl-bad", "port": 0}}
      """
    Then the response status is 422
    And the response field "code" is "INVALID_PREPARED_ENGINE"
    And the response field "error" starts with "prepared: "
    And the daemon has no pool "pl-bad"

  Scenario: A pool that is already ready is not preloaded twice
    Given a ready pool "pl-twice"
    When pool "pl-twice" is preloaded over HTTP again
    Then the response is 409 ALREADY_RUNNING with the error "pool pl-twice is already ready"
    And the pid file of pool "pl-twice" holds the MainPID of unit "pool-engine-pl-twice.service"
