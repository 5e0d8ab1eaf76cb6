# SPDX-License-Identifier: GPL-3.0-or-later
@fleet
Feature: Every node's pools, read from etcd
  An orchestrator that runs more than one GPU node reads every node's pools from one place:
  etcd, or any node's GET /fleet/pools and poolctl fleet, which answer from a cache the daemon
  keeps current with etcd's watch. How a node writes itself there is registration.feature.
  Each scenario has an etcd and a daemon of its own (LeaseTTL=2s).

  Background:
    Given an etcd of the scenario's own
    And a freshly started pool-managerd registered in that etcd as node "bdd-node" with:
      | key            | value |
      | LeaseTTL       | 2s    |
      | HealthInterval | 20ms  |

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

  Scenario: Another node's pools leave the cache when its lease ends
    When another node "other-node" publishes pool "remote" in etcd with:
      | field | value |
      | ready | true  |
    And within 3 seconds GET /fleet/pools lists pool "remote" of node "other-node" with:
      | field | value |
      | ready | true  |
    And the lease of node "other-node" is revoked
    Then within 3 seconds GET /fleet/pools lists no pool of node "other-node"
