/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

#include "curl-dl.h"
#include "log.h"
#include "shared/macro.h"

typeof(curl_easy_cleanup) *sym_curl_easy_cleanup;
typeof(curl_easy_getinfo) *sym_curl_easy_getinfo;
typeof(curl_easy_init) *sym_curl_easy_init;
typeof(curl_easy_setopt) *sym_curl_easy_setopt;
typeof(curl_easy_strerror) *sym_curl_easy_strerror;
typeof(curl_multi_add_handle) *sym_curl_multi_add_handle;
typeof(curl_multi_assign) *sym_curl_multi_assign;
typeof(curl_multi_cleanup) *sym_curl_multi_cleanup;
typeof(curl_multi_info_read) *sym_curl_multi_info_read;
typeof(curl_multi_init) *sym_curl_multi_init;
typeof(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
typeof(curl_multi_setopt) *sym_curl_multi_setopt;
typeof(curl_multi_socket_action) *sym_curl_multi_socket_action;
typeof(curl_slist_append) *sym_curl_slist_append;
typeof(curl_slist_free_all) *sym_curl_slist_free_all;
/* Called here only. */
static typeof(curl_global_init) *sym_curl_global_init;

/* The pointer and the name of a sym_ variable, checked against the prototype in curl.h (the
 * parentheses keep curl.h's function-like macros from expanding). As systemd's DLSYM_ARG(). */
#define DLSYM_ARG(name)                                                                         \
        ({                                                                                      \
                _Static_assert(__builtin_types_compatible_p(typeof(sym_##name), typeof(&(name))), \
                               "sym_" #name " does not have the prototype of " #name);        \
                (void **) &sym_##name;                                                          \
        }), #name

/* Sonames in order of preference: the build is against libcurl4-gnutls-dev (debian/control). */
static const char *const curl_sonames[] = { "libcurl-gnutls.so.4", "libcurl.so.4" };

/* From libssh2.h, which we do not build against: libssh2_init() leaves the crypto backend alone. */
#define LIBSSH2_INIT_NO_CRYPTO 0x0001

/* Pairs of (void **, name), ending with NULL. On failure every pointer is NULL again. */
static int dlsym_many(void *dl, const char *soname, ...) {
        va_list ap;
        void **p;
        int r = 0;

        va_start(ap, soname);
        while ((p = va_arg(ap, void **))) {
                const char *name = va_arg(ap, const char *);

                *p = dlsym(dl, name);
                if (!*p && r == 0)
                        r = log_error_errno(EOPNOTSUPP, "Function %s() not found in %s: %s", name, soname,
                                            dlerror() ?: "no such symbol");
        }
        va_end(ap);
        if (r == 0)
                return 0;

        va_start(ap, soname);
        while ((p = va_arg(ap, void **))) {
                (void) va_arg(ap, const char *);
                *p = NULL;
        }
        va_end(ap);
        return r;
}

/*
 * Debian's libcurl, whatever its TLS flavour, links libssh2 (for scp:// and sftp://), and
 * curl_global_init() calls libssh2_init(0), which initialises libssh2's crypto backend: with
 * Debian's libssh2 that is OpenSSL, whose engines it loads. That touches about 1.5 MiB of
 * libcrypto, in a daemon whose curl does TLS with GnuTLS (debian/control), for protocols that
 * none of our transfers allows (CURLOPT_PROTOCOLS_STR is "http" or "http,https" on every easy
 * handle). libssh2 initialises that backend only in the first libssh2_init() of the process, and
 * not when that call passes LIBSSH2_INIT_NO_CRYPTO; curl's own call then only counts. So the
 * first call is made here, between loading libcurl and curl's. The function is looked up among
 * what libcurl loaded (its handle's dependencies: RTLD_LOCAL keeps them out of the global
 * scope), not linked: a libcurl built without libssh2 does not bring it, and then there is
 * nothing to keep from happening.
 */
static int curl_global_init_without_ssh2_crypto(void *dl, const char *soname) {
        int (*ssh2_init)(int flags);

        ssh2_init = (int (*)(int)) dlsym(dl, "libssh2_init");
        if (ssh2_init && ssh2_init(LIBSSH2_INIT_NO_CRYPTO) != 0)
                return log_error_errno(EIO, "Failed to initialise libssh2 (linked by %s).", soname);

        if (sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(EIO, "Failed to initialise %s (curl_global_init()).", soname);
        return 0;
}

int dlopen_curl(void) {
        static int cached = 1;          /* not tried yet */
        const char *soname = NULL;
        void *dl = NULL;
        int r;

        if (cached <= 0)
                return cached;

        for (size_t i = 0; i < ELEMENTSOF(curl_sonames) && !dl; i++) {
                soname = curl_sonames[i];
                dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        }
        if (!dl)
                /* dlerror() says why the last one failed. */
                return (cached = log_error_errno(EOPNOTSUPP, "Failed to load libcurl (%s or %s): %s",
                                                 curl_sonames[0], curl_sonames[1],
                                                 dlerror() ?: "dlopen() failed"));

        r = dlsym_many(dl, soname,
                       DLSYM_ARG(curl_easy_cleanup),
                       DLSYM_ARG(curl_easy_getinfo),
                       DLSYM_ARG(curl_easy_init),
                       DLSYM_ARG(curl_easy_setopt),
                       DLSYM_ARG(curl_easy_strerror),
                       DLSYM_ARG(curl_global_init),
                       DLSYM_ARG(curl_multi_add_handle),
                       DLSYM_ARG(curl_multi_assign),
                       DLSYM_ARG(curl_multi_cleanup),
                       DLSYM_ARG(curl_multi_info_read),
                       DLSYM_ARG(curl_multi_init),
                       DLSYM_ARG(curl_multi_remove_handle),
                       DLSYM_ARG(curl_multi_setopt),
                       DLSYM_ARG(curl_multi_socket_action),
                       DLSYM_ARG(curl_slist_append),
                       DLSYM_ARG(curl_slist_free_all),
                       NULL);
        if (r < 0) {
                (void) dlclose(dl);
                return (cached = r);
        }
        /* Not closed when this fails: curl may have set up part of its global state. Nothing calls
         * the pointers when dlopen_curl() failed. */
        r = curl_global_init_without_ssh2_crypto(dl, soname);
        if (r < 0)
                return (cached = r);

        /* Never closed: the pointers stay valid until exit. */
        log_debug("Loaded %s.", soname);
        return (cached = 0);
}
