/*
 * keymeld_example.c - a wallet-side program built against the installed
 * KeyMeld client library (docs/INTEGRATION.md "Using the C library").
 *
 *   keymeld_example
 *       offline checks, no gateway needed:
 *        1. the MuSig2 aggregate key of four BIP-327 test keys given out of
 *           order: the library sorts (KeySort) and aggregates (KeyAgg) them;
 *           the x-only key must be BIP-327's key_agg_vectors.json result for
 *           [X1, X1, X2, X2];
 *        2. a message sealed with a fresh session secret opens with that
 *           secret and not with another one;
 *        3. a participant's approval key for a session is deterministic.
 *   keymeld_example GATEWAY_URL
 *       the offline checks, then the gateway's version and enclaves;
 *   keymeld_example GATEWAY_URL --pcrs FILE [--root PEM]
 *   keymeld_example GATEWAY_URL --insecure-skip-attestation
 *       ... then a 2-of-2 keygen and the signing of one message, every
 *       result decrypted and verified here. The enclaves' attestation is
 *       checked against the PCR policy FILE and the root certificate PEM
 *       (default: AWS Nitro's); the development stack writes both to
 *       run/client.env. Set KEYMELD_API_KEY if the gateway wants an API key
 *       for reserve.
 *
 * Build: make (pkg-config keymeld-client). Exit status 0 when every step
 * passed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/participant.h"
#include "client/rest.h"
#include "client/session.h"
#include "common/err.h"
#include "common/uuid.h"
#include "crypto/keypair.h"

/* BIP-327 key_agg_vectors.json: pubkeys X1 and X2, and the x-only KeyAgg
 * result of [X1, X1, X2, X2] (key_indices [0, 0, 1, 1]). */
