#include "gateway/auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "crypto/auth.h"
#include "gateway/replay.h"
#include "common/banned.h"

static int unauthorized(struct http_response *resp, const char *msg, const char *detail)
{
    http_reply_error(resp, 401, "unauthorized", "%s%s", msg, detail);
    return KM_ERR_CRYPTO;
}

static bool parse_timestamp(const char *s, uint64_t *out)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
    }
    errno = 0;
    *out = strtoull(s, NULL, 10);
    return errno == 0;
}

int gw_auth_check(struct gateway *gw, const struct http_request *req, const char *pubkey_hex,
                  const char *who, struct http_response *resp)
{
    const char *ts_s = http_header(req, GW_HDR_TIMESTAMP);
    const char *nonce_s = http_header(req, GW_HDR_NONCE);
    const char *sig_s = http_header(req, GW_HDR_SIGNATURE);
    if (ts_s == NULL || nonce_s == NULL || sig_s == NULL)
        return unauthorized(resp,
                            "missing request signature: send X-KeyMeld-Timestamp, X-KeyMeld-Nonce "
                            "and X-KeyMeld-Signature signed by ",
                            who);

    struct auth_request ar = {0};
    uint8_t sig[AUTH_SIG_LEN], pubkey[AUTH_PUBKEY_LEN];
    if (!parse_timestamp(ts_s, &ar.timestamp))
        return unauthorized(resp, "X-KeyMeld-Timestamp must be Unix seconds", "");
    if (hex_decode_exact(ar.nonce, AUTH_NONCE_LEN, nonce_s, strlen(nonce_s)) != KM_OK)
        return unauthorized(resp, "X-KeyMeld-Nonce must be 32 hex characters", "");
    if (hex_decode_exact(sig, sizeof(sig), sig_s, strlen(sig_s)) != KM_OK)
        return unauthorized(resp, "X-KeyMeld-Signature must be 128 hex characters", "");
    uint64_t now = clock_wall_ms() / 1000u;
    if (!auth_timestamp_fresh(now, ar.timestamp, GW_AUTH_WINDOW_SECS))
        return unauthorized(resp,
                            "request timestamp outside the accepted window (+/- 300 s): check "
                            "the client's clock",
                            "");
    if (hex_decode_exact(pubkey, sizeof(pubkey), pubkey_hex, strlen(pubkey_hex)) != KM_OK) {
        http_reply_error(resp, 500, "internal_error", "stored auth key is unreadable");
        return KM_ERR_INTERNAL;
    }

    ar.method = req->method;
    ar.method_len = strlen(req->method);
    ar.path = req->url;
    ar.path_len = strlen(req->url);
    if (auth_body_hash(ar.body_hash, req->body, req->body_len) != KM_OK ||
        auth_verify(sig, sizeof(sig), pubkey, sizeof(pubkey), &ar) != KM_OK)
        return unauthorized(resp, "invalid request signature for ", who);

    /* Only now, with a valid signature, spend the nonce, in canonical form
     * (re-encoded: "AB" and "ab" are the same nonce). */
    char nonce_hex[2 * AUTH_NONCE_LEN + 1];
    hex_encode(nonce_hex, sizeof(nonce_hex), ar.nonce, AUTH_NONCE_LEN);
    int r =
        gw_replay_claim(gw->replay, pubkey_hex, nonce_hex, (int64_t)now + 2 * GW_AUTH_WINDOW_SECS);
    if (r == KM_ERR_EXISTS)
        return unauthorized(resp, "replayed request: this nonce was already used", "");
    if (r == KM_ERR_LIMIT) {
        http_reply_error(resp, 503, "service_unavailable",
                         "too many request nonces waiting to be recorded: the database is not "
                         "keeping up; retry later");
        return r;
    }
    if (r != KM_OK) {
        /* The database is down or busy: the request did nothing yet. */
        http_reply_error(resp, 503, "service_unavailable",
                         "the replay cache cannot reach the database (%s): nothing was done, "
                         "retry shortly",
                         km_strerror(r));
        resp->retry_after = 2;
        return r;
    }
    return KM_OK;
}

int gw_auth_hide_unknown(struct gateway *gw, const struct http_request *req, const char *who,
                         struct http_response *resp)
{
    /* A valid x-only key nobody holds (the BIP-340 test key of vector 0's
     * public side is as good as any): the same checks run, the signature
     * fails, and the reply is the one a wrong signer gets. */
    static const char nobody[] = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
    int r = gw_auth_check(gw, req, nobody, who, resp);
    if (r == KM_OK) /* cannot happen: nobody holds its key */
        r = unauthorized(resp, "invalid request signature for ", who);
    return r;
}
