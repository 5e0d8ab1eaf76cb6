/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "handoff.h"
#include "prepared-engine.h"
#include "shared/fileio.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "test-util.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *path) {
        (void) chmod(path, 0755);
        ASSERT_OK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS));
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-handoff-XXXXXX");

        ASSERT_NOT_NULL(d);
        ASSERT_NOT_NULL(mkdtemp(d));
        return d;
}

static unsigned count_temp_files(const char *dir) {
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        d = opendir(dir);
        ASSERT_NOT_NULL(d);
        while ((de = readdir(d)))
                if (strneq(de->d_name, ".#", 2))
                        n++;
        closedir(d);
        return n;
}

static char *read_string(const char *path) {
        char *s = NULL;

        ASSERT_OK(read_full_file(path, 1024 * 1024, &s, NULL));
        return s;
}

static char *xstrdup(const char *s) {
        char *t = strdup(s);

        ASSERT_NOT_NULL(t);
        return t;
}

/* A handoff with every field set. */
static void fill_full(Handoff *h) {
        *h = (Handoff) HANDOFF_INIT;
        h->engine = xstrdup("llamacpp");
        h->engine_version = xstrdup("llamacpp-source:b1234-cuda");
        h->provisioning_mode = xstrdup("binary");
        h->url = xstrdup("http://127.0.0.1:8080");
        h->pool_id = xstrdup("llama-7b");
        h->replica_id = xstrdup("r1");
        h->model_path = xstrdup("/models/llama-7b.gguf");
        h->model_id = xstrdup("llama-7b");
        ASSERT_OK(strv_extend(&h->flags, "--ctx-size"));
        ASSERT_OK(strv_extend(&h->flags, "4096"));
        h->device_mask = xstrdup("GPU0,GPU1");
        h->slots_total = 4;
        h->slots_free = 3;
        h->pid = 4242;
        h->unit = xstrdup("pool-engine-llama-7b.service");
        h->ready_at = xstrdup("2025-09-30T12:34:56.789Z");
}

static void assert_strv_equal(char **a, char **b) {
        ASSERT_EQ(strv_length(a), strv_length(b));
        for (size_t i = 0; i < strv_length(a); i++)
                ASSERT_STREQ(a[i], b[i]);
}

static void assert_handoff_equal(const Handoff *a, const Handoff *b) {
        ASSERT_TRUE(streq_ptr(a->engine, b->engine));
        ASSERT_TRUE(streq_ptr(a->engine_version, b->engine_version));
        ASSERT_TRUE(streq_ptr(a->provisioning_mode, b->provisioning_mode));
        ASSERT_STREQ(a->url, b->url);
        ASSERT_STREQ(a->pool_id, b->pool_id);
        ASSERT_STREQ(a->replica_id, b->replica_id);
        ASSERT_TRUE(streq_ptr(a->model_path, b->model_path));
        ASSERT_TRUE(streq_ptr(a->model_id, b->model_id));
        assert_strv_equal(a->flags, b->flags);
        ASSERT_TRUE(streq_ptr(a->device_mask, b->device_mask));
        ASSERT_EQ(a->slots_total, b->slots_total);
        ASSERT_EQ(a->slots_free, b->slots_free);
        ASSERT_EQ(a->pid, b->pid);
        ASSERT_TRUE(streq_ptr(a->unit, b->unit));
        ASSERT_TRUE(streq_ptr(a->ready_at, b->ready_at));
}

static void parse_ok(const char *json, Handoff *ret) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = handoff_from_json_string(json, strlen(json), ret, &err);
        if (r < 0)
                fprintf(stderr, "unexpected error: %s\n", strna(err));
        ASSERT_OK(r);
        ASSERT_NULL(err);
}

static void assert_invalid(const char *json, const char *message) {
        _cleanup_free_ char *err = NULL;
        Handoff h = HANDOFF_INIT;

        ASSERT_ERROR(handoff_from_json_string(json, strlen(json), &h, &err), EINVAL);
        ASSERT_NULL(h.url);
        ASSERT_NULL(h.pool_id);
        ASSERT_CONTAINS(err, message);
}

