# SPDX-License-Identifier: GPL-3.0-or-later
@placement
Feature: Device masks the kernel enforces, and VRAM admission
  A PreparedEngine's device_mask names the GPUs its engine may use. pool-managerd checks it
  against the GPUs NVML reports (here the fake NVML, build/tests/libfake-nvml.so), gives the
  engine CUDA_VISIBLE_DEVICES as UUIDs in PCI bus order, and puts its unit under
  DevicePolicy=closed with DeviceAllow= for the masked GPUs' nodes only. A bad mask is refused
  naming the element, before anything is started or registered. A preload must find its VRAM
  free on its devices, counting VRAM promised to pools still starting.

  Background:
    Given a node with the fake GPUs:
      | index | name              | total GiB | used GiB | mig |
      | 0     | NVIDIA A100 80GB  | 80        | 0        | no  |
      | 1     | NVIDIA L4         | 24        | 0        | no  |
      | 2     | NVIDIA H100 80GB  | 80        | 0        | yes |
    And a pool-managerd on the fake GPUs

  @B-DEVICE-001 @OC-POOL-3020
  Scenario: A mask of indices reaches the engine as UUIDs in PCI bus order
    When pool "dm-idx" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0,1   |
    Then the response status is 200
    And the engine of pool "dm-idx" sees the GPUs "GPU0,GPU1"
    And the devices of pool "dm-idx" are "GPU0,GPU1"
    And the status of pool "dm-idx" shows:
      | field       | value |
      | device_mask | 0,1   |
      | ready       | true  |

  @B-DEVICE-002
  Scenario: GPU<n> and UUID spellings name the same GPUs, in the mask's order
    When pool "dm-names" is preloaded over HTTP with:
      | field       | value                                         |
      | device_mask | GPU1,GPU-00000000-0000-4000-8000-000000000000 |
    Then the response status is 200
    And the engine of pool "dm-names" sees the GPUs "GPU1,GPU0"

  @B-DEVICE-003 @OC-POOL-3020
  Scenario: The device cgroup lets the engine open only the masked GPU's node
    When pool "dm-cgroup" is preloaded over HTTP with:
      | field       | value |
      | device_mask | GPU1  |
    Then the response status is 200
    And the engine of pool "dm-cgroup" may open only the device nodes of GPU "1"
    And the placement warning of pool "dm-cgroup" names the device nodes of GPU 1 that do not exist

  @B-DEVICE-004
  Scenario: An unknown device is refused naming it, and nothing is started or registered
    When pool "dm-unknown" is preloaded over HTTP with:
      | field       | value  |
      | device_mask | 0,GPU7 |
    Then the response status is 404
    And the response field "code" is "NO_SUCH_DEVICE"
    And the response field "error" contains "element 2: unknown device"
    And the response field "error" contains "GPU7"
    And the response field "error" contains "this node has GPU0 (GPU-00000000-0000-4000-8000-000000000000), GPU1"
    And the daemon has no pool "dm-unknown"
    And systemd has no unit "pool-engine-dm-unknown.service"

  @B-DEVICE-005
  Scenario: The same GPU twice, under two names, is refused naming the element
    When pool "dm-dup" is preloaded over HTTP with:
      | field       | value                                     |
      | device_mask | 0,GPU-00000000-0000-4000-8000-000000000000 |
    Then the response status is 422
    And the response field "code" is "INVALID_PREPARED_ENGINE"
    And the response field "error" contains "duplicates GPU0 (GPU-00000000-0000-4000-8000-000000000000), already named by element 1"
    And the daemon has no pool "dm-dup"

  @B-DEVICE-005
  Scenario: An empty element is refused
    When pool "dm-empty" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0,,1  |
    Then the response status is 422
    And the response field "error" contains "device_mask: element 2 is empty"
    And the daemon has no pool "dm-empty"

  @B-DEVICE-006
  Scenario: A GPU in MIG mode is named by its MIG devices, and one that cannot be enforced is refused
    When pool "dm-mig" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 2     |
    Then the response status is 422
    And the response field "error" contains "GPU2 is in MIG mode; name one of its MIG devices"
    When pool "dm-mig" is preloaded over HTTP with:
      | field       | value                                     |
      | device_mask | MIG-00000000-0000-4000-8000-000000000102 |
    Then the response status is 409
    And the response field "code" is "GPU_REQUIRED"
    And the response field "error" contains "so the mask cannot be enforced"
    And the daemon has no pool "dm-mig"

  @B-DEVICE-010 @OC-POOL-3020
  Scenario: No cross-mask spill: two pools each see and may open only their own GPU
    When pool "dm-a" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0     |
    And pool "dm-b" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 1     |
    Then the engine of pool "dm-a" sees the GPUs "GPU0"
    And the engine of pool "dm-a" may open only the device nodes of GPU "0"
    And the engine of pool "dm-b" sees the GPUs "GPU1"
    And the engine of pool "dm-b" may open only the device nodes of GPU "1"

  @B-DEVICE-011
  Scenario: The mask is kept in the registry and the handoff file
    When pool "dm-kept" is preloaded over HTTP with:
      | field       | value |
      | device_mask | GPU1  |
    Then the response status is 200
    And the handoff file of pool "dm-kept" contains:
      | key         | value |
      | device_mask | GPU1  |
    And the status of pool "dm-kept" shows:
      | field       | value |
      | device_mask | GPU1  |

  @B-DEVICE-012 @OC-POOL-3002
  Scenario: A preload on a GPU without enough free VRAM fails fast, naming device, free and required
    Given NVML shows 20 GiB used on GPU 1
    When pool "dm-vram" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 1           |
      | vram_required_bytes | 8589934592  |
    Then the response status is 409
    And the response field "code" is "INSUFFICIENT_VRAM"
    And the response field "error" contains "device GPU-00000000-0000-4000-8000-000000000001 (GPU1) has 4.0 GiB free"
    And the response field "error" contains "8.0 GiB (8589934592 bytes) required"
    And the response took less than 1 seconds
    And the daemon has no pool "dm-vram"

  @B-DEVICE-013 @OC-POOL-3002
  Scenario: VRAM promised to a pool still starting counts as used
    When pool "dm-first" starts preloading over HTTP with engine flags "--ready-after=3000" and:
      | field               | value       |
      | device_mask         | 1           |
      | vram_required_bytes | 17179869184 |
    And pool "dm-second" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 1           |
      | vram_required_bytes | 17179869184 |
    Then the response status is 409
    And the response field "error" contains "has 8.0 GiB free (8589934592 bytes: 24.0 GiB by NVML, less 16.0 GiB promised to pools still starting)"
    And the preload of pool "dm-first" answers 200
    And the status of pool "dm-first" shows:
      | field               | value       |
      | vram_required_bytes | 17179869184 |

  @B-DEVICE-014 @OC-POOL-3010
  Scenario: A GPU with a driver XID drains its pools and takes no new engine until uncordoned
    Given pool "dm-sick" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 1     |
    And pool "dm-well" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0     |
    When GPU 1 reports XID 79
    Then within 5 seconds the inventory shows GPU 1 unhealthy and cordoned
    And within 10 seconds the status of pool "dm-sick" shows:
      | field      | value                                                                                           |
      | state      | stopped                                                                                         |
      | ready      | false                                                                                           |
      | last_error | GPU1 (GPU-00000000-0000-4000-8000-000000000001) is unhealthy (XID 79): the pool is not ready and is drained |
    And the status of pool "dm-well" shows:
      | field | value |
      | state | ready |
    When pool "dm-sick" is preloaded over HTTP again with:
      | field       | value |
      | device_mask | 1     |
    Then the response status is 409
    And the response field "code" is "DEVICE_LOST"
    When I uncordon GPU 1 with poolctl
    And pool "dm-sick" is preloaded over HTTP again with:
      | field       | value |
      | device_mask | 1     |
    Then the response status is 200

  @B-DEVICE-013
  Scenario: A re-adopted engine keeps its placement: its devices, and a failing GPU still drains it
    Given pool "dm-kept" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 1     |
    And the engine of pool "dm-kept" runs as the main process of its unit, noted
    When the daemon is stopped
    Then the engine of pool "dm-kept" survived the daemon
    When the daemon is started again with the same configuration
    Then within 5 seconds the status of pool "dm-kept" shows:
      | field | value |
      | state | ready |
    And the daemon's journal says pool "dm-kept" is ready again, its engine re-adopted with the same pid
    And the devices of pool "dm-kept" are "GPU1"
    When GPU 1 reports XID 79
    Then within 10 seconds the status of pool "dm-kept" shows:
      | field | value   |
      | state | stopped |
      | ready | false   |
