/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "prepared-engine.h"
#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "test-util.h"

static const char full_document[] =
        "{\n"
        "  \"binary_path\": \"/opt/llama.cpp/bin/llama-server\",\n"
        "  \"flags\": [\"--model\", \"/models/llama-7b.Q4_K_M.gguf\", \"--n-gpu-layers\", \"99\"],\n"
        "  \"port\": 8081,\n"
        "  \"host\": \"::1\",\n"
        "  \"model_path\": \"/models/llama-7b.Q4_K_M.gguf\",\n"
        "  \"engine_version\": \"llamacpp-source:b1234-cuda\",\n"
        "  \"pool_id\": \"llama-7b\",\n"
        "  \"replica_id\": \"r1\",\n"
        "  \"device_mask\": \"GPU0,GPU1\",\n"
        "  \"engine\": \"vllm\",\n"
        "  \"health\": { \"path\": \"/v1/health?x=1\", \"interval_ms\": 250, \"timeout_ms\": 60000 },\n"
        "  \"env\": { \"ZED\": \"1\", \"A_B\": \"x=y\", \"ABC\": \"\", \"A\": \"\\u00e9t\\u00e9\" },\n"
        "  \"slots_total\": 4\n"
        "}\n";

static PreparedEngine *parse_ok(const char *json) {
        PreparedEngine *p = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = prepared_engine_from_json(json, strlen(json), &p, &err);
        if (r < 0)
                fprintf(stderr, "unexpected error: %s\n", strna(err));
        ASSERT_OK(r);
        ASSERT_NOT_NULL(p);
        ASSERT_NULL(err);
        return p;
}

static void assert_invalid(const char *json, const char *message) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_free_ char *err = NULL;

        ASSERT_ERROR(prepared_engine_from_json(json, strlen(json), &p, &err), EINVAL);
        ASSERT_NULL(p);
        ASSERT_CONTAINS(err, message);
}

/*
 * A minimal valid document with key set to value (raw JSON), added if not among the
 * required keys; value NULL drops the key.
 */
static char *doc_with(const char *key, const char *value) {
        static const char * const base[][2] = {
                { "binary_path", "\"/usr/bin/llama-server\"" },
                { "port", "8080" },
                { "pool_id", "\"p\"" },
        };
        char *s = NULL;
        bool replaced = false;

        ASSERT_OK(strextendf(&s, "{"));
        for (size_t i = 0; i < ELEMENTSOF(base); i++) {
                const char *v = base[i][1];

                if (streq(base[i][0], key)) {
                        replaced = true;
                        v = value;
                        if (!v)
                                continue;
                }
                ASSERT_OK(strextendf(&s, "%s\"%s\": %s", s[1] ? ", " : "", base[i][0], v));
        }
        if (!replaced && value)
                ASSERT_OK(strextendf(&s, ", \"%s\": %s", key, value));
        ASSERT_OK(strextendf(&s, "}"));
        return s;
}

static void assert_field_invalid(const char *key, const char *value, const char *message) {
        _cleanup_free_ char *doc = doc_with(key, value);

        assert_invalid(doc, message);
}

static void assert_field_valid(const char *key, const char *value) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_free_ char *doc = doc_with(key, value);

        p = parse_ok(doc);
}

TEST(full_document) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = parse_ok(full_document);

        ASSERT_STREQ(p->binary_path, "/opt/llama.cpp/bin/llama-server");
        ASSERT_EQ(strv_length(p->flags), 4);
        ASSERT_STREQ(p->flags[0], "--model");
        ASSERT_STREQ(p->flags[3], "99");
        ASSERT_EQ(p->port, 8081);
        ASSERT_STREQ(p->host, "::1");
        ASSERT_STREQ(p->model_path, "/models/llama-7b.Q4_K_M.gguf");
        ASSERT_STREQ(p->engine_version, "llamacpp-source:b1234-cuda");
        ASSERT_STREQ(p->pool_id, "llama-7b");
        ASSERT_STREQ(p->replica_id, "r1");
        ASSERT_STREQ(p->device_mask, "GPU0,GPU1");
        ASSERT_EQ(p->engine, ENGINE_VLLM);
        ASSERT_STREQ(p->health_path, "/v1/health?x=1");
        ASSERT_EQ(p->health_interval_ms, 250);
        ASSERT_EQ(p->health_timeout_ms, 60000);
        ASSERT_EQ(p->slots_total, 4);

        /* Sorted by name: "A" < "ABC" < "A_B" < "ZED"; values keep their '=' and UTF-8. */
        ASSERT_EQ(strv_length(p->env), 4);
        ASSERT_STREQ(p->env[0], "A=\xc3\xa9t\xc3\xa9");
        ASSERT_STREQ(p->env[1], "ABC=");
        ASSERT_STREQ(p->env[2], "A_B=x=y");
        ASSERT_STREQ(p->env[3], "ZED=1");
}