/* {"url":…,"pool_id":"p", key: value} */
static void assert_field_invalid(const char *key, const char *value, const char *message) {
        _cleanup_free_ char *doc = NULL;

        ASSERT_OK(strextendf(&doc, "{\"url\":\"http://127.0.0.1:9999\",\"pool_id\":\"p\",\"%s\":%s}",
                             key, value));
        assert_invalid(doc, message);
}

TEST(write_read_round_trip) {
        _cleanup_free_ char *dir = make_tmpdir(), *engines = NULL, *path = NULL, *expected = NULL,
                            *text = NULL, *err = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT, r = HANDOFF_INIT;
        struct stat st;
        mode_t old_umask;

        fill_full(&h);
        engines = path_join(dir, "run/engines");

        /* The file mode does not depend on the umask; the directory is created 0755 under the
         * usual daemon umask. */
        old_umask = umask(0022);
        ASSERT_OK(handoff_write(engines, &h, &path));
        umask(old_umask);

        ASSERT_OK(strextendf(&expected, "%s/llama-7b-r1.json", engines));
        ASSERT_STREQ(path, expected);

        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0644);
        ASSERT_OK(stat(engines, &st));
        ASSERT_EQ(st.st_mode & 07777, 0755);
        ASSERT_EQ(count_temp_files(engines), 0);

        ASSERT_OK(handoff_read(path, &r, &err));
        assert_handoff_equal(&h, &r);

        /* Pretty-printed, newline terminated, with "slots" for the predecessor's watcher. */
        text = read_string(path);
        ASSERT_TRUE(text[0] == '{' && text[strlen(text) - 1] == '\n');
        ASSERT_CONTAINS(text, "\n  \"engine\": \"llamacpp\"");
        ASSERT_CONTAINS(text, "\"slots\": 4");
        ASSERT_CONTAINS(text, "\"slots_total\": 4");
        ASSERT_CONTAINS(text, "\"slots_free\": 3");
        ASSERT_CONTAINS(text, "\"pid\": 4242");
        ASSERT_CONTAINS(text, "\"url\": \"http://127.0.0.1:8080\""); /* no "\/" */
        ASSERT_CONTAINS(text, "\"id\": \"llama-7b\"");

        /* Writing again replaces the file. */
        h.slots_free = 0;
        path = mfree(path);
        ASSERT_OK(handoff_write(engines, &h, &path));
        handoff_done(&r);
        ASSERT_OK(handoff_read(path, &r, &err));
        ASSERT_EQ(r.slots_free, 0);
        ASSERT_EQ(count_temp_files(engines), 0);

        /* ret_path is optional. */
        ASSERT_OK(handoff_write(engines, &h, NULL));
        rm_rf(dir);
}

TEST(key_order) {
        static const char * const keys[] = {
                "\"engine\"", "\"engine_version\"", "\"provisioning_mode\"", "\"url\"", "\"pool_id\"",
                "\"replica_id\"", "\"model\"", "\"path\"", "\"id\"", "\"flags\"", "\"device_mask\"",
                "\"slots_total\"", "\"slots_free\"", "\"slots\"", "\"pid\"", "\"unit\"", "\"ready_at\"",
        };
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *text = NULL;
        const char *p;

        fill_full(&h);
        ASSERT_OK(handoff_to_json_string(&h, &text));

        p = text;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                p = strstr(p, keys[i]);
                ASSERT_NOT_NULL(p);
                p += strlen(keys[i]);
        }
}

TEST(absent_values) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT, r = HANDOFF_INIT;
        _cleanup_free_ char *text = NULL;

        h.url = xstrdup("http://127.0.0.1:9999");
        h.pool_id = xstrdup("p");
        ASSERT_OK(handoff_to_json_string(&h, &text));

        /* Strings are null, numbers omitted, replica defaults to r0, flags []. */
        ASSERT_CONTAINS(text, "\"engine\": null");
        ASSERT_CONTAINS(text, "\"device_mask\": null");
        ASSERT_CONTAINS(text, "\"replica_id\": \"r0\"");
        ASSERT_CONTAINS(text, "\"flags\": [");
        ASSERT_CONTAINS(text, "\"path\": null");
        ASSERT_NULL(strstr(text, "slots"));
        ASSERT_NULL(strstr(text, "pid"));

        parse_ok(text, &r);
        ASSERT_NULL(r.engine);
        ASSERT_STREQ(r.replica_id, "r0");
        ASSERT_EQ(r.slots_total, -1);
        ASSERT_EQ(r.slots_free, -1);
        ASSERT_EQ(r.pid, 0);
        ASSERT_EQ(strv_length(r.flags), 0);
        ASSERT_NULL(r.model_path);
}

