# SPDX-License-Identifier: GPL-3.0-or-later
@placement
Feature: Configuration of GPUs and of pools' device masks
  [Manager] NvmlLibrary= names the NVML library the inventory loads, [GPU] RefreshInterval= how
  often it is read. Pool files in PoolsDirectory are PreparedEngines preloaded at start-up:
  their device masks are checked like any preload's, and a bad one is refused naming the
  element while the other pools start. Without NVML a mask is enforced only as far as it can
  be: not at all with GpuOnly=no (said in the pool's status), refused with GpuOnly=yes.

  Background:
    Given a node with 2 fake GPUs of 24 GiB

  @B-CONFIG-010
  Scenario: A pool file naming an unknown GPU is refused, naming the element; the others start
    Given the pool file "a-good.json" holds a PreparedEngine of pool "cf-good" with device_mask "GPU1"
    And the pool file "b-bad.json" holds a PreparedEngine of pool "cf-bad" with device_mask "0,GPU9"
    When a pool-managerd on the fake GPUs that preloads the pool files
    Then within 10 seconds the daemon's journal has a line containing "b-bad.json: preload of pool"
    And the daemon's journal has a line containing "element 2: unknown device"
    And within 10 seconds the status of pool "cf-good" shows:
      | field   | value                                    |
      | state   | ready                                    |
      | devices | GPU-00000000-0000-4000-8000-000000000001 |
    And the daemon has no pool "cf-bad"
    And systemd has no unit "pool-engine-cf-bad.service"

  @B-CONFIG-011
  Scenario: A pool file naming a GPU twice is refused, naming the element
    Given the pool file "dup.json" holds a PreparedEngine of pool "cf-dup" with device_mask "0,GPU0"
    When a pool-managerd on the fake GPUs that preloads the pool files
    Then within 10 seconds the daemon's journal has a line containing "dup.json: invalid PreparedEngine: device_mask: element 2"
    And the daemon's journal has a line containing "names GPU0 again"
    And the daemon has no pool "cf-dup"

  @B-CONFIG-012
  Scenario: A pool file with an empty mask element is refused
    Given the pool file "empty.json" holds a PreparedEngine of pool "cf-empty" with device_mask "1,"
    When a pool-managerd on the fake GPUs that preloads the pool files
    Then within 10 seconds the daemon's journal has a line containing "empty.json: invalid PreparedEngine: device_mask: element 2 is empty"
    And the daemon has no pool "cf-empty"

  @B-CONFIG-013
  Scenario: NvmlLibrary= and RefreshInterval= choose the library and the pace of the inventory
    Given a pool-managerd whose NvmlLibrary= is "$FAKE_NVML"
    Then the inventory was read through the fake NVML every 250 ms
    When I GET /devices
    Then the response field "state" is "ok"

  @B-CONFIG-014
  Scenario: Without NVML and with GpuOnly=no a mask is passed on, not enforced, and the status says so
    Given a pool-managerd whose NvmlLibrary= is "/nonexistent/libnvidia-ml.so.1"
    When I GET /devices
    Then the response field "state" starts with "no NVML: "
    When pool "cf-unenforced" is preloaded over HTTP with:
      | field       | value     |
      | device_mask | GPU0,GPU1 |
    Then the response status is 200
    And the unit "pool-engine-cf-unenforced.service" has the properties:
      | property    | value                        |
      | Environment | CUDA_VISIBLE_DEVICES=0,1     |
      | Environment | CUDA_DEVICE_ORDER=PCI_BUS_ID |
    And the engine of pool "cf-unenforced" has no device policy
    And the status of pool "cf-unenforced" shows:
      | field             | value                                      |
      | placement_warning | device_mask "GPU0,GPU1" is not enforced: … |

  @B-CONFIG-015 @OC-POOL-3012
  Scenario: With GpuOnly=yes a mask that cannot be checked against NVML is refused
    Given a pool-managerd with GpuOnly=yes and a PATH holding a fake "nvcc"
    When pool "cf-unchecked" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0     |
    Then the response status is 409
    And the response field "code" is "GPU_REQUIRED"
    And the response field "error" contains "cannot be checked: no NVML"
    And the response field "error" contains "GpuOnly=yes refuses to place an engine on devices that cannot be verified"
    And the daemon has no pool "cf-unchecked"
    And systemd has no unit "pool-engine-cf-unchecked.service"
