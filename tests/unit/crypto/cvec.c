#include "cvec.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/banned.h"

char *cvec_load_text(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", test_vectors_dir(), rel);
    return test_read_file(path, len);
}

json_t *cvec_load_json(const char *rel)
{
    json_error_t jerr;
    size_t len;
    char *text = cvec_load_text(rel, &len);
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: line %d: %s", rel, jerr.line, jerr.text);
    free(text);
    return root;
}

void cvec_hex(uint8_t *out, size_t n, const json_t *str)
{
    if (!json_is_string(str))
        fail_msg("vector field is not a hex string");
    cvec_hex_str(out, n, json_string_value(str));
}

void cvec_hex_str(uint8_t *out, size_t n, const char *hex)
{
    if (hex_decode_exact(out, n, hex, strlen(hex)) != KM_OK)
        fail_msg("bad hex (want %zu bytes): %s", n, hex);
}

uint8_t *cvec_hex_alloc(const json_t *str, size_t *len)
{
    if (!json_is_string(str))
        fail_msg("vector field is not a hex string");
    const char *hex = json_string_value(str);
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *p = malloc(cap);
    if (p == NULL || hex_decode(p, cap, len, hex, strlen(hex)) != KM_OK)
        fail_msg("bad hex: %s", hex);
    return p;
}

size_t cvec_index(const json_t *arr, size_t i)
{
    const json_t *v = json_array_get(arr, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        fail_msg("vector index %zu is not a non-negative integer", i);
    return (size_t)json_integer_value(v);
}