TEST(write_refuses_unreadable) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *dir = make_tmpdir(), *text = NULL, *path = NULL;

        /* No url / pool_id: we would not read it back, so it is not written. */
        ASSERT_ERROR(handoff_to_json_string(&h, &text), EINVAL);
        ASSERT_ERROR(handoff_write(dir, &h, &path), EINVAL);

        h.url = xstrdup("http://127.0.0.1:1");
        h.pool_id = xstrdup("../escape");
        ASSERT_ERROR(handoff_write(dir, &h, &path), EINVAL);
        ASSERT_OK(free_and_strdup(&h.pool_id, "p"));
        h.replica_id = xstrdup("r/0");
        ASSERT_ERROR(handoff_write(dir, &h, &path), EINVAL);
        ASSERT_NULL(path);
        rm_rf(dir);
}

TEST(write_refuses_oversized) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *text = NULL;

        h.url = xstrdup("http://127.0.0.1:1");
        h.pool_id = xstrdup("p");
        /* Made in one go: strv_extend() per element is quadratic, and under ASan, on a loaded
         * machine, it took the test past its 60 s timeout. */
        const size_t n = HANDOFF_MAX_SIZE / 8;
        h.flags = calloc(n + 1, sizeof(char *));
        ASSERT_NOT_NULL(h.flags);
        for (size_t i = 0; i < n; i++)
                h.flags[i] = xstrdup("x");
        ASSERT_ERROR(handoff_to_json_string(&h, &text), EFBIG);
}

TEST(from_prepared_engine) {
        static const char doc[] =
                "{\"binary_path\":\"/opt/llama-server\",\"port\":8081,\"host\":\"::1\","
                "\"flags\":[\"--model\",\"/models/llama-7b.Q4_K_M.gguf\"],"
                "\"model_path\":\"/models/llama-7b.Q4_K_M.gguf\",\"engine_version\":\"b1234\","
                "\"pool_id\":\"llama\",\"replica_id\":\"r2\",\"device_mask\":\"GPU0\","
                "\"engine\":\"vllm\",\"slots_total\":4}";
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *err = NULL;

        ASSERT_OK(prepared_engine_from_json(doc, strlen(doc), &p, &err));
        ASSERT_OK(handoff_from_prepared_engine(p, &h));

        ASSERT_STREQ(h.engine, "vllm");
        ASSERT_STREQ(h.engine_version, "b1234");
        ASSERT_STREQ(h.provisioning_mode, "binary");
        ASSERT_STREQ(h.url, "http://[::1]:8081");
        ASSERT_STREQ(h.pool_id, "llama");
        ASSERT_STREQ(h.replica_id, "r2");
        ASSERT_STREQ(h.model_path, "/models/llama-7b.Q4_K_M.gguf");
        ASSERT_STREQ(h.model_id, "llama-7b.Q4_K_M");
        ASSERT_EQ(strv_length(h.flags), 2);
        ASSERT_STREQ(h.flags[1], "/models/llama-7b.Q4_K_M.gguf");
        ASSERT_STREQ(h.device_mask, "GPU0");
        ASSERT_EQ(h.slots_total, 4);
        ASSERT_EQ(h.slots_free, 4);
        ASSERT_EQ(h.pid, 0);
        ASSERT_NULL(h.unit);
        ASSERT_NULL(h.ready_at);
}

