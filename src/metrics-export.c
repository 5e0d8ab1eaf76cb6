/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <math.h>

#include "build-config.h"
#include "gpu.h"
#include "manager.h"
#include "metrics-export.h"
#include "metrics.h"
#include "pool.h"
#include "registry.h"
#include "shared/cgroup-util.h"

#define P "pool_managerd_"

static const char *const drain_end_table[_DRAIN_END_MAX] = {
        [DRAIN_END_COMPLETED] = "completed",
        [DRAIN_END_FORCED] = "forced",
        [DRAIN_END_ABORTED] = "aborted",
};

static const char *const reload_end_table[_RELOAD_END_MAX] = {
        [RELOAD_END_SUCCESS] = "success",
        [RELOAD_END_ROLLED_BACK] = "rolled_back",
        [RELOAD_END_FAILED] = "failed",
};

/* One family, one sample per pool: the value is get(pool, entry). Pools without an entry are
 * skipped; get returns NAN for "no value" (slots never reported). */
typedef double (*PoolGauge)(const Pool *p, const PoolEntry *e);

static double gauge_ready(const Pool *p, const PoolEntry *e) {
        return e->health.ready;
}

static double gauge_live(const Pool *p, const PoolEntry *e) {
        return e->health.live;
}

static double gauge_slots_total(const Pool *p, const PoolEntry *e) {
        return e->slots_total == SLOTS_UNSET ? NAN : e->slots_total;
}

static double gauge_slots_free(const Pool *p, const PoolEntry *e) {
        return e->slots_free == SLOTS_UNSET ? NAN : e->slots_free;
}

static double gauge_leases(const Pool *p, const PoolEntry *e) {
        return e->active_leases;
}

static double gauge_circuit(const Pool *p, const PoolEntry *e) {
        return p->supervisor.circuit;           /* 0 closed, 1 open, 2 half-open */
}

static double counter_opens(const Pool *p, const PoolEntry *e) {
        return p->supervisor.circuit_opens;
}

static double counter_storms(const Pool *p, const PoolEntry *e) {
        return p->supervisor.storms;
}

static const struct {
        const char *name;
        MetricType type;
        const char *help;
        PoolGauge get;
} pool_families[] = {
        { P "pool_ready", METRIC_GAUGE, "Whether the pool's engine answered its health check (1) or not (0).", gauge_ready },
        { P "pool_live", METRIC_GAUGE, "Whether the pool's engine process runs (1) or not (0).", gauge_live },
        { P "slots_total", METRIC_GAUGE, "Slots the engine offers, as last reported (absent: never reported).", gauge_slots_total },
        { P "slots_free", METRIC_GAUGE, "Slots free, as last reported (absent: never reported).", gauge_slots_free },
        { P "active_leases", METRIC_GAUGE, "Leases held on the pool.", gauge_leases },
        { P "circuit_breaker_state", METRIC_GAUGE, "The pool's circuit breaker: 0 closed, 1 open, 2 half-open.", gauge_circuit },
        { P "circuit_breaker_opens_total", METRIC_COUNTER, "Times the pool's circuit breaker opened (kept across daemon restarts).", counter_opens },
        { P "restart_storms_total", METRIC_COUNTER, "Times the pool's restarts reached StormLimit= within StormWindowSec= (kept across daemon restarts).", counter_storms },
};

typedef struct Export {
        Manager *manager;
        MetricsWriter w;
} Export;

#define FOREACH_POOL(x, p, e)                                                                   \
        for (size_t _i = 0; _i < (x)->manager->n_pools; _i++)                                  \
                if (((p) = (x)->manager->pools[_i]),                                            \
                    ((e) = registry_get((x)->manager->registry, (p)->id)))

static void export_pool_families(Export *x) {
        const PoolEntry *e;
        const Pool *p;

        for (size_t f = 0; f < ELEMENTSOF(pool_families); f++) {
                metrics_family(&x->w, pool_families[f].name, pool_families[f].type, pool_families[f].help);
                FOREACH_POOL(x, p, e) {
                        double v = pool_families[f].get(p, e);

                        if (!isnan(v))
                                metrics_sample(&x->w, pool_families[f].name, v, "pool_id", p->id, NULL);
                }
        }
}

static const char *pool_engine(const Pool *p) {
        return p->prepared ? engine_kind_to_string(p->prepared->engine) : "";
}

static void export_preloads(Export *x) {
        const PoolEntry *e;
        const Pool *p;

        metrics_family(&x->w, P "preload_total", METRIC_COUNTER,
                       "Preloads asked for, by outcome (success, failure) and, for failures, the error code "
                       "(reason); restarts by supervision are not preloads.");
        FOREACH_POOL(x, p, e) {
                metrics_sample(&x->w, P "preload_total", (double) p->metrics.preloads_succeeded,
                               "pool_id", p->id, "engine", pool_engine(p), "outcome", "success", "reason", "",
                               NULL);
                for (PoolErrorCode c = 0; c < _POOL_ERROR_MAX; c++)
                        if (p->metrics.preloads_failed[c] > 0)
                                metrics_sample(&x->w, P "preload_total", (double) p->metrics.preloads_failed[c],
                                               "pool_id", p->id, "engine", pool_engine(p), "outcome", "failure",
                                               "reason", pool_error_code_to_string(c), NULL);
        }
}