TEST(defaults) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_free_ char *doc = doc_with("none", NULL);

        p = parse_ok(doc);
        ASSERT_STREQ(p->binary_path, "/usr/bin/llama-server");
        ASSERT_EQ(p->port, 8080);
        ASSERT_STREQ(p->pool_id, "p");
        ASSERT_NOT_NULL(p->flags);
        ASSERT_EQ(strv_length(p->flags), 0);
        ASSERT_STREQ(p->host, "127.0.0.1");
        ASSERT_NULL(p->model_path);
        ASSERT_NULL(p->engine_version);
        ASSERT_STREQ(p->replica_id, "r0");
        ASSERT_NULL(p->device_mask);
        ASSERT_EQ(p->engine, ENGINE_LLAMACPP);
        ASSERT_STREQ(p->health_path, "/health");
        ASSERT_EQ(p->health_interval_ms, 0);
        ASSERT_EQ(p->health_timeout_ms, 0);
        ASSERT_NOT_NULL(p->env);
        ASSERT_EQ(strv_length(p->env), 0);
        ASSERT_EQ(p->slots_total, -1);
}

TEST(nullable_and_boundaries) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;

        p = parse_ok("{\"binary_path\":\"/b\",\"port\":1,\"pool_id\":\"p\",\"model_path\":null,"
                     "\"engine_version\":null,\"device_mask\":null,\"health\":{},\"env\":{},"
                     "\"flags\":[],\"slots_total\":0}");
        ASSERT_EQ(p->port, 1);
        ASSERT_NULL(p->model_path);
        ASSERT_NULL(p->engine_version);
        ASSERT_NULL(p->device_mask);
        ASSERT_STREQ(p->health_path, "/health");
        ASSERT_EQ(p->slots_total, 0);
        p = prepared_engine_free(p);

        p = parse_ok("{\"binary_path\":\"/b\",\"port\":65535,\"pool_id\":\"p\",\"slots_total\":4096,"
                     "\"health\":{\"interval_ms\":3600000,\"timeout_ms\":86400000}}");
        ASSERT_EQ(p->port, 65535);
        ASSERT_EQ(p->slots_total, 4096);
        ASSERT_EQ(p->health_interval_ms, 3600000);
        ASSERT_EQ(p->health_timeout_ms, 86400000);
        p = prepared_engine_free(p);

        p = parse_ok("{\"binary_path\":\"/b\",\"port\":8080,\"pool_id\":\"p\","
                     "\"health\":{\"interval_ms\":10,\"timeout_ms\":100}}");
        ASSERT_EQ(p->health_interval_ms, 10);
        ASSERT_EQ(p->health_timeout_ms, 100);
}

TEST(valid_field_values) {
        assert_field_valid("host", "\"localhost\"");
        assert_field_valid("host", "\"10.1.2.3\"");
        assert_field_valid("host", "\"fe80::1\"");
        assert_field_valid("device_mask", "\"0\"");
        assert_field_valid("device_mask", "\"0,1,2,3\"");
        assert_field_valid("device_mask", "\"GPU1023\"");
        assert_field_valid("device_mask", "\"GPU0,1\"");
        assert_field_valid("engine", "\"llamacpp\"");
        assert_field_valid("engine", "\"tgi\"");
        assert_field_valid("engine", "\"triton\"");
        assert_field_valid("engine", "\"custom\"");
        assert_field_valid("pool_id", "\"A.b_c-9\"");
        assert_field_valid("replica_id", "\"r0.1\"");
        assert_field_valid("flags", "[\"\", \"--x\\nwith newline is fine in argv\"]");
        /* CUDA_VISIBLE_DEVICES is fine on its own. */
        assert_field_valid("env", "{\"CUDA_VISIBLE_DEVICES\": \"0\"}");
        assert_field_valid("env", "{\"_X\": \"tab\\tok\"}");
}

