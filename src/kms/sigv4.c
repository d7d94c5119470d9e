/*
 * sigv4.c - AWS Signature Version 4 (sigv4.h): canonical request, string
 * to sign, HMAC-SHA256 key derivation and the Authorization header, and
 * the parser a verifying server uses.
 *
 * Everything but the secret key is public, so the canonical request and
 * string to sign are built in struct buf; the secret and the derived keys
 * stay in fixed arrays wiped on every path.
 */
#include "kms/sigv4.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/buf.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define SIGV4_TERMINATOR "aws4_request"

/* ---- Small helpers ----------------------------------------------------------- */

static bool is_unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* RFC 9110 tchar. */
static bool is_tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends p[0..n) percent-encoded: unreserved bytes as they are, every
 * other byte as %XX. */
static int put_encoded(struct buf *b, const uint8_t *p, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        if (is_unreserved(p[i])) {
            r = buf_put_u8(b, p[i]);
        } else {
            char esc[3] = {'%', hexd[p[i] >> 4], hexd[p[i] & 0x0f]};
            r = buf_put(b, esc, sizeof(esc));
        }
    }
    return r;
}

/* Percent-decodes s[0..n) into b. KM_ERR_INVALID for a '%' not followed by
 * two hex digits. */
static int put_decoded(struct buf *b, const char *s, size_t n)
{
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        if (s[i] != '%') {
            r = buf_put_u8(b, (uint8_t)s[i]);
            continue;
        }
        int hi = i + 1 < n ? hex_val(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_val(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return KM_ERR_INVALID;
        r = buf_put_u8(b, (uint8_t)(hi << 4 | lo));
        i += 2;
    }
    return r;
}

/* A malloc'ed copy of b's contents (NUL-terminated). */
static char *buf_strdup(struct buf *b)
{
    const char *s = buf_cstr(b);
    if (s == NULL)
        KM_BUG("out of memory");
    return xstrndup(s, buf_len(b));
}

static void sha256_hex(char out[2 * 32 + 1], const uint8_t *p, size_t n)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    /* SHA-256 only fails on allocation failure: stop like xmalloc does. */
    if (EVP_Digest(p != NULL ? p : (const uint8_t *)"", n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != sizeof(md))
        KM_BUG("SHA-256 failed");
    hex_encode(out, 2 * 32 + 1, md, sizeof(md));
}

static int hmac256(uint8_t out[SIGV4_KEY_LEN], const uint8_t *key, size_t key_len, const void *data,
                   size_t len)
{
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) == NULL || n != SIGV4_KEY_LEN)
        return KM_ERR_CRYPTO;
    return KM_OK;
}

/* ---- Validation of the parameters -------------------------------------------- */

static bool valid_date(const char *s)
{
    if (s == NULL || strlen(s) != SIGV4_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return false;
    for (size_t i = 0; i < SIGV4_DATE_LEN - 1; i++)
        if (i != 8 && !is_digit(s[i]))
            return false;
    return true;
}

/* Region and service: 1..64 of [a-z0-9-]. */
static bool valid_scope_part(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > SIGV4_SCOPE_PART_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '-'))
            return false;
    return true;
}

/* Printable ASCII without space and the separators of the Authorization
 * header. */
static bool valid_access_key(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > SIGV4_ACCESS_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || strchr("/,;=", s[i]) != NULL)
            return false;
    return true;
}

static bool valid_header_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > SIGV4_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(s[i]))
            return false;
    return true;
}

/* No control characters but tab, and line breaks only as obsolete folding
 * (CR? LF followed by a space or tab): anything else could smuggle a
 * header. */
