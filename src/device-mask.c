/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "device-mask.h"
#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"

/* The nodes every CUDA process opens, whichever GPUs it uses. */
static const char *const common_nodes[] = {
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
};

DeviceMask *device_mask_free(DeviceMask *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_entries; i++)
                free(m->entries[i].uuid);
        free(m->entries);
        free(m->spec);
        free(m->cuda_visible_devices);
        strv_free(m->device_allow);
        return mfree(m);
}

/* Sets *ret_error to the message; returns r (or -ENOMEM). */
_printf_(3, 4)
static int mask_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        int k;

        if (!ret_error)
                return r;
        va_start(ap, format);
        k = vasprintf(ret_error, format, ap);
        va_end(ap);
        if (k < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return r;
}

/* A decimal number of at most 4 digits without sign or leading zeros ("0" itself is fine). */
static int parse_index(const char *s, unsigned *ret) {
        size_t n = strlen(s);
        unsigned v = 0;

        if (n == 0 || n > 4 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
                return -EINVAL;
        for (; *s; s++)
                v = v * 10 + (unsigned) (*s - '0');
        *ret = v;
        return 0;
}

static char *describe_devices(const GpuDevice *devices, size_t n) {
        _cleanup_free_ char *s = NULL;

        if (n == 0)
                return strdup("this node has no GPU");
        if (strextendf(&s, "this node has") < 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strextendf(&s, "%s GPU%u (%s)", i > 0 ? "," : "", devices[i].index,
                               strna(devices[i].uuid)) < 0)
                        return NULL;
        return TAKE_PTR(s);
}

int device_mask_find_element(const char *element, const GpuDevice *devices, size_t n, size_t *ret_gpu,
                             int *ret_mig, char **ret_error) {
        _cleanup_free_ char *quoted = NULL, *have = NULL;
        unsigned index;

        quoted = json_escape_for_message(element);
        if (!quoted)
                return -ENOMEM;

        if ((strncasecmp(element, "GPU-", 4) == 0 || strncasecmp(element, "MIG-", 4) == 0) &&
            (element[4] == '\0' || strspn(element + 4, "0123456789abcdefABCDEF-") != strlen(element + 4)))
                return mask_error(ret_error, -EINVAL,
                                  "device \"%s\" is not understood: a UUID is GPU- or MIG- and hex digits and "
                                  "dashes", quoted);
        if (parse_index(element, &index) >= 0 ||
            (strneq(element, "GPU", 3) && parse_index(element + 3, &index) >= 0)) {
                for (size_t i = 0; i < n; i++)
                        if (devices[i].index == index) {
                                *ret_gpu = i;
                                *ret_mig = -1;
                                return 0;
                        }
        } else if (strncasecmp(element, "GPU-", 4) == 0) {
                for (size_t i = 0; i < n; i++)
                        if (devices[i].uuid && strcasecmp(devices[i].uuid, element) == 0) {
                                *ret_gpu = i;
                                *ret_mig = -1;
                                return 0;
                        }
        } else if (strncasecmp(element, "MIG-", 4) == 0) {
                for (size_t i = 0; i < n; i++)
                        for (size_t j = 0; j < devices[i].n_mig; j++)
                                if (devices[i].mig[j].uuid && strcasecmp(devices[i].mig[j].uuid, element) == 0) {
                                        *ret_gpu = i;
                                        *ret_mig = (int) j;
                                        return 0;
                                }
        } else
                return mask_error(ret_error, -EINVAL,
                                  "device \"%s\" is not understood: expected an index (0), GPU<index> (GPU0), "
                                  "GPU-<uuid> or MIG-<uuid>", quoted);

        have = describe_devices(devices, n);
        if (!have)
                return -ENOMEM;
        return mask_error(ret_error, -ENOENT, "unknown device \"%s\": %s", quoted, have);
}

static int entry_name(const GpuDevice *devices, const DeviceMaskEntry *e, char **ret) {
        const GpuDevice *d = &devices[e->gpu];

        if (e->mig >= 0)
                return asprintf(ret, "MIG device %s of GPU%u", e->uuid, d->index) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "GPU%u (%s)", d->index, e->uuid) < 0 ? -ENOMEM : 0;
}

