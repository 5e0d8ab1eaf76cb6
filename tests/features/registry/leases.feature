# SPDX-License-Identifier: GPL-3.0-or-later
@registry
Feature: Lease accounting
  A lease is a counter of requests the orchestrator has placed on a pool: POST
  /pools/{id}/leases (D-Bus AllocateLease) counts one more, DELETE (ReleaseLease) one less,
  never below zero. Each call answers the new count, which the status shows as active_leases
  and D-Bus as ActiveLeases. Leases do not change the engine's slots.

  Background:
    Given a running pool-managerd

  Scenario: Allocating a lease counts one more
    Given a ready pool "ls-one" with:
      | field       | value |
      | slots_total | 4     |
    When I POST /pools/ls-one/leases
    Then the response is 200 with the body {"pool_id": "ls-one", "active_leases": 1}
    And the status of pool "ls-one" shows:
      | field         | value |
      | active_leases | 1     |
      | slots_free    | 4     |
    And the D-Bus properties of pool "ls-one" are:
      | property     | value |
      | ActiveLeases | 1     |

  Scenario: Several leases add up
    Given a ready pool "ls-many"
    When I POST /pools/ls-many/leases 3 times
    Then the response is 200 with the body {"pool_id": "ls-many", "active_leases": 3}
    And the status of pool "ls-many" shows:
      | field         | value |
      | active_leases | 3     |

  Scenario: Releasing a lease counts one less
    Given a ready pool "ls-release"
    When I POST /pools/ls-release/leases 2 times
    And I DELETE /pools/ls-release/leases
    Then the response is 200 with the body {"pool_id": "ls-release", "active_leases": 1}

  @OC-POOL-3007
  Scenario: Releasing never goes below zero
    Given a ready pool "ls-floor"
    When I DELETE /pools/ls-floor/leases
    Then the response is 200 with the body {"pool_id": "ls-floor", "active_leases": 0}
    When I call ReleaseLease("ls-floor") on the manager over D-Bus
    Then the D-Bus call returns 0
    And the status of pool "ls-floor" shows:
      | field         | value |
      | active_leases | 0     |

  Scenario: A pool that is not in the registry has no lease count
    The predecessor answered 0 for an unknown pool and created it on the next allocation;
    here lease calls on an unknown pool fail and create nothing.

    When I POST /pools/ls-ghost/leases
    Then the response is 404 with the error "pool ls-ghost not found"
    When I DELETE /pools/ls-ghost/leases
    Then the response is 404 with the error "pool ls-ghost not found"
    When I call AllocateLease("ls-ghost") on the manager over D-Bus
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.NoSuchPool"
    And the daemon has no pool "ls-ghost"

  Scenario: Leases allocated and released in a cycle come back to zero, whatever the interface
    Given a ready pool "ls-cycle"
    When I POST /pools/ls-cycle/leases 3 times
    And I call ReleaseLease("ls-cycle") on the manager over D-Bus
    Then the D-Bus call returns 2
    When I call ReleaseLease() on the object of pool "ls-cycle" over D-Bus
    Then the D-Bus call returns 1
    When I DELETE /pools/ls-cycle/leases
    Then the response is 200 with the body {"pool_id": "ls-cycle", "active_leases": 0}
    And the D-Bus properties of pool "ls-cycle" are:
      | property     | value |
      | ActiveLeases | 0     |

  Scenario: Each pool counts its own leases
    Given a ready pool "ls-left"
    And a ready pool "ls-right"
    When I POST /pools/ls-left/leases 2 times
    And I POST /pools/ls-right/leases 5 times
    And I DELETE /pools/ls-right/leases
    Then the status of pool "ls-left" shows:
      | field         | value |
      | active_leases | 2     |
    And the status of pool "ls-right" shows:
      | field         | value |
      | active_leases | 4     |
