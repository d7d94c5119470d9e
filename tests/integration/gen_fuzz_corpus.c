/*
 * gen_fuzz_corpus.c - writes the seed corpora of fuzz/enclave_dispatch and
 * fuzz/enclave_commands from real flows, so the fuzzers start deep inside
 * the protocol with valid ciphertexts:
 *
 *   gen_enclave_fuzz_corpus <repo>/fuzz/corpus
 *
 * Three in-process enclaves with fixed keys (every byte 0x01, 0x02, 0x03;
 * enclave 0's is the dispatch target's key) run keygen and signing through
 * the driver; every request to enclave 0 is recorded. In the "remote" flow
 * enclave 0 coordinates but holds no participant, so the recorded rounds
 * replay deterministically up to signing_finalize; in the "local" flow it
 * holds one (its fresh nonces then differ from the recorded ones). Each
 * request's arguments and each result also become an enclave_commands seed
 * (selector byte, then the JSON). Not a test; rerun after protocol changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver.h"
#include "transport/frame.h"
#include "common/banned.h"

struct rec {
    struct drv_inproc ip;
    const char *dir;
    struct buf seq; /* the frames enclave 0 received */
    uint64_t next_id;
    unsigned seeds;
};

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* An enclave_commands seed: selector byte, then the JSON. */
static void command_seed(struct rec *r, enum proto_cmd cmd, bool result, const json_t *j)
{
    char dir[512], name[96];
    struct buf b;
    buf_init(&b, 64u << 20);
    if (buf_put_u8(&b, (uint8_t)(2 * cmd + (result ? 1 : 0))) != KM_OK ||
        env_dump_json(&b, j) != KM_OK)
        KM_BUG("seed too large");
    snprintf(dir, sizeof(dir), "%s/enclave_commands", r->dir);
    snprintf(name, sizeof(name), "%s_%s_%u", proto_command_get(cmd)->name,
             result ? "result" : "args", r->seeds++);
    write_file(dir, name, buf_peek(&b), buf_len(&b));
    buf_release(&b);
}

static void rec_call_many(void *ud, struct drv_call *calls, size_t n)
{
    struct rec *r = ud;
    for (size_t i = 0; i < n; i++) {
        struct drv_call *c = &calls[i];
        if (c->enclave != 0)
            continue;
        if (uuid_is_nil(&c->command_id) && uuid_v7_new(&c->command_id) != KM_OK)
            KM_BUG("no randomness");
        size_t start = buf_len(&r->seq);
        if (frame_begin(&r->seq) != KM_OK ||
            env_request_encode(&r->seq, r->next_id++, &c->command_id, c->cmd, c->args) != KM_OK ||
            frame_finish(&r->seq, start, FRAME_MAX_DEFAULT) != KM_OK)
            KM_BUG("cannot record a request");
        command_seed(r, proto_command_find(c->cmd)->cmd, false, c->args);
    }
    struct drv_link inner;
    drv_link_inproc(&inner, &r->ip);
    inner.call_many(inner.ud, calls, n);
    for (size_t i = 0; i < n; i++)
        if (calls[i].enclave == 0 && calls[i].rc == KM_OK)
            command_seed(r, proto_command_find(calls[i].cmd)->cmd, true, calls[i].reply.result);
}

static void must(int r, const struct km_error *err, const char *what)
{
    if (r != KM_OK) {
        fprintf(stderr, "%s: %s\n", what, err->msg);
        exit(1);
    }
}

/* One recorded flow; local: enclave 0 holds user 0. */
static void flow(struct rec *r, bool local, const char *name)
{
    struct drv d;
    struct drv_link link = {.call_many = rec_call_many, .ud = r};
    struct drv_keygen kg;
    struct drv_signing sg;
    struct km_error err;
    char dir[512];
    buf_init(&r->seq, 64u << 20);
    must(drv_init(&d, &link, 3, &err), &err, "init");
    drv_keygen_setup(&kg, 4, 3);
    for (size_t i = 0; i < kg.n_users; i++)
        kg.users[i].enclave = local && i == 0 ? 0 : 1 + i % 2;
    kg.users[1].require_approval = true;
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    if (uuid_v7_new(&kg.subsets[0].id) != KM_OK)
        KM_BUG("no randomness");
    kg.subsets[0].n = 2;
    kg.subsets[0].members[0] = 1;
    kg.subsets[0].members[1] = 2;
    kg.n_subsets = 1;
    must(drv_keygen_run(&d, &kg, &err), &err, "keygen");
    drv_signing_setup(&sg, 4);
    sg.items[1].subset = 0;
    drv_item_set_tweak(&sg.items[2], PROTO_TWEAK_XONLY, 3);
    drv_item_add_adaptor(&sg.items[3], PROTO_ADAPTOR_SINGLE, 1);
    drv_item_add_adaptor(&sg.items[3], PROTO_ADAPTOR_AND, 2);
    drv_item_add_adaptor(&sg.items[3], PROTO_ADAPTOR_OR, 2);
    must(drv_sign_run(&d, &kg, &sg, &err), &err, "signing");
    must(drv_clear(&d, &kg.id, true, &err), &err, "clear");
    snprintf(dir, sizeof(dir), "%s/enclave_dispatch", r->dir);
    write_file(dir, name, buf_peek(&r->seq), buf_len(&r->seq));
    buf_release(&r->seq);
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
}

int main(int argc, char **argv)
{
    struct rec r = {.dir = argc > 1 ? argv[1] : "fuzz/corpus"};
    struct km_error err;
    char dir[512];
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof(dir), "%s/%s", r.dir, i ? "enclave_commands" : "enclave_dispatch");
        mkdir(dir, 0755);
    }
    for (int i = 0; i < 3; i++) {
        uint8_t key[32];
        memset(key, i + 1, sizeof(key));
        struct enclave_config cfg = {.seckey = key};
        r.ip.en[i] = enclave_new(&cfg, &err);
        if (r.ip.en[i] == NULL)
            must(KM_ERR_INTERNAL, &err, "enclave");
    }
    r.ip.n = 3;
    flow(&r, false, "flow_remote_participants");
    flow(&r, true, "flow_local_participant");
    for (int i = 0; i < 3; i++)
        enclave_free(r.ip.en[i]);
    printf("wrote 2 dispatch sequences and %u command seeds under %s\n", r.seeds, r.dir);
    return 0;
}
