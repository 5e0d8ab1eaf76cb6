# SPDX-License-Identifier: GPL-3.0-or-later
@registry
Feature: Registering a ready engine from its handoff
  When an engine answers its health check, pool-managerd writes its handoff file
  <RuntimeDirectory>/engines/<pool>-<replica>.json and registers the pool as ready from that
  same document: live and ready, engine version, device mask and slots, no error, a fresh
  heartbeat. Everything here is observed through the public interfaces; the handoff comes from
  a real preload.

  Background:
    Given a running pool-managerd

  @OC-POOL-3101
  Scenario: A complete handoff makes the pool ready with its metadata
    When pool "ho-full" is preloaded over HTTP with:
      | field          | value      |
      | engine_version | b4000-cuda |
      | device_mask    | GPU0       |
      | slots_total    | 4          |
    Then the response status is 200
    And the handoff file of pool "ho-full" contains:
      | key            | value      |
      | engine_version | b4000-cuda |
      | device_mask    | GPU0       |
      | slots_total    | 4          |
      | slots_free     | 4          |
    And the status of pool "ho-full" shows:
      | field          | value                                |
      | live           | true                                 |
      | ready          | true                                 |
      | engine_version | b4000-cuda                           |
      | device_mask    | GPU0                                 |
      | slots_total    | 4                                    |
      | slots_free     | 4                                    |
      | last_error     | null                                 |
      | handoff_path   | $RUNTIME_DIR/engines/ho-full-r0.json |

  @OC-POOL-3101
  Scenario: Becoming ready clears the error of an earlier failed preload
    Given pool "ho-again" failed to preload with an engine that exits with status 4
    And the status of pool "ho-again" shows:
      | field      | value                                             |
      | last_error | engine exited with status 4 before becoming ready: "… |
    When pool "ho-again" is preloaded over HTTP again
    Then the response status is 200
    And the status of pool "ho-again" shows:
      | field      | value |
      | last_error | null  |
      | ready      | true  |
    And the D-Bus properties of pool "ho-again" are:
      | property  | value |
      | LastError |       |

  @OC-POOL-3102
  Scenario: A minimal handoff is enough to become ready
    Only binary_path, port and pool_id are given, plus the flags that tell the fake engine its
    port. The predecessor invented slots_total=1 for a handoff without slots; unknown capacity
    stays unknown here (null in JSON, -1 over D-Bus).

    When pool "ho-min" is preloaded over HTTP with only the required fields
    Then the response status is 200
    And the handoff file of pool "ho-min" contains:
      | key        | value                          |
      | pool_id    | ho-min                         |
      | replica_id | r0                             |
      | url        | http://127.0.0.1:$PORT(ho-min) |
    And the handoff file of pool "ho-min" has no key "slots_total"
    And the status of pool "ho-min" shows:
      | field       | value |
      | ready       | true  |
      | slots_total | null  |
      | slots_free  | null  |
    And the D-Bus properties of pool "ho-min" are:
      | property   | value |
      | SlotsTotal | -1    |
      | SlotsFree  | -1    |

  @OC-POOL-3102
  Scenario: Registration sets the heartbeat to the time the engine became ready
    When pool "ho-beat" is preloaded over HTTP with engine flags "--ready-after=300"
    Then the response status is 200
    And the last heartbeat of pool "ho-beat" lies between the request and the answer, after the engine turned healthy
    And the D-Bus property LastHeartbeatUSec of pool "ho-beat" is its last_heartbeat_ms times 1000

  @OC-POOL-3102
  Scenario: Optional fields left out of the PreparedEngine are null in the handoff and the registry
    When pool "ho-sparse" is preloaded over HTTP with:
      | field          | value    |
      | engine_version | (absent) |
      | device_mask    | null     |
      | model_path     | (absent) |
    Then the response status is 200
    And the handoff file of pool "ho-sparse" contains:
      | key            | value |
      | engine_version | null  |
      | device_mask    | null  |
      | model.path     | null  |
      | model.id       | null  |
    And the status of pool "ho-sparse" shows:
      | field          | value |
      | ready          | true  |
      | engine_version | null  |
      | device_mask    | null  |

  @OC-POOL-3102
  Scenario: A new handoff for a known pool updates its entry instead of adding one
    Given a ready pool "ho-update" with:
      | field          | value |
      | engine_version | v1    |
      | slots_total    | 2     |
    And I POST /pools/ho-update/stop
    When pool "ho-update" is preloaded over HTTP again with:
      | field          | value |
      | engine_version | v2    |
      | slots_total    | 6     |
    Then the response status is 200
    And the status of pool "ho-update" shows:
      | field          | value |
      | engine_version | v2    |
      | slots_total    | 6     |
      | slots_free     | 6     |
    And the handoff file of pool "ho-update" contains:
      | key            | value |
      | engine_version | v2    |
    And GET /pools lists pool "ho-update" exactly once

  @OC-POOL-3101
  Scenario: The device mask is taken from the handoff and reaches the engine
    When pool "ho-mask" is preloaded over HTTP with:
      | field       | value     |
      | device_mask | GPU0,GPU1 |
    Then the response status is 200
    And the handoff file of pool "ho-mask" contains:
      | key         | value     |
      | device_mask | GPU0,GPU1 |
    And the status of pool "ho-mask" shows:
      | field       | value     |
      | device_mask | GPU0,GPU1 |
    And the D-Bus properties of pool "ho-mask" are:
      | property   | value     |
      | DeviceMask | GPU0,GPU1 |
    And the unit "pool-engine-ho-mask.service" has the properties:
      | property    | value                    |
      | Environment | CUDA_VISIBLE_DEVICES=0,1 |

  @OC-POOL-3102
  Scenario: Slots are taken from the handoff
    When pool "ho-slots" is preloaded over HTTP with:
      | field       | value |
      | slots_total | 8     |
    Then the response status is 200
    And the handoff file of pool "ho-slots" contains:
      | key         | value |
      | slots_total | 8     |
      | slots_free  | 8     |
      | slots       | 8     |
    And the status of pool "ho-slots" shows:
      | field       | value |
      | slots_total | 8     |
      | slots_free  | 8     |
    And the D-Bus properties of pool "ho-slots" are:
      | property   | value |
      | SlotsTotal | 8     |
      | SlotsFree  | 8     |
