#include "transport/addr.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/banned.h"

/* Decimal digits only, no sign, no leading zeros beyond "0", <= max. */
static int parse_decimal(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return KM_ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KM_ERR_INVALID;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return KM_ERR_RANGE;
        v = v * 10 + d;
    }
    *out = v;
    return KM_OK;
}

/* Host names: letters, digits, '-', '.', '_' (k8s service names use only
 * these); IPv6 literals arrive here without brackets and add ':'. */
static int host_is_valid(const char *s, size_t len, int ipv6)
{
    if (len == 0 || len > TP_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || (ipv6 && (c == ':' || c == '%'));
        if (!ok)
            return 0;
    }
    return 1;
}

int tp_addr_vsock(struct tp_addr *out, uint32_t cid, uint32_t port, struct km_error *err)
{
    memset(out, 0, sizeof(*out));
    if (cid == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "vsock CID 0 is reserved");
    if (port == 0 || port == 0xffffffffu)
        return km_error_set(err, KM_ERR_INVALID, 0, "vsock port must be 1..4294967294");
    out->kind = TP_KIND_VSOCK;
    out->cid = cid;
    out->port = port;
    return KM_OK;
}

int tp_addr_tcp(struct tp_addr *out, const char *host, uint32_t port, struct km_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(host);
    if (!host_is_valid(host, len, strchr(host, ':') != NULL))
        return km_error_set(err, KM_ERR_INVALID, 0, "invalid TCP host '%.100s'", host);
    if (port == 0 || port > 65535)
        return km_error_set(err, KM_ERR_INVALID, 0, "TCP port %u out of range 1..65535", port);
    out->kind = TP_KIND_TCP;
    memcpy(out->host, host, len + 1);
    out->port = port;
    return KM_OK;
}

int tp_addr_unix(struct tp_addr *out, const char *path, struct km_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(path);
    if (len == 0 || path[0] != '/')
        return km_error_set(err, KM_ERR_INVALID, 0, "unix socket path must be absolute");
    if (len > TP_UNIX_PATH_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "unix socket path longer than %d bytes",
                            TP_UNIX_PATH_MAX);
    out->kind = TP_KIND_UNIX;
    memcpy(out->path, path, len + 1);
    return KM_OK;
}

/* Splits "X:PORT" at the last ':' and parses the port. */
static int split_port(const char *s, size_t len, uint64_t max, size_t *hostlen, uint64_t *port)
{
    size_t colon = len;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon == 0)
        return KM_ERR_INVALID;
    *hostlen = colon - 1;
    return parse_decimal(s + colon, len - colon, max, port);
}

static int parse_vsock(struct tp_addr *out, const char *s, size_t len, struct km_error *err)
{
    size_t cidlen;
    uint64_t port, cid;
    if (split_port(s, len, 0xffffffffu, &cidlen, &port) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "expected vsock://CID:PORT");
    if (cidlen == 3 && strncasecmp(s, "any", 3) == 0)
        cid = TP_VSOCK_CID_ANY;
    else if (parse_decimal(s, cidlen, 0xffffffffu, &cid) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "vsock CID must be a number or 'any'");
    return tp_addr_vsock(out, (uint32_t)cid, (uint32_t)port, err);
}

static int parse_tcp(struct tp_addr *out, const char *s, size_t len, struct km_error *err)
{
    size_t hostlen;
    uint64_t port;
    char host[TP_HOST_MAX + 1];
    if (split_port(s, len, 65535, &hostlen, &port) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "expected tcp://HOST:PORT with PORT 1..65535");
    const char *h = s;
    if (hostlen >= 2 && s[0] == '[' && s[hostlen - 1] == ']') {
        h++;
        hostlen -= 2;
    } else if (memchr(s, ':', hostlen) != NULL) {
        return km_error_set(err, KM_ERR_INVALID, 0, "IPv6 hosts must be written [addr]:port");
    }
    if (hostlen == 0 || hostlen > TP_HOST_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "TCP host missing or too long");
    memcpy(host, h, hostlen);
    host[hostlen] = '\0';
    return tp_addr_tcp(out, host, (uint32_t)port, err);
}