static void export_by_crash_reason(Export *x, const char *name, const char *help, bool restarts) {
        const PoolEntry *e;
        const Pool *p;

        metrics_family(&x->w, name, METRIC_COUNTER, help);
        FOREACH_POOL(x, p, e)
                for (CrashReason r = 0; r < _CRASH_REASON_MAX; r++)
                        metrics_sample(&x->w, name,
                                       restarts ? p->supervisor.restarts_by_reason[r] : p->supervisor.crashes_by_reason[r],
                                       "pool_id", p->id, "reason", crash_reason_to_string(r), NULL);
}

static void export_outcomes(Export *x, const char *name, const char *help, const char *const *outcomes,
                            size_t n, size_t offset) {
        const PoolEntry *e;
        const Pool *p;

        metrics_family(&x->w, name, METRIC_COUNTER, help);
        FOREACH_POOL(x, p, e) {
                const uint64_t *counts = (const uint64_t *) ((const uint8_t *) &p->metrics + offset);

                for (size_t i = 0; i < n; i++)
                        metrics_sample(&x->w, name, (double) counts[i], "pool_id", p->id, "outcome", outcomes[i], NULL);
        }
}

static void export_histogram(Export *x, const char *name, const char *help, size_t offset) {
        const PoolEntry *e;
        const Pool *p;

        metrics_family(&x->w, name, METRIC_HISTOGRAM, help);
        FOREACH_POOL(x, p, e) {
                const Histogram *h = (const Histogram *) ((const uint8_t *) &p->metrics + offset);
                const char *labels[] = { "pool_id", p->id };

                /* As a labelled histogram of the client libraries: there from its first
                 * observation (16 lines a pool and histogram otherwise). */
                if (h->count == 0)
                        continue;
                metrics_histogram(&x->w, name, h, &histogram_duration_bounds, labels, 1);
        }
}

static uint64_t device_total(const GpuDevice *d) {
        return d->memory_total;
}

static uint64_t device_free(const GpuDevice *d) {
        return d->memory_free;
}

static uint64_t device_resets(const GpuDevice *d) {
        return d->driver_resets;
}

static const struct {
        const char *name;
        MetricType type;
        const char *help;
        uint64_t (*get)(const GpuDevice *d);
} device_families[] = {
        { P "device_vram_total_bytes", METRIC_GAUGE, "A GPU's memory, as NVML reports it.", device_total },
        { P "device_vram_free_bytes", METRIC_GAUGE, "A GPU's free memory, as NVML reported it at the last inventory refresh.", device_free },
        { P "driver_resets_total", METRIC_COUNTER, "XID events that made a GPU unhealthy, and GPUs lost, since the daemon started.", device_resets },
};

/* The engine's resources as its unit's cgroup counts them (the files systemd reads for
 * MemoryCurrent=, CPUUsageNSec=, TasksCurrent=): read at the scrape, a few small reads per
 * running engine. A value the kernel does not keep (controller off) is left out. */
static const struct {
        const char *name;
        MetricType type;
        const char *help;
        const char *file, *key;
        double scale;
} engine_families[] = {
        { P "engine_memory_bytes", METRIC_GAUGE, "Memory of the engine's unit (cgroup memory.current).",
          "memory.current", NULL, 1 },
        { P "engine_cpu_seconds_total", METRIC_COUNTER, "CPU time of the engine's unit (cgroup cpu.stat usage_usec).",
          "cpu.stat", "usage_usec", 1e-6 },
        { P "engine_tasks", METRIC_GAUGE, "Tasks (threads) in the engine's unit (cgroup pids.current).",
          "pids.current", NULL, 1 },
};

/* The engine's cgroup, looked up once per main process (/proc/PID/cgroup), NULL without one. */
static const char *pool_engine_cgroup(Pool *p) {
        PoolMetrics *m = &p->metrics;

        if (!p->unit || p->unit->main_pid <= 0)
                return NULL;
        if (m->cgroup_pid != p->unit->main_pid) {
                m->cgroup = mfree(m->cgroup);
                m->cgroup_pid = p->unit->main_pid;
                if (cg_pid_get_path(p->unit->main_pid, &m->cgroup) <= 0)
                        m->cgroup = NULL;
        }
        return m->cgroup;
}