/* Two entries overlap when they are the same device, or a GPU and one of its MIG devices. */
static bool entries_overlap(const DeviceMaskEntry *a, const DeviceMaskEntry *b) {
        return a->gpu == b->gpu && (a->mig == b->mig || a->mig < 0 || b->mig < 0);
}

static int device_allow_build(const DeviceMask *m, const GpuDevice *devices, char ***ret, char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;

        for (size_t i = 0; i < ELEMENTSOF(common_nodes); i++)
                if (strv_extend(&l, common_nodes[i]) < 0)
                        return -ENOMEM;

        for (size_t i = 0; i < m->n_entries; i++) {
                const DeviceMaskEntry *e = &m->entries[i];
                const GpuDevice *d = &devices[e->gpu];
                _cleanup_free_ char *node = NULL;

                if (!d->minor_known)
                        return mask_error(ret_error, -ENXIO,
                                          "device \"%s\": the device node of GPU%u is unknown (NVML gave no minor "
                                          "number), so the mask cannot be enforced", e->uuid, d->index);
                if (asprintf(&node, "/dev/nvidia%u", d->minor) < 0)
                        return -ENOMEM;
                if (!strv_contains(l, node) && strv_extend(&l, node) < 0)
                        return -ENOMEM;

                if (e->mig >= 0) {
                        const MigDevice *mig = &d->mig[e->mig];

                        if (!mig->cap_paths)
                                return mask_error(ret_error, -ENXIO,
                                                  "device \"%s\": the /dev/nvidia-caps nodes of this MIG device "
                                                  "(GPU instance %u, compute instance %u) are not listed in "
                                                  "/proc/driver/nvidia-caps/mig-minors, so the mask cannot be "
                                                  "enforced", e->uuid, mig->gpu_instance_id,
                                                  mig->compute_instance_id);
                        STRV_FOREACH(c, mig->cap_paths)
                                if (!strv_contains(l, *c) && strv_extend(&l, *c) < 0)
                                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int device_mask_resolve(const char *spec, const GpuDevice *devices, size_t n, const char *inventory_error,
                        bool gpu_only, DeviceMask **ret, char **ret_error) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        _cleanup_free_ char *quoted = NULL;
        size_t position = 0;
        int r;

        quoted = json_escape_for_message(strempty(spec));
        if (!quoted)
                return -ENOMEM;

        m = calloc(1, sizeof(DeviceMask));
        if (!m)
                return -ENOMEM;
        m->spec = strdup(strempty(spec));
        m->entries = calloc(DEVICE_MASK_MAX_ELEMENTS, sizeof(DeviceMaskEntry));
        if (!m->spec || !m->entries)
                return -ENOMEM;

        {
                size_t elements = 1;

                for (const char *c = strempty(spec); *c; c++)
                        elements += *c == ',';
                if (elements > DEVICE_MASK_MAX_ELEMENTS)
                        return mask_error(ret_error, -EINVAL, "device_mask \"%s\": %zu elements, more than %d "
                                          "elements", quoted, elements, DEVICE_MASK_MAX_ELEMENTS);
        }

        /* Element by element: an empty one is an error with or without NVML. */
        for (const char *p = strempty(spec);; ) {
                size_t len = strcspn(p, ",");
                _cleanup_free_ char *element = NULL, *q = NULL;
                size_t gpu;
                int mig;

                position++;
                element = strndup(p, len);
                if (!element)
                        return -ENOMEM;
                /* Blanks around an element are allowed ("0, 1"), nothing else. */
                {
                        char *s = element + strspn(element, " \t");

                        memmove(element, s, strlen(s) + 1);
                        strstrip_trailing(element);
                }
                if (isempty(element))
                        return mask_error(ret_error, -EINVAL, "device_mask \"%s\": element %zu is empty",
                                          quoted, position);

                if (inventory_error) {
                        /* No inventory: only the syntax can be checked. */
                        if (parse_index(element, &(unsigned) {0}) < 0 &&
                            !(strneq(element, "GPU", 3) && parse_index(element + 3, &(unsigned) {0}) >= 0) &&
                            strncasecmp(element, "GPU-", 4) != 0 && strncasecmp(element, "MIG-", 4) != 0) {
                                q = json_escape_for_message(element);
                                if (!q)
                                        return -ENOMEM;
                                return mask_error(ret_error, -EINVAL,
                                                  "device_mask \"%s\": element %zu (\"%s\") is not understood: "
                                                  "expected an index (0), GPU<index> (GPU0), GPU-<uuid> or "
                                                  "MIG-<uuid>", quoted, position, q);
                        }
                } else {
                        _cleanup_free_ char *why = NULL;
                        DeviceMaskEntry *e = &m->entries[m->n_entries];
                        const GpuDevice *d;

                        r = device_mask_find_element(element, devices, n, &gpu, &mig, &why);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return mask_error(ret_error, r, "device_mask \"%s\": element %zu: %s", quoted,
                                                  position, why);
                        d = &devices[gpu];
                        *e = (DeviceMaskEntry) { .gpu = gpu, .mig = mig, .index = d->index };
                        e->uuid = strdup(strempty(mig >= 0 ? d->mig[mig].uuid : d->uuid));
                        if (!e->uuid)
                                return -ENOMEM;
                        m->n_entries++;

                        q = json_escape_for_message(element);
                        if (!q)
                                return -ENOMEM;
                        for (size_t i = 0; i + 1 < m->n_entries; i++) {
                                _cleanup_free_ char *a = NULL, *b = NULL;

                                if (!entries_overlap(&m->entries[i], e))
                                        continue;
                                if (entry_name(devices, &m->entries[i], &a) < 0 || entry_name(devices, e, &b) < 0)
                                        return -ENOMEM;
                                return mask_error(ret_error, -EINVAL,
                                                  "device_mask \"%s\": element %zu (\"%s\") %s %s, already named "
                                                  "by element %zu", quoted, position, q,
                                                  streq(a, b) ? "duplicates" : "overlaps with",
                                                  streq(a, b) ? b : a, i + 1);
                        }
                        if (mig < 0 && d->mig_enabled)
                                return mask_error(ret_error, -EINVAL,
                                                  "device_mask \"%s\": element %zu (\"%s\"): GPU%u is in MIG mode; "
                                                  "name one of its MIG devices (MIG-<uuid>) instead",
                                                  quoted, position, q, d->index);
                        if (d->cordoned || d->health != GPU_HEALTH_HEALTHY)
                                return mask_error(ret_error, -EBUSY,
                                                  "device_mask \"%s\": element %zu (\"%s\"): GPU%u (%s) is %s%s%s%s; "
                                                  "it takes no new engines until \"poolctl device uncordon %u\"",
                                                  quoted, position, q, d->index, strna(d->uuid),
                                                  d->cordoned ? "cordoned" : gpu_health_to_string(d->health),
                                                  d->health_reason ? " (" : "", strempty(d->health_reason),
                                                  d->health_reason ? ")" : "", d->index);
                }

                if (p[len] == '\0')
                        break;
                p += len + 1;
        }

        if (inventory_error) {
                if (gpu_only)
                        return mask_error(ret_error, -ENODEV,
                                          "device_mask \"%s\" cannot be checked: %s; GpuOnly=yes refuses to place "
                                          "an engine on devices that cannot be verified", quoted, inventory_error);
                /* GpuOnly=no without an inventory: passed on as given, like before issue 9. */
                m->cuda_visible_devices = strdup(strempty(spec));
                if (!m->cuda_visible_devices)
                        return -ENOMEM;
                *ret = TAKE_PTR(m);
                return 0;
        }

        for (size_t i = 0; i < m->n_entries; i++)
                if (strextendf(&m->cuda_visible_devices, "%s%s", i > 0 ? "," : "", m->entries[i].uuid) < 0)
                        return -ENOMEM;
        r = device_allow_build(m, devices, &m->device_allow, ret_error);
        if (r < 0)
                return r;
        m->enforced = true;

        *ret = TAKE_PTR(m);
        return 0;
}
