/*
 * policy.c - the trust configuration files (policy.h): the PCR policy
 * (JSON, parsed with jansson) and the pinned root certificate (PEM).
 */
#include "attest/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/hex.h"
#include "common/banned.h"

/* The exact text of the AWS Nitro Enclaves Root-G1 as AWS publishes it. */
const char attest_aws_nitro_root_g1_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL\n"
    "MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD\n"
    "VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4\n"
    "MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL\n"
    "DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG\n"
    "BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb\n"
    "48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE\n"
    "h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF\n"
    "R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC\n"
    "MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW\n"
    "rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N\n"
    "IwLz3/Y=\n"
    "-----END CERTIFICATE-----\n";

/* A PEM file holding one certificate is about 1 KiB; refuse anything huge. */
#define ATTEST_ROOT_FILE_MAX (64u * 1024u)

/* Parses "PCR<n>" with n in 0..31 written without leading zeros. Returns
 * the index or -1. */
static int pcr_key_index(const char *k)
{
    size_t n = strlen(k);
    int v = 0;

    if (n < 4 || n > 5 || memcmp(k, "PCR", 3) != 0)
        return -1;
    if (n == 5 && k[3] == '0')
        return -1;
    for (size_t i = 3; i < n; i++) {
        if (k[i] < '0' || k[i] > '9')
            return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v < ATTEST_MAX_PCRS ? v : -1;
}

static int parse_set(struct attest_pcr_set *s, json_t *obj, size_t idx, struct km_error *err)
{
    const char *key;
    json_t *val;
    size_t n = 0;

    if (!json_is_object(obj))
        return km_error_set(err, KM_ERR_INVALID, 0, "pcr_sets[%zu]: not an object", idx);
    json_object_foreach(obj, key, val)
    {
        int i = pcr_key_index(key);
        const char *hex = json_string_value(val);

        if (i < 0)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "pcr_sets[%zu]: unknown key \"%.40s\" (expected PCR0..PCR31)", idx,
                                key);
        if (hex == NULL ||
            hex_decode_exact(s->value[i], ATTEST_PCR_LEN, hex, json_string_length(val)) != KM_OK)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "pcr_sets[%zu].%s: not %d bytes of hex (%d hex digits)", idx, key,
                                ATTEST_PCR_LEN, 2 * ATTEST_PCR_LEN);
        s->want[i] = true;
        n++;
    }
    if (n == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "pcr_sets[%zu]: names no PCR", idx);
    return KM_OK;
}

int attest_pcr_policy_parse(struct attest_pcr_policy *out, const uint8_t *p, size_t len,
                            struct km_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *sets;
    const char *key;
    json_t *val;
    int r = KM_OK;

    KM_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (len > ATTEST_POLICY_FILE_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                            "PCR policy: %zu bytes exceed the limit of %u", len,
                            ATTEST_POLICY_FILE_MAX);
    root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "PCR policy: not JSON: %.200s (line %d)",
                            jerr.text, jerr.line);
    if (!json_is_object(root)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "PCR policy: not a JSON object");
        goto out;
    }
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "pcr_sets") != 0) {
            r = km_error_set(err, KM_ERR_INVALID, 0, "PCR policy: unknown key \"%.40s\"", key);
            goto out;
        }
    }
    sets = json_object_get(root, "pcr_sets");
    if (!json_is_array(sets)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "PCR policy: pcr_sets is missing or not an array");
        goto out;
    }
    if (json_array_size(sets) == 0) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "PCR policy: pcr_sets is empty");
        goto out;
    }
    if (json_array_size(sets) > ATTEST_POLICY_MAX_SETS) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "PCR policy: pcr_sets has %zu sets (at most %d)",
                         json_array_size(sets), ATTEST_POLICY_MAX_SETS);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(sets); i++) {
        if ((r = parse_set(&out->sets[i], json_array_get(sets, i), i, err)) != KM_OK)
            goto out;
    }
    out->nsets = json_array_size(sets);
out:
    json_decref(root);
    if (r != KM_OK)
        memset(out, 0, sizeof(*out));
    return r;
}

/* Reads a whole file of at most max bytes into a malloc'ed buffer. */
static int read_file(uint8_t **out, size_t *out_len, const char *path, size_t max, const char *what,
                     struct km_error *err)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int r = KM_OK;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    *out_len = 0;
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "%s: cannot open %s: %s", what, path,
                            strerror(errno));
    p = malloc(max + 1);
    if (p == NULL) {
        r = km_error_set(err, KM_ERR_NOMEM, 0, "%s: out of memory", what);
        goto out;
    }
    n = fread(p, 1, max + 1, f);
    if (ferror(f)) {
        r = km_error_set(err, KM_ERR_IO, errno, "%s: cannot read %s: %s", what, path,
                         strerror(errno));
        goto out;
    }
    if (n > max) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "%s: %s is larger than %zu bytes", what, path,
                         max);
        goto out;
    }
    *out = p;
    *out_len = n;
    p = NULL;