TEST(from_prepared_engine_minimal) {
        static const char doc[] = "{\"binary_path\":\"/b\",\"port\":8080,\"pool_id\":\"p\"}";
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *err = NULL, *text = NULL;

        ASSERT_OK(prepared_engine_from_json(doc, strlen(doc), &p, &err));
        ASSERT_OK(handoff_from_prepared_engine(p, &h));
        ASSERT_STREQ(h.engine, "llamacpp");
        ASSERT_NULL(h.engine_version);
        ASSERT_STREQ(h.url, "http://127.0.0.1:8080");
        ASSERT_STREQ(h.replica_id, "r0");
        ASSERT_NULL(h.model_path);
        ASSERT_NULL(h.model_id);
        ASSERT_NULL(h.device_mask);
        ASSERT_NOT_NULL(h.flags);
        ASSERT_EQ(h.slots_total, -1);
        ASSERT_EQ(h.slots_free, -1);
        ASSERT_OK(handoff_to_json_string(&h, &text));
}

static void check_model_id(const char *model_path, const char *expected) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        _cleanup_free_ char *doc = NULL, *err = NULL;

        ASSERT_OK(strextendf(&doc, "{\"binary_path\":\"/b\",\"port\":8080,\"pool_id\":\"p\","
                             "\"model_path\":\"%s\"}", model_path));
        ASSERT_OK(prepared_engine_from_json(doc, strlen(doc), &p, &err));
        ASSERT_OK(handoff_from_prepared_engine(p, &h));
        if (expected)
                ASSERT_STREQ(h.model_id, expected);
        else
                ASSERT_NULL(h.model_id);
}

TEST(model_id) {
        check_model_id("/models/llama-7b.gguf", "llama-7b");
        check_model_id("/models/llama-7b.Q4_K_M.gguf", "llama-7b.Q4_K_M");
        check_model_id("/models/Model.GGUF", "Model");
        check_model_id("model.safetensors", "model");
        check_model_id("/m/pytorch_model.bin", "pytorch_model");
        /* Directories (vLLM, TGI) keep dotted names whole. */
        check_model_id("/models/Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-8B-Instruct");
        check_model_id("/models/Qwen2.5-7B/", "Qwen2.5-7B");
        check_model_id("/models/.gguf", ".gguf");
        check_model_id("/", NULL);
}

/* .runtime/engines/new-pool-r0.json of the predecessor */
TEST(predecessor_fixture) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        parse_ok("{\"device_mask\":\"GPU0\",\"engine_version\":\"v1\",\"pool_id\":\"new-pool\","
                 "\"replica_id\":\"r0\",\"slots_free\":2,\"slots_total\":4,"
                 "\"url\":\"http://127.0.0.1:8080\"}", &h);
        ASSERT_STREQ(h.device_mask, "GPU0");
        ASSERT_STREQ(h.engine_version, "v1");
        ASSERT_STREQ(h.pool_id, "new-pool");
        ASSERT_STREQ(h.replica_id, "r0");
        ASSERT_EQ(h.slots_free, 2);
        ASSERT_EQ(h.slots_total, 4);
        ASSERT_STREQ(h.url, "http://127.0.0.1:8080");
        ASSERT_NULL(h.engine);
        ASSERT_NULL(h.flags);
        ASSERT_EQ(h.pid, 0);
}

TEST(minimal_fixture) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        parse_ok("{\"url\":\"http://127.0.0.1:9999\",\"pool_id\":\"p\"}", &h);
        ASSERT_STREQ(h.url, "http://127.0.0.1:9999");
        ASSERT_STREQ(h.pool_id, "p");
        ASSERT_STREQ(h.replica_id, "r0");
        ASSERT_NULL(h.engine);
        ASSERT_NULL(h.engine_version);
        ASSERT_NULL(h.model_path);
        ASSERT_NULL(h.device_mask);
        ASSERT_EQ(h.slots_total, -1);
        ASSERT_EQ(h.slots_free, -1);
        ASSERT_EQ(h.pid, 0);
}