/* Document level */

TEST(error_not_an_object) {
        assert_invalid("[]", "must be a JSON object");
        assert_invalid("\"str\"", "must be a JSON object");
        assert_invalid("42", "must be a JSON object");
        assert_invalid("null", "must be a JSON object");
}

TEST(error_invalid_json) {
        assert_invalid("", "invalid JSON at offset 0");
        assert_invalid("{", "invalid JSON at offset 1");
        assert_invalid("{\"port\": }", "invalid JSON at offset");
        assert_invalid("{\"a\":1,}", "invalid JSON");
}

TEST(error_trailing_garbage) {
        assert_invalid("{} x", "invalid JSON at offset 3");
        assert_invalid("{}{}", "invalid JSON at offset 2");
}

TEST(error_embedded_nul) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_free_ char *err = NULL;
        const char doc[] = "{\"binary_path\":\"/b\",\"port\":8080,\"pool_id\":\"p\"}\0garbage";

        ASSERT_ERROR(prepared_engine_from_json(doc, sizeof(doc) - 1, &p, &err), EINVAL);
        ASSERT_CONTAINS(err, "embedded NUL");
        ASSERT_NULL(p);

        /* ... and as an escape, which would truncate the string. */
        assert_field_invalid("binary_path", "\"/usr/bin/a\\u0000b\"", "\\u0000 is not allowed");
        assert_field_invalid("env", "{\"A\\u0000B\": \"x\"}", "\\u0000 is not allowed");
        /* An escaped backslash followed by "u0000" is not an escape. */
        assert_field_valid("flags", "[\"\\\\u0000\"]");
}

TEST(error_invalid_utf8) {
        assert_field_invalid("engine_version", "\"\xff\xfe\"", "invalid JSON");
}

TEST(error_nesting_too_deep) {
        _cleanup_free_ char *doc = NULL;

        ASSERT_OK(strextendf(&doc, "{\"health\":"));
        for (int i = 0; i < 40; i++)
                ASSERT_OK(strextendf(&doc, "["));
        for (int i = 0; i < 40; i++)
                ASSERT_OK(strextendf(&doc, "]"));
        ASSERT_OK(strextendf(&doc, "}"));
        assert_invalid(doc, "nesting too deep");
}

TEST(error_too_large) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_free_ char *err = NULL, *doc = NULL, *base = doc_with("none", NULL);
        size_t n = PREPARED_ENGINE_MAX_SIZE;

        /* Exactly at the limit (padded with whitespace) is fine. */
        doc = malloc(n + 2);
        ASSERT_NOT_NULL(doc);
        memset(doc, ' ', n + 1);
        memcpy(doc, base, strlen(base));
        ASSERT_OK(prepared_engine_from_json(doc, n, &p, &err));
        p = prepared_engine_free(p);

        ASSERT_ERROR(prepared_engine_from_json(doc, n + 1, &p, &err), EFBIG);
        ASSERT_NULL(p);
        ASSERT_CONTAINS(err, "too large");
}

TEST(error_unknown_key) {
        assert_field_invalid("foo", "1", "unknown key \"foo\"");
        assert_field_invalid("Port", "1", "unknown key \"Port\"");
        /* Echoed escaped, so a message stays one line. */
        assert_field_invalid("a\\nb\\\"", "1", "unknown key \"a\\x0ab\\\"\"");
}

/* binary_path */

TEST(error_binary_path_missing) {
        assert_field_invalid("binary_path", NULL, "binary_path: is required");
}

TEST(error_binary_path_relative) {
        assert_field_invalid("binary_path", "\"bin/llama-server\"", "binary_path: must be an absolute path");
        assert_field_invalid("binary_path", "\"\"", "binary_path: must be an absolute path");
}

TEST(error_binary_path_type) {
        assert_field_invalid("binary_path", "42", "binary_path: must be a string");
        assert_field_invalid("binary_path", "null", "binary_path: must be a string");
        assert_field_invalid("binary_path", "[\"/bin/x\"]", "binary_path: must be a string");
}

