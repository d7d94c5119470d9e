/*
 * taproot_address_fuzz.c - bech32m P2TR address decoding (crypto/taproot.h)
 * of arbitrary strings.
 *
 * The first byte picks the expected network ("bc", "tb" or "bcrt"); the
 * rest is the address. Contract: no crash; a decoded address re-encodes to
 * the lower-case form of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/taproot.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hrps[] = {"bc", "tb", "bcrt"};
    uint8_t key[32];
    char enc[TAPROOT_ADDR_MAX], lower[TAPROOT_ADDR_MAX];

    if (size == 0)
        return 0;
    const char *hrp = hrps[data[0] % 3];
    const char *addr = (const char *)data + 1;
    size_t len = size - 1;
    if (taproot_address_decode(key, hrp, addr, len) != KM_OK)
        return 0;
    if (len >= sizeof(lower) || taproot_address(enc, sizeof(enc), hrp, key) != KM_OK)
        abort();
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] + 32 : addr[i]);
    lower[len] = '\0';
    if (strcmp(enc, lower) != 0)
        abort();
    return 0;
}
