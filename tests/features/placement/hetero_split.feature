# SPDX-License-Identifier: GPL-3.0-or-later
@placement
Feature: Heterogeneous split over the masked GPUs
  With "split": "auto" (opt-in; the default is no split) a model is spread over the GPUs of the
  device mask in proportion to their capacity, each share capped at what the GPU has free, so
  the smallest GPU never gets more than fits. The ratios sum to 1. llama.cpp gets them as
  --tensor-split a,b --split-mode layer; vLLM, whose tensor parallelism needs equal shards,
  refuses an uneven plan. The plan is in the pool's status from the moment it is placed.

  Background:
    Given a node with the fake GPUs:
      | index | name             | total GiB | used GiB |
      | 0     | NVIDIA A100 80GB | 80        | 0        |
      | 1     | NVIDIA L4        | 24        | 0        |
      | 2     | NVIDIA L40S 48GB | 48        | 0        |
      | 3     | NVIDIA L40S 48GB | 48        | 0        |
    And a pool-managerd on the fake GPUs

  @B-HETERO-001
  Scenario: Without "split" there is no split
    When pool "hs-none" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 0,1         |
      | vram_required_bytes | 10737418240 |
    Then the response status is 200
    And the engine of pool "hs-none" was not started with "--tensor-split"
    And the status of pool "hs-none" shows:
      | field        | value |
      | tensor_split | null  |

  @B-HETERO-002 @OC-POOL-3021
  Scenario: The split is proportional to the GPUs' capacity and reaches llama.cpp
    When pool "hs-prop" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 2,1         |
      | vram_required_bytes | 19327352832 |
      | split               | auto        |
    Then the response status is 200
    And the tensor split of pool "hs-prop" is "0.6667,0.3333"
    And the engine of pool "hs-prop" was started with its tensor split
    And the engine of pool "hs-prop" sees the GPUs "GPU2,GPU1"
    And the status of pool "hs-prop" shows:
      | field               | value       |
      | vram_required_bytes | 19327352832 |

  @B-HETERO-003 @OC-POOL-3021
  Scenario: The smallest GPU's share is capped at what it has free
    Given NVML shows 22 GiB used on GPU 1
    When pool "hs-cap" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 0,1         |
      | vram_required_bytes | 32212254720 |
      | split               | auto        |
    Then the response status is 200
    And the tensor split of pool "hs-cap" is "0.9333,0.0667"
    And the engine of pool "hs-cap" was started with its tensor split

  @B-HETERO-004 @OC-POOL-3002
  Scenario: A model larger than the masked GPUs' free VRAM together is refused
    When pool "hs-big" is preloaded over HTTP with:
      | field               | value        |
      | device_mask         | 0,1          |
      | vram_required_bytes | 214748364800 |
      | split               | auto         |
    Then the response status is 409
    And the response field "code" is "INSUFFICIENT_VRAM"
    And the response field "error" starts with "split: "
    And the daemon has no pool "hs-big"
    And systemd has no unit "pool-engine-hs-big.service"

  @B-HETERO-005
  Scenario: vLLM refuses an uneven split and gets an even one as tensor parallelism
    When pool "hs-vllm" is preloaded over HTTP with:
      | field               | value       |
      | engine              | vllm        |
      | device_mask         | 0,1         |
      | vram_required_bytes | 19327352832 |
      | split               | auto        |
    Then the response status is 422
    And the response field "code" is "INVALID_PREPARED_ENGINE"
    And the response field "error" starts with "split: "
    And the daemon has no pool "hs-vllm"
    When pool "hs-vllm" is preloaded over HTTP with:
      | field               | value       |
      | engine              | vllm        |
      | device_mask         | 2,3         |
      | vram_required_bytes | 19327352832 |
      | split               | auto        |
    Then the response status is 200
    And the tensor split of pool "hs-vllm" is "0.5000,0.5000"
    And the engine of pool "hs-vllm" was started with "--tensor-parallel-size 2"

  @B-HETERO-006
  Scenario: A split needs the model's size and a device mask
    When pool "hs-nosize" is preloaded over HTTP with:
      | field       | value |
      | device_mask | 0,1   |
      | split       | auto  |
    Then the response status is 422
    And the response field "error" contains "needs the model's size"
    When pool "hs-nomask" is preloaded over HTTP with:
      | field               | value       |
      | vram_required_bytes | 19327352832 |
      | split               | auto        |
    Then the response status is 422
    And the response field "error" contains "needs a device_mask"
    And the daemon has no pool "hs-nosize"
    And the daemon has no pool "hs-nomask"

  @B-HETERO-007 @OC-POOL-3021
  Scenario: The plan is in the status before the engine is ready, and each GPU's share is promised
    When pool "hs-early" starts preloading over HTTP with engine flags "--ready-after=3000" and:
      | field               | value       |
      | device_mask         | 2,1         |
      | vram_required_bytes | 19327352832 |
      | split               | auto        |
    Then the status of pool "hs-early" shows:
      | field        | value         |
      | ready        | false         |
      | tensor_split | 0.6667,0.3333 |
    When pool "hs-other" is preloaded over HTTP with:
      | field               | value       |
      | device_mask         | 1           |
      | vram_required_bytes | 21474836480 |
    Then the response status is 409
    And the response field "error" contains "has 18.0 GiB free (19327352832 bytes: 24.0 GiB by NVML, less 6.0 GiB promised to pools still starting)"
    And the preload of pool "hs-early" answers 200