/* What the predecessor's preload wrote (engine.json) and its handoff-watcher's format. */
TEST(predecessor_writer_formats) {
        _cleanup_(handoff_done) Handoff a = HANDOFF_INIT, b = HANDOFF_INIT;

        parse_ok("{\n  \"engine\": \"llamacpp\",\n  \"engine_version\": \"llamacpp-source:b1-cuda\",\n"
                 "  \"provisioning_mode\": \"source\",\n  \"url\": \"http://127.0.0.1:8080\",\n"
                 "  \"pool_id\": \"default\",\n  \"replica_id\": \"r0\",\n"
                 "  \"model\": {\n    \"path\": \"/models/m.gguf\"\n  },\n"
                 "  \"flags\": [\"--parallel\", \"1\"]\n}\n", &a);
        ASSERT_STREQ(a.provisioning_mode, "source");
        ASSERT_STREQ(a.model_path, "/models/m.gguf");
        ASSERT_NULL(a.model_id);
        ASSERT_EQ(strv_length(a.flags), 2);

        parse_ok("{\"pool_id\":\"w\",\"replica_id\":\"r0\",\"engine\":\"llamacpp\",\"engine_version\":\"v\","
                 "\"url\":\"http://127.0.0.1:1\",\"slots\":3,\"pid\":77}", &b);
        ASSERT_EQ(b.slots_total, 3);
        ASSERT_EQ(b.slots_free, -1);
        ASSERT_EQ(b.pid, 77);
}

TEST(slots_alias) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        /* slots_total wins over the alias. */
        parse_ok("{\"url\":\"u\",\"pool_id\":\"p\",\"slots\":8,\"slots_total\":4}", &h);
        ASSERT_EQ(h.slots_total, 4);
        handoff_done(&h);

        parse_ok("{\"url\":\"u\",\"pool_id\":\"p\",\"slots_total\":null,\"slots\":8}", &h);
        ASSERT_EQ(h.slots_total, 8);
}

TEST(forward_compatible) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        parse_ok("{\"url\":\"u\",\"pool_id\":\"p\",\"future\":{\"a\":[1,2]},\"ctx_max\":8192,"
                 "\"model\":{\"path\":\"/m\",\"digest\":\"sha256:0\"}}", &h);
        ASSERT_STREQ(h.model_path, "/m");
}

TEST(nulls_are_absent) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        parse_ok("{\"url\":\"u\",\"pool_id\":\"p\",\"replica_id\":null,\"engine\":null,"
                 "\"engine_version\":null,\"provisioning_mode\":null,\"model\":null,\"flags\":null,"
                 "\"device_mask\":null,\"slots_total\":null,\"slots_free\":null,\"slots\":null,"
                 "\"pid\":null,\"unit\":null,\"ready_at\":null}", &h);
        ASSERT_STREQ(h.replica_id, "r0");
        ASSERT_EQ(h.slots_total, -1);
        ASSERT_EQ(h.pid, 0);
        ASSERT_NULL(h.model_path);
}

TEST(missing_required) {
        assert_invalid("{\"pool_id\":\"p\"}", "url: is required");
        assert_invalid("{\"url\":\"http://127.0.0.1:1\"}", "pool_id: is required");
        assert_invalid("{}", "is required");
}

TEST(wrong_types) {
        assert_invalid("{\"url\":1,\"pool_id\":\"p\"}", "url: must be a string");
        assert_invalid("{\"url\":null,\"pool_id\":\"p\"}", "url: must be a string");
        assert_invalid("{\"url\":\"u\",\"pool_id\":7}", "pool_id: must be a string");
        assert_field_invalid("replica_id", "0", "replica_id: must be a string or null");
        assert_field_invalid("engine", "1", "engine: must be a string or null");
        assert_field_invalid("engine_version", "true", "engine_version: must be a string or null");
        assert_field_invalid("provisioning_mode", "[]", "provisioning_mode: must be a string or null");
        assert_field_invalid("model", "\"/m\"", "model: must be an object or null");
        assert_field_invalid("model", "{\"path\":1}", "model.path: must be a string or null");
        assert_field_invalid("model", "{\"id\":{}}", "model.id: must be a string or null");
        assert_field_invalid("flags", "\"--x\"", "flags: must be an array or null");
        assert_field_invalid("flags", "[\"a\",1]", "flags[1]: must be a string");
        assert_field_invalid("device_mask", "0", "device_mask: must be a string or null");
        assert_field_invalid("slots_total", "\"4\"", "slots_total: must be an integer");
        assert_field_invalid("slots_free", "2.5", "slots_free: must be an integer");
        assert_field_invalid("slots", "true", "slots: must be an integer");
        assert_field_invalid("pid", "\"1\"", "pid: must be an integer");
        assert_field_invalid("unit", "1", "unit: must be a string or null");
        assert_field_invalid("ready_at", "1700000000", "ready_at: must be a string or null");
}