static bool valid_header_value(const char *s)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '\r' && s[i + 1] == '\n')
            continue;
        if (c == '\n') {
            if (s[i + 1] != ' ' && s[i + 1] != '\t')
                return false;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* ---- Canonical pieces -------------------------------------------------------- */

/* Whether the path names a directory: it ends with "/", "/." or "/..". */
static bool ends_as_dir(const char *path, size_t n)
{
    return (n >= 1 && path[n - 1] == '/') || (n >= 2 && memcmp(path + n - 2, "/.", 2) == 0) ||
           (n >= 3 && memcmp(path + n - 3, "/..", 3) == 0);
}

/* Path: segments between '/', with empty and "." segments dropped and ".."
 * removing the previous one; a trailing '/' kept when the path names a
 * directory and something is left. */
static int put_canonical_path(struct buf *b, const char *path)
{
    size_t n = strlen(path);
    size_t *starts = XALLOC_ARRAY(size_t, n / 2 + 1);
    size_t *lens = XALLOC_ARRAY(size_t, n / 2 + 1);
    size_t nseg = 0;
    bool trailing = ends_as_dir(path, n);
    for (size_t i = 0; i < n;) {
        while (i < n && path[i] == '/')
            i++;
        size_t s = i;
        while (i < n && path[i] != '/')
            i++;
        size_t len = i - s;
        if (len == 0 || (len == 1 && path[s] == '.'))
            continue;
        if (len == 2 && path[s] == '.' && path[s + 1] == '.') {
            if (nseg > 0)
                nseg--;
            continue;
        }
        starts[nseg] = s;
        lens[nseg] = len;
        nseg++;
    }
    int r = buf_put_u8(b, '/');
    for (size_t k = 0; r == KM_OK && k < nseg; k++) {
        r = put_encoded(b, (const uint8_t *)path + starts[k], lens[k]);
        if (r == KM_OK && (k + 1 < nseg || trailing))
            r = buf_put_u8(b, '/');
    }
    free(starts);
    free(lens);
    return r;
}

struct qparam {
    char *name;
    char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

/* Decodes then re-encodes s[0..n) into a malloc'ed string. */
static int reencode(char **out, const char *s, size_t n)
{
    struct buf dec, enc;
    buf_init(&dec, SIGV4_CANONICAL_MAX);
    buf_init(&enc, SIGV4_CANONICAL_MAX);
    int r = put_decoded(&dec, s, n);
    if (r == KM_OK)
        r = put_encoded(&enc, buf_peek(&dec), buf_len(&dec));
    if (r == KM_OK)
        *out = buf_strdup(&enc);
    buf_release(&dec);
    buf_release(&enc);
    return r;
}

static int put_canonical_query(struct buf *b, const char *query, struct km_error *err)
{
    size_t n = query != NULL ? strlen(query) : 0;
    if (n == 0)
        return KM_OK;
    size_t max = n / 2 + 1;
    struct qparam *ps = XALLOC_ARRAY(struct qparam, max);
    size_t np = 0;
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < n;) {
        size_t s = i;
        while (i < n && query[i] != '&')
            i++;
        size_t len = i - s;
        i++; /* the '&' */
        if (len == 0)
            continue;
        const char *eq = memchr(query + s, '=', len);
        size_t klen = eq != NULL ? (size_t)(eq - (query + s)) : len;
        r = reencode(&ps[np].name, query + s, klen);
        if (r == KM_OK)
            r = eq != NULL ? reencode(&ps[np].value, eq + 1, len - klen - 1)
                           : reencode(&ps[np].value, "", 0);
        if (ps[np].name != NULL || ps[np].value != NULL)
            np++;
    }
    if (r == KM_OK)
        qsort(ps, np, sizeof(ps[0]), qparam_cmp);
    for (size_t k = 0; r == KM_OK && k < np; k++)
        r = buf_putf(b, "%s%s=%s", k > 0 ? "&" : "", ps[k].name, ps[k].value);
    for (size_t k = 0; k < np; k++) {
        free(ps[k].name);
        free(ps[k].value);
    }
    free(ps);
    if (r == KM_ERR_INVALID)
        return km_error_set(err, r, 0, "sigv4: query string: bad percent-escape");
    return r;
}

struct chdr {
    char name[SIGV4_HEADER_NAME_MAX + 1]; /* lower case */
    const char *value;
    size_t order;
};

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends a header value trimmed, with whitespace runs collapsed and
 * folded lines joined by ','. first says whether a ',' is needed before
 * the first piece (false for the first header of a name). */
static int put_canonical_value(struct buf *b, const char *v, bool *first)
{
    int r = KM_OK;
    const char *line = v;
    while (r == KM_OK && line != NULL) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        size_t s = 0, e = len;
        while (s < e && (line[s] == ' ' || line[s] == '\t'))
            s++;
        while (e > s && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
            e--;
        if (e > s || (*first && nl == NULL)) {
            if (!*first)
                r = buf_put_u8(b, ',');
            *first = false;
            bool space = false;
            for (size_t i = s; r == KM_OK && i < e; i++) {
                if (line[i] == ' ' || line[i] == '\t') {
                    space = true;
                    continue;
                }
                if (space)
                    r = buf_put_u8(b, ' ');
                space = false;
                if (r == KM_OK)
                    r = buf_put_u8(b, (uint8_t)line[i]);
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return r;
}

/* Collects the headers plus X-Amz-Date / X-Amz-Security-Token when the
 * list lacks them, checks them, and sorts them by lower-case name. */
static int collect_headers(struct chdr *hs, size_t *nh, const struct sigv4_request *req,
                           const struct sigv4_credentials *cred, struct km_error *err)
{
    bool host = false, date = false, token = false;
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sigv4_header *h = &req->headers[i];
        if (!valid_header_name(h->name))
            return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: header %zu: bad name", i);
        if (!valid_header_value(h->value))
            return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: header %.64s: bad value", h->name);
        size_t k = 0;
        for (; h->name[k] != '\0'; k++)
            hs[n].name[k] = lower(h->name[k]);
        hs[n].name[k] = '\0';
        hs[n].value = h->value;
        hs[n].order = n;
        if (strcmp(hs[n].name, "host") == 0)
            host = true;
        if (strcmp(hs[n].name, "x-amz-date") == 0) {
            if (strcmp(h->value, req->amz_date) != 0)
                return km_error_set(err, KM_ERR_INVALID, 0,
                                    "sigv4: X-Amz-Date header differs from the signing date");
            date = true;
        }
        if (strcmp(hs[n].name, "x-amz-security-token") == 0) {
            if (cred->session_token != NULL && strcmp(h->value, cred->session_token) != 0)
                return km_error_set(
                    err, KM_ERR_INVALID, 0,
                    "sigv4: X-Amz-Security-Token header differs from the session token");
            token = true;
        }
        n++;
    }
    if (!host)
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: no Host header");
    if (!date) {
        snprintf(hs[n].name, sizeof(hs[n].name), "x-amz-date");
        hs[n].value = req->amz_date;
        hs[n].order = n;
        n++;
    }
    if (cred->session_token != NULL && !token) {
        snprintf(hs[n].name, sizeof(hs[n].name), "x-amz-security-token");
        hs[n].value = cred->session_token;
        hs[n].order = n;
        n++;
    }
    qsort(hs, n, sizeof(hs[0]), chdr_cmp);
    *nh = n;
    return KM_OK;
}

/* Canonical headers ("name:value\n" per name) into b, the signed headers
 * list into sh. */
static int put_canonical_headers(struct buf *b, struct buf *sh, const struct chdr *hs, size_t n)
{
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < n;) {
        bool first = true;
        if (buf_len(sh) > 0)
            r = buf_put_u8(sh, ';');
        if (r == KM_OK)
            r = buf_put_str(sh, hs[i].name);
        if (r == KM_OK)
            r = buf_putf(b, "%s:", hs[i].name);
        size_t j = i;
        for (; r == KM_OK && j < n && strcmp(hs[j].name, hs[i].name) == 0; j++)
            r = put_canonical_value(b, hs[j].value, &first);
        if (r == KM_OK)
            r = buf_put_u8(b, '\n');
        i = j;
    }
    return r;
}

/* ---- Signing ------------------------------------------------------------------- */

int sigv4_signing_key(uint8_t out[SIGV4_KEY_LEN], const char *secret, const char *date8,
                      const char *region, const char *service)
{
    uint8_t k0[4 + SIGV4_SECRET_MAX];
    uint8_t k1[SIGV4_KEY_LEN], k2[SIGV4_KEY_LEN], k3[SIGV4_KEY_LEN];
    size_t slen = strlen(secret);
    int r = KM_OK;
    if (slen > SIGV4_SECRET_MAX) {
        r = KM_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, slen);
    r = hmac256(k1, k0, 4 + slen, date8, strlen(date8));
    if (r == KM_OK)
        r = hmac256(k2, k1, sizeof(k1), region, strlen(region));
    if (r == KM_OK)
        r = hmac256(k3, k2, sizeof(k2), service, strlen(service));
    if (r == KM_OK)
        r = hmac256(out, k3, sizeof(k3), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR));
out:
    secure_wipe(k0, sizeof(k0));
    secure_wipe(k1, sizeof(k1));
    secure_wipe(k2, sizeof(k2));
    secure_wipe(k3, sizeof(k3));
    if (r != KM_OK)
        secure_wipe(out, SIGV4_KEY_LEN);
    return r;
}

static int check_params(const struct sigv4_request *req, const struct sigv4_credentials *cred,
                        struct km_error *err)
{
    if (req->method == NULL || req->method[0] == '\0' || !valid_header_name(req->method))
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad method");
    if (req->path == NULL || strlen(req->path) > SIGV4_CANONICAL_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad or too long path");
    if (req->query != NULL && strlen(req->query) > SIGV4_CANONICAL_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "sigv4: query string too long");
    if (!valid_date(req->amz_date))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "sigv4: the date must be YYYYMMDDTHHMMSSZ (UTC)");
    if (!valid_scope_part(req->region))
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad region");
    if (!valid_scope_part(req->service))
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad service");
    if (req->nheaders > SIGV4_MAX_HEADERS)
        return km_error_set(err, KM_ERR_LIMIT, 0, "sigv4: more than %d headers", SIGV4_MAX_HEADERS);
    if (req->nheaders > 0 && req->headers == NULL)
        KM_BUG("sigv4: headers NULL with nheaders %zu", req->nheaders);
    if (req->body == NULL && req->body_len > 0)
        KM_BUG("sigv4: body NULL with body_len %zu", req->body_len);
    if (!valid_access_key(cred->access_key_id))
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad access key id");
    if (cred->secret_access_key == NULL || cred->secret_access_key[0] == '\0')
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: empty secret access key");
    if (strlen(cred->secret_access_key) > SIGV4_SECRET_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "sigv4: secret access key over %d bytes",
                            SIGV4_SECRET_MAX);
    if (cred->session_token != NULL &&
        (cred->session_token[0] == '\0' || strlen(cred->session_token) > SIGV4_TOKEN_MAX ||
         !valid_header_value(cred->session_token) || strchr(cred->session_token, '\n') != NULL))
        return km_error_set(err, KM_ERR_INVALID, 0, "sigv4: bad session token");
    return KM_OK;
}

void sigv4_signature_clear(struct sigv4_signature *s)
{
    free(s->canonical_request);
    free(s->string_to_sign);
    free(s->authorization);
    free(s->signed_headers);
    memset(s, 0, sizeof(*s));
}

int sigv4_sign(struct sigv4_signature *out, const struct sigv4_request *req,
               const struct sigv4_credentials *cred, struct km_error *err)
{
    struct chdr hs[SIGV4_MAX_HEADERS + 2];
    size_t nh = 0;
    struct buf creq, sh, sts;
    char hash[2 * 32 + 1], date8[9];
    uint8_t key[SIGV4_KEY_LEN], sig[SIGV4_KEY_LEN];

    memset(out, 0, sizeof(*out));
    buf_init(&creq, SIGV4_CANONICAL_MAX);
    buf_init(&sh, SIGV4_CANONICAL_MAX);
    buf_init(&sts, SIGV4_CANONICAL_MAX);
    int r = check_params(req, cred, err);
    if (r == KM_OK)
        r = collect_headers(hs, &nh, req, cred, err);
    if (r != KM_OK)
        goto out;

    r = buf_putf(&creq, "%s\n", req->method);
    if (r == KM_OK)
        r = put_canonical_path(&creq, req->path);
    if (r == KM_OK)
        r = buf_put_u8(&creq, '\n');
    if (r == KM_OK)
        r = put_canonical_query(&creq, req->query, err);
    if (r == KM_ERR_INVALID)
        goto out;
    if (r == KM_OK)
        r = buf_put_u8(&creq, '\n');
    if (r == KM_OK)
        r = put_canonical_headers(&creq, &sh, hs, nh);
    sha256_hex(hash, req->body, req->body_len);
    if (r == KM_OK)
        r = buf_putf(&creq, "\n%s\n%s", buf_cstr(&sh) ? buf_cstr(&sh) : "", hash);
    if (r != KM_OK) {
        r = km_error_set(err, r == KM_ERR_TOO_LARGE ? r : KM_ERR_NOMEM, 0,
                         "sigv4: canonical request over %u bytes", SIGV4_CANONICAL_MAX);
        goto out;
    }

    memcpy(date8, req->amz_date, 8);
    date8[8] = '\0';
    sha256_hex(hash, buf_peek(&creq), buf_len(&creq));
    r = buf_putf(&sts, "%s\n%s\n%s/%s/%s/%s\n%s", SIGV4_ALGORITHM, req->amz_date, date8,
                 req->region, req->service, SIGV4_TERMINATOR, hash);
    if (r == KM_OK)
        r = sigv4_signing_key(key, cred->secret_access_key, date8, req->region, req->service);
    if (r == KM_OK)
        r = hmac256(sig, key, sizeof(key), buf_peek(&sts), buf_len(&sts));
    if (r != KM_OK) {
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "sigv4: HMAC-SHA256 failed");
        goto out;
    }
    hex_encode(out->signature, sizeof(out->signature), sig, sizeof(sig));
    out->canonical_request = buf_strdup(&creq);
    out->string_to_sign = buf_strdup(&sts);
    out->signed_headers = buf_strdup(&sh);
    buf_reset(&sts);
    r = buf_putf(&sts, "%s Credential=%s/%s/%s/%s/%s, SignedHeaders=%s, Signature=%s",
                 SIGV4_ALGORITHM, cred->access_key_id, date8, req->region, req->service,
                 SIGV4_TERMINATOR, out->signed_headers, out->signature);
    if (r != KM_OK) {
        r = km_error_set(err, r, 0, "sigv4: Authorization header too long");
        goto out;
    }
    out->authorization = buf_strdup(&sts);
out:
    secure_wipe(key, sizeof(key));
    secure_wipe(sig, sizeof(sig));
    buf_release(&creq);
    buf_release(&sh);
    buf_release(&sts);
    if (r != KM_OK)
        sigv4_signature_clear(out);
    return r;
}

