#include "btc_test.h"

#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hex.h"
#include "common/banned.h"

#ifndef KM_TEST_DATA_DIR
#error "KM_TEST_DATA_DIR must name tests/data"
#endif

size_t btc_read_lines(const char *rel, size_t nfields, struct btc_line **out)
{
    char path[4096];
    size_t len, n = 0, cap = 16;
    struct btc_line *lines = calloc(cap, sizeof(*lines));

    KM_ASSERT(nfields >= 1 && nfields <= BTC_LINE_FIELDS && lines != NULL);
    snprintf(path, sizeof(path), "%s/%s", KM_TEST_DATA_DIR, rel);
    char *text = test_read_file(path, &len), *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln != NULL; ln = strtok_r(NULL, "\n", &save)) {
        if (n == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof(*lines));
            KM_ASSERT(lines != NULL);
        }
        struct btc_line *l = &lines[n++];
        memset(l, 0, sizeof(*l));
        char *p = ln;
        for (size_t k = 0; k < nfields; k++) {
            char *sp = k + 1 < nfields ? strchr(p, ' ') : NULL;
            if (sp != NULL)
                *sp = '\0';
            l->f[l->n++] = strdup(p);
            if (sp == NULL)
                break;
            p = sp + 1;
        }
        if (l->n != nfields)
            fail_msg("%s line %zu: %zu fields, want %zu", rel, n, l->n, nfields);
    }
    free(text);
    *out = lines;
    return n;
}

void btc_free_lines(struct btc_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < lines[i].n; k++)
            free(lines[i].f[k]);
    free(lines);
}

uint8_t *btc_unhex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *p = malloc(cap);
    if (p == NULL || hex_decode(p, cap, len, hex, strlen(hex)) != KM_OK)
        fail_msg("bad hex: %.80s", hex);
    return p;
}

void btc_unhex_n(uint8_t *out, size_t n, const char *hex)
{
    if (hex_decode_exact(out, n, hex, strlen(hex)) != KM_OK)
        fail_msg("bad hex (want %zu bytes): %.80s", n, hex);
}

void btc_unhex_id(uint8_t out[32], const char *hex)
{
    uint8_t rev[32];
    btc_unhex_n(rev, 32, hex);
    for (size_t i = 0; i < 32; i++)
        out[i] = rev[31 - i];
}

static uint8_t *take(struct buf *b, size_t *len)
{
    *len = buf_len(b);
    uint8_t *p = malloc(*len ? *len : 1);
    KM_ASSERT(p != NULL);
    if (*len > 0)
        memcpy(p, buf_peek(b), *len);
    buf_release(b);
    return p;
}

uint8_t *btc_tx_bytes(const struct tx *tx, unsigned flags, size_t *len)
{
    struct buf b;
    buf_init(&b, 3u * TX_MAX_SIZE);
    CHECK_OK(tx_serialize(&b, tx, flags));
    return take(&b, len);
}

uint8_t *btc_psbt_bytes(const struct psbt *p, size_t *len)
{
    struct buf b;
    buf_init(&b, PSBT_MAX_SIZE);
    CHECK_OK(psbt_serialize(&b, p));
    return take(&b, len);
}

struct psbt *btc_psbt_ok(const uint8_t *p, size_t len)
{
    struct km_error e;
    struct psbt *ps = NULL;
    km_error_clear(&e);
    int r = psbt_parse(&ps, p, len, &e);
    if (r != KM_OK)
        fail_msg("psbt_parse: %s (%s)", e.msg, km_errname(r));
    return ps;
}
