#include "crypto/musig_testonly.h"

#include <string.h>

#include "crypto/musig_impl.h"
#include "common/banned.h"

int musig_testonly_secnonce_load(struct musig_secnonce **out,
                                 const uint8_t in[MUSIG_SECNONCE_BYTES])
{
    struct musig_secnonce *sn = musig_secnonce_alloc();

    *out = NULL;
    if (sn == NULL)
        return KM_ERR_NOMEM;
    memcpy(sn->k[0], in, 32);
    memcpy(sn->k[1], in + 32, 32);
    memcpy(sn->pk, in + 64, MUSIG_PUBKEY_LEN);
    *out = sn;
    return KM_OK;
}

void musig_testonly_secnonce_store(uint8_t out[MUSIG_SECNONCE_BYTES],
                                   const struct musig_secnonce *sn)
{
    memcpy(out, sn->k[0], 32);
    memcpy(out + 32, sn->k[1], 32);
    memcpy(out + 64, sn->pk, MUSIG_PUBKEY_LEN);
}

int musig_testonly_nonce_gen(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                             const uint8_t rand_[32], const uint8_t *sk,
                             const uint8_t pk[MUSIG_PUBKEY_LEN], const uint8_t *aggpk,
                             const uint8_t *msg, size_t msglen, const uint8_t *extra_in,
                             size_t extra_len)
{
    return musig_nonce_gen_internal(secnonce, pubnonce, rand_, sk, pk, aggpk, msg, msglen, extra_in,
                                    extra_len);
}
