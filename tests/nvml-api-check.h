/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* One item of NVML_API_LAYOUT() evaluated: a constant, a struct size or a member offset. */
typedef struct NvmlApiItem {
        const char *name;
        unsigned long long value;
} NvmlApiItem;

extern const NvmlApiItem nvml_api_ours[];