TEST(error_binary_path_newline) {
        const char *m = "binary_path: must not contain NUL or newline";

        assert_field_invalid("binary_path", "\"/usr/bin/a\\nb\"", m);
        assert_field_invalid("binary_path", "\"/usr/bin/a\\rb\"", m);
}

/* flags */

TEST(error_flags_type) {
        assert_field_invalid("flags", "\"--verbose\"", "flags: must be an array");
        assert_field_invalid("flags", "null", "flags: must be an array");
        assert_field_invalid("flags", "{}", "flags: must be an array");
}

TEST(error_flags_element) {
        assert_field_invalid("flags", "[\"--a\", \"b\", 3]", "flags[2]: must be a string");
        assert_field_invalid("flags", "[null]", "flags[0]: must be a string");
        assert_field_invalid("flags", "[[\"x\"]]", "flags[0]: must be a string");
}

/* port */

TEST(error_port_missing) {
        assert_field_invalid("port", NULL, "port: is required");
}

TEST(error_port_string) {
        assert_field_invalid("port", "\"8080\"", "port: must be an integer in 1..65535");
}

TEST(error_port_range) {
        assert_field_invalid("port", "0", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "65536", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "-1", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "-9223372036854775808", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "99999999999999999999", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "-99999999999999999999", "port: must be an integer in 1..65535");
}

TEST(error_port_double) {
        assert_field_invalid("port", "80.5", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "8080.0", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "8e3", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "1e400", "port: must be an integer in 1..65535");
}

TEST(error_port_other_types) {
        assert_field_invalid("port", "true", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "null", "port: must be an integer in 1..65535");
        assert_field_invalid("port", "[8080]", "port: must be an integer in 1..65535");
}

/* host */

TEST(error_host_invalid) {
        assert_field_invalid("host", "\"example.com\"", "host: must be an IP address or \"localhost\"");
        assert_field_invalid("host", "\"\"", "host: must be an IP address or \"localhost\"");
        assert_field_invalid("host", "\"[::1]\"", "host: must be an IP address or \"localhost\"");
        assert_field_invalid("host", "\"127.0.0.1:80\"", "host: must be an IP address or \"localhost\"");
        assert_field_invalid("host", "\"fe80::1%eth0\"", "host: must be an IP address or \"localhost\"");
}

TEST(error_host_type) {
        assert_field_invalid("host", "2130706433", "host: must be a string");
        assert_field_invalid("host", "null", "host: must be a string");
}

/* model_path, engine_version */

TEST(error_model_path) {
        assert_field_invalid("model_path", "42", "model_path: must be a string or null");
        assert_field_invalid("model_path", "\"\"", "model_path: must not be empty");
        assert_field_invalid("model_path", "\"/m\\n\"", "model_path: must not contain NUL or newline");
}

TEST(error_engine_version) {
        assert_field_invalid("engine_version", "1", "engine_version: must be a string or null");
        assert_field_invalid("engine_version", "\"\"", "engine_version: must be a non-empty string");
        assert_field_invalid("engine_version", "\"v1\\u001b[31m\"",
                             "engine_version: must be a non-empty string");
}

/* pool_id, replica_id */

TEST(error_pool_id_missing) {
        assert_field_invalid("pool_id", NULL, "pool_id: is required");
}

