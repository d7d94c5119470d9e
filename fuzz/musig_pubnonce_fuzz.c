/*
 * musig_pubnonce_fuzz.c - parsing of MuSig2 public and aggregate nonces
 * (crypto/musig.h) from arbitrary bytes.
 *
 * The input is cut into 66-byte nonces. Contract: parsing never crashes; a
 * parsed nonce re-serializes to the same bytes (the encodings are
 * canonical); aggregating the parsed nonces gives an aggregate nonce that
 * parses back to itself; aggregate-nonce parsing accepts every public nonce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/musig.h"
#include "common/banned.h"

#define MAX_NONCES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct musig_pubnonce pn[MAX_NONCES];
    struct musig_aggnonce an, back;
    uint8_t enc[MUSIG_PUBNONCE_LEN];
    size_t n = 0;

    /* Lengths other than 66 are refused. */
    if (size != MUSIG_PUBNONCE_LEN && (musig_pubnonce_parse(&pn[0], data, size) != KM_ERR_INVALID ||
                                       musig_aggnonce_parse(&an, data, size) != KM_ERR_INVALID))
        abort();
    for (size_t off = 0; off + MUSIG_PUBNONCE_LEN <= size && n < MAX_NONCES;
         off += MUSIG_PUBNONCE_LEN) {
        const uint8_t *p = data + off;
        int agg_ok = musig_aggnonce_parse(&an, p, MUSIG_PUBNONCE_LEN) == KM_OK;
        if (agg_ok && memcmp(an.bytes, p, MUSIG_AGGNONCE_LEN) != 0)
            abort();
        if (musig_pubnonce_parse(&pn[n], p, MUSIG_PUBNONCE_LEN) != KM_OK)
            continue;
        musig_pubnonce_serialize(enc, &pn[n]);
        if (memcmp(enc, p, MUSIG_PUBNONCE_LEN) != 0 || !agg_ok)
            abort();
        n++;
    }
    if (n > 0) {
        if (musig_nonce_agg(&an, NULL, pn, n) != KM_OK ||
            musig_aggnonce_parse(&back, an.bytes, MUSIG_AGGNONCE_LEN) != KM_OK ||
            memcmp(back.bytes, an.bytes, MUSIG_AGGNONCE_LEN) != 0)
            abort();
    }
    return 0;
}
