/*
 * ecies_decrypt_fuzz.c - ECIES decryption (crypto/ecies.h) of arbitrary
 * bytes under a fixed recipient key (01 02 .. 20, the key of the committed
 * seeds, which are valid eciesjs ciphertexts to it).
 *
 * Contract checked: never crashes or reads out of bounds; a refusal zeroes
 * the output and leaves a message; a success yields exactly size - 97 bytes
 * and re-encrypting them round-trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ecies.h"
#include "crypto/keypair.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sk[32];
    struct km_error err;
    size_t outlen = 1;

    for (int i = 0; i < 32; i++)
        sk[i] = (uint8_t)(i + 1);
    uint8_t *out = malloc(size + 1);
    if (out == NULL)
        return 0;
    km_error_clear(&err);
    int r = ecies_decrypt(out, size, &outlen, &err, sk, data, size);
    if (r == KM_OK) {
        if (size < ECIES_OVERHEAD || outlen != size - ECIES_OVERHEAD)
            abort();
        struct keypair kp;
        uint8_t *ct = malloc(size), *pt = malloc(size + 1);
        size_t ctlen, ptlen;
        if (ct == NULL || pt == NULL || keypair_init(&kp, sk) != KM_OK ||
            ecies_encrypt(ct, size, &ctlen, kp.pubkey, 33, out, outlen) != KM_OK ||
            ecies_decrypt(pt, size, &ptlen, NULL, sk, ct, ctlen) != KM_OK || ptlen != outlen ||
            memcmp(pt, out, outlen) != 0)
            abort();
        keypair_clear(&kp);
        free(ct);
        free(pt);
    } else if (outlen != 0 || err.code != r || err.msg[0] == '\0') {
        abort();
    }
    free(out);
    return 0;
}