static void export_engine_resources(Export *x) {
        for (size_t f = 0; f < ELEMENTSOF(engine_families); f++) {
                metrics_family(&x->w, engine_families[f].name, engine_families[f].type, engine_families[f].help);
                for (size_t i = 0; i < x->manager->n_pools; i++) {
                        Pool *p = x->manager->pools[i];
                        const char *cg = pool_engine_cgroup(p);
                        uint64_t v;

                        if (cg && cg_path_get_attribute_u64(cg, engine_families[f].file, engine_families[f].key, &v) >= 0)
                                metrics_sample(&x->w, engine_families[f].name, (double) v * engine_families[f].scale,
                                               "pool_id", p->id, NULL);
                }
        }
}

/* The engine's own load, from its /metrics (pool.c scrapes it): absent for a pool whose engine
 * reports none, whose values are stale, or that is not serving. */
static const struct {
        const char *name;
        EngineLoadField field;
        const char *help;
} engine_load_families[] = {
        { P "engine_requests_running", ENGINE_LOAD_REQUESTS_RUNNING,
          "Requests the engine is processing, as its own /metrics says (llamacpp:requests_processing, "
          "vllm:num_requests_running)." },
        { P "engine_requests_waiting", ENGINE_LOAD_REQUESTS_WAITING,
          "Requests waiting in the engine's queue, as its own /metrics says (llamacpp:requests_deferred, "
          "vllm:num_requests_waiting)." },
        { P "engine_kv_cache_usage_ratio", ENGINE_LOAD_KV_CACHE_USAGE_RATIO,
          "The engine's KV-cache usage, 0 to 1, as its own /metrics says (llamacpp:kv_cache_usage_ratio, "
          "vllm:gpu_cache_usage_perc)." },
};

static void export_engine_load(Export *x) {
        usec_t t = now(CLOCK_MONOTONIC);

        for (size_t f = 0; f < ELEMENTSOF(engine_load_families); f++) {
                const char *name = engine_load_families[f].name;

                metrics_family(&x->w, name, METRIC_GAUGE, engine_load_families[f].help);
                for (size_t i = 0; i < x->manager->n_pools; i++) {
                        const Pool *p = x->manager->pools[i];
                        EngineLoad load;
                        double v;

                        if (!pool_engine_load(p, t, &load))
                                continue;
                        v = load.value[engine_load_families[f].field];
                        if (!isnan(v))
                                metrics_sample(&x->w, name, v, "pool_id", p->id, NULL);
                }
        }
}

/* Label device: the NVML index; uuid: the GPU's UUID. None without an inventory. */
static void export_devices(Export *x) {
        const GpuDevice *d;
        size_t n = 0;
        char index[16];

        d = x->manager->gpus ? gpu_inventory_devices(x->manager->gpus, &n) : NULL;
        for (size_t f = 0; f < ELEMENTSOF(device_families); f++) {
                metrics_family(&x->w, device_families[f].name, device_families[f].type, device_families[f].help);
                for (size_t i = 0; i < n; i++) {
                        snprintf(index, sizeof(index), "%u", d[i].index);
                        metrics_sample(&x->w, device_families[f].name, (double) device_families[f].get(&d[i]),
                                       "device", index, "uuid", d[i].uuid, NULL);
                }
        }
}

int metrics_export(Manager *m, char **ret, size_t *ret_size) {
        Export x = { .manager = m };

        metrics_writer_init(&x.w);

        metrics_family(&x.w, P "build_info", METRIC_GAUGE, "Always 1; the daemon's version is the label.");
        metrics_sample(&x.w, P "build_info", 1, "version", PACKAGE_VERSION, NULL);

        export_pool_families(&x);
        export_preloads(&x);
        export_by_crash_reason(&x, P "restarts_total",
                               "Restarts by supervision, by the reason of the crash before (kept across daemon restarts).",
                               true);
        export_by_crash_reason(&x, P "engine_crashes_total",
                               "Engine ends the daemon did not ask for, by class (kept across daemon restarts).",
                               false);
        export_outcomes(&x, P "drains_total",
                        "Drains, by outcome: completed (leases ran out), forced (deadline), aborted (a reload's "
                        "deadline; the engine kept serving).",
                        drain_end_table, _DRAIN_END_MAX, offsetof(PoolMetrics, drains));
        export_outcomes(&x, P "reloads_total",
                        "Reloads, by outcome: success, rolled_back (the old engine serves again), failed.",
                        reload_end_table, _RELOAD_END_MAX, offsetof(PoolMetrics, reloads));
        export_histogram(&x, P "preload_duration_seconds", "From a preload request to the engine's first 200.",
                         offsetof(PoolMetrics, preload_duration));
        export_histogram(&x, P "drain_duration_seconds", "From a drain request to the engine's stop.",
                         offsetof(PoolMetrics, drain_duration));
        export_histogram(&x, P "reload_duration_seconds", "From a reload request to its outcome.",
                         offsetof(PoolMetrics, reload_duration));
        export_histogram(&x, P "backoff_delay_seconds", "The delays supervision decided before restarts.",
                         offsetof(PoolMetrics, backoff_delay));
        export_engine_resources(&x);
        export_engine_load(&x);
        export_devices(&x);

        return metrics_writer_finish(&x.w, ret, ret_size);
}