static const char X1_HEX[] = "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
static const char X2_HEX[] = "03dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659";
static const char AGG_XONLY_HEX[] =
    "69bc22bfa5d106306e48a20679de1d7389386124d07571d0d872686028c26a3e";

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 2 * n hex digits into out[n]; false on anything else. */
static bool from_hex(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* out must hold 2 * n + 1 bytes. */
static void to_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int failed(const char *what, int rc)
{
    fprintf(stderr, "keymeld_example: %s: %s\n", what, km_strerror(rc));
    return 1;
}

/* 1. KeySort + KeyAgg of fixed keys against the published vector. */
static int check_aggregate_key(void)
{
    uint8_t x1[PROTO_PUBKEY_LEN], x2[PROTO_PUBKEY_LEN];
    if (!from_hex(x1, sizeof(x1), X1_HEX) || !from_hex(x2, sizeof(x2), X2_HEX))
        return failed("test keys", KM_ERR_INVALID);
    uint8_t keys[4][PROTO_PUBKEY_LEN];
    memcpy(keys[0], x2, sizeof(x2));
    memcpy(keys[1], x1, sizeof(x1));
    memcpy(keys[2], x2, sizeof(x2));
    memcpy(keys[3], x1, sizeof(x1));

    uint8_t agg[PROTO_PUBKEY_LEN], xonly[PROTO_XONLY_LEN];
    int rc =
        participant_aggregate_key(agg, xonly, (const uint8_t(*)[PROTO_PUBKEY_LEN])keys, 4, NULL);
    if (rc != KM_OK)
        return failed("participant_aggregate_key", rc);
    char agg_hex[2 * PROTO_PUBKEY_LEN + 1], xonly_hex[2 * PROTO_XONLY_LEN + 1];
    to_hex(agg_hex, agg, sizeof(agg));
    to_hex(xonly_hex, xonly, sizeof(xonly));
    printf("aggregate key: %s\n", agg_hex);
    printf("aggregate x-only key: %s\n", xonly_hex);
    if (strcmp(xonly_hex, AGG_XONLY_HEX) != 0) {
        fprintf(stderr, "keymeld_example: aggregate key differs from BIP-327's %s\n",
                AGG_XONLY_HEX);
        return 1;
    }
    printf("ok: aggregate key matches BIP-327 key_agg_vectors.json\n");
    return 0;
}

/* 2. Session encryption round trip: what the gateway carries but cannot
 * read. */
static int check_seal_open(void)
{
    uint8_t secret[PARTICIPANT_SECRET_LEN], other[PARTICIPANT_SECRET_LEN];
    uint8_t msg[PROTO_MSG_LEN], back[PROTO_MSG_LEN];
    struct proto_blob blob = {0};
    struct km_error err;
    size_t len = 0;
    int status = 1;

    memset(msg, 0x42, sizeof(msg));
    int rc = participant_secret_new(secret);
    if (rc == KM_OK)
        rc = participant_secret_new(other);
    if (rc != KM_OK) {
        failed("participant_secret_new", rc);
        goto out;
    }
    rc = participant_seal_message(&blob, secret, msg);
    if (rc != KM_OK) {
        failed("participant_seal_message", rc);
        goto out;
    }
    rc = participant_open(back, sizeof(back), &len, &err, secret, PROTO_CTX_MESSAGE, &blob);
    if (rc != KM_OK || len != sizeof(msg) || memcmp(back, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "keymeld_example: sealed message did not open: %s\n",
                rc != KM_OK ? err.msg : "different bytes");
        goto out;
    }
    rc = participant_open(back, sizeof(back), &len, &err, other, PROTO_CTX_MESSAGE, &blob);
    if (rc != KM_ERR_CRYPTO) {
        fprintf(stderr, "keymeld_example: opening with another secret gave %s\n", km_strerror(rc));
        goto out;
    }
    printf("ok: sealed %zu-byte message (%zu bytes) opens with its session secret only\n",
           sizeof(msg), blob.len);
    status = 0;
out:
    proto_blob_clear(&blob);
    memset(secret, 0, sizeof(secret));
    memset(other, 0, sizeof(other));
    return status;
}

/* 3. The approval key a participant registers (auth_pubkey) for a session:
 * derived from its private key and the session id, so it is derived again
 * rather than stored. */
static int check_auth_key(void)
{
    static const char id[] = "0190f1f2-0000-7000-8000-000000000001";
    uint8_t seckey[KEYPAIR_SECKEY_LEN];
    struct keypair user, auth1, auth2;
    struct uuid session;

    memset(seckey, 0x11, sizeof(seckey));
    int rc = uuid_parse(&session, id, strlen(id));
    if (rc != KM_OK)
        return failed("uuid_parse", rc);
    rc = keypair_init(&user, seckey);
    if (rc != KM_OK)
        return failed("keypair_init", rc);
    memset(&auth1, 0, sizeof(auth1));
    memset(&auth2, 0, sizeof(auth2));
    rc = participant_auth_keypair(&auth1, &user, &session);
    if (rc == KM_OK)
        rc = participant_auth_keypair(&auth2, &user, &session);
    int status = 1;
    if (rc != KM_OK) {
        failed("participant_auth_keypair", rc);
    } else if (memcmp(auth1.xonly, auth2.xonly, KEYPAIR_XONLY_LEN) != 0 ||
               memcmp(auth1.xonly, user.xonly, KEYPAIR_XONLY_LEN) == 0) {
        fprintf(stderr, "keymeld_example: approval key not deterministic or not derived\n");
    } else {
        char hex[2 * KEYPAIR_XONLY_LEN + 1];
        to_hex(hex, auth1.xonly, KEYPAIR_XONLY_LEN);
        printf("ok: approval key for session %s: %s\n", id, hex);
        status = 0;
    }
    keypair_clear(&auth1);
    keypair_clear(&auth2);
    keypair_clear(&user);
    return status;
}

/* GET a public route into *r (rest_response_clear it); 1 unless HTTP 200
 * with a JSON body. */
static int get(struct rest_client *c, struct rest_response *r, const char *path)
{
    struct km_error err;
    int rc = rest_call(c, r, "GET", path, NULL, NULL, &err);
    if (rc != KM_OK) {
        fprintf(stderr, "keymeld_example: GET %s: %s\n", path, err.msg);
        return 1;
    }
    if (r->status != 200 || r->body == NULL) {
        fprintf(stderr, "keymeld_example: GET %s: HTTP %ld: %s\n", path, r->status,
                rest_error_message(r));
        rest_response_clear(r);
        return 1;
    }
    return 0;
}

/* The gateway's version and how many of its enclaves are healthy. */
static int show_gateway(struct rest_client *c)
{
    struct rest_response r;
    if (get(c, &r, "/api/v1/version") != 0)
        return 1;
    char *version = json_dumps(r.body, JSON_COMPACT);
    printf("gateway: %s\n", version != NULL ? version : "?");
    free(version);
    rest_response_clear(&r);

    if (get(c, &r, "/api/v1/enclaves") != 0)
        return 1;
    size_t i, healthy = 0;
    json_t *e, *list = json_object_get(r.body, "enclaves");
    json_array_foreach(list, i, e)
    {
        if (json_is_true(json_object_get(e, "healthy")))
            healthy++;
    }
    printf("enclaves: %zu of %zu healthy\n", healthy, json_array_size(list));
    rest_response_clear(&r);
    return 0;
}

/* A 2-of-2 keygen (BIP-86 tweak) and one signing, as two participants in
 * this process would run it (a real deployment runs one per party). */
static int keygen_and_sign(struct rest_client *c, struct client_trust *trust)
{
    /* A wallet signs a BIP-341 sighash; any 32 bytes do here. */
    static const char text[] = "keymeld_example: message to sign";
    _Static_assert(sizeof(text) == PROTO_MSG_LEN + 1, "one 32-byte message");
    uint8_t msg[1][PROTO_MSG_LEN];
    struct proto_tweak bip86 = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    struct client_keygen k;
    struct client_signing s = {0};
    struct km_error err;
    char hex[2 * PROTO_SIG_LEN + 1];
    int status = 1;

    memcpy(msg[0], text, PROTO_MSG_LEN);
    int rc = client_keygen_new(&k, 2, &bip86);
    if (rc != KM_OK)
        return failed("client_keygen_new", rc);
    k.trust = trust;
    if (client_keygen_run(c, &k, 3600, 60000, &err) != KM_OK) {
        fprintf(stderr, "keymeld_example: keygen %s: %s\n", k.id_s, err.msg);
        goto out;
    }
    to_hex(hex, k.aggregate, PROTO_PUBKEY_LEN);
    printf("ok: keygen %s: aggregate key %s (checked against the participants' keys)\n", k.id_s,
           hex);
    rc = client_signing_new(&s, (const uint8_t(*)[PROTO_MSG_LEN])msg, 1);
    if (rc != KM_OK) {
        failed("client_signing_new", rc);
        goto out;
    }
    if (client_sign_create(c, &k, &s, 600, 30000, &err) != KM_OK ||
        (!client_signing_done(&s) && client_sign_wait(c, &k, &s, 0, 60000, &err) != KM_OK)) {
        fprintf(stderr, "keymeld_example: signing %s: %s\n", s.id_s, err.msg);
        goto out;
    }
    to_hex(hex, s.sigs[0], PROTO_SIG_LEN);
    printf("ok: signing %s: BIP-340 signature %s (verified)\n", s.id_s, hex);
    status = 0;
out:
    client_signing_clear(&s);
    client_keygen_clear(&k);
    return status;
}

/* What the command line asked for. */
struct args {
    const char *url;  /* NULL: offline checks only */
    const char *pcrs; /* --pcrs */
    const char *root; /* --root (NULL: the AWS Nitro root) */
    bool insecure;    /* --insecure-skip-attestation */
};

static bool parse_args(struct args *a, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    if (argc > 1 && argv[1][0] != '-')
        a->url = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pcrs") == 0 && i + 1 < argc)
            a->pcrs = argv[++i];
        else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            a->root = argv[++i];
        else if (strcmp(argv[i], "--insecure-skip-attestation") == 0)
            a->insecure = true;
        else
            return false;
    }
    return (argc <= 1 || a->url != NULL) && !(a->insecure && (a->pcrs || a->root)) &&
           (a->root == NULL || a->pcrs != NULL);
}

