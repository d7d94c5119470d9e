#include "en_fixture.h"

#include "test.h"

#include <string.h>

#include "common/banned.h"

void en_fixture_start(struct en_fixture *f, size_t n, const struct enclave_config *cfg)
{
    struct drv_link link;
    struct km_error err;
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        f->ip.en[i] = enclave_new(cfg, &err);
        if (f->ip.en[i] == NULL)
            fail_msg("enclave_new: %s", err.msg);
    }
    f->ip.n = n;
    drv_link_inproc(&link, &f->ip);
    if (drv_init(&f->d, &link, n, &err) != KM_OK)
        fail_msg("drv_init: %s", err.msg);
}

void en_fixture_stop(struct en_fixture *f)
{
    for (size_t i = 0; i < f->ip.n; i++)
        enclave_free(f->ip.en[i]);
    memset(f, 0, sizeof(*f));
}

int en_fixture_call(struct en_fixture *f, size_t e, const char *cmd, const char *args_json,
                    struct env_reply *reply)
{
    json_error_t jerr;
    struct km_error err;
    json_t *args = json_loads(args_json, 0, &jerr);
    if (args == NULL)
        fail_msg("bad test JSON: %s", jerr.text);
    int r = drv_call(&f->d, e, cmd, NULL, args, reply, &err);
    json_decref(args);
    return r;
}

void en_expect_error(struct env_reply *reply, const char *code, const char *want)
{
    if (reply->ok)
        fail_msg("expected error %s, got ok", code);
    if (strcmp(reply->error.code, code) != 0)
        fail_msg("expected error %s, got %s: %s", code, reply->error.code, reply->error.message);
    if (want != NULL)
        CHECK_CONTAINS(reply->error.message, want);
    env_reply_clear(reply);
}

void en_keygen_taproot(struct drv_keygen *kg)
{
    kg->has_tweak = true;
    kg->tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
}

void en_keygen_two_subsets(struct drv_keygen *kg)
{
    CHECK_OK(uuid_v7_new(&kg->subsets[0].id));
    kg->subsets[0].n = 2;
    kg->subsets[0].members[0] = 0;
    kg->subsets[0].members[1] = 3;
    CHECK_OK(uuid_v7_new(&kg->subsets[1].id));
    kg->subsets[1].n = 3;
    kg->subsets[1].members[0] = 1;
    kg->subsets[1].members[1] = 2;
    kg->subsets[1].members[2] = 4;
    kg->n_subsets = 2;
    en_keygen_taproot(kg);
    kg->users[4].require_approval = true;
}