TEST(error_pool_id_invalid) {
        const char *m = "pool_id: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}";

        assert_field_invalid("pool_id", "\"\"", m);
        assert_field_invalid("pool_id", "\"-leading-dash\"", m);
        assert_field_invalid("pool_id", "\".hidden\"", m);
        assert_field_invalid("pool_id", "\"a b\"", m);
        assert_field_invalid("pool_id", "\"a/b\"", m);
        assert_field_invalid("pool_id", "\"\\u00e9\"", m);
        assert_field_invalid("pool_id",
                             "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", m);
        assert_field_valid("pool_id",
                           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
}

TEST(error_pool_id_type) {
        assert_field_invalid("pool_id", "7", "pool_id: must be a string");
        assert_field_invalid("pool_id", "null", "pool_id: must be a string");
}

TEST(error_replica_id_invalid) {
        assert_field_invalid("replica_id", "\"r/0\"",
                             "replica_id: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
        assert_field_invalid("replica_id", "\"\"", "replica_id: must match");
        assert_field_invalid("replica_id", "0", "replica_id: must be a string");
        assert_field_invalid("replica_id", "null", "replica_id: must be a string");
}

/* device_mask */

TEST(error_device_mask_syntax) {
        const char *m = "is not understood: expected an index in 0..1023 (0), GPU<index> (GPU0), GPU-<uuid> or "
                        "MIG-<uuid>";

        assert_field_invalid("device_mask", "\"\"", "device_mask: must name at least one device");
        assert_field_invalid("device_mask", "\"0,\"", "device_mask: element 2 is empty");
        assert_field_invalid("device_mask", "\",0\"", "device_mask: element 1 is empty");
        assert_field_invalid("device_mask", "\"0,,1\"", "device_mask: element 2 is empty");
        assert_field_invalid("device_mask", "\"0, 1\"", "device_mask: element 2 (\" 1\") is not understood");
        assert_field_invalid("device_mask", "\" 0\"", m);
        assert_field_invalid("device_mask", "\"GPU\"", "device_mask: element 1 (\"GPU\") is not understood");
        assert_field_invalid("device_mask", "\"gpu0\"", m);
        assert_field_invalid("device_mask", "\"GPU 0\"", m);
        assert_field_invalid("device_mask", "\"01\"", m);
        assert_field_invalid("device_mask", "\"-1\"", m);
        assert_field_invalid("device_mask", "\"+1\"", m);
        assert_field_invalid("device_mask", "\"0;1\"", m);
        assert_field_invalid("device_mask", "\"GPU-xyz\"", m);
        assert_field_invalid("device_mask", "\"MIG-\"", m);
}

TEST(device_mask_uuids) {
        assert_field_valid("device_mask", "\"GPU-6a1e3c1d-0000-4000-8000-000000000000\"");
        assert_field_valid("device_mask", "\"MIG-a1b2c3d4-0000-4000-8000-000000000000,1\"");
}

TEST(error_device_mask_range) {
        assert_field_invalid("device_mask", "\"1024\"", "device_mask: element 1 (\"1024\"): index 1024 is not in 0..1023");
        assert_field_invalid("device_mask", "\"GPU1024\"", "index 1024 is not in 0..1023");
        assert_field_invalid("device_mask", "\"99999999999999999999\"", "is not understood");
}

TEST(error_device_mask_duplicate) {
        assert_field_invalid("device_mask", "\"0,0\"", "device_mask: element 2 (\"0\") names GPU0 again");
        assert_field_invalid("device_mask", "\"GPU1,1\"", "element 2 (\"1\") names GPU1 again");
        assert_field_invalid("device_mask", "\"GPU2,GPU3,GPU2\"", "element 3 (\"GPU2\") names GPU2 again");
}

TEST(vram_and_split) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        static const char *doc =
                "{\"binary_path\":\"/bin/true\",\"port\":8080,\"pool_id\":\"a\",\"device_mask\":\"0,1\","
                "\"vram_required_bytes\":1073741824,\"split\":\"auto\"}";

        p = parse_ok(doc);
        ASSERT_EQ(p->vram_required_bytes, UINT64_C(1073741824));
        ASSERT_TRUE(p->split_auto);
        assert_field_invalid("vram_required_bytes", "0", "vram_required_bytes: must be an integer in 1..");
        assert_field_invalid("vram_required_bytes", "-5", "vram_required_bytes: must be an integer");
        assert_field_invalid("split", "\"even\"", "split: must be \"auto\"");
        assert_invalid("{\"binary_path\":\"/bin/true\",\"port\":8080,\"pool_id\":\"a\",\"split\":\"auto\"}",
                       "split: \"auto\" needs a device_mask");
}

TEST(error_device_mask_type) {
        assert_field_invalid("device_mask", "0", "device_mask: must be a string or null");
        assert_field_invalid("device_mask", "[0,1]", "device_mask: must be a string or null");
}

/* engine */

TEST(error_engine) {
        const char *m = "engine: must be one of \"llamacpp\", \"vllm\", \"tgi\", \"triton\", \"custom\"";

        assert_field_invalid("engine", "\"llama.cpp\"", m);
        assert_field_invalid("engine", "\"VLLM\"", m);
        assert_field_invalid("engine", "\"\"", m);
        assert_field_invalid("engine", "0", "engine: must be a string");
        assert_field_invalid("engine", "null", "engine: must be a string");
}

/* health */

TEST(error_health_type) {
        assert_field_invalid("health", "\"/health\"", "health: must be an object");
        assert_field_invalid("health", "null", "health: must be an object");
        assert_field_invalid("health", "[]", "health: must be an object");
}

TEST(error_health_unknown_key) {
        assert_field_invalid("health", "{\"paht\": \"/health\"}", "health: unknown key \"paht\"");
}

TEST(error_health_path) {
        const char *m = "health.path: must start with '/'";

        assert_field_invalid("health", "{\"path\": \"health\"}", m);
        assert_field_invalid("health", "{\"path\": \"\"}", m);
        assert_field_invalid("health", "{\"path\": \"/he alth\"}", m);
        assert_field_invalid("health", "{\"path\": \"/health\\r\\nX-Injected: 1\"}", m);
        assert_field_invalid("health", "{\"path\": \"/health\\n\"}", m);
        assert_field_invalid("health", "{\"path\": \"/h\\u00e9\"}", m);
        assert_field_invalid("health", "{\"path\": 1}", "health.path: must be a string");
}

TEST(error_health_interval) {
        const char *m = "health.interval_ms: must be an integer in 10..3600000";

        assert_field_invalid("health", "{\"interval_ms\": 9}", m);
        assert_field_invalid("health", "{\"interval_ms\": 0}", m);
        assert_field_invalid("health", "{\"interval_ms\": 3600001}", m);
        assert_field_invalid("health", "{\"interval_ms\": \"100\"}", m);
        assert_field_invalid("health", "{\"interval_ms\": 100.5}", m);
}

TEST(error_health_timeout) {
        const char *m = "health.timeout_ms: must be an integer in 100..86400000";

        assert_field_invalid("health", "{\"timeout_ms\": 99}", m);
        assert_field_invalid("health", "{\"timeout_ms\": 86400001}", m);
        assert_field_invalid("health", "{\"timeout_ms\": -100}", m);
        assert_field_invalid("health", "{\"timeout_ms\": null}", m);
}

/* env */

TEST(error_env_type) {
        assert_field_invalid("env", "[\"A=1\"]", "env: must be an object");
        assert_field_invalid("env", "\"A=1\"", "env: must be an object");
}

TEST(error_env_name) {
        assert_field_invalid("env", "{\"lower\": \"x\"}", "env: invalid variable name \"lower\"");
        assert_field_invalid("env", "{\"1A\": \"x\"}", "env: invalid variable name \"1A\"");
        assert_field_invalid("env", "{\"A-B\": \"x\"}", "env: invalid variable name \"A-B\"");
        assert_field_invalid("env", "{\"A=B\": \"x\"}", "env: invalid variable name \"A=B\"");
        assert_field_invalid("env", "{\"\": \"x\"}", "env: invalid variable name \"\"");
}

TEST(error_env_value) {
        assert_field_invalid("env", "{\"FOO\": 1}", "env.FOO: must be a string");
        assert_field_invalid("env", "{\"FOO\": null}", "env.FOO: must be a string");
        assert_field_invalid("env", "{\"FOO\": \"a\\nb\"}", "env.FOO: must not contain NUL or newline");
}

TEST(error_env_cuda_visible_devices_with_mask) {
        assert_invalid("{\"binary_path\":\"/b\",\"port\":8080,\"pool_id\":\"p\",\"device_mask\":\"0\","
                       "\"env\":{\"CUDA_VISIBLE_DEVICES\":\"1\"}}",
                       "env: CUDA_VISIBLE_DEVICES must not be set together with device_mask");
}

/* slots_total */

TEST(error_slots_total) {
        const char *m = "slots_total: must be an integer in 0..4096";

        assert_field_invalid("slots_total", "-1", m);
        assert_field_invalid("slots_total", "4097", m);
        assert_field_invalid("slots_total", "\"4\"", m);
        assert_field_invalid("slots_total", "1.5", m);
        assert_field_invalid("slots_total", "null", m);
}

/* Failure leaves the out-parameters alone; success leaves the error alone. */
TEST(out_parameters) {
        PreparedEngine *p = (PreparedEngine *) 0x1;
        char *err = NULL;
        const char *bad = "{\"port\":0}";

        ASSERT_ERROR(prepared_engine_from_json(bad, strlen(bad), &p, &err), EINVAL);
        ASSERT_TRUE(p == (PreparedEngine *) 0x1);
        ASSERT_NOT_NULL(err);
        free(err);

        /* No error string wanted. */
        ASSERT_ERROR(prepared_engine_from_json(bad, strlen(bad), &p, NULL), EINVAL);
        ASSERT_ERROR(prepared_engine_from_json("{", 1, &p, NULL), EINVAL);
}

TEST(from_object) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_json_ json_object *o = NULL, *a = NULL;
        _cleanup_free_ char *err = NULL;

        ASSERT_OK(json_parse_document(full_document, strlen(full_document), 65536, &o, &err));
        ASSERT_OK(prepared_engine_from_object(o, &p, &err));
        ASSERT_STREQ(p->pool_id, "llama-7b");

        a = json_object_new_array();
        ASSERT_ERROR(prepared_engine_from_object(a, &p, &err), EINVAL);
        ASSERT_CONTAINS(err, "must be a JSON object");
        err = mfree(err);
        ASSERT_ERROR(prepared_engine_from_object(NULL, &p, &err), EINVAL);
}

