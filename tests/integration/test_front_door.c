/*
 * test_front_door.c - who may create work (docs/API.md "API keys"): with
 * server.open_reserve off, reserve needs an operator API key; each key's
 * quotas stop it while other keys keep working; a revoked or forged key is
 * refused; the operator routes answer the gateway's host only (the test is
 * on 127.0.0.1); a session reserved by one client cannot be initialized by
 * another; a key encrypted to the wrong enclave is refused on arrival.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "client/attest.h"
#include "client/participant.h"
#include "common/hex.h"
#include "client/session.h"
#include "stack.h"
#include "common/banned.h"

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

/* POST /api/v1/admin/api-keys; returns the token (malloc'ed). */
static char *create_key(struct rest_client *c, const char *name, int per_hour, int live,
                        int max_participants, char id[32])
{
    struct rest_response r;
    struct km_error err;
    json_t *body = json_pack("{s:s, s:i, s:i, s:i}", "name", name, "keygens_per_hour", per_hour,
                             "live_keygens", live, "max_participants", max_participants);
    CHECK_OK(rest_call(c, &r, "POST", "/api/v1/admin/api-keys", body, NULL, &err));
    json_decref(body);
    if (r.status != 201)
        fail_msg("create key: HTTP %ld: %s", r.status, r.text);
    char *token = strdup(json_string_value(json_object_get(r.body, "token")));
    snprintf(id, 32, "%s", json_string_value(json_object_get(r.body, "id")));
    rest_response_clear(&r);
    return token;
}

/* A reserve with the given key (NULL: none); returns the HTTP status. */
static long reserve(struct rest_client *c, const char *token, size_t participants,
                    struct client_keygen *k, char *msg, size_t cap)
{
    struct km_error err;
    CHECK_OK(client_keygen_new(k, participants, NULL));
    CHECK_OK(rest_client_set_api_key(c, token));
    int r = client_keygen_reserve(c, k, 600, &err);
    CHECK_OK(rest_client_set_api_key(c, NULL));
    snprintf(msg, cap, "%s", r == KM_OK ? "" : err.msg);
    if (r == KM_OK)
        return 200;
    const char *h = strstr(err.msg, "HTTP ");
    return h ? strtol(h + 5, NULL, 10) : 0;
}

/* The line of text holding needle, as a string (static buffer). */
static const char *line_with(const char *text, const char *needle)
{
    static char line[2048];
    const char *hit = strstr(text, needle);
    if (hit == NULL)
        fail_msg("no audit line holds %s", needle);
    const char *start = hit;
    while (start > text && start[-1] != '\n')
        start--;
    size_t n = strcspn(start, "\n");
    CHECK(n < sizeof(line));
    memcpy(line, start, n);
    line[n] = '\0';
    return line;
}

/* The ids and token secrets the audit log is checked against. */
struct audit_expect {
    const char *id_a, *id_b, *id_c;
    const char *secrets[4]; /* token secrets (after "kmk_<id>_") never written */
};

/* The gateway's audit log (docs/OPERATIONS.md "Audit log") holds the key
 * changes, the reserves and every refused reserve (401 without a key or
 * with an invalid one, 403 over max_participants, 429 over a quota or the
 * reserve rate), names the API key of each (the claimed one of a 401),
 * never holds a token's secret, and its hash chain verifies. */
