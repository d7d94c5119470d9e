#include "crypto/keypair.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/ct.h"
#include "crypto/ctx.h"
#include "common/banned.h"

int keypair_init(struct keypair *kp, const uint8_t seckey[KEYPAIR_SECKEY_LEN])
{
    const secp256k1_context *ctx = crypto_ctx();
    secp256k1_pubkey pub;
    size_t len = KEYPAIR_PUBKEY_LEN;

    memset(kp, 0, sizeof(*kp));
    memcpy(kp->seckey, seckey, KEYPAIR_SECKEY_LEN);
    int ok = secp256k1_keypair_create(ctx, &kp->kp, kp->seckey);
    /* Whether the key is valid is public: an invalid key is refused. */
    ct_declassify(&ok, sizeof(ok));
    if (!ok) {
        keypair_clear(kp);
        return KM_ERR_INVALID;
    }
    if (!secp256k1_keypair_pub(ctx, &pub, &kp->kp))
        KM_BUG("keypair_pub failed on a valid keypair");
    /* The public key is public by design: both our copy and the public half
     * of libsecp256k1's keypair (data[32..96), see keypair_save in
     * secp256k1's extrakeys module), which upstream declassifies in
     * keypair_load only when built with valgrind support (Debian's is not). */
    ct_declassify(&pub, sizeof(pub));
    ct_declassify(kp->kp.data + 32, sizeof(kp->kp.data) - 32);
    if (!secp256k1_ec_pubkey_serialize(ctx, kp->pubkey, &len, &pub, SECP256K1_EC_COMPRESSED))
        KM_BUG("pubkey serialize failed");
    memcpy(kp->xonly, kp->pubkey + 1, KEYPAIR_XONLY_LEN);
    return KM_OK;
}

int keypair_generate(struct keypair *kp)
{
    uint8_t sk[KEYPAIR_SECKEY_LEN];
    int r;

    do {
        r = secure_random(sk, sizeof(sk));
        if (r != KM_OK)
            break;
        r = keypair_init(kp, sk);
    } while (r == KM_ERR_INVALID); /* probability ~2^-128 */
    secure_wipe(sk, sizeof(sk));
    return r;
}

void keypair_clear(struct keypair *kp)
{
    if (kp != NULL)
        secure_wipe(kp, sizeof(*kp));
}
