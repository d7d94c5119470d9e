#include "nitro_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "test.h"

#include "attest/doc.h"
#include "attest/policy.h"
#include "common/hex.h"
#include "common/banned.h"

const char *const nitro_good_docs[] = {"cape-2022-prod", "epsilon-2026-prod", "eternis-2024-debug"};
const size_t nitro_ngood = KM_ARRAY_LEN(nitro_good_docs);

const char *nitro_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/nitro/%s", KM_TEST_DATA_DIR, name);
    return path;
}

uint8_t *nitro_doc(const char *name, size_t *len)
{
    char file[256];
    size_t n;
    uint8_t *raw = NULL;
    struct km_error err;

    snprintf(file, sizeof(file), "%s.b64", name);
    char *text = test_read_file(nitro_path(file), &n);
    if (attest_doc_read_any(&raw, len, (const uint8_t *)text, n, &err) != KM_OK)
        fail_msg("%s: %s", file, err.msg);
    free(text);
    return raw;
}

json_t *nitro_json(const char *name)
{
    char file[256];
    json_error_t jerr;

    snprintf(file, sizeof(file), "%s.json", name);
    json_t *j = json_load_file(nitro_path(file), JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("%s: %s", file, jerr.text);
    return j;
}

uint8_t *nitro_root(size_t *len)
{
    uint8_t *der = NULL;
    struct km_error err;
    if (attest_root_load(&der, len, nitro_path("aws_nitro_root_g1.pem"), &err) != KM_OK)
        fail_msg("root: %s", err.msg);
    return der;
}

void nitro_unhex(uint8_t *out, size_t n, const char *hex)
{
    if (hex_decode_exact(out, n, hex, strlen(hex)) != KM_OK)
        fail_msg("bad hex in fixture (want %zu bytes): %.40s", n, hex);
}

const char *nitro_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        fail_msg("fixture: no string \"%s\"", key);
    return s;
}

uint64_t nitro_uint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        fail_msg("fixture: no integer \"%s\"", key);
    return (uint64_t)json_integer_value(v);
}

void nitro_sha256_hex(char out[65], const uint8_t *p, size_t n)
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    CHECK(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) == 1);
    hex_encode(out, 65, md, sizeof(md));
}
