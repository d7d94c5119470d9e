/*
 * bitcoin_address_fuzz.c - segwit address decoding (address_segwit_decode,
 * bitcoin/address.h) of arbitrary strings.
 *
 * The first byte picks the expected network ("bc", "tb" or "bcrt"); the
 * rest is the address. Contract: no crash; a refused address leaves the
 * result zeroed; a decoded address re-encodes to the lower-case form of the
 * input, gives a scriptPubKey, decodes the same with address_decode (on
 * that network) and with no other network's hrp, and, when it is a P2TR
 * output (version 1, 32 bytes), address_taproot gives it back too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/address.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum address_network nets[] = {ADDRESS_MAINNET, ADDRESS_TESTNET, ADDRESS_REGTEST};
    struct address_segwit w, w2;
    enum address_network net;
    uint8_t spk[ADDRESS_SCRIPT_MAX];
    char enc[ADDRESS_STR_MAX], lower[ADDRESS_STR_MAX];

    if (size == 0)
        return 0;
    size_t pick = data[0] % 3u;
    const char *hrp = address_network_hrp(nets[pick]);
    const char *addr = (const char *)data + 1;
    size_t len = size - 1;
    if (address_segwit_decode(&w, NULL, hrp, addr, len) != KM_OK) {
        if (w.version != 0 || w.program_len != 0)
            abort();
        return 0;
    }
    if (len >= sizeof(lower) || w.version > 16 || w.program_len < ADDRESS_PROGRAM_MIN ||
        w.program_len > ADDRESS_PROGRAM_MAX)
        abort();
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] + 32 : addr[i]);
    lower[len] = '\0';
    if (address_segwit_encode(enc, sizeof(enc), hrp, &w) != KM_OK || strcmp(enc, lower) != 0)
        abort();
    if (address_segwit_script(spk, &w) != 2 + w.program_len)
        abort();
    if (address_decode(&w2, &net, NULL, addr, len) != KM_OK || net != nets[pick] ||
        w2.version != w.version || w2.program_len != w.program_len ||
        memcmp(w2.program, w.program, w.program_len) != 0)
        abort();
    for (size_t i = 0; i < 3; i++) {
        if (i != pick &&
            address_segwit_decode(&w2, NULL, address_network_hrp(nets[i]), addr, len) == KM_OK)
            abort();
    }
    if (w.version == 1 && w.program_len == 32) {
        if (address_taproot(enc, sizeof(enc), nets[pick], w.program) != KM_OK ||
            strcmp(enc, lower) != 0)
            abort();
    }
    return 0;
}
