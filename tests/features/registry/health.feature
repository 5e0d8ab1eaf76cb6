# SPDX-License-Identifier: GPL-3.0-or-later
@registry
Feature: Pool health in the registry
  Each pool's health is two flags: live (its engine process runs and is the pool's) and ready
  (the engine answered its health check). pool-managerd sets them from what systemd and the
  probe report; they are read over HTTP (live, ready) and D-Bus (Live, Ready).

  Background:
    Given a running pool-managerd

  Scenario: A ready pool reads live and ready over HTTP and D-Bus
    Given a ready pool "rh-ready"
    Then the status of pool "rh-ready" shows:
      | field | value |
      | live  | true  |
      | ready | true  |
    And the D-Bus properties of pool "rh-ready" are:
      | property | value |
      | Live     | true  |
      | Ready    | true  |
      | State    | ready |

  Scenario: A pool that is not in the registry has no health
    The predecessor's get_health returned None; here the lookup fails and creates nothing.

    When I GET /pools/rh-ghost/status
    Then the response is 404 with the error "pool rh-ghost not found"
    When I call GetPool("rh-ghost") on the manager over D-Bus
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.NoSuchPool"
    And the daemon has no pool "rh-ghost"

  Scenario: A pool enters the registry neither live nor ready
    Given I monitor the daemon's D-Bus signals
    When pool "rh-new" is preloaded over HTTP with engine flags "--ready-after=300"
    Then the response status is 200
    And the pool object of "rh-new" appeared with the properties:
      | property | value    |
      | Live     | false    |
      | Ready    | false    |
      | State    | starting |
    And the Ready property of pool "rh-new" changed only once, to true

  Scenario: Health follows the engine: an engine that ends makes its pool neither live nor ready
    The engine ends on its own with status 0. Nobody asked for that, so it is a crash (the
    supervision restarts it after a backoff), and the pool's health is updated to what
    systemd reports at once.

    Given a ready pool "rh-ends" with engine flags "--exit-after=800 --exit-code=0"
    Then the status of pool "rh-ends" shows:
      | field | value |
      | live  | true  |
      | ready | true  |
    And within 5 seconds the status of pool "rh-ends" shows:
      | field | value   |
      | live  | false   |
      | ready | false   |
      | state | backoff |
    And the status of pool "rh-ends" shows:
      | field      | value                                                |
      | last_error | engine exited with status 0, without being asked to: "… |
    And the D-Bus properties of pool "rh-ends" are:
      | property  | value                                                |
      | Live      | false                                                |
      | Ready     | false                                                |
      | LastError | engine exited with status 0, without being asked to: "… |
