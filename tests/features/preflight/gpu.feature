# SPDX-License-Identifier: GPL-3.0-or-later
@preflight
Feature: GPU-only preflight
  Engines run on GPUs only: with GpuOnly=yes a preload is refused when CUDA is not available,
  with no CPU fallback. pool-managerd looks for CUDA once, at start-up: nvcc or nvidia-smi on
  its PATH, or NVML reporting a GPU. So each scenario starts its own daemon with a PATH it
  controls (a directory of fake tools, then /usr/bin and /bin unless they hold a real tool)
  and with any installed NVML hidden from it.

  @OC-POOL-3012
  Scenario: CUDA counts as available when nvcc is on PATH
    Given a pool-managerd with GpuOnly=yes and a PATH holding a fake "nvcc"
    Then the daemon's journal says CUDA is available with nvcc found in the fake tools directory
    When pool "pf-nvcc" is preloaded over HTTP
    Then the response status is 200

  @OC-POOL-3012
  Scenario: CUDA counts as available when nvidia-smi is on PATH
    Given a pool-managerd with GpuOnly=yes and a PATH holding a fake "nvidia-smi"
    Then the daemon's journal says CUDA is available with nvidia-smi found in the fake tools directory
    When pool "pf-smi" is preloaded over HTTP
    Then the response status is 200

  @OC-POOL-3012
  Scenario: CUDA is not available when neither tool is on PATH
    Given a pool-managerd with GpuOnly=yes and a PATH holding neither tool
    Then the daemon's journal has a line starting with "CUDA not available (nvcc=not found, nvidia-smi=not found, NVML: unavailable ("
    When pool "pf-none" is preloaded over HTTP
    Then the response status is 409
    And the response field "error" starts with "GPU-only enforcement: CUDA is not available on this node"

  @OC-POOL-3012
  Scenario: With CUDA available the GPU-only check lets a preload through, over D-Bus too
    Given a pool-managerd with GpuOnly=yes and a PATH holding a fake "nvcc" and a fake "nvidia-smi"
    Then the manager's D-Bus property "GpuOnly" is true
    When pool "pf-dbus-ok" is preloaded over D-Bus
    Then the D-Bus call returns the pool's object path, the engine's MainPID and the handoff path

  @OC-POOL-3012
  Scenario: Without CUDA the GPU-only check refuses the preload
    Given a pool-managerd with GpuOnly=yes and a PATH holding neither tool
    When pool "pf-refused" is preloaded over D-Bus
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.GpuRequired"
    And the D-Bus properties of pool "pf-refused" are:
      | property | value |
      | Ready    | false |
      | Live     | false |
    And the LastError of pool "pf-refused" is the D-Bus error message

  @OC-POOL-3012
  Scenario: The refusal says that GPU-only is enforced and that there is no CPU fallback
    Given a pool-managerd with GpuOnly=yes and a PATH holding neither tool
    When pool "pf-message" is preloaded over HTTP
    Then the response status is 409
    And the response field "error" contains "GPU-only enforcement"
    And the response field "error" contains "looked for nvcc and nvidia-smi on PATH="
    And the response field "error" contains "there is no CPU fallback"
    And the response field "error" contains "set GpuOnly=no to allow CPU engines"

  @OC-POOL-3012
  Scenario: Only the daemon's PATH is searched, and only for executables
    A fake nvcc in a directory that is not on PATH, and a nvidia-smi on PATH that is not
    executable, do not count. The refusal names the PATH that was searched.

    Given a pool-managerd with GpuOnly=yes, a fake "nvcc" outside its PATH and a non-executable "nvidia-smi" on its PATH
    When pool "pf-path" is preloaded over HTTP
    Then the response status is 409
    And the response field "error" contains the daemon's PATH
    And the response field "error" contains "nvcc and nvidia-smi on PATH="

  @OC-POOL-3012
  Scenario: Without CUDA a preload fails fast and starts nothing
    Given a pool-managerd with GpuOnly=yes and a PATH holding neither tool
    When pool "pf-fast" is preloaded over HTTP with engine flags "--ready-after=5000"
    Then the response status is 409
    And the response took less than 1 seconds
    And systemd has no unit "pool-engine-pf-fast.service"
    And the journal of unit "pool-engine-pf-fast.service" is empty
    And pool "pf-fast" has no pid file
    And nothing listens on the port of pool "pf-fast"
