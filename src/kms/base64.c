/*
 * base64.c - strict standard base64 (base64.h).
 */
#include "kms/base64.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "common/banned.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *kms_b64_encode(const uint8_t *p, size_t n)
{
    char *out = xmalloc(st_add(st_mult((n + 2) / 3, 4), 1));
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t q = n - i < 3 ? n - i : 3;
        uint32_t w = (uint32_t)p[i] << 16;
        if (q > 1)
            w |= (uint32_t)p[i + 1] << 8;
        if (q > 2)
            w |= p[i + 2];
        out[o++] = alphabet[w >> 18 & 63];
        out[o++] = alphabet[w >> 12 & 63];
        out[o++] = q > 1 ? alphabet[w >> 6 & 63] : '=';
        out[o++] = q > 2 ? alphabet[w & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int kms_b64_decode(uint8_t **out, size_t *out_len, const char *s, size_t n, size_t max)
{
    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0)
        return KM_ERR_INVALID;
    if (n == 0)
        return KM_OK;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t olen = n / 4 * 3 - pad;
    if (olen > max)
        return KM_ERR_TOO_LARGE;
    uint8_t *p = xmalloc(olen > 0 ? olen : 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        size_t data = i + 4 == n ? 4 - pad : 4;
        uint32_t w = 0;
        for (size_t k = 0; k < 4; k++) {
            int v = k < data ? b64_val(s[i + k]) : 0;
            if (v < 0) {
                free(p);
                return KM_ERR_INVALID;
            }
            w = w << 6 | (uint32_t)v;
        }
        if ((data == 2 && (w & 0xffff) != 0) || (data == 3 && (w & 0xff) != 0)) {
            free(p);
            return KM_ERR_INVALID;
        }
        p[o++] = (uint8_t)(w >> 16);
        if (data > 2)
            p[o++] = (uint8_t)(w >> 8);
        if (data > 3)
            p[o++] = (uint8_t)w;
    }
    *out = p;
    *out_len = o;
    return KM_OK;
}
