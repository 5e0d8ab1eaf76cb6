/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * src/curl-dl.c against the installed libcurl: not mapped before dlopen_curl() (this test, like
 * the daemon, does not link it), loaded once, every sym_curl_* resolved, and usable (an easy
 * handle, a numeric option passed as long, a multi handle).
 */

#include <dlfcn.h>
#include <stdbool.h>

#include "curl-dl.h"
#include "test-util.h"

static bool curl_mapped(void) {
        for (size_t i = 0; i < 2; i++) {
                const char *soname = i == 0 ? "libcurl-gnutls.so.4" : "libcurl.so.4";
                void *dl = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);

                if (dl) {
                        (void) dlclose(dl);
                        return true;
                }
        }
        return false;
}

static void check_symbols_work(void) {
        struct curl_slist *headers;
        CURLM *multi;
        CURL *easy;
        long code = -1;

        ASSERT_STREQ(sym_curl_easy_strerror(CURLE_OK), "No error");

        easy = sym_curl_easy_init();
        ASSERT_NOT_NULL(easy);
        ASSERT_EQ(sym_curl_easy_setopt(easy, CURLOPT_URL, "http://127.0.0.1:9/"), CURLE_OK);
        ASSERT_EQ(sym_curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 1000L), CURLE_OK);
        ASSERT_EQ(sym_curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http"), CURLE_OK);
        /* No transfer yet: no response code. */
        ASSERT_EQ(sym_curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
        ASSERT_EQ(code, 0);

        headers = sym_curl_slist_append(NULL, "Expect:");
        ASSERT_NOT_NULL(headers);
        ASSERT_EQ(sym_curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers), CURLE_OK);

        multi = sym_curl_multi_init();
        ASSERT_NOT_NULL(multi);
        ASSERT_EQ(sym_curl_multi_add_handle(multi, easy), CURLM_OK);
        ASSERT_EQ(sym_curl_multi_remove_handle(multi, easy), CURLM_OK);
        ASSERT_EQ(sym_curl_multi_cleanup(multi), CURLM_OK);
        sym_curl_easy_cleanup(easy);
        sym_curl_slist_free_all(headers);
}

/* One case: whether libcurl is mapped before dlopen_curl() depends on no other case running first. */
TEST(dlopen_curl) {
        ASSERT_FALSE(curl_mapped());

        ASSERT_OK(dlopen_curl());
        ASSERT_TRUE(curl_mapped());
        /* Once: the second call returns what the first one found. */
        ASSERT_EQ(dlopen_curl(), 0);

        ASSERT_NOT_NULL(sym_curl_easy_cleanup);
        ASSERT_NOT_NULL(sym_curl_easy_getinfo);
        ASSERT_NOT_NULL(sym_curl_easy_init);
        ASSERT_NOT_NULL(sym_curl_easy_setopt);
        ASSERT_NOT_NULL(sym_curl_easy_strerror);
        ASSERT_NOT_NULL(sym_curl_multi_add_handle);
        ASSERT_NOT_NULL(sym_curl_multi_assign);
        ASSERT_NOT_NULL(sym_curl_multi_cleanup);
        ASSERT_NOT_NULL(sym_curl_multi_info_read);
        ASSERT_NOT_NULL(sym_curl_multi_init);
        ASSERT_NOT_NULL(sym_curl_multi_remove_handle);
        ASSERT_NOT_NULL(sym_curl_multi_setopt);
        ASSERT_NOT_NULL(sym_curl_multi_socket_action);
        ASSERT_NOT_NULL(sym_curl_slist_append);
        ASSERT_NOT_NULL(sym_curl_slist_free_all);
        check_symbols_work();
}

DEFINE_TEST_MAIN
