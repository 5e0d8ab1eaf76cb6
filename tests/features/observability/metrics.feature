# SPDX-License-Identifier: GPL-3.0-or-later
@observability
Feature: Prometheus metrics at GET /metrics
  GET /metrics answers in the Prometheus text format 0.0.4 under the same token rule as every
  other route (pool-managerd(8), METRICS). The families follow what the daemon holds: the
  pools' readiness and leases, preloads by outcome and error code, crashes and restarts by
  crash class, the backoff delays, drains and reloads, and the GPUs of the inventory (here the
  fake NVML). Crash and restart counts are kept in each pool's saved state across a daemon
  restart; preload counts are in memory only. Debian's promtool checks the exposition. The
  engine's own load (requests running and waiting, KV-cache usage) is read from its /metrics,
  llama.cpp's names or vLLM's, and is absent for an engine that has none.

  Background:
    Given a running pool-managerd configured with:
      | key            | value |
      | HealthTimeout  | 3s    |
      | BackoffInitial | 2s    |
      | BackoffJitter  | 0     |

  @B-METRICS-001
  Scenario: The exposition has its content type and HELP and TYPE lines for every family
    When I scrape /metrics
    Then every family has HELP and TYPE lines, with the types:
      | family                      | type      |
      | build_info                  | gauge     |
      | pool_ready                  | gauge     |
      | pool_live                   | gauge     |
      | slots_total                 | gauge     |
      | slots_free                  | gauge     |
      | active_leases               | gauge     |
      | circuit_breaker_state       | gauge     |
      | preload_total               | counter   |
      | restarts_total              | counter   |
      | engine_crashes_total        | counter   |
      | drains_total                | counter   |
      | reloads_total               | counter   |
      | circuit_breaker_opens_total | counter   |
      | restart_storms_total        | counter   |
      | driver_resets_total         | counter   |
      | preload_duration_seconds    | histogram |
      | drain_duration_seconds      | histogram |
      | reload_duration_seconds     | histogram |
      | backoff_delay_seconds       | histogram |
      | device_vram_total_bytes     | gauge     |
      | device_vram_free_bytes      | gauge     |
      | engine_requests_running     | gauge     |
      | engine_requests_waiting     | gauge     |
      | engine_kv_cache_usage_ratio | gauge     |
    And the build_info sample carries the version GET /health reports

  @B-METRICS-002
  Scenario: A ready pool is ready and live, its preload counted as a success with its duration
    Given a ready pool "m-ready" with engine flags "--slots 4"
    Then the scrape shows:
      | sample                                                                                     | value |
      | pool_managerd_pool_ready{pool_id="m-ready"}                                                | 1     |
      | pool_managerd_pool_live{pool_id="m-ready"}                                                 | 1     |
      | pool_managerd_preload_total{pool_id="m-ready",engine="llamacpp",outcome="success",reason=""} | 1     |
      | pool_managerd_preload_duration_seconds_count{pool_id="m-ready"}                            | 1     |
      | pool_managerd_preload_duration_seconds_sum{pool_id="m-ready"}                              | > 0   |
      | pool_managerd_preload_duration_seconds_bucket{pool_id="m-ready",le="+Inf"}                 | 1     |
      | pool_managerd_circuit_breaker_state{pool_id="m-ready"}                                     | 0     |
      | pool_managerd_active_leases{pool_id="m-ready"}                                             | 0     |
    And every histogram of pool "m-ready" has cumulative buckets up to +Inf equal to its count

  @B-METRICS-003
  Scenario: Every crash class is present at 0 before the first crash
    Given a ready pool "m-zero"
    Then the scrape shows:
      | sample                                                                        | value |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="exit_code"}       | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="signal"}          | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="out_of_memory"}   | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="cuda_error"}      | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="health_failure"}  | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-zero",reason="clean_exit"}      | 0     |

  @B-METRICS-004
  Scenario: A preload that times out is counted as a failure with its error code
    When pool "m-slow" is preloaded over HTTP with engine flags "--never-ready"
    Then the response status is 504
    And the response field "code" is HEALTH_TIMEOUT
    And the scrape shows:
      | sample                                                                                              | value |
      | pool_managerd_preload_total{pool_id="m-slow",engine="llamacpp",outcome="failure",reason="HEALTH_TIMEOUT"} | 1     |
      | pool_managerd_preload_total{pool_id="m-slow",engine="llamacpp",outcome="success",reason=""}            | 0     |
      | pool_managerd_pool_ready{pool_id="m-slow"}                                                          | 0     |

  @B-METRICS-005
  Scenario: active_leases follows the leases taken and given back
    Given a ready pool "m-lease"
    When pool "m-lease" holds 2 leases
    Then the sample pool_managerd_active_leases{pool_id="m-lease"} is 2
    When I DELETE /pools/m-lease/leases
    Then the response status is 200
    And the sample pool_managerd_active_leases{pool_id="m-lease"} is 1

  @B-METRICS-006
  Scenario: A SIGKILL counts a crash and a restart of class "signal", and the backoff delay
    Given a ready pool "m-crash"
    When the engine of pool "m-crash" is killed with SIGKILL
    Then within 30 seconds the scrape shows:
      | sample                                                                   | value |
      | pool_managerd_engine_crashes_total{pool_id="m-crash",reason="signal"}    | 1     |
      | pool_managerd_restarts_total{pool_id="m-crash",reason="signal"}          | 1     |
      | pool_managerd_pool_ready{pool_id="m-crash"}                              | 1     |
    And the scrape shows:
      | sample                                                                      | value |
      | pool_managerd_restarts_total{pool_id="m-crash",reason="exit_code"}          | 0     |
      | pool_managerd_engine_crashes_total{pool_id="m-crash",reason="exit_code"}    | 0     |
      | pool_managerd_backoff_delay_seconds_count{pool_id="m-crash"}                | 1     |
      | pool_managerd_backoff_delay_seconds_sum{pool_id="m-crash"}                  | 2     |
      | pool_managerd_backoff_delay_seconds_bucket{pool_id="m-crash",le="1"}        | 0     |
      | pool_managerd_backoff_delay_seconds_bucket{pool_id="m-crash",le="2.5"}      | 1     |
      | pool_managerd_backoff_delay_seconds_bucket{pool_id="m-crash",le="+Inf"}     | 1     |
      | pool_managerd_preload_total{pool_id="m-crash",engine="llamacpp",outcome="success",reason=""} | 1 |
    And every histogram of pool "m-crash" has cumulative buckets up to +Inf equal to its count

  @B-METRICS-007
  Scenario: A drain is counted as completed with its duration, and the pool is neither ready nor live
    Given a ready pool "m-drain"
    When I drain pool "m-drain" over HTTP with a deadline of 5000 ms
    Then the response status is 200
    And the scrape shows:
      | sample                                                              | value |
      | pool_managerd_drains_total{pool_id="m-drain",outcome="completed"}   | 1     |
      | pool_managerd_drains_total{pool_id="m-drain",outcome="forced"}      | 0     |
      | pool_managerd_drain_duration_seconds_count{pool_id="m-drain"}       | 1     |
      | pool_managerd_pool_ready{pool_id="m-drain"}                         | 0     |
      | pool_managerd_pool_live{pool_id="m-drain"}                          | 0     |

  @B-METRICS-008
  Scenario: A reload is counted as a success, with the drain before it
    Given a ready pool "m-reload"
    When I reload pool "m-reload" over HTTP
    Then the response status is 200
    And the scrape shows:
      | sample                                                                  | value |
      | pool_managerd_reloads_total{pool_id="m-reload",outcome="success"}       | 1     |
      | pool_managerd_reloads_total{pool_id="m-reload",outcome="rolled_back"}   | 0     |
      | pool_managerd_reloads_total{pool_id="m-reload",outcome="failed"}        | 0     |
      | pool_managerd_reload_duration_seconds_count{pool_id="m-reload"}         | 1     |
      | pool_managerd_drains_total{pool_id="m-reload",outcome="completed"}      | 1     |
      | pool_managerd_pool_ready{pool_id="m-reload"}                            | 1     |

  @B-METRICS-009
  Scenario: Crash and restart counts survive a daemon restart, preload counts start again
    Given a ready pool "m-keep"
    When the engine of pool "m-keep" is killed with SIGKILL
    Then within 30 seconds the scrape shows:
      | sample                                                                | value |
      | pool_managerd_restarts_total{pool_id="m-keep",reason="signal"}        | 1     |
      | pool_managerd_pool_ready{pool_id="m-keep"}                            | 1     |
    When the daemon is stopped
    And the daemon is started again with the same configuration
    Then within 30 seconds the scrape shows:
      | sample                                                                                     | value |
      | pool_managerd_pool_ready{pool_id="m-keep"}                                                 | 1     |
      | pool_managerd_engine_crashes_total{pool_id="m-keep",reason="signal"}                       | 1     |
      | pool_managerd_restarts_total{pool_id="m-keep",reason="signal"}                             | 1     |
      | pool_managerd_preload_total{pool_id="m-keep",engine="llamacpp",outcome="success",reason=""} | 0     |

  @B-METRICS-010 @environment
  Scenario: promtool check metrics accepts the exposition of a daemon with pools
    Given a ready pool "m-prom"
    And the engine of pool "m-prom" is killed with SIGKILL
    And within 30 seconds the scrape shows:
      | sample                                                           | value |
      | pool_managerd_restarts_total{pool_id="m-prom",reason="signal"}   | 1     |
    Then promtool check metrics passes on the scrape

  @B-METRICS-011
  Scenario: The token guards /metrics, which answers only GET
    Given a running pool-managerd with the API token "obs-metrics-token"
    When I GET /metrics
    Then the response status is 401
    When I POST /metrics with the token "obs-metrics-token"
    Then the response status is 405
    And the response has the header "Allow" set to "GET"
    When I GET /metrics with the token "obs-metrics-token"
    Then the response status is 200
    And the response has the header "Content-Type" set to "text/plain; version=0.0.4; charset=utf-8"

  @B-METRICS-012 @placement
  Scenario: The GPUs' VRAM and driver resets come from the inventory
    Given a node with the fake GPUs:
      | index | name             | total GiB | used GiB | mig |
      | 0     | NVIDIA A100 80GB | 80        | 1        | no  |
      | 1     | NVIDIA L4        | 24        | 0        | no  |
    And a pool-managerd on the fake GPUs
    Then the scrape shows:
      | sample                                                                                              | value  |
      | pool_managerd_device_vram_total_bytes{device="0",uuid="GPU-00000000-0000-4000-8000-000000000000"}   | 80 GiB |
      | pool_managerd_device_vram_free_bytes{device="0",uuid="GPU-00000000-0000-4000-8000-000000000000"}    | 79 GiB |
      | pool_managerd_device_vram_total_bytes{device="1",uuid="GPU-00000000-0000-4000-8000-000000000001"}   | 24 GiB |
      | pool_managerd_device_vram_free_bytes{device="1",uuid="GPU-00000000-0000-4000-8000-000000000001"}    | 24 GiB |
      | pool_managerd_driver_resets_total{device="1",uuid="GPU-00000000-0000-4000-8000-000000000001"}       | 0      |
    When NVML shows 4 GiB used on GPU 1
    And GPU 1 reports XID 13
    And GPU 1 reports XID 79
    Then within 15 seconds the scrape shows:
      | sample                                                                                              | value  |
      | pool_managerd_device_vram_free_bytes{device="1",uuid="GPU-00000000-0000-4000-8000-000000000001"}    | 20 GiB |
      | pool_managerd_driver_resets_total{device="1",uuid="GPU-00000000-0000-4000-8000-000000000001"}       | 1      |
      | pool_managerd_driver_resets_total{device="0",uuid="GPU-00000000-0000-4000-8000-000000000000"}       | 0      |

  @B-METRICS-013
  Scenario: The engine's own load comes from llama.cpp's /metrics
    Given a ready pool "m-load" with engine flags "--metrics-style llamacpp --requests-running 3 --requests-waiting 2 --kv-cache-usage 0.5"
    Then within 10 seconds the scrape shows:
      | sample                                                              | value |
      | pool_managerd_engine_requests_running{pool_id="m-load"}             | 3     |
      | pool_managerd_engine_requests_waiting{pool_id="m-load"}             | 2     |
      | pool_managerd_engine_kv_cache_usage_ratio{pool_id="m-load"}         | 0.5   |
    And promtool check metrics passes on the scrape

  @B-METRICS-014
  Scenario: vLLM's names, one series per model, give the same families
    Given a ready pool "m-vllm" with engine flags "--metrics-style vllm --requests-running 4 --requests-waiting 1 --kv-cache-usage 0.25"
    Then within 10 seconds the scrape shows:
      | sample                                                              | value |
      | pool_managerd_engine_requests_running{pool_id="m-vllm"}             | 4     |
      | pool_managerd_engine_requests_waiting{pool_id="m-vllm"}             | 1     |
      | pool_managerd_engine_kv_cache_usage_ratio{pool_id="m-vllm"}         | 0.25  |

  @B-METRICS-015
  Scenario: An engine without metrics has no load in the scrape, and that is no error for its pool
    Given a ready pool "m-noload" with engine flags "--metrics-style none"
    When the daemon has read the /metrics of pool "m-noload"
    Then the scrape shows:
      | sample                                                              | value    |
      | pool_managerd_pool_ready{pool_id="m-noload"}                        | 1        |
      | pool_managerd_engine_requests_running{pool_id="m-noload"}           | (absent) |
      | pool_managerd_engine_requests_waiting{pool_id="m-noload"}           | (absent) |
      | pool_managerd_engine_kv_cache_usage_ratio{pool_id="m-noload"}       | (absent) |
    And the status of pool "m-noload" shows:
      | field | value |
      | state | ready |
      | ready | true  |

  @B-METRICS-016
  Scenario: The engine's load goes with its engine
    Given a ready pool "m-gone" with engine flags "--requests-running 2"
    And within 10 seconds the scrape shows:
      | sample                                                              | value |
      | pool_managerd_engine_requests_running{pool_id="m-gone"}             | 2     |
    When I POST /pools/m-gone/stop
    Then the response status is 200
    And the scrape shows:
      | sample                                                              | value    |
      | pool_managerd_engine_requests_running{pool_id="m-gone"}             | (absent) |
      | pool_managerd_engine_requests_waiting{pool_id="m-gone"}             | (absent) |
