#include "stack_session.h"

#include "protocol/payload.h"
#include "test.h"
#include "common/banned.h"

static void fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

void stack_session_start(struct stack_session *s, size_t nusers)
{
    struct proto_tweak tweak = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    stack_fail_hook = fail_cmocka;
    stack_start(&s->stack, 3);
    s->http = rest_client_new(s->stack.base_url, 30000);
    CHECK_OK(client_keygen_new(&s->k, nusers, &tweak));
    stack_client_trust(&s->stack, &s->trust);
    s->k.trust = &s->trust;
}

void stack_session_keygen(struct stack_session *s)
{
    struct km_error err;
    test_expect_ok(client_keygen_run(s->http, &s->k, 600, 20000, &err), &err);
}

void stack_session_end(struct stack_session *s)
{
    client_keygen_clear(&s->k);
    client_trust_release(&s->trust);
    rest_client_free(s->http);
    stack_stop(&s->stack);
}