/* ---- Dates ------------------------------------------------------------------------ */

void sigv4_format_date(char out[SIGV4_DATE_LEN + 1], time_t t)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
        KM_BUG("cannot format time %lld", (long long)t);
}

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int sigv4_parse_date(time_t *out, const char *s)
{
    *out = 0;
    if (!valid_date(s))
        return KM_ERR_INVALID;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = digits(s, 4) - 1900;
    tm.tm_mon = digits(s + 4, 2) - 1;
    tm.tm_mday = digits(s + 6, 2);
    tm.tm_hour = digits(s + 9, 2);
    tm.tm_min = digits(s + 11, 2);
    tm.tm_sec = digits(s + 13, 2);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return KM_ERR_INVALID;
    *out = timegm(&tm);
    return KM_OK;
}

/* ---- Authorization header parsing -------------------------------------------------- */

/* Copies s[0..n) into out (cap bytes with the NUL); false if it does not
 * fit or is empty. */
static bool copy_part(char *out, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static int parse_credential(struct sigv4_authorization *a, const char *s, size_t n)
{
    const char *parts[5];
    size_t lens[5], np = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (np == 5)
                return KM_ERR_INVALID;
            parts[np] = s + start;
            lens[np] = i - start;
            np++;
            start = i + 1;
        }
    }
    if (np != 5 || !copy_part(a->access_key_id, sizeof(a->access_key_id), parts[0], lens[0]) ||
        !copy_part(a->date8, sizeof(a->date8), parts[1], lens[1]) || lens[1] != 8 ||
        !copy_part(a->region, sizeof(a->region), parts[2], lens[2]) ||
        !copy_part(a->service, sizeof(a->service), parts[3], lens[3]) ||
        lens[4] != strlen(SIGV4_TERMINATOR) || memcmp(parts[4], SIGV4_TERMINATOR, lens[4]) != 0)
        return KM_ERR_INVALID;
    for (size_t i = 0; i < 8; i++)
        if (!is_digit(a->date8[i]))
            return KM_ERR_INVALID;
    return KM_OK;
}