TEST(out_of_range) {
        assert_field_invalid("slots_total", "-1", "slots_total: must be an integer in 0..2147483647");
        assert_field_invalid("slots_free", "2147483648", "slots_free: must be an integer in 0..2147483647");
        assert_field_invalid("slots", "-5", "slots: must be an integer in 0..2147483647");
        assert_field_invalid("pid", "0", "pid: must be an integer in 1..2147483647");
        assert_field_invalid("pid", "-1", "pid: must be an integer in 1..2147483647");
        assert_field_invalid("pid", "99999999999999999999", "pid: must be an integer in 1..2147483647");
}

TEST(invalid_values) {
        assert_invalid("{\"url\":\"\",\"pool_id\":\"p\"}", "url: must be a non-empty string");
        assert_invalid("{\"url\":\"http://x\\n\",\"pool_id\":\"p\"}", "url: must be a non-empty string");
        assert_invalid("{\"url\":\"u\",\"pool_id\":\"../p\"}", "pool_id: must match");
        assert_field_invalid("replica_id", "\"r 0\"", "replica_id: must match");
        assert_field_invalid("engine", "\"a\\u0000b\"", "\\u0000 is not allowed");
}

TEST(malformed_documents) {
        _cleanup_free_ char *err = NULL, *big = NULL;
        Handoff h = HANDOFF_INIT;

        assert_invalid("", "invalid JSON at offset 0");
        assert_invalid("{\"url\":", "invalid JSON");
        assert_invalid("{\"url\":\"u\",\"pool_id\":\"p\"} trailing", "invalid JSON at offset");
        assert_invalid("[]", "must be a JSON object");
        assert_invalid("null", "must be a JSON object");

        big = malloc(HANDOFF_MAX_SIZE + 1);
        ASSERT_NOT_NULL(big);
        memset(big, ' ', HANDOFF_MAX_SIZE + 1);
        memcpy(big, "{\"url\":\"u\",\"pool_id\":\"p\"}", 25);
        ASSERT_OK(handoff_from_json_string(big, HANDOFF_MAX_SIZE, &h, &err));
        handoff_done(&h);
        ASSERT_ERROR(handoff_from_json_string(big, HANDOFF_MAX_SIZE + 1, &h, &err), EFBIG);
        ASSERT_CONTAINS(err, "too large");
        ASSERT_NULL(h.url);
}

TEST(read_errors) {
        _cleanup_free_ char *dir = make_tmpdir(), *missing = NULL, *big = NULL, *err = NULL, *path = NULL;
        _cleanup_free_ char *content = NULL;
        Handoff h = HANDOFF_INIT;

        missing = path_join(dir, "missing.json");
        ASSERT_ERROR(handoff_read(missing, &h, &err), ENOENT);
        ASSERT_NOT_NULL(err);
        err = mfree(err);

        content = malloc(HANDOFF_MAX_SIZE + 1);
        ASSERT_NOT_NULL(content);
        memset(content, ' ', HANDOFF_MAX_SIZE + 1);
        big = path_join(dir, "big.json");
        ASSERT_OK(write_file_atomic(big, content, HANDOFF_MAX_SIZE + 1, 0644));
        ASSERT_ERROR(handoff_read(big, &h, &err), EFBIG);
        ASSERT_CONTAINS(err, "too large");
        err = mfree(err);

        path = path_join(dir, "bad.json");
        ASSERT_OK(write_file_atomic(path, "{\"url\":1}", 9, 0644));
        ASSERT_ERROR(handoff_read(path, &h, &err), EINVAL);
        ASSERT_CONTAINS(err, "url: must be a string");
        ASSERT_NULL(h.url);
        rm_rf(dir);
}

