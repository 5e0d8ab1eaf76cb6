# SPDX-License-Identifier: GPL-3.0-or-later
@fleet
Feature: Every node's pools in etcd, with leases
  An orchestrator that runs more than one GPU node reads every node's pools from one place:
  etcd. Each pool-managerd with Etcd= in [Fleet] grants itself one lease, writes its node key
  and one key per running pool, all on that lease, and keeps the lease alive. A node that dies
  takes its keys with it when the lease runs out; its engines live on, and a restarted daemon
  writes everything again. etcd being away never disturbs the node itself. Each scenario has an
  etcd and a daemon of its own (LeaseTTL=2s).

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

  Scenario: GET /fleet/pools and poolctl fleet show the pools of other nodes
    Given a ready pool "fl-mine"
    When another node "other-node" publishes pool "remote" in etcd with:
      | field          | value                   |
      | ready          | true                    |
      | live           | true                    |
      | state          | "ready"                 |
      | engine_version | "0.5.0"                 |
      | url            | "http://10.9.9.9:8080"  |
      | active_leases  | 1                       |
    Then within 3 seconds GET /fleet/pools lists pool "remote" of node "other-node" with:
      | field          | value                |
      | ready          | true                 |
      | engine_version | 0.5.0                |
      | url            | http://10.9.9.9:8080 |
    And within 3 seconds GET /fleet/pools lists pool "fl-mine" of node "bdd-node" with:
      | field | value |
      | ready | true  |
    And poolctl fleet prints a row for pool "remote" of node "other-node" in state "ready"
    And poolctl fleet prints a row for pool "fl-mine" of node "bdd-node" in state "ready"

  Scenario: A bad value from etcd is named in the journal and changes nothing
    When another node "other-node" publishes pool "remote" in etcd with:
      | field | value |
      | ready | true  |
    And within 3 seconds GET /fleet/pools lists pool "remote" of node "other-node" with:
      | field | value |
      | ready | true  |
    And another node writes "{"ready": "yes"}" as its pool "remote" in etcd
    Then the daemon's journal has a line containing "Fleet: ignoring key "/pool-managerd/pools/other-node/remote""
    And the daemon's journal has a line containing "value: ready must be a boolean"
    And within 1 seconds GET /fleet/pools lists pool "remote" of node "other-node" with:
      | field | value |
      | ready | true  |
