#include "echo_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "common/banned.h"

struct flaky_entry {
    struct uuid command_id;
    unsigned calls;
    struct flaky_entry *next;
};

static void set_error(struct tp_call *call, const char *code, const char *msg, bool retryable)
{
    snprintf(call->error.code, sizeof(call->error.code), "%s", code);
    snprintf(call->error.message, sizeof(call->error.message), "%s", msg);
    call->error.retryable = retryable;
}

static unsigned flaky_count(struct echo_server *es, const struct uuid *cid)
{
    pthread_mutex_lock(&es->lock);
    struct flaky_entry *e = es->flaky;
    while (e != NULL && !uuid_equal(&e->command_id, cid))
        e = e->next;
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->command_id = *cid;
        e->next = es->flaky;
        es->flaky = e;
    }
    unsigned n = ++e->calls;
    pthread_mutex_unlock(&es->lock);
    return n;
}

int echo_server_handle(void *ud, struct tp_call *call)
{
    struct echo_server *es = ud;
    if (strcmp(call->cmd, "ping") == 0) {
        call->result = json_pack("{s:b}", "pong", 1);
        return KM_OK;
    }
    if (strcmp(call->cmd, "echo") == 0) {
        call->result = json_incref(call->args);
        return KM_OK;
    }
    if (strcmp(call->cmd, "sleep") == 0) {
        json_int_t ms = json_integer_value(json_object_get(call->args, "ms"));
        clock_sleep_ms((uint64_t)ms);
        call->result = json_pack("{s:I}", "slept", ms);
        return KM_OK;
    }
    if (strcmp(call->cmd, "blob") == 0) {
        json_int_t size = json_integer_value(json_object_get(call->args, "size"));
        if (size < 0 || size > (64 << 20))
            return KM_ERR_RANGE;
        char *s = xmalloc((size_t)size + 1);
        memset(s, 'b', (size_t)size);
        s[size] = '\0';
        call->result = json_pack("{s:s}", "blob", s);
        free(s);
        return KM_OK;
    }
    if (strcmp(call->cmd, "fail") == 0)
        return KM_ERR_INTERNAL;
    if (strcmp(call->cmd, "fail_with") == 0) {
        const char *code = json_string_value(json_object_get(call->args, "code"));
        const char *msg = json_string_value(json_object_get(call->args, "message"));
        set_error(call, code ? code : "x", msg ? msg : "",
                  json_is_true(json_object_get(call->args, "retryable")));
        return KM_ERR_REMOTE;
    }
    if (strcmp(call->cmd, "flaky") == 0 && es != NULL) {
        json_int_t failures = json_integer_value(json_object_get(call->args, "failures"));
        unsigned n = flaky_count(es, &call->command_id);
        if (n <= (unsigned)failures) {
            set_error(call, "busy", "try again", true);
            return KM_ERR_LIMIT;
        }
        call->result = json_pack("{s:i}", "calls", (int)n);
        return KM_OK;
    }
    set_error(call, "unknown_command", call->cmd, false);
    return KM_ERR_INVALID;
}

static void *serve_main(void *arg)
{
    struct echo_server *es = arg;
    if (tp_server_run(es->srv) != KM_OK)
        abort();
    return NULL;
}

void echo_server_start(struct echo_server *es, const struct tp_addr *addr,
                       const struct tp_server_config *cfg)
{
    struct km_error err;
    memset(es, 0, sizeof(*es));
    pthread_mutex_init(&es->lock, NULL);
    es->srv = tp_server_new(cfg, echo_server_handle, es);
    if (tp_server_listen(es->srv, addr, &err) != KM_OK) {
        fprintf(stderr, "echo_server: %s\n", err.msg);
        abort();
    }
    es->port = tp_server_port(es->srv);
    if (pthread_create(&es->thread, NULL, serve_main, es) != 0)
        abort();
}

void echo_server_start_tcp(struct echo_server *es, const struct tp_server_config *cfg)
{
    struct tp_addr addr;
    struct km_error err;
    if (tp_addr_tcp(&addr, "127.0.0.1", 1, &err) != KM_OK)
        abort();
    addr.port = 0; /* ephemeral */
    echo_server_start(es, &addr, cfg);
}

void echo_server_addr(const struct echo_server *es, struct tp_addr *out)
{
    struct km_error err;
    if (tp_addr_tcp(out, "127.0.0.1", es->port, &err) != KM_OK)
        abort();
}

void echo_server_stop(struct echo_server *es)
{
    tp_server_stop(es->srv);
    pthread_join(es->thread, NULL);
    tp_server_free(es->srv);
    while (es->flaky != NULL) {
        struct flaky_entry *next = es->flaky->next;
        free(es->flaky);
        es->flaky = next;
    }
    pthread_mutex_destroy(&es->lock);
}