static void check_audit_log(const struct stack *s, const struct audit_expect *e)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/audit.jsonl", s->dir);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    CHECK_CONTAINS(text, "\"api_key.create\"");
    CHECK_CONTAINS(text, "\"api_key.revoke\"");
    CHECK_CONTAINS(text, "\"keygen.reserve\"");
    CHECK_CONTAINS(text, "\"refused\"");
    CHECK_CONTAINS(text, e->id_a);
    CHECK_CONTAINS(text, e->id_b);
    for (size_t i = 0; i < KM_ARRAY_LEN(e->secrets) && e->secrets[i] != NULL; i++)
        CHECK(strstr(text, e->secrets[i]) == NULL);

    /* 401 without a key: nothing to name. */
    const char *l = line_with(text, "\"detail\":\"no API key\"");
    CHECK_CONTAINS(l, "\"event\":\"keygen.reserve\",\"outcome\":\"refused\"");
    CHECK_CONTAINS(l, "\"api_key_id\":null,\"subject\":{}");
    CHECK(strstr(l, "\"request_id\":null") == NULL);
    /* 401 with an invalid token: the id it claims, never authenticated. */
    l = line_with(text, "\"claimed_api_key_id\":\"kmk_0000000000000000\"");
    CHECK_CONTAINS(l, "\"outcome\":\"refused\",");
    CHECK_CONTAINS(l, "\"api_key_id\":null");
    CHECK_CONTAINS(l, "\"detail\":\"invalid API key\"");
    char claimed[64];
    snprintf(claimed, sizeof(claimed), "\"claimed_api_key_id\":\"%s\"", e->id_b);
    CHECK_CONTAINS(line_with(text, claimed), "\"detail\":\"invalid API key\"");
    /* 403 and 429: the authenticated key and the limit. */
    l = line_with(text, "\"detail\":\"max_participants\"");
    CHECK_CONTAINS(l, "\"outcome\":\"refused\"");
    CHECK_CONTAINS(l, e->id_a);
    CHECK_CONTAINS(l, "\"participants\":6");
    CHECK_CONTAINS(line_with(text, "\"detail\":\"live_keygens\""), e->id_a);
    l = line_with(text, "\"detail\":\"reserves_per_sec_per_api_key\"");
    CHECK_CONTAINS(l, "\"outcome\":\"refused\"");
    CHECK_CONTAINS(l, e->id_c);

    size_t ok = 0, bad = 0;
    char why[256];
    CHECK_OK(audit_verify((const uint8_t *)text, n, &ok, &bad, why, sizeof(why)));
    CHECK(ok >= 12);
}

static void test_api_keys_and_quotas(void **state)
{
    (void)state;
    struct stack s = {0};
    char msg[1024], id_a[32], id_b[32];
    stack_fail_hook = stack_fail_cmocka;
    s.require_api_keys = true;
    stack_start(&s, 3);
    struct rest_client *c = rest_client_new(s.base_url, 30000);
    struct client_keygen k;

    CHECK_EQ(reserve(c, NULL, 3, &k, msg, sizeof(msg)), 401);
    CHECK_CONTAINS(msg, "needs a valid API key");
    client_keygen_clear(&k);
    CHECK_EQ(reserve(c,
                     "kmk_0000000000000000_"
                     "0000000000000000000000000000000000000000000000000000000000000000",
                     3, &k, msg, sizeof(msg)),
             401);
    client_keygen_clear(&k);

    char *a = create_key(c, "tenant-a", 0, 2, 5, id_a);
    char *b = create_key(c, "tenant-b", 0, 0, 0, id_b);
    /* Quota "live keygens" 2: the third is refused (429, Retry-After) ... */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(reserve(c, a, 3, &k, msg, sizeof(msg)), 200);
        client_keygen_clear(&k);
    }
    CHECK_EQ(reserve(c, a, 3, &k, msg, sizeof(msg)), 429);
    CHECK_CONTAINS(msg, "quota of 2 keygens in progress");
    client_keygen_clear(&k);
    /* ... while another key keeps working. */
    CHECK_EQ(reserve(c, b, 3, &k, msg, sizeof(msg)), 200);
    client_keygen_clear(&k);
    /* Participants per keygen. */
    CHECK_EQ(reserve(c, a, 6, &k, msg, sizeof(msg)), 403);
    CHECK_CONTAINS(msg, "at most 5 participants");
    client_keygen_clear(&k);
    /* A forged secret for a real id, and a revoked key. */
    char forged[128];
    snprintf(forged, sizeof(forged), "%s_%064d", id_b, 7);
    CHECK_EQ(reserve(c, forged, 3, &k, msg, sizeof(msg)), 401);
    client_keygen_clear(&k);
    struct rest_response r;
    struct km_error err;
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/admin/api-keys/%s", id_b);
    CHECK_OK(rest_call(c, &r, "DELETE", path, NULL, NULL, &err));
    CHECK_EQ(r.status, 200);
    rest_response_clear(&r);
    CHECK_EQ(reserve(c, b, 3, &k, msg, sizeof(msg)), 401);
    client_keygen_clear(&k);
    /* The reserve rate of one key (server.reserves_per_sec_per_api_key 10,
     * burst 40): a flood is refused with 429 after about the burst. */
    char id_c[32];
    char *c_tok = create_key(c, "tenant-c", 0, 0, 0, id_c);
    int served = 0;
    long st = 200;
    for (int i = 0; i < 80 && st == 200; i++) {
        st = reserve(c, c_tok, 2, &k, msg, sizeof(msg));
        client_keygen_clear(&k);
        served += st == 200;
    }
    CHECK_EQ(st, 429);
    CHECK_CONTAINS(msg, "reserves faster than 10 per second");
    CHECK(served >= 40);
    /* The list never shows secrets. */
    CHECK_OK(rest_call(c, &r, "GET", "/api/v1/admin/api-keys", NULL, NULL, &err));
    CHECK_EQ(r.status, 200);
    CHECK(strstr(r.text, a + 21) == NULL);
    CHECK_CONTAINS(r.text, "\"revoked\":true");
    rest_response_clear(&r);
    struct audit_expect expect = {.id_a = id_a,
                                  .id_b = id_b,
                                  .id_c = id_c,
                                  .secrets = {a + 21, b + 21, c_tok + 21, forged + 21}};
    check_audit_log(&s, &expect);
    free(c_tok);
    free(a);
    free(b);
    rest_client_free(c);
    stack_stop(&s);
}

