/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * libcurl, loaded with dlopen() when first needed rather than linked: Debian's libcurl brings
 * libcrypto, Kerberos, LDAP, libssh2, RTMP, SASL... (3.3 MiB of RSS) into a daemon that needs
 * curl only to reach etcd ([Fleet] Etcd=). As systemd does for its optional libraries
 * (src/shared/dlfcn-util.h): one dlopen_curl() call fills the sym_curl_* pointers below, each
 * with the prototype of <curl/curl.h>, which stays included for the types only.
 *
 * Calls through sym_curl_easy_setopt() and sym_curl_easy_getinfo() bypass curl.h's
 * typecheck-gcc macros: numeric options take a long (1L, not 1), CURLINFO_RESPONSE_CODE a long *.
 */

#include <curl/curl.h>

extern typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
extern typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
extern typeof(curl_easy_init) *sym_curl_easy_init;
extern typeof(curl_easy_setopt) *sym_curl_easy_setopt;
extern typeof(curl_easy_strerror) *sym_curl_easy_strerror;
extern typeof(curl_multi_add_handle) *sym_curl_multi_add_handle;
extern typeof(curl_multi_assign) *sym_curl_multi_assign;
extern typeof(curl_multi_cleanup) *sym_curl_multi_cleanup;
extern typeof(curl_multi_info_read) *sym_curl_multi_info_read;
extern typeof(curl_multi_init) *sym_curl_multi_init;
extern typeof(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
extern typeof(curl_multi_setopt) *sym_curl_multi_setopt;
extern typeof(curl_multi_socket_action) *sym_curl_multi_socket_action;
extern typeof(curl_slist_append) *sym_curl_slist_append;
extern typeof(curl_slist_free_all) *sym_curl_slist_free_all;

/*
 * Loads libcurl-gnutls.so.4 (or else libcurl.so.4, the same ABI), resolves the sym_curl_*
 * pointers and runs curl_global_init(). Once: later calls return the first call's result.
 * -EOPNOTSUPP when the library or one of its functions is missing, -EIO when its initialisation
 * fails; logs the error, naming the library, the first time.
 */
int dlopen_curl(void);
