# SPDX-License-Identifier: GPL-3.0-or-later
@fleet
Feature: A node registers itself and its pools in etcd, on one lease
  Each pool-managerd with Etcd= in [Fleet] grants itself one lease, writes its node key and one
  key per running pool, all on that lease, keeps the lease alive and writes every change,
  coalesced. A node that dies takes its keys with it when the lease runs out; its engines live
  on, and a restarted daemon writes everything again. etcd being away never disturbs the node
  itself. Each scenario has an etcd and a daemon of its own (LeaseTTL=2s). Reading the fleet
  (GET /fleet/pools, poolctl fleet) is fleet.feature.

  Background:
    Given an etcd of the scenario's own
    And a freshly started pool-managerd registered in that etcd as node "bdd-node" with:
      | key            | value |
      | LeaseTTL       | 2s    |
      | HealthInterval | 20ms  |


  Scenario: The node and its ready pool appear in etcd, on the node's lease
    When a ready pool "fl-ready"
    Then within 3 seconds etcd has the node key of "bdd-node" on a lease
    And within 3 seconds etcd has the key of pool "fl-ready" on node "bdd-node" with:
      | field         | value    |
      | node          | bdd-node |
      | pool_id       | fl-ready |
      | state         | ready    |
      | ready         | true     |
      | live          | true     |
      | engine        | llamacpp |
      | active_leases | 0        |
      | last_error    | null     |
    And the key of pool "fl-ready" is on the lease of node "bdd-node"
    And the manager's D-Bus property "FleetState" is "connected"
    When I GET /health
    Then the response field "fleet" is "connected"

  Scenario: A stopped pool's key is deleted
    Given a ready pool "fl-stop"
    And within 3 seconds etcd has the key of pool "fl-stop" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    When I POST /pools/fl-stop/stop
    Then the response status is 200
    And within 1 seconds etcd has no key of pool "fl-stop" on node "bdd-node"

  Scenario: A killed daemon's keys expire with its lease, its engines live on, a restart writes them again
    Given a ready pool "fl-kill"
    And the engine of pool "fl-kill" runs as the main process of its unit, noted
    And within 3 seconds etcd has the key of pool "fl-kill" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    When the daemon is killed with SIGKILL
    Then within 6 seconds etcd has no key of node "bdd-node" left
    And the engine of pool "fl-kill" survived the daemon
    When the daemon is started again with the same configuration
    Then within 1 seconds etcd has the key of pool "fl-kill" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    And the key of pool "fl-kill" is on the lease of node "bdd-node"
    And the unit of pool "fl-kill" is the one noted before

  Scenario: While etcd is away the node serves as before and writes its current state when it returns
    Given a ready pool "fl-before"
    And within 3 seconds etcd has the key of pool "fl-before" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    When etcd is stopped
    Then within 5 seconds the manager's D-Bus property "FleetState" is "disconnected"
    When a ready pool "fl-during"
    And I POST /pools/fl-before/stop
    Then the response status is 200
    When I GET /health
    Then the response field "fleet" is "disconnected"
    And the daemon's journal has a line containing "is not registered. Local operation continues; retrying with backoff."
    When etcd is started again
    Then within 10 seconds the manager's D-Bus property "FleetState" is "connected"
    And within 3 seconds etcd has the key of pool "fl-during" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    And within 3 seconds etcd has no key of pool "fl-before" on node "bdd-node"

  Scenario: The node key says who the node is, on a lease of LeaseTTL
    Then within 3 seconds etcd has the node key of "bdd-node" with:
      | field   | value    |
      | node    | bdd-node |
      | devices | []       |
    And the node key of "bdd-node" names the daemon's HTTP address and the version "pool-managerd --version" prints
    And the key of node "bdd-node" has "started_at" as a UTC time with milliseconds
    And the lease of node "bdd-node" was granted with a TTL of 2 seconds

  Scenario: A pool's key carries its engine, devices, slots and URL, without the heartbeat
    Given a ready pool "fl-fields" with:
      | field          | value    |
      | engine         | vllm     |
      | engine_version | fake-1.0 |
      | device_mask    | GPU0     |
      | slots_total    | 4        |
    Then within 3 seconds etcd has the key of pool "fl-fields" on node "bdd-node" with:
      | field          | value                            |
      | engine         | vllm                             |
      | engine_version | fake-1.0                         |
      | device_mask    | GPU0                             |
      | slots_total    | 4                                |
      | slots_free     | 4                                |
      | url            | http://127.0.0.1:$PORT(fl-fields) |
    And the key of pool "fl-fields" on node "bdd-node" has "updated_at" as a UTC time with milliseconds
    And the key of pool "fl-fields" on node "bdd-node" has no field "last_heartbeat_ms"

  Scenario: A lease taken on a pool shows in its key
    Given a ready pool "fl-lease" with:
      | field       | value |
      | slots_total | 4     |
    When I POST /pools/fl-lease/leases
    Then the response status is 200
    And within 1 seconds etcd has the key of pool "fl-lease" on node "bdd-node" with:
      | field         | value |
      | active_leases | 1     |

  Scenario: Many changes of a pool are written coalesced, the newest state last
    Given a ready pool "fl-coal" with:
      | field       | value |
      | slots_total | 1000  |
    And within 3 seconds etcd has the key of pool "fl-coal" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    And the version of the key of pool "fl-coal" on node "bdd-node" is noted
    When I take 200 leases on pool "fl-coal" and give 50 of them back
    Then within 2 seconds etcd has the key of pool "fl-coal" on node "bdd-node" with:
      | field         | value |
      | active_leases | 150   |
    And etcd wrote the key of pool "fl-coal" on node "bdd-node" at most once per 50 ms during that, and fewer times than it changed

  Scenario: A restarted daemon deletes the keys of pools it no longer runs
    Given a ready pool "fl-keep"
    When the daemon is killed with SIGKILL
    And a key of pool "fl-ghost" on node "bdd-node" is put in etcd on a lease of its own
    And the daemon is started again with the same configuration
    Then within 1 seconds etcd has no key of pool "fl-ghost" on node "bdd-node"
    And within 1 seconds etcd has the key of pool "fl-keep" on node "bdd-node" with:
      | field | value |
      | ready | true  |

  Scenario: A lease revoked from outside is granted again and every key written on it
    Given a ready pool "fl-revoke"
    And within 3 seconds etcd has the key of pool "fl-revoke" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    When the lease of node "bdd-node" is revoked
    Then within 5 seconds etcd has the node key of "bdd-node" on a new lease
    And within 3 seconds etcd has the key of pool "fl-revoke" on node "bdd-node" with:
      | field | value |
      | ready | true  |
    And the key of pool "fl-revoke" is on the lease of node "bdd-node"
    And the daemon's journal has a line containing "is gone (the keepalive said TTL 0): granting a new one"
    And the manager's D-Bus property "FleetState" is "connected"