static void assert_equal(const PreparedEngine *a, const PreparedEngine *b) {
        ASSERT_STREQ(a->binary_path, b->binary_path);
        ASSERT_EQ(strv_length(a->flags), strv_length(b->flags));
        for (size_t i = 0; a->flags[i]; i++)
                ASSERT_STREQ(a->flags[i], b->flags[i]);
        ASSERT_EQ(a->port, b->port);
        ASSERT_STREQ(a->host, b->host);
        ASSERT_TRUE(streq_ptr(a->model_path, b->model_path));
        ASSERT_TRUE(streq_ptr(a->engine_version, b->engine_version));
        ASSERT_STREQ(a->pool_id, b->pool_id);
        ASSERT_STREQ(a->replica_id, b->replica_id);
        ASSERT_TRUE(streq_ptr(a->device_mask, b->device_mask));
        ASSERT_EQ(a->engine, b->engine);
        ASSERT_STREQ(a->health_path, b->health_path);
        ASSERT_EQ(a->health_interval_ms, b->health_interval_ms);
        ASSERT_EQ(a->health_timeout_ms, b->health_timeout_ms);
        ASSERT_EQ(strv_length(a->env), strv_length(b->env));
        for (size_t i = 0; a->env[i]; i++)
                ASSERT_STREQ(a->env[i], b->env[i]);
        ASSERT_EQ(a->slots_total, b->slots_total);
}

