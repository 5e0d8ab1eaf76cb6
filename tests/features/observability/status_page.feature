# SPDX-License-Identifier: GPL-3.0-or-later
@observability
Feature: The status page at GET / and the event stream at GET /events
  GET /events streams the registry as server-sent events (pool-managerd(8), EVENT STREAM): a
  "snapshot" event with every pool first, then a "pool" event with the pool's status JSON on each
  change (state, readiness, leases, slots, crashes, restarts, last error) and "removed" when a
  pool goes, each with an increasing id; it needs the token like every other route. GET / is one
  small HTML page without external assets, served with a Content-Security-Policy that lets only
  its own inline script and style run and connect only to the daemon; it needs no token (it holds
  no data) and reads /events itself. tests/test-status-page.py loads it into headless Chromium.

  Background:
    Given a running pool-managerd configured with:
      | key            | value |
      | BackoffInitial | 2s    |
      | BackoffJitter  | 0     |

  @B-STATUS-001
  Scenario: The event stream shows an engine's crash within a second, then its restart
    Given a ready pool "sse-a"
    When I open the event stream
    Then the first event is a snapshot in which pool "sse-a" is ready
    When the engine of pool "sse-a" is killed with SIGKILL
    Then within 1 second the event stream has a "pool" event in which pool "sse-a" is not ready
    And within 5 seconds the event stream has a "pool" event in which pool "sse-a" has crash_count 1 and a last_error
    And within 10 seconds the event stream has a "pool" event in which pool "sse-a" is ready
    And the event ids of the stream increase

  @B-STATUS-002
  Scenario: A lease shows in the stream as it is taken and given back
    Given a ready pool "sse-b"
    When I open the event stream
    And I POST /pools/sse-b/leases
    Then within 1 second the event stream has a "pool" event in which pool "sse-b" has active_leases 1
    When I DELETE /pools/sse-b/leases
    Then within 1 second the event stream has a "pool" event in which pool "sse-b" has active_leases 0

  @B-STATUS-003
  Scenario: GET / serves one self-contained HTML page with a strict Content-Security-Policy
    When I GET /
    Then the response status is 200
    And the response has the header "Content-Type" set to "text/html; charset=utf-8"
    And the response has the header "X-Content-Type-Options" set to "nosniff"
    And the Content-Security-Policy starts with "default-src 'none'" and allows inline code only by hash
    And the Content-Security-Policy allows connections to the daemon only
    And the page has no external assets, reads /events and is smaller than 15 KiB

  @B-STATUS-004
  Scenario: The event stream needs the token; the page does not
    Given a running pool-managerd with the API token "status-t0ken"
    When I open the event stream without a token
    Then the event stream is refused with 401 UNAUTHORIZED
    When I open the event stream with the token "status-t0ken"
    Then the first event is a snapshot
    When I GET /
    Then the response status is 200
