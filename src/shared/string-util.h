/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Validation of names that end up in unit names, file names and environment blocks. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_ID_MAX 64

/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: pool and replica ids become parts of unit and file names. */
bool pool_id_is_valid(const char *s);
/* [A-Z_][A-Z0-9_]* */
bool env_name_is_valid(const char *s);
/* An IPv4 or IPv6 literal, or "localhost". */
bool host_is_valid(const char *s);
/* True for 127.0.0.0/8, ::1 and "localhost". */
bool host_is_loopback(const char *s);

/* An address and port, as Listen= and the engines' URLs write them. */
typedef struct HostPort {
        int families[2];                /* the addresses to try, in order; AF_UNSPEC: none */
        unsigned char addresses[2][16]; /* in_addr or in6_addr */
        uint16_t port;
} HostPort;

/*
 * Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" at the start of s: "localhost" is
 * 127.0.0.1, then ::1 (nothing is resolved); the port is 1 to 65535 in at most 5 digits. A bare
 * IPv6 literal is refused: in "::1:9200" the port cannot be told apart from the address.
 * *ret_end: the first character after the port, for the caller to judge. -EINVAL if malformed.
 */
int host_port_parse(const char *s, const char **ret_end, HostPort *ret);

/*
 * Escapes a string for use inside a unit name: characters outside [A-Za-z0-9:_.-] become
 * \xNN like systemd-escape; a valid pool id is returned unchanged, so unit names stay
 * readable (pool-engine-llama-7b.service) and the mapping is injective.
 */
int unit_name_escape(const char *s, char **ret);
/* The engine unit of a pool: "pool-engine-<escaped id>.service". The one place this rule lives
 * (the daemon names units by it, poolctl finds an engine's journal by it when the daemon is down,
 * re-adoption recognises our units by ENGINE_UNIT_PREFIX). */
#define ENGINE_UNIT_PREFIX "pool-engine-"
int pool_unit_name(const char *id, char **ret);

/* Compares two strings in time independent of where they differ. */
bool streq_consttime(const char *a, const char *b);

/* Appends printf output to *buf (a malloc'ed string, may be NULL). */
int strextendf(char **buf, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* "1.5 GiB", "512.0 MiB", "10 B": binary units, one decimal. buf must hold FORMAT_BYTES_MAX. */
#define FORMAT_BYTES_MAX 32
char *format_bytes(char *buf, size_t size, uint64_t bytes);
#define FORMAT_BYTES(b) format_bytes((char[FORMAT_BYTES_MAX]) {}, FORMAT_BYTES_MAX, (b))

/* Removes trailing whitespace and newlines in place. */
char *strstrip_trailing(char *s);