static int online(const struct args *a)
{
    struct rest_client *c = rest_client_new(a->url, 30000);
    int status = show_gateway(c);
    if (status == 0 && (a->insecure || a->pcrs != NULL)) {
        struct client_trust trust;
        struct km_error err;
        if (a->insecure) {
            client_trust_insecure(&trust);
        } else if (client_trust_load(&trust, a->root, a->pcrs, &err) != KM_OK) {
            fprintf(stderr, "keymeld_example: %s\n", err.msg);
            rest_client_free(c);
            return 1;
        }
        if (rest_client_set_api_key(c, getenv("KEYMELD_API_KEY")) != KM_OK)
            fprintf(stderr, "keymeld_example: KEYMELD_API_KEY unusable: ignored\n");
        status = keygen_and_sign(c, &trust);
        client_trust_release(&trust);
    }
    rest_client_free(c);
    return status;
}

int main(int argc, char **argv)
{
    struct args a;
    if (!parse_args(&a, argc, argv)) {
        fprintf(stderr, "usage: keymeld_example [GATEWAY_URL [--pcrs FILE [--root PEM] | "
                        "--insecure-skip-attestation]]\n");
        return 2;
    }

    int status = check_aggregate_key() | check_seal_open() | check_auth_key();
    if (status == 0 && a.url != NULL)
        status = online(&a);
    printf("keymeld_example: %s\n", status == 0 ? "all checks passed" : "FAILED");
    return status;
}
