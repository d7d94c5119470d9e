/*
 * bitcoin_descriptor_fuzz.c - descriptors (bitcoin/descriptor.h) and
 * bech32/bech32m addresses (bitcoin/address.h) of arbitrary bytes.
 *
 * The first byte picks what the rest is: bits 0-1 are descriptor flags
 * (DESCRIPTOR_F_REQUIRE_CHECKSUM, DESCRIPTOR_F_ALLOW_PRIVATE), bits 2-3 the
 * mode: 0 a descriptor, 1 a BIP-380 key expression, 2 an address, 3 a
 * checksum check. Contract: no crash, no read past the input; a parsed
 * descriptor evaluates at indexes 0, 1 and 2^31-1 (failing only with the
 * documented codes) to a P2TR script whose address decodes back; one
 * without private keys prints a canonical string that parses (checksum
 * required) to the same outputs and prints identically; a decoded address
 * re-encodes to the input in lower case.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/address.h"
#include "bitcoin/descriptor.h"
#include "common/buf.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t indexes[] = {0, 1, DESCRIPTOR_MAX_INDEX};

static void check_output(const struct descriptor_output *o)
{
    char addr[ADDRESS_STR_MAX];
    struct address_segwit w;
    enum address_network net;
    uint8_t spk[ADDRESS_SCRIPT_MAX];

    if (o->script_pubkey[0] != 0x51 || o->script_pubkey[1] != 0x20 ||
        memcmp(o->script_pubkey + 2, o->output_key, 32) != 0)
        abort();
    if (address_taproot(addr, sizeof(addr), ADDRESS_REGTEST, o->output_key) != KM_OK ||
        address_decode(&w, &net, NULL, addr, strlen(addr)) != KM_OK || net != ADDRESS_REGTEST ||
        address_segwit_script(spk, &w) != 34 || memcmp(spk, o->script_pubkey, 34) != 0)
        abort();
}

/* Evaluates d at each index; returns how many succeeded (outs filled). */
static size_t eval(const struct descriptor *d, struct descriptor_output outs[3], int ok[3])
{
    size_t good = 0;
    for (size_t i = 0; i < 3; i++) {
        int r = descriptor_output(&outs[i], NULL, d, indexes[i]);
        ok[i] = r == KM_OK;
        if (r == KM_OK) {
            check_output(&outs[i]);
            good++;
        } else if (r != KM_ERR_UNSUPPORTED && r != KM_ERR_CRYPTO && r != KM_ERR_INVALID) {
            abort();
        }
    }
    return good;
}

static void check_round_trip(const struct descriptor *d, const struct descriptor_output outs[3],
                             const int ok[3])
{
    struct descriptor *d2 = NULL;
    struct descriptor_output again[3];
    int ok2[3];
    struct buf s, s2;

    buf_init(&s, 4u * DESCRIPTOR_MAX_LEN);
    buf_init(&s2, 4u * DESCRIPTOR_MAX_LEN);
    if (descriptor_to_string(&s, d) != KM_OK)
        abort();
    if (descriptor_parse(&d2, NULL, (const char *)buf_peek(&s), buf_len(&s),
                         DESCRIPTOR_F_REQUIRE_CHECKSUM) != KM_OK)
        abort();
    if (descriptor_is_ranged(d2) != descriptor_is_ranged(d))
        abort();
    eval(d2, again, ok2);
    for (size_t i = 0; i < 3; i++) {
        if (ok2[i] != ok[i] || (ok[i] && memcmp(&again[i], &outs[i], sizeof(outs[i])) != 0))
            abort();
    }
    if (descriptor_to_string(&s2, d2) != KM_OK || buf_len(&s2) != buf_len(&s) ||
        memcmp(buf_peek(&s2), buf_peek(&s), buf_len(&s)) != 0)
        abort();
    descriptor_free(d2);
    buf_release(&s);
    buf_release(&s2);
}

static void fuzz_descriptor(const char *s, size_t len, unsigned flags)
{
    struct descriptor *d = NULL;
    struct descriptor_output outs[3];
    int ok[3];

    if (descriptor_parse(&d, NULL, s, len, flags) != KM_OK) {
        if (d != NULL)
            abort();
        return;
    }
    eval(d, outs, ok);
    /* Not ranged: the index does not matter. */
    if (!descriptor_is_ranged(d) && ok[0] &&
        (!ok[2] || memcmp(&outs[0], &outs[2], sizeof(outs[0])) != 0))
        abort();
    if (!descriptor_has_private(d))
        check_round_trip(d, outs, ok);
    descriptor_free(d);
}

static void lower(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    out[n] = '\0';
}

static void fuzz_address(const char *s, size_t len)
{
    struct address_segwit w;
    enum address_network net;
    enum address_encoding enc;
    char hrp[ADDRESS_HRP_MAX_LEN + 1], out[ADDRESS_STR_MAX], low[ADDRESS_STR_MAX];
    uint8_t d[ADDRESS_BECH32_MAX_LEN], spk[ADDRESS_SCRIPT_MAX];
    size_t n;

    low[0] = '\0';
    if (len > ADDRESS_BECH32_MAX_LEN)
        return;
    lower(low, s, len);
    if (address_bech32_decode(&enc, hrp, d, sizeof(d), &n, NULL, s, len) == KM_OK) {
        if (address_bech32_encode(out, sizeof(out), enc, hrp, d, n) != KM_OK)
            abort();
        if (strcmp(out, low) != 0)
            abort();
    }
    if (address_decode(&w, &net, NULL, s, len) == KM_OK) {
        if (address_segwit_encode(out, sizeof(out), address_network_hrp(net), &w) != KM_OK ||
            strcmp(out, low) != 0 || address_segwit_script(spk, &w) != 2 + w.program_len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t plen;
    int r;

    if (size == 0)
        return 0;
    unsigned flags = data[0] & 3u, mode = (data[0] >> 2) & 3u;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    switch (mode) {
    case 0:
        fuzz_descriptor(s, len, flags);
        break;
    case 1:
        r = descriptor_key_check(NULL, s, len, flags);
        if (r != KM_OK && r != KM_ERR_INVALID && r != KM_ERR_UNSUPPORTED && r != KM_ERR_TOO_LARGE)
            abort();
        break;
    case 2:
        fuzz_address(s, len);
        break;
    default:
        if (descriptor_checksum_check(&plen, NULL, s, len, (int)(flags & 1)) == KM_OK && plen > len)
            abort();
        break;
    }
    return 0;
}
