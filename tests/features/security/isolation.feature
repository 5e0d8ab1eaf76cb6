# SPDX-License-Identifier: GPL-3.0-or-later
@security @isolation
Feature: Engine isolation: each engine runs in a sandbox of its own unit
  The predecessor planned B-SEC-001..012 (bdd/PHASE3_OVERVIEW.md) for engines it would fork
  itself: a non-root user, an isolated working directory, minimal capabilities, and for
  containers a seccomp profile and constrained network access. Here systemd starts each engine
  as a transient unit, and the sandbox is made of that unit's settings (EngineSandbox=,
  pool-managerd.conf(5)): no capabilities, NoNewPrivileges=, SystemCallFilter=@system-service
  (a forbidden call fails with EPERM), RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6, a private
  /tmp, a working directory of the engine's own, a read-only /usr and /etc (ProtectSystem=full).

  Each scenario checks the settings on the running unit and what they do from inside: the
  engine is tests/features/support/sandbox-probe, which tries harmless things that work without
  the sandbox, writes what happened to a file and then becomes the fake engine. The last scenario
  runs the same probes with EngineSandbox=off, where all of them succeed: the probes can fail.

  These run under the sandbox's systemd user manager with EngineSandbox=container. What needs the
  system manager is checked by tools/boot-test in a booted Debian system: B-SEC-001 (engines run
  as EngineUser=pool-engine, not root: a user manager runs everything as its own user) and
  EngineSandbox=full (the /proc and /sys remounts, which fail here with 226/NAMESPACE).
  B-SEC-010 (rootless containers) does not apply: engines are units, not containers.

  Background:
    Given a running pool-managerd configured with:
      | key            | value     |
      | EngineSandbox  | container |
      | HealthInterval | 50ms      |

  @B-SEC-003
  Scenario: An engine has no capabilities and cannot gain any
    Given a ready pool "sec-caps" whose engine first reports on its sandbox
    Then the engine of pool "sec-caps" reports:
      | probe             | value            |
      | status.CapBnd     | 0000000000000000 |
      | status.CapEff     | 0000000000000000 |
      | status.CapPrm     | 0000000000000000 |
      | status.CapAmb     | 0000000000000000 |
      | status.NoNewPrivs | 1                |
    And the unit "pool-engine-sec-caps.service" has the properties:
      | property              | value |
      | CapabilityBoundingSet | 0     |
      | AmbientCapabilities   | 0     |
      | NoNewPrivileges       | true  |
      | RestrictSUIDSGID      | true  |

  @B-SEC-002
  Scenario: An engine works in a directory of its own, which goes when the engine stops
    Given a ready pool "sec-wd-a" whose engine first reports on its sandbox
    And a ready pool "sec-wd-b" whose engine first reports on its sandbox
    Then the engine of pool "sec-wd-a" works in "pool-engines/sec-wd-a" under the manager's runtime directory, mode 0700, its own
    And the engine of pool "sec-wd-b" works in "pool-engines/sec-wd-b" under the manager's runtime directory, mode 0700, its own
    And the unit "pool-engine-sec-wd-a.service" has the properties:
      | property             | value                 |
      | RuntimeDirectory     | pool-engines/sec-wd-a |
      | RuntimeDirectoryMode | 448                   |
    When I POST /pools/sec-wd-a/stop
    Then the response status is 200
    And the working directory of the engine of pool "sec-wd-a" is gone
    And the working directory of the engine of pool "sec-wd-b" is still there

  @B-SEC-002
  Scenario: An engine's /tmp is its own: nobody else sees what it writes there
    Given a ready pool "sec-tmp-a" whose engine first reports on its sandbox
    And a ready pool "sec-tmp-b" whose engine first reports on its sandbox
    Then the file the engine of pool "sec-tmp-a" wrote to /tmp is not in /tmp outside it
    And the engine of pool "sec-tmp-b" did not see the file the engine of pool "sec-tmp-a" wrote to /tmp
    And the unit "pool-engine-sec-tmp-a.service" has the properties:
      | property   | value |
      | PrivateTmp | true  |

  @B-SEC-011
  Scenario: An engine may make the system calls of an ordinary service; any other fails with EPERM
    Given a ready pool "sec-sys" whose engine first reports on its sandbox
    Then the engine of pool "sec-sys" reports:
      | probe              | value |
      | status.Seccomp     | 2     |
      | syscall.modify_ldt | EPERM |
    And the unit "pool-engine-sec-sys.service" allows the system calls of @system-service only, failing others with EPERM
    And the unit "pool-engine-sec-sys.service" has the properties:
      | property                | value        |
      | SystemCallArchitectures | ["native"]   |
      | LockPersonality         | true         |
      | RestrictRealtime        | true         |

  @B-SEC-012
  Scenario: An engine may open IPv4, IPv6 and local sockets, no other kind
    Given a ready pool "sec-net" whose engine first reports on its sandbox
    Then the engine of pool "sec-net" reports:
      | probe              | value        |
      | sockets.AF_INET    | ok           |
      | sockets.AF_INET6   | ok           |
      | sockets.AF_UNIX    | ok           |
      | sockets.AF_NETLINK | EAFNOSUPPORT |
    And the unit "pool-engine-sec-net.service" has the properties:
      | property                | value                                   |
      | RestrictAddressFamilies | [true, ["AF_INET", "AF_INET6", "AF_UNIX"]] |

  Scenario: The system is read-only to an engine
    Given a ready pool "sec-ro" whose engine first reports on its sandbox
    Then the engine of pool "sec-ro" reports:
      | probe         | value |
      | writable./usr | EROFS |
      | writable./etc | EROFS |
    And the unit "pool-engine-sec-ro.service" has the properties:
      | property             | value |
      | ProtectSystem        | full  |
      | ProtectKernelModules | true  |

  Scenario: With EngineSandbox=off none of this applies, so each probe above can fail
    Given a running pool-managerd configured with:
      | key            | value |
      | EngineSandbox  | off   |
      | HealthInterval | 50ms  |
    And a ready pool "sec-off" whose engine first reports on its sandbox
    Then the engine of pool "sec-off" reports:
      | probe              | value |
      | status.NoNewPrivs  | 0     |
      | status.Seccomp     | 0     |
      | syscall.modify_ldt | ok    |
      | sockets.AF_NETLINK | ok    |
      | writable./usr      | ok    |
    And the engine of pool "sec-off" has capabilities
    And the engine of pool "sec-off" does not work in "pool-engines/sec-off" under the manager's runtime directory
    And the file the engine of pool "sec-off" wrote to /tmp is in /tmp outside it