static void check_round_trip(const char *doc) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL, *q = NULL;
        _cleanup_json_ json_object *o = NULL, *o2 = NULL;
        _cleanup_free_ char *err = NULL;
        const char *s;

        p = parse_ok(doc);
        ASSERT_OK(prepared_engine_to_json(p, &o));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        ASSERT_OK(prepared_engine_from_json(s, strlen(s), &q, &err));
        assert_equal(p, q);

        ASSERT_OK(prepared_engine_to_json(q, &o2));
        ASSERT_TRUE(json_object_equal(o, o2));
}

TEST(round_trip) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *minimal = doc_with("none", NULL);
        json_object *v;

        check_round_trip(full_document);
        check_round_trip(minimal);

        /* Absent optionals are written as null (strings) or omitted (numbers). */
        p = parse_ok(minimal);
        ASSERT_OK(prepared_engine_to_json(p, &o));
        ASSERT_TRUE(json_object_object_get_ex(o, "model_path", &v) && !v);
        ASSERT_TRUE(json_object_object_get_ex(o, "device_mask", &v) && !v);
        ASSERT_FALSE(json_object_object_get_ex(o, "slots_total", NULL));
        ASSERT_TRUE(json_object_object_get_ex(o, "engine", &v));
        ASSERT_STREQ(json_object_get_string(v), "llamacpp");
        ASSERT_TRUE(json_object_object_get_ex(o, "health", &v));
        ASSERT_FALSE(json_object_object_get_ex(v, "interval_ms", NULL));
}

