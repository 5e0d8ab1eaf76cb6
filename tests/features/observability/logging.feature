# SPDX-License-Identifier: GPL-3.0-or-later
@observability
Feature: Structured journal entries and correlation ids
  The daemon logs to the journal with structured fields (pool-managerd(8), LOGGING): every
  entry about a pool carries POOL_ID=, UNIT=, ENGINE=, ENGINE_VERSION= and DEVICE_MASK=;
  starts carry OPERATION=, RESTART_COUNT= and BACKOFF_MS=; crashes CRASH_COUNT=,
  RESTART_COUNT=, BACKOFF_MS= and LAST_ERROR=. An HTTP request's X-Correlation-Id (or a
  generated one) is echoed and logged as CORRELATION_ID= with the operation it starts; what
  supervision does on its own does not carry it. Engine units get LogExtraFields=POOL_ID=;
  journald of a user manager does not apply it, so here the unit property is what is checked.
  The API token never appears in the journal.

  Background:
    Given a running pool-managerd configured with:
      | key            | value |
      | BackoffInitial | 500ms |
      | BackoffJitter  | 0     |

  @B-LOG-005
  Scenario: The client's X-Correlation-Id is echoed in the answer
    When I GET /health with the header "X-Correlation-Id" set to "req-42.a:b/c+d=e-f_g"
    Then the response status is 200
    And the response has the header "X-Correlation-Id" set to "req-42.a:b/c+d=e-f_g"

  @B-LOG-005
  Scenario: Without the header each answer gets a new random correlation id
    When I GET /health
    Then the response's X-Correlation-Id is 32 hex digits
    When I GET /pools
    Then the response's X-Correlation-Id is 32 hex digits
    And the X-Correlation-Ids of the answers differ

  @B-LOG-006
  Scenario Outline: An X-Correlation-Id outside the allowed characters is refused: <case>
    When I GET /pools with the header "X-Correlation-Id" set to "<value>"
    Then the response status is 400
    And the response field "code" is INVALID_REQUEST
    And the response field "error" contains "X-Correlation-Id"

    Examples:
      | case        | value      |
      | a space     | with space |
      | a quote     | quote"d    |
      | a semicolon | semi;colon |

  @B-LOG-006
  Scenario: An X-Correlation-Id may have 128 characters, not 129
    When I GET /pools with an X-Correlation-Id of 128 characters
    Then the response status is 200
    When I GET /pools with an X-Correlation-Id of 129 characters
    Then the response status is 400
    And the response field "code" is INVALID_REQUEST

  @B-LOG-001 @OC-POOL-3030
  Scenario: Every entry about a pool names the pool, its unit, engine, version and device mask
    When pool "lg-fields" is preloaded over HTTP with:
      | field          | value |
      | engine_version | b4242 |
    Then the response status is 200
    And every entry of the daemon's journal about pool "lg-fields" has:
      | field          | value                         |
      | POOL_ID        | lg-fields                     |
      | UNIT           | pool-engine-lg-fields.service |
      | ENGINE         | llamacpp                      |
      | ENGINE_VERSION | b4242                         |
      | DEVICE_MASK    | (present)                     |
    And the daemon's journal has a start entry of pool "lg-fields" with:
      | field         | value   |
      | OPERATION     | preload |
      | RESTART_COUNT | 0       |

  @B-LOG-005 @B-LOG-007
  Scenario: The entries of a preload carry the request's correlation id, and journalctl finds them by it
    When pool "lg-corr" is preloaded over HTTP with the X-Correlation-Id "preload-lg-corr-1" and:
      | field          | value |
      | engine_version | b4242 |
    Then the response status is 200
    And the response has the header "X-Correlation-Id" set to "preload-lg-corr-1"
    And the daemon's journal has a ready entry of pool "lg-corr" with:
      | field          | value             |
      | CORRELATION_ID | preload-lg-corr-1 |
    And journalctl CORRELATION_ID=preload-lg-corr-1 finds the start and ready entries of pool "lg-corr", and only entries of that request

  @B-LOG-002
  Scenario: The engine's unit gets LogExtraFields=POOL_ID= so journalctl POOL_ID= shows its lines too
    Given a ready pool "lg-extra"
    Then the unit of pool "lg-extra" has LogExtraFields "POOL_ID=lg-extra"

  @B-LOG-003
  Scenario: A crash entry has the crash and restart counts, the backoff and the last error, but no correlation id
    Given a ready pool "lg-crash"
    When the engine of pool "lg-crash" is killed with SIGKILL
    Then the daemon's journal has a crash entry of pool "lg-crash" with:
      | field          | value          |
      | CRASH_REASON   | signal         |
      | CRASH_COUNT    | 1              |
      | RESTART_COUNT  | (present)      |
      | BACKOFF_MS     | 500            |
      | LAST_ERROR     | (not empty)    |
      | ENGINE         | llamacpp       |
      | POOL_ID        | lg-crash       |
      | CORRELATION_ID | (absent)       |

  @B-LOG-003
  Scenario: The restart after a crash is a start entry with its restart count and backoff, without correlation id
    Given a ready pool "lg-restart"
    When the engine of pool "lg-restart" is killed with SIGKILL
    Then the daemon's journal has a start entry of pool "lg-restart" with:
      | field          | value    |
      | OPERATION      | restart  |
      | RESTART_COUNT  | 1        |
      | BACKOFF_MS     | 500      |
      | CORRELATION_ID | (absent) |
    And the daemon's journal has a ready entry of pool "lg-restart" with:
      | field          | value    |
      | ENGINE         | llamacpp |
      | CORRELATION_ID | (absent) |

  @B-LOG-004
  Scenario: A failed preload is logged with its last error and the generated correlation id
    When pool "lg-fail" is preloaded over HTTP with engine flags "--never-ready --exit-after=300"
    Then the daemon's journal has a failure entry of pool "lg-fail" with:
      | field          | value              |
      | LAST_ERROR     | (not empty)        |
      | CORRELATION_ID | /[0-9a-f]{32}/     |
      | POOL_ID        | lg-fail            |

  @B-LOG-008
  Scenario: The API token is never logged, neither a right one nor a wrong one
    Given a running pool-managerd with the API token "obs-logging-token-5f2c"
    When I list the pools once with the token "obs-logging-token-5f2c" and once with "wrong-obs-logging-token-5f2c"
    Then the daemon logged the refused request at debug level
    And no journal entry contains "obs-logging-token-5f2c" or a Bearer credential