TEST(handoff_path) {
        _cleanup_free_ char *p = NULL;

        ASSERT_OK(handoff_path("/run/pool-managerd/engines", "llama-7b", "r0", &p));
        ASSERT_STREQ(p, "/run/pool-managerd/engines/llama-7b-r0.json");
        p = mfree(p);
        ASSERT_OK(handoff_path("/run/engines/", "p", "r1", &p));
        ASSERT_STREQ(p, "/run/engines/p-r1.json");
        p = mfree(p);
        ASSERT_OK(handoff_path(".runtime/engines", "new-pool", "r0", &p));
        ASSERT_STREQ(p, ".runtime/engines/new-pool-r0.json");
        p = mfree(p);

        ASSERT_ERROR(handoff_path("/run", "../etc/passwd", "r0", &p), EINVAL);
        ASSERT_ERROR(handoff_path("/run", "p", "../r0", &p), EINVAL);
        ASSERT_ERROR(handoff_path("/run", "", "r0", &p), EINVAL);
        ASSERT_ERROR(handoff_path("/run", NULL, "r0", &p), EINVAL);
        ASSERT_ERROR(handoff_path("/run", "p", NULL, &p), EINVAL);
        ASSERT_ERROR(handoff_path("", "p", "r0", &p), EINVAL);
        ASSERT_NULL(p);
}

/* Atomicity: the write fails when the target name is taken by a non-empty directory, so
 * the rename fails after the temporary file was written. It must not be left behind. */
TEST(atomic_rename_failure) {
        _cleanup_free_ char *dir = make_tmpdir(), *target = NULL, *inner = NULL, *path = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        struct stat st;

        fill_full(&h);
        ASSERT_OK(handoff_path(dir, h.pool_id, h.replica_id, &target));
        ASSERT_OK(mkdir(target, 0755));
        inner = path_join(target, "x");
        ASSERT_OK(write_file_atomic(inner, "x", 1, 0644));

        ASSERT_TRUE(handoff_write(dir, &h, &path) < 0);
        ASSERT_NULL(path);
        ASSERT_EQ(count_temp_files(dir), 0);
        ASSERT_OK(stat(target, &st));
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        rm_rf(dir);
}

/* Atomicity: a write failing half way (RLIMIT_FSIZE stands in for a full disk) leaves the
 * previous handoff readable and unchanged, and no temporary file. */
TEST(atomic_write_failure) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *before = NULL, *after = NULL, *err = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT, r = HANDOFF_INIT;
        void (*old_handler)(int);
        struct rlimit old, rl;
        int k;

        fill_full(&h);
        ASSERT_OK(handoff_write(dir, &h, &path));
        before = read_string(path);

        /* A much larger document for the second write. */
        for (unsigned i = 0; i < 2000; i++)
                ASSERT_OK(strv_extend(&h.flags, "--some-flag"));
        h.slots_free = 0;

        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &old));
        rl = old;
        rl.rlim_cur = 4096;
        old_handler = signal(SIGXFSZ, SIG_IGN);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
        k = handoff_write(dir, &h, NULL);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old));
        signal(SIGXFSZ, old_handler);
        ASSERT_ERROR(k, EFBIG);

        after = read_string(path);
        ASSERT_STREQ(after, before);
        ASSERT_EQ(count_temp_files(dir), 0);
        ASSERT_OK(handoff_read(path, &r, &err));
        ASSERT_EQ(r.slots_free, 3);
        rm_rf(dir);
}

/* Atomicity: a read-only directory (only meaningful without CAP_DAC_OVERRIDE). */
TEST(atomic_readonly_dir) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *before = NULL, *after = NULL;
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;

        fill_full(&h);
        ASSERT_OK(handoff_write(dir, &h, &path));

        if (geteuid() == 0) {
                fprintf(stderr, "running as root, skipping the read-only directory case\n");
                rm_rf(dir);
                return;
        }

        before = read_string(path);
        ASSERT_OK(chmod(dir, 0555));
        h.slots_free = 1;
        ASSERT_ERROR(handoff_write(dir, &h, NULL), EACCES);
        ASSERT_OK(chmod(dir, 0755));
        after = read_string(path);
        ASSERT_STREQ(after, before);
        ASSERT_EQ(count_temp_files(dir), 0);
        rm_rf(dir);
}

DEFINE_TEST_MAIN