out:
    free(p);
    fclose(f);
    return r;
}

int attest_pcr_policy_load(struct attest_pcr_policy *out, const char *path, struct km_error *err)
{
    uint8_t *p;
    size_t n;
    int r;

    KM_ASSERT(out != NULL && path != NULL);
    memset(out, 0, sizeof(*out));
    if ((r = read_file(&p, &n, path, ATTEST_POLICY_FILE_MAX, "PCR policy", err)) != KM_OK)
        return r;
    r = attest_pcr_policy_parse(out, p, n, err);
    free(p);
    if (r != KM_OK && err != NULL)
        km_error_prefix(err, "%s", path);
    return r;
}

int attest_pcr_policy_write(const char *path, const uint8_t pcr0[ATTEST_PCR_LEN],
                            const uint8_t pcr1[ATTEST_PCR_LEN], const uint8_t pcr2[ATTEST_PCR_LEN],
                            const uint8_t *pcr8, struct km_error *err)
{
    const uint8_t *vals[4] = {pcr0, pcr1, pcr2, pcr8};
    static const char *const names[4] = {"PCR0", "PCR1", "PCR2", "PCR8"};
    char text[1024], hex[2 * ATTEST_PCR_LEN + 1];
    size_t n = 0, nvals = pcr8 != NULL ? 4 : 3;
    int fd, r = KM_OK;

    KM_ASSERT(path != NULL && pcr0 != NULL && pcr1 != NULL && pcr2 != NULL);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{\n  \"pcr_sets\": [\n    {\n");
    for (size_t i = 0; i < nvals; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "      \"%s\": \"%s\"%s\n", names[i],
                              hex_encode(hex, sizeof(hex), vals[i], ATTEST_PCR_LEN),
                              i + 1 < nvals ? "," : "");
    }
    n += (size_t)snprintf(text + n, sizeof(text) - n, "    }\n  ]\n}\n");
    KM_ASSERT(n < sizeof(text));

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return km_error_set(err, KM_ERR_IO, errno, "PCR policy: cannot create %s: %s", path,
                            strerror(errno));
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = km_error_set(err, KM_ERR_IO, errno, "PCR policy: cannot write %s: %s", path,
                             strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (r == KM_OK && fsync(fd) != 0)
        r = km_error_set(err, KM_ERR_IO, errno, "PCR policy: cannot write %s: %s", path,
                         strerror(errno));
    if (close(fd) != 0 && r == KM_OK)
        r = km_error_set(err, KM_ERR_IO, errno, "PCR policy: cannot write %s: %s", path,
                         strerror(errno));
    return r;
}

int attest_root_from_pem(uint8_t **der, size_t *der_len, const uint8_t *p, size_t len,
                         struct km_error *err)
{
    BIO *bio = NULL;
    X509 *x = NULL, *extra = NULL;
    unsigned char *q;
    int n, r = KM_OK;

    KM_ASSERT(der != NULL && der_len != NULL);
    *der = NULL;
    *der_len = 0;
    if (len > ATTEST_ROOT_FILE_MAX)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "root: PEM of %zu bytes exceeds %u", len,
                            ATTEST_ROOT_FILE_MAX);
    bio = BIO_new_mem_buf(p, (int)len);
    if (bio == NULL) {
        r = km_error_set(err, KM_ERR_NOMEM, 0, "root: out of memory");
        goto out;
    }
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "root: no PEM certificate found");
        goto out;
    }
    /* One root, not a bundle: a second certificate would be ignored
     * silently otherwise. */
    extra = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (extra != NULL) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "root: more than one certificate in the PEM");
        goto out;
    }
    n = i2d_X509(x, NULL);
    if (n <= 0) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "root: cannot encode the certificate as DER");
        goto out;
    }
    *der = malloc((size_t)n);
    if (*der == NULL) {
        r = km_error_set(err, KM_ERR_NOMEM, 0, "root: out of memory");
        goto out;
    }
    q = *der;
    if (i2d_X509(x, &q) != n) {
        free(*der);
        *der = NULL;
        r = km_error_set(err, KM_ERR_INVALID, 0, "root: cannot encode the certificate as DER");
        goto out;
    }
    *der_len = (size_t)n;
out:
    X509_free(extra);
    X509_free(x);
    BIO_free(bio);
    ERR_clear_error();
    return r;
}

int attest_root_load(uint8_t **der, size_t *der_len, const char *path, struct km_error *err)
{
    uint8_t *p;
    size_t n;
    int r;

    KM_ASSERT(der != NULL && der_len != NULL && path != NULL);
    *der = NULL;
    *der_len = 0;
    if ((r = read_file(&p, &n, path, ATTEST_ROOT_FILE_MAX, "root", err)) != KM_OK)
        return r;
    r = attest_root_from_pem(der, der_len, p, n, err);
    free(p);
    if (r != KM_OK && err != NULL)
        km_error_prefix(err, "%s", path);
    return r;
}
