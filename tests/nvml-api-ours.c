/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The layout of src/nvml-api.h's own declarations, for test-nvml-api.c, which compiles the same
 * list against NVIDIA's nvml.h. A separate file because the two headers cannot share one.
 */

#include <stddef.h>

#include "nvml-api.h"
#include "nvml-api-check.h"

#define C(name) { #name, (unsigned long long) (name) },
#define S(type) { "sizeof(" #type ")", sizeof(type) },
#define O(type, member) { "offsetof(" #type ", " #member ")", offsetof(type, member) },
const NvmlApiItem nvml_api_ours[] = {
        NVML_API_LAYOUT(C, S, O)
        {}
};