TEST(copy) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL, *c = NULL, *m = NULL, *mc = NULL;
        _cleanup_free_ char *minimal = doc_with("none", NULL);

        p = parse_ok(full_document);
        ASSERT_OK(prepared_engine_copy(p, &c));
        ASSERT_TRUE(p->binary_path != c->binary_path);
        ASSERT_TRUE(p->flags != c->flags);
        assert_equal(p, c);

        m = parse_ok(minimal);
        ASSERT_OK(prepared_engine_copy(m, &mc));
        assert_equal(m, mc);
        ASSERT_NULL(mc->model_path);
        ASSERT_NOT_NULL(mc->flags);
}

static void check_cuda(const char *mask, const char *expected) {
        _cleanup_free_ char *s = NULL;

        ASSERT_OK(device_mask_to_cuda_visible_devices(mask, &s));
        if (expected)
                ASSERT_STREQ(s, expected);
        else
                ASSERT_NULL(s);
}

TEST(cuda_visible_devices) {
        char *s = (char *) 0x1;

        check_cuda("GPU0,GPU1", "0,1");
        check_cuda("0,1", "0,1");
        check_cuda("GPU3", "3");
        check_cuda("GPU7,2,GPU1023", "7,2,1023");
        check_cuda(NULL, NULL);

        ASSERT_ERROR(device_mask_to_cuda_visible_devices("GPU0,GPU0", &s), EINVAL);
        ASSERT_ERROR(device_mask_to_cuda_visible_devices("", &s), EINVAL);
        ASSERT_ERROR(device_mask_to_cuda_visible_devices("x", &s), EINVAL);
        ASSERT_TRUE(s == (char *) 0x1);
}

TEST(device_mask_is_valid) {
        ASSERT_TRUE(device_mask_is_valid("0"));
        ASSERT_TRUE(device_mask_is_valid("GPU0,GPU1"));
        ASSERT_TRUE(device_mask_is_valid("10,1023"));
        ASSERT_FALSE(device_mask_is_valid(NULL));
        ASSERT_FALSE(device_mask_is_valid(""));
        ASSERT_FALSE(device_mask_is_valid("1024"));
        ASSERT_FALSE(device_mask_is_valid("0,0"));
        ASSERT_FALSE(device_mask_is_valid("0 ,1"));
        ASSERT_FALSE(device_mask_is_valid("00"));
        ASSERT_FALSE(device_mask_is_valid("GPU"));
        ASSERT_FALSE(device_mask_is_valid("GPUGPU0"));
}

static void check_url(const char *host, uint16_t port, const char *expected) {
        PreparedEngine p = { .host = (char *) host, .port = port };
        _cleanup_free_ char *u = NULL;

        ASSERT_OK(prepared_engine_base_url(&p, &u));
        ASSERT_STREQ(u, expected);
}

TEST(base_url) {
        check_url("127.0.0.1", 8080, "http://127.0.0.1:8080");
        check_url("localhost", 1, "http://localhost:1");
        check_url("::1", 8080, "http://[::1]:8080");
        check_url("fe80::1:2", 65535, "http://[fe80::1:2]:65535");
}

TEST(engine_kind) {
        ASSERT_STREQ(engine_kind_to_string(ENGINE_LLAMACPP), "llamacpp");
        ASSERT_STREQ(engine_kind_to_string(ENGINE_CUSTOM), "custom");
        ASSERT_NULL(engine_kind_to_string(_ENGINE_KIND_MAX));
        ASSERT_NULL(engine_kind_to_string(_ENGINE_KIND_INVALID));
        for (EngineKind k = 0; k < _ENGINE_KIND_MAX; k++)
                ASSERT_EQ(engine_kind_from_string(engine_kind_to_string(k)), k);
        ASSERT_EQ(engine_kind_from_string("nope"), _ENGINE_KIND_INVALID);
        ASSERT_EQ(engine_kind_from_string(NULL), _ENGINE_KIND_INVALID);
}

DEFINE_TEST_MAIN