static int parse_unix(struct tp_addr *out, const char *s, size_t len, struct km_error *err)
{
    char path[TP_UNIX_PATH_MAX + 1];
    if (len > TP_UNIX_PATH_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "unix socket path longer than %d bytes",
                            TP_UNIX_PATH_MAX);
    if (memchr(s, '\0', len) != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "unix socket path contains NUL");
    memcpy(path, s, len);
    path[len] = '\0';
    return tp_addr_unix(out, path, err);
}

int tp_addr_parse(struct tp_addr *out, const char *s, size_t len, struct km_error *err)
{
    static const struct {
        const char *scheme;
        int (*parse)(struct tp_addr *, const char *, size_t, struct km_error *);
    } schemes[] = {
        {"vsock://", parse_vsock},
        {"tcp://", parse_tcp},
        {"unix://", parse_unix},
    };
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < KM_ARRAY_LEN(schemes); i++) {
        size_t n = strlen(schemes[i].scheme);
        if (len >= n && strncasecmp(s, schemes[i].scheme, n) == 0) {
            int r = schemes[i].parse(out, s + n, len - n, err);
            if (r != KM_OK) {
                memset(out, 0, sizeof(*out));
                return KM_ERR_INVALID;
            }
            return KM_OK;
        }
    }
    return km_error_set(err, KM_ERR_INVALID, 0,
                        "address '%.100s' must start with vsock://, tcp:// or unix://", s);
}

char *tp_addr_format(char *out, size_t outcap, const struct tp_addr *a)
{
    switch (a->kind) {
    case TP_KIND_VSOCK:
        if (a->cid == TP_VSOCK_CID_ANY)
            snprintf(out, outcap, "vsock://any:%u", a->port);
        else
            snprintf(out, outcap, "vsock://%u:%u", a->cid, a->port);
        break;
    case TP_KIND_TCP:
        if (strchr(a->host, ':') != NULL)
            snprintf(out, outcap, "tcp://[%s]:%u", a->host, a->port);
        else
            snprintf(out, outcap, "tcp://%s:%u", a->host, a->port);
        break;
    case TP_KIND_UNIX:
        snprintf(out, outcap, "unix://%s", a->path);
        break;
    default:
        snprintf(out, outcap, "(invalid address)");
        break;
    }
    return out;
}

char *tp_addr_describe(char *out, size_t outcap, const struct tp_addr *a)
{
    if (a->kind == TP_KIND_VSOCK && a->cid != TP_VSOCK_CID_ANY) {
        snprintf(out, outcap, "CID %u:%u", a->cid, a->port);
        return out;
    }
    return tp_addr_format(out, outcap, a);
}

const char *tp_kind_name(enum tp_kind kind)
{
    switch (kind) {
    case TP_KIND_VSOCK:
        return "vsock";
    case TP_KIND_TCP:
        return "tcp";
    case TP_KIND_UNIX:
        return "unix";
    }
    return "?";
}

int tp_kind_parse(enum tp_kind *out, const char *s)
{
    static const enum tp_kind kinds[] = {TP_KIND_VSOCK, TP_KIND_TCP, TP_KIND_UNIX};
    for (size_t i = 0; i < KM_ARRAY_LEN(kinds); i++) {
        if (strcasecmp(s, tp_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return KM_OK;
        }
    }
    return KM_ERR_INVALID;
}

int tp_addr_equal(const struct tp_addr *a, const struct tp_addr *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case TP_KIND_VSOCK:
        return a->cid == b->cid && a->port == b->port;
    case TP_KIND_TCP:
        return a->port == b->port && strcasecmp(a->host, b->host) == 0;
    case TP_KIND_UNIX:
        return strcmp(a->path, b->path) == 0;
    }
    return 0;
}