static int parse_signed_headers(struct sigv4_authorization *a, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ';')
            continue;
        if (a->nsigned == SIGV4_MAX_HEADERS ||
            !copy_part(a->signed_headers[a->nsigned], sizeof(a->signed_headers[0]), s + start,
                       i - start))
            return KM_ERR_INVALID;
        for (const char *c = a->signed_headers[a->nsigned]; *c != '\0'; c++)
            if (!is_tchar(*c) || (*c >= 'A' && *c <= 'Z'))
                return KM_ERR_INVALID;
        a->nsigned++;
        start = i + 1;
    }
    return KM_OK;
}

int sigv4_parse_authorization(struct sigv4_authorization *out, const char *value,
                              struct km_error *err)
{
    static const char prefix[] = SIGV4_ALGORITHM " ";
    bool have_cred = false, have_sh = false, have_sig = false;

    memset(out, 0, sizeof(*out));
    if (value == NULL || strncmp(value, prefix, sizeof(prefix) - 1) != 0)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "authorization: not " SIGV4_ALGORITHM " (other schemes unsupported)");
    const char *p = value + sizeof(prefix) - 1;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        const char *eq = memchr(p, '=', n);
        if (eq == NULL)
            return km_error_set(err, KM_ERR_INVALID, 0, "authorization: a part without '='");
        size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
        int r = KM_ERR_INVALID;
        const char *what = "part";
        if (klen == 10 && memcmp(p, "Credential", 10) == 0 && !have_cred) {
            what = "Credential";
            have_cred = true;
            r = parse_credential(out, eq + 1, vlen);
        } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0 && !have_sh) {
            what = "SignedHeaders";
            have_sh = true;
            r = parse_signed_headers(out, eq + 1, vlen);
        } else if (klen == 9 && memcmp(p, "Signature", 9) == 0 && !have_sig) {
            what = "Signature";
            have_sig = true;
            r = vlen == SIGV4_SIG_HEX_LEN &&
                        copy_part(out->signature, sizeof(out->signature), eq + 1, vlen)
                    ? KM_OK
                    : KM_ERR_INVALID;
        }
        if (r != KM_OK) {
            memset(out, 0, sizeof(*out));
            return km_error_set(err, KM_ERR_INVALID, 0, "authorization: bad or repeated %s", what);
        }
        p = end != NULL ? end + 1 : p + strlen(p);
    }
    if (!have_cred || !have_sh || !have_sig) {
        memset(out, 0, sizeof(*out));
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "authorization: Credential, SignedHeaders and Signature required");
    }
    return KM_OK;
}
