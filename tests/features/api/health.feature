# SPDX-License-Identifier: GPL-3.0-or-later
@api
Feature: The HTTP health endpoint
  The orchestrator asks GET /health whether pool-managerd is up before it asks anything else.
  The endpoint says nothing about pools, needs no token, and answers as long as the daemon's
  event loop runs.

  Scenario: GET /health answers that the daemon is ok
    Given a running pool-managerd
    When I GET /health
    Then the response status is 200
    And the response has the header "Content-Type" set to "application/json"
    And the response field "status" is "ok"

  Scenario: The health endpoint answers while no pool exists
    Given a freshly started pool-managerd
    And the daemon has no pools
    When I GET /health
    Then the response status is 200
    And the response field "status" is "ok"

  Scenario: The health response carries the version of the running daemon
    Given a running pool-managerd
    When I GET /health
    Then the response field "version" is what "pool-managerd --version" prints
    And the response field "version" equals the manager's D-Bus property "Version"

  Scenario: The health endpoint needs no token even when the API has one
    Given a running pool-managerd with the API token "bdd-secret"
    When I GET /health
    Then the response status is 200
    When I GET /pools
    Then the response is 401 with the error "unauthorized"
    When I GET /pools with the token "bdd-secret"
    Then the response status is 200
