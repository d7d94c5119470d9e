#include "crypto/schnorr.h"

#include <string.h>

#include <secp256k1_schnorrsig.h>

#include "common/secure.h"
#include "crypto/ctx.h"
#include "common/banned.h"

int schnorr_sign(uint8_t sig[SCHNORR_SIG_LEN], const struct keypair *kp, const uint8_t *msg,
                 size_t msglen, const uint8_t *aux_rand)
{
    static const uint8_t empty[1];
    uint8_t aux[SCHNORR_AUX_LEN];
    secp256k1_schnorrsig_extraparams ep = SECP256K1_SCHNORRSIG_EXTRAPARAMS_INIT;
    int r = KM_ERR_CRYPTO;

    memset(sig, 0, SCHNORR_SIG_LEN);
    if (aux_rand != NULL) {
        memcpy(aux, aux_rand, sizeof(aux));
    } else if ((r = secure_random(aux, sizeof(aux))) != KM_OK) {
        goto out;
    }
    ep.ndata = aux;
    if (!secp256k1_schnorrsig_sign_custom(crypto_ctx(), sig, msglen ? msg : empty, msglen, &kp->kp,
                                          &ep)) {
        r = KM_ERR_CRYPTO;
        memset(sig, 0, SCHNORR_SIG_LEN);
        goto out;
    }
    r = KM_OK;
out:
    secure_wipe(aux, sizeof(aux));
    return r;
}

int schnorr_verify(const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t msglen,
                   const uint8_t *pubkey, size_t pklen)
{
    static const uint8_t empty[1];
    const secp256k1_context *ctx = crypto_ctx();
    secp256k1_xonly_pubkey pk;

    if (siglen != SCHNORR_SIG_LEN || pklen != SCHNORR_PUBKEY_LEN)
        return KM_ERR_INVALID;
    if (!secp256k1_xonly_pubkey_parse(ctx, &pk, pubkey))
        return KM_ERR_INVALID;
    if (!secp256k1_schnorrsig_verify(ctx, sig, msglen ? msg : empty, msglen, &pk))
        return KM_ERR_CRYPTO;
    return KM_OK;
}
