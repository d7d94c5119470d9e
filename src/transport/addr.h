/*
 * addr.h - enclave addresses: vsock://CID:PORT, tcp://HOST:PORT, unix:///PATH.
 *
 * One struct names any endpoint the gateway or the enclave uses. The text
 * forms are what config files, logs and `keymeld enclave ping` show. For
 * listening, `vsock://any:PORT` means VMADDR_CID_ANY.
 *
 * Pure: no I/O, no allocation.
 */
#ifndef KM_TRANSPORT_ADDR_H
#define KM_TRANSPORT_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum tp_kind {
    TP_KIND_VSOCK = 1,
    TP_KIND_TCP = 2,
    TP_KIND_UNIX = 3,
};

#define TP_HOST_MAX       253 /* DNS name limit */
#define TP_UNIX_PATH_MAX  107 /* sizeof(sun_path) - 1 */
#define TP_ADDR_STR_MAX   384 /* enough for any formatted address */
#define TP_VSOCK_CID_ANY  0xffffffffu
#define TP_VSOCK_CID_HOST 2u /* CID 2: the host (development enclaves) */

struct tp_addr {
    enum tp_kind kind;
    uint32_t cid;                    /* vsock only */
    uint32_t port;                   /* vsock (32-bit) or tcp (1..65535) */
    char host[TP_HOST_MAX + 1];      /* tcp only: name, IPv4 or IPv6 literal */
    char path[TP_UNIX_PATH_MAX + 1]; /* unix only */
};

/* Parses one address from s[0..len) (no NUL needed).
 *  vsock://CID:PORT   CID decimal or "any"; PORT decimal u32
 *  tcp://HOST:PORT    HOST a name, IPv4, or [IPv6]; PORT 1..65535
 *  unix:///PATH       absolute path of at most TP_UNIX_PATH_MAX bytes
 * Returns KM_OK or KM_ERR_INVALID with a message in *err (may be NULL). */
int tp_addr_parse(struct tp_addr *out, const char *s, size_t len, struct km_error *err) KM_WUR;

/* Canonical text form ("vsock://2:5000", "tcp://[::1]:5000"). Always
 * NUL-terminates; truncates only if outcap < TP_ADDR_STR_MAX. Returns out. */
char *tp_addr_format(char *out, size_t outcap, const struct tp_addr *a);

/* The endpoint as the seed's error messages name it: "CID 3:5000" for
 * VSock, the canonical form otherwise. Returns out. */
char *tp_addr_describe(char *out, size_t outcap, const struct tp_addr *a);

/* Constructors that validate like the parser. */
int tp_addr_vsock(struct tp_addr *out, uint32_t cid, uint32_t port, struct km_error *err) KM_WUR;
int tp_addr_tcp(struct tp_addr *out, const char *host, uint32_t port, struct km_error *err) KM_WUR;
int tp_addr_unix(struct tp_addr *out, const char *path, struct km_error *err) KM_WUR;

/* "vsock" | "tcp" | "unix"; parse is case-insensitive. */
const char *tp_kind_name(enum tp_kind kind);
int tp_kind_parse(enum tp_kind *out, const char *s) KM_WUR;

/* 1 if both name the same endpoint (same kind and fields), else 0. */
int tp_addr_equal(const struct tp_addr *a, const struct tp_addr *b);

#endif /* KM_TRANSPORT_ADDR_H */
