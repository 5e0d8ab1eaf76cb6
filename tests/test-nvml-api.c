/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * src/nvml-api.h against NVIDIA's nvml.h (found at build time: meson option nvml_include_dir,
 * or /usr/include, /usr/local/cuda/include): every constant, struct size and member offset of
 * NVML_API_LAYOUT() must be equal, and every function of NVML_API_FUNCTIONS() must have the type
 * nvml.h declares. Built only where nvml.h is found; elsewhere the test is skipped with the reason.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvml.h>

#include "nvml-api.h"           /* after nvml.h: only its lists, the declarations are NVIDIA's */
#include "nvml-api-check.h"

#define C(name) { #name, (unsigned long long) (name) },
#define S(type) { "sizeof(" #type ")", sizeof(type) },
#define O(type, member) { "offsetof(" #type ", " #member ")", offsetof(type, member) },
static const NvmlApiItem nvml_api_real[] = {
        NVML_API_LAYOUT(C, S, O)
        {}
};

typedef struct FunctionCheck {
        const char *name;
        int compatible;
} FunctionCheck;

#define X(ret, name, params) { #name, __builtin_types_compatible_p(__typeof__(name), ret params) },
static const FunctionCheck functions[] = {
        NVML_API_FUNCTIONS(X)
        {}
};

int main(void) {
        unsigned n = 0, failed = 0;

        printf("# nvml.h: NVML_API_VERSION %d\n", NVML_API_VERSION);
        for (size_t i = 0; nvml_api_real[i].name; i++) {
                const NvmlApiItem *real = &nvml_api_real[i], *ours = &nvml_api_ours[i];
                int ok = ours->name && strcmp(real->name, ours->name) == 0 && real->value == ours->value;

                printf("%sok %u - %s = %llu%s", ok ? "" : "not ", ++n, real->name, real->value, ok ? "\n" : "");
                if (!ok) {
                        printf(" (src/nvml-api.h: %s = %llu)\n", ours->name ?: "missing", ours->value);
                        failed++;
                }
        }
        for (size_t i = 0; functions[i].name; i++) {
                printf("%sok %u - %s has nvml.h's type\n", functions[i].compatible ? "" : "not ", ++n,
                       functions[i].name);
                if (!functions[i].compatible)
                        failed++;
        }
        printf("1..%u\n", n);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