/* Only the reserver initializes: another client's session key is refused,
 * the reserver's is accepted. */
static void test_initialize_bound_to_reserver(void **state)
{
    (void)state;
    struct stack s = {0};
    struct km_error err;
    stack_fail_hook = stack_fail_cmocka;
    stack_start(&s, 3);
    struct rest_client *c = rest_client_new(s.base_url, 30000);
    struct client_trust trust;
    stack_client_trust(&s, &trust);
    struct client_keygen owner, thief;
    CHECK_OK(client_keygen_new(&owner, 3, NULL));
    owner.trust = &trust;
    CHECK_OK(client_keygen_reserve(c, &owner, 600, &err));
    /* The thief knows the id and the assignments, not the session secret. */
    CHECK_OK(client_keygen_new(&thief, 3, NULL));
    thief.trust = &trust;
    thief.id = owner.id;
    memcpy(thief.id_s, owner.id_s, sizeof(thief.id_s));
    thief.coordinator_enclave_id = owner.coordinator_enclave_id;
    memcpy(thief.coordinator_pk, owner.coordinator_pk, sizeof(thief.coordinator_pk));
    CHECK_ERR(client_keygen_initialize(c, &thief, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "HTTP 401");
    CHECK_OK(client_keygen_initialize(c, &owner, &err));

    /* A key encrypted to another enclave than its slot's is refused when it
     * arrives (422), and the slot stays open for the right one. */
    struct client_user *u = &owner.users[1];
    CHECK(memcmp(u->enclave_pk, owner.coordinator_pk, 33) != 0);
    struct proto_blob wrong = {0};
    CHECK_OK(participant_encrypt_private_key(&wrong, owner.coordinator_pk, &u->kp));
    char *wrong_hex = malloc(2 * wrong.len + 1), auth_hex[65], epk_hex[67], path[128];
    hex_encode(wrong_hex, 2 * wrong.len + 1, wrong.p, wrong.len);
    hex_encode(auth_hex, sizeof(auth_hex), u->auth.xonly, 32);
    hex_encode(epk_hex, sizeof(epk_hex), u->enclave_pk, 33);
    json_t *body = json_pack("{s:s, s:s, s:s, s:b, s:s}", "user_id", u->id_s,
                             "encrypted_private_key", wrong_hex, "auth_pubkey", auth_hex,
                             "require_signing_approval", 0, "enclave_public_key", epk_hex);
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/participants", owner.id_s);
    struct rest_response r;
    CHECK_OK(rest_call(c, &r, "POST", path, body, &owner.session_auth, &err));
    CHECK_EQ(r.status, 422);
    CHECK_CONTAINS(r.text, "does not open at its enclave");
    rest_response_clear(&r);
    json_decref(body);
    free(wrong_hex);
    proto_blob_clear(&wrong);
    for (size_t i = 1; i < owner.nusers; i++)
        CHECK_OK(client_keygen_register(c, &owner, i, &err));
    CHECK_OK(client_keygen_wait(c, &owner, 20000, &err));
    client_keygen_clear(&owner);
    client_keygen_clear(&thief);
    client_trust_release(&trust);
    rest_client_free(c);
    stack_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_api_keys_and_quotas),
        TEST(test_initialize_bound_to_reserver),
    };
    return RUN_TESTS("integration.front_door", tests);
}
