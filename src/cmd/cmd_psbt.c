/*
 * cmd_psbt.c - `keymeld psbt sign`: signs the inputs of a PSBT that spend
 * the group's Taproot key, by the key path or by script path leaves that
 * name the group's key, with the session saved by `keymeld keygen` or
 * `keymeld keygen join` (src/client/keyfile.h):
 *
 *   keymeld psbt sign --session FILE --psbt FILE|- [--out FILE|-] [--finalize]
 *                     [--approve] [--request-out FILE] [--wait SECS] [--gateway URL]
 *
 * The PSBT stays on this machine: the gateway sees only the 32-byte BIP-341
 * sighashes, sealed with the session secret like every signing message, all
 * in one signing session; each item carries the tweak its key needs (the
 * keygen's, another BIP-341 tweak of the group's internal key, or none for a
 * leaf naming the untweaked key). Each signature comes back verified by the client
 * (client_sign_create) and is checked again here against the input's output
 * key before it is written. docs/INTEGRATION.md "Signing PSBTs".
 */
#include "cmd/cmd_psbt.h"

#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/psbt.h"
#include "bitcoin/ser.h"
#include "client/invite.h"
#include "client/keyfile.h"
#include "cmd/opts.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/xmalloc.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

#define PROG "keymeld psbt sign"
/* The base64 form of the largest PSBT, with room for surrounding space. */
#define PSBT_INPUT_MAX  (PSBT_MAX_SIZE / 3 * 4 + 4096)
#define PSBT_OUTPUT_MAX (2 * PSBT_MAX_SIZE)
#define DEFAULT_GATEWAY "http://127.0.0.1:8090"

static const uint8_t psbt_magic[5] = {'p', 's', 'b', 't', 0xff};

struct psbt_sign_args {
    const char *session, *in, *out, *gateway, *request_out;
    bool finalize, approve;
    uint64_t wait_secs;
};

/* What the session file says about the group's key. */
struct group {
    const struct client_keygen *k; /* &own, or borrowed (cmd_psbt_check_request) */
    struct client_keygen own;
    char gateway[512];
    uint8_t internal[PROTO_PUBKEY_LEN];  /* KeyAgg of the participants, untweaked */
    uint8_t internal_x[PROTO_XONLY_LEN]; /* its x-only form */
    uint8_t (*keys)[PROTO_PUBKEY_LEN];   /* participants' keys in KeyAgg (KeySort) order */
    /* The BIP-373 fields can describe the key: no tweak, or a BIP-341 one. */
    bool musig_fields;
};

/* One signature to make: input idx by its key path, or by one leaf. */
struct plan_entry {
    size_t idx;
    uint32_t hash_type;
    bool script_path;
    struct sighash_leaf leaf; /* script path: the leaf's hash */
    bool own_tweak;           /* signed under tweak instead of the keygen's */
    struct proto_tweak tweak;
    uint8_t key[32]; /* the x-only key the signature verifies under */
};

/* The signatures to make, in input order; msgs[j] is e[j]'s sighash. */
struct plan {
    size_t n;
    struct plan_entry e[PROTO_MAX_ITEMS];
    uint8_t msgs[PROTO_MAX_ITEMS][PROTO_MSG_LEN];
};

static void psbt_sign_usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " --session FILE --psbt FILE|- [--out FILE|-] [--finalize]\n"
            "                         [--approve] [--request-out FILE] [--wait SECS]\n"
            "                         [--gateway URL]\n"
            "\n"
            "Signs every input of the PSBT (base64 or binary, version 0 or 2) that spends the\n"
            "group of FILE (from keymeld keygen or keygen join), in one signing session:\n"
            "only the BIP-341 sighashes reach the gateway.\n"
            "  key path     the spent P2TR output key is the group's key, or the input's\n"
            "               PSBT_IN_TAP_INTERNAL_KEY is the group's untweaked key (output\n"
            "               key tweaked with PSBT_IN_TAP_MERKLE_ROOT, BIP-86 without one):\n"
            "               writes PSBT_IN_TAP_KEY_SIG\n"
            "  script path  otherwise, every tapscript leaf (PSBT_IN_TAP_LEAF_SCRIPT) that\n"
            "               pushes the group's key or its untweaked key, its control block\n"
            "               checked against the spent output: writes PSBT_IN_TAP_SCRIPT_SIG\n"
            "Adds the BIP-373 participant keys where they describe the key, also on outputs\n"
            "paying the group, and writes the PSBT in base64 to --out (default stdout).\n"
            "Other inputs are left untouched; with none of the group's, nothing is signed\n"
            "(exit 1).\n"
            "  --finalize  also set the final witness of the signed inputs (a script path\n"
            "              only for a leaf <key> OP_CHECKSIG); when every input is final,\n"
            "              print the transaction in hex on stdout (after the PSBT when\n"
            "              that goes to stdout too)\n"
            "  --approve   approve the signing for every participant that requires it and\n"
            "              whose private key FILE holds\n"
            "  --request-out FILE  when the signing awaits approvals, write the request\n"
            "              (signing id, item ids, sighashes) for the other parties'\n"
            "              keymeld approve --psbt (mode 0600), then wait\n"
            "  --wait      how long to wait for the signatures (default 60 s)\n"
            "  --gateway   default: the one saved in FILE, else $KEYMELD_GATEWAY_URL\n");
}

static int usage_error(void)
{
    fputc('\n', stderr);
    psbt_sign_usage(stderr);
    return CMD_EXIT_USAGE;
}

/* Returns -1 when the arguments are good, else the exit code. */
static int parse_args(struct psbt_sign_args *a, int argc, char **argv)
{
    struct opts o;
    bool bad = false;
    memset(a, 0, sizeof(*a));
    a->out = "-";
    a->wait_secs = 60;
    opts_init(&o, PROG, argc, argv);
    for (enum opt_result r; !bad && (r = opts_next(&o)) != OPT_END;) {
        if (r == OPT_OPERAND)
            bad = fprintf(stderr, PROG ": unexpected '%.60s'\n", o.operand) > 0;
        else if (opts_flag(&o, "--help", "-h")) {
            psbt_sign_usage(stdout);
            return CMD_EXIT_OK;
        } else if (opts_value(&o, "--session", &bad))
            a->session = o.value;
        else if (opts_value(&o, "--psbt", &bad))
            a->in = o.value;
        else if (opts_value(&o, "--out", &bad))
            a->out = o.value;
        else if (opts_value(&o, "--gateway", &bad))
            a->gateway = o.value;
        else if (opts_value(&o, "--request-out", &bad))
            a->request_out = o.value;
        else if (opts_value(&o, "--wait", &bad))
            bad = bad || !opts_uint(&o, "--wait", 1, 86400, &a->wait_secs);
        else if (opts_flag(&o, "--finalize", NULL))
            a->finalize = true;
        else if (opts_flag(&o, "--approve", NULL))
            a->approve = true;
        else
            bad = fprintf(stderr, PROG ": unknown option '%.60s'\n", opts_current(&o)) > 0;
    }
    if (!bad && (a->session == NULL || a->in == NULL))
        bad = fprintf(stderr, PROG ": --session FILE and --psbt FILE|- are required\n") > 0;
    return bad ? usage_error() : -1;
}

/* ---- reading and writing the PSBT --------------------------------------- */

/* Reads path ("-" = stdin), at most PSBT_INPUT_MAX bytes; *out malloc'ed. */
static int read_input(uint8_t **out, size_t *len, const char *path, struct km_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    *out = NULL;
    *len = 0;
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "%.200s: cannot open: %s", path,
                            strerror(errno));
    uint8_t *p = xmalloc(PSBT_INPUT_MAX + 1);
    size_t n = fread(p, 1, PSBT_INPUT_MAX + 1, f);
    int r = KM_OK;
    if (ferror(f))
        r = km_error_set(err, KM_ERR_IO, 0, "%.200s: read error", name);
    else if (n > PSBT_INPUT_MAX)
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "%.200s: over %u bytes, too large for a PSBT",
                         name, (unsigned)PSBT_INPUT_MAX);
    if (!is_stdin)
        fclose(f);
    if (r != KM_OK) {
        free(p);
        return r;
    }
    *out = p;
    *len = n;
    return KM_OK;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses the binary form, or the base64 text form (surrounding white space
 * allowed), told apart by the binary magic. */
static int decode_psbt(struct psbt **out, const uint8_t *p, size_t len, struct km_error *err)
{
    if (len >= sizeof(psbt_magic) && memcmp(p, psbt_magic, sizeof(psbt_magic)) == 0)
        return psbt_parse(out, p, len, err);
    while (len > 0 && is_space(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && is_space(p[len - 1]))
        len--;
    uint8_t *bin;
    size_t bin_len;
    *out = NULL;
    if (base64_decode(&bin, &bin_len, (const char *)p, len, PSBT_MAX_SIZE, false) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "not a PSBT: neither binary (magic \"psbt\" 0xff) nor base64");
    int r = psbt_parse(out, bin, bin_len, err);
    free(bin);
    return r;
}

/* Writes text to path ("-" = stdout). */
static int write_text(const char *path, const char *text, struct km_error *err)
{
    bool is_stdout = strcmp(path, "-") == 0;
    FILE *f = is_stdout ? stdout : fopen(path, "w");
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "%.200s: cannot create: %s", path,
                            strerror(errno));
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (is_stdout ? fflush(f) : fclose(f)) == 0 && ok;
    if (!ok)
        return km_error_set(err, KM_ERR_IO, errno, "%.200s: write error", path);
    return KM_OK;
}

static int write_psbt(const char *path, const struct psbt *psbt, struct km_error *err)
{
    struct buf b;
    buf_init(&b, PSBT_OUTPUT_MAX);
    int r = psbt_serialize(&b, psbt);
    if (r != KM_OK) {
        buf_release(&b);
        return km_error_set(err, r, 0, "cannot serialize the PSBT");
    }
    char *text = base64_encode(buf_peek(&b), buf_len(&b));
    buf_release(&b);
    r = write_text(path, text, err);
    free(text);
    return r;
}

/* ---- the group --------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, PROTO_PUBKEY_LEN);
}

/* Loads the session and derives the untweaked aggregate (the Taproot
 * internal key of a BIP-341 tweak) and the participants in KeyAgg order. */
/* Derives the untweaked aggregate (the Taproot internal key of a BIP-341
 * tweak) and the participants in KeyAgg order from g->k. */
static int group_derive(struct group *g, struct km_error *err)
{
    g->keys = xcalloc(g->k->nusers, PROTO_PUBKEY_LEN);
    for (size_t i = 0; i < g->k->nusers; i++)
        memcpy(g->keys[i], g->k->users[i].kp.pubkey, PROTO_PUBKEY_LEN);
    qsort(g->keys, g->k->nusers, PROTO_PUBKEY_LEN, cmp_key);
    int r =
        participant_aggregate_key(g->internal, g->internal_x,
                                  (const uint8_t(*)[PROTO_PUBKEY_LEN])g->keys, g->k->nusers, NULL);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot aggregate the participants' keys");
    int t = g->k->tweak.type;
    g->musig_fields = t == PROTO_TWEAK_NONE || t == PROTO_TWEAK_UNSPENDABLE_TAPROOT ||
                      t == PROTO_TWEAK_TAPROOT_MERKLE_ROOT;
    return KM_OK;
}

/* The group of the session file at path (g owns the keygen). */
static int group_load(struct group *g, const char *path, struct km_error *err)
{
    memset(g, 0, sizeof(*g));
    g->k = &g->own;
    int r = keyfile_load(path, &g->own, g->gateway, sizeof(g->gateway), err);
    if (r != KM_OK)
        return r;
    return group_derive(g, err);
}

static void group_clear(struct group *g)
{
    free(g->keys);
    g->keys = NULL;
    if (g->k == &g->own)
        client_keygen_clear(&g->own);
}

/* 1 if script is a P2TR scriptPubKey with output key xonly. */
static bool is_p2tr_of(const uint8_t *script, size_t len, const uint8_t xonly[32])
{
    return len == TAPROOT_SPK_LEN && script[0] == 0x51 && script[1] == 0x20 &&
           memcmp(script + 2, xonly, 32) == 0;
}

/*
 * Whether script pushes exactly the 32 bytes key (OP_PUSHBYTES_32 key):
 * walks the opcodes, so key bytes inside another push do not count. A
 * truncated push ends the walk.
 */
static bool script_pushes(const uint8_t *script, size_t len, const uint8_t key[32])
{
    size_t i = 0;
    while (i < len) {
        uint8_t op = script[i++];
        size_t n = 0;
        if (op >= 0x01 && op <= 0x4b)
            n = op;
        else if (op == 0x4c && i + 1 <= len)
            n = script[i++];
        else if (op == 0x4d && i + 2 <= len) {
            n = (size_t)script[i] | (size_t)script[i + 1] << 8;
            i += 2;
        } else if (op == 0x4e && i + 4 <= len) {
            n = (size_t)ser_load_le32(script + i);
            i += 4;
        } else if (op >= 0x4c && op <= 0x4e)
            return false;
        if (n > len - i)
            return false;
        if (op == 0x20 && memcmp(script + i, key, 32) == 0)
            return true;
        i += n;
    }
    return false;
}

static bool has_record(const struct psbt *psbt, enum psbt_scope scope, size_t i, uint64_t type)
{
    size_t n = psbt_record_count(psbt, scope, i);
    for (size_t k = 0; k < n; k++) {
        struct psbt_record rec;
        psbt_record_get(psbt, scope, i, k, &rec);
        if (rec.type == type)
            return true;
    }
    return false;
}

/* The next entry of p, for input i; NULL (*err set) when p is full. */
static struct plan_entry *plan_add(struct plan *p, size_t i, uint32_t hash_type,
                                   struct km_error *err)
{
    if (p->n == PROTO_MAX_ITEMS) {
        km_error_set(err, KM_ERR_LIMIT, 0,
                     "more than %d signatures of the group's key: one signing session makes at "
                     "most %d",
                     PROTO_MAX_ITEMS, PROTO_MAX_ITEMS);
        return NULL;
    }
    struct plan_entry *e = &p->e[p->n];
    memset(e, 0, sizeof(*e));
    e->idx = i;
    e->hash_type = hash_type;
    return e;
}

/* Computes the sighash of the entry plan_add returned and keeps it. */
static int plan_commit(struct plan *p, const struct psbt *psbt, struct km_error *err)
{
    struct plan_entry *e = &p->e[p->n];
    int r = psbt_sighash(p->msgs[p->n], psbt, e->idx, e->script_path ? &e->leaf : NULL, err);
    if (r == KM_OK)
        p->n++;
    return r;
}

/*
 * Whether input i's key path is the group's (*mine): its output key is the
 * session's key (the keygen's tweak), or its PSBT_IN_TAP_INTERNAL_KEY is
 * the group's untweaked key and the output key is that key under the
 * BIP-341 tweak of PSBT_IN_TAP_MERKLE_ROOT (BIP-86 without one), which
 * the entry then asks for as its own tweak.
 */
static int key_path(bool *mine, struct plan_entry *e, const struct group *g,
                    const struct psbt *psbt, const struct sighash_spent *spent,
                    struct km_error *err)
{
    *mine = false;
    if (is_p2tr_of(spent->script, spent->script_len, g->k->xonly)) {
        memcpy(e->key, g->k->xonly, 32);
        *mine = true;
        return KM_OK;
    }
    uint8_t ik[32];
    if (psbt_in_tap_internal_key(psbt, e->idx, ik) != KM_OK || memcmp(ik, g->internal_x, 32) != 0)
        return KM_OK;
    struct proto_tweak t = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    if (psbt_in_tap_merkle_root(psbt, e->idx, t.merkle_root) == KM_OK) {
        t.type = PROTO_TWEAK_TAPROOT_MERKLE_ROOT;
        t.has_merkle_root = true;
    }
    uint8_t q[32];
    if (taproot_output_key(q, NULL, g->internal_x, 32, t.has_merkle_root ? t.merkle_root : NULL) !=
            KM_OK ||
        !is_p2tr_of(spent->script, spent->script_len, q))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "input %zu: its PSBT_IN_TAP_INTERNAL_KEY is the group's key, but the "
                            "output it spends is not that key tweaked with %s",
                            e->idx,
                            t.has_merkle_root ? "its PSBT_IN_TAP_MERKLE_ROOT"
                                              : "no script tree (BIP-86: the input has no "
                                                "PSBT_IN_TAP_MERKLE_ROOT)");
    e->own_tweak = true;
    e->tweak = t;
    memcpy(e->key, q, 32);
    *mine = true;
    return KM_OK;
}

/*
 * One entry per tapscript leaf of input i (PSBT_IN_TAP_LEAF_SCRIPT) that
 * pushes the session's key, or the group's untweaked key (signed with the
 * item tweak "none"). Each such leaf must be committed to by the spent
 * output key: a leaf the output cannot spend is an error, not a signature.
 */
static int script_paths(struct plan *p, const struct group *g, const struct psbt *psbt, size_t i,
                        uint32_t hash_type, const struct sighash_spent *spent, struct km_error *err)
{
    struct psbt_tap_leaf_script leaf;
    for (size_t k = 0; psbt_in_tap_leaf_script(psbt, i, k, &leaf) == KM_OK; k++) {
        bool session_key = script_pushes(leaf.script, leaf.script_len, g->k->xonly);
        if (leaf.leaf_version != TAPROOT_LEAF_TAPSCRIPT ||
            (!session_key && !script_pushes(leaf.script, leaf.script_len, g->internal_x)))
            continue;
        if (spent->script_len != TAPROOT_SPK_LEN || spent->script[0] != 0x51 ||
            spent->script[1] != 0x20)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "input %zu: a leaf names the group's key, but the output it spends "
                                "is not P2TR",
                                i);
        struct plan_entry *e = plan_add(p, i, hash_type, err);
        if (e == NULL)
            return KM_ERR_LIMIT;
        struct km_error why;
        int r = sighash_leaf_from_control(&e->leaf, spent->script + 2, leaf.control,
                                          leaf.control_len, leaf.script, leaf.script_len, &why);
        if (r != KM_OK)
            return km_error_set(err, r, 0, "input %zu: leaf %zu: %s", i, k, why.msg);
        e->script_path = true;
        e->own_tweak = !session_key;
        e->tweak.type = PROTO_TWEAK_NONE;
        memcpy(e->key, session_key ? g->k->xonly : g->internal_x, 32);
        r = plan_commit(p, psbt, err);
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}

/* The signatures to make and their sighashes: the key path when it is the
 * group's, else the leaves naming it. Inputs already finalized, and inputs
 * whose spent output is unknown, are left as they are. */
static int plan_build(struct plan *p, const struct group *g, const struct psbt *psbt,
                      struct km_error *err)
{
    p->n = 0;
    for (size_t i = 0; i < psbt_input_count(psbt); i++) {
        struct sighash_spent spent;
        int r = psbt_in_spent_output(psbt, i, &spent, err);
        if (r == KM_ERR_NOT_FOUND)
            continue; /* not ours to judge; the sighash will need it if we sign */
        if (r != KM_OK)
            return r;
        if (has_record(psbt, PSBT_SCOPE_INPUT, i, PSBT_IN_FINAL_SCRIPTWITNESS))
            continue;
        uint32_t ht = SIGHASH_DEFAULT;
        if (psbt_in_sighash_type(psbt, i, &ht) != KM_OK)
            ht = SIGHASH_DEFAULT;
        struct plan_entry kp = {.idx = i, .hash_type = ht};
        bool mine = false;
        r = key_path(&mine, &kp, g, psbt, &spent, err);
        if (r == KM_OK && mine) {
            struct plan_entry *e = plan_add(p, i, ht, err);
            if (e == NULL)
                return KM_ERR_LIMIT;
            *e = kp;
            r = plan_commit(p, psbt, err);
        } else if (r == KM_OK)
            r = script_paths(p, g, psbt, i, ht, &spent, err);
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}

/* ---- signing ----------------------------------------------------------- */

static const char *gateway_url(const struct psbt_sign_args *a, const struct group *g)
{
    if (a->gateway != NULL)
        return a->gateway;
    if (g->gateway[0] != '\0')
        return g->gateway;
    const char *env = getenv("KEYMELD_GATEWAY_URL");
    return env ? env : DEFAULT_GATEWAY;
}

/* Whether this file holds user u's keys: a party's own session file
 * (keymeld keygen join) carries the other participants' public keys only,
 * their secret and auth keys zero. */
static bool user_is_local(const struct client_user *u)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < sizeof(u->auth.seckey); i++)
        acc |= u->auth.seckey[i];
    return acc != 0;
}

/* One signing session for every sighash of the plan; s->sigs verified. */
static int sign_plan(struct client_signing *s, const struct psbt_sign_args *a,
                     const struct group *g, const struct plan *p, struct km_error *err)
{
    bool approvals = false;
    size_t me = g->k->nusers; /* the first participant whose keys are here reads the result */
    for (size_t i = 0; i < g->k->nusers; i++) {
        approvals |= g->k->users[i].require_approval;
        if (me == g->k->nusers && user_is_local(&g->k->users[i]))
            me = i;
    }
    if (me == g->k->nusers)
        return km_error_set(err, KM_ERR_INVALID, 0, "the session file holds no participant's keys");
    int r = client_signing_new(s, (const uint8_t(*)[PROTO_MSG_LEN])p->msgs, p->n);
    for (size_t j = 0; r == KM_OK && j < p->n; j++) {
        if (p->e[j].own_tweak)
            r = client_signing_set_tweak(s, j, g->k, &p->e[j].tweak);
    }
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot make the signing session");
    struct rest_client *c = cmd_rest_client(gateway_url(a, g), 30000);
    /* Without approvals to send, the create request waits for the result. */
    r = client_sign_create(c, g->k, s, 600, approvals ? 0 : 30000, err);
    if (r == KM_OK && a->request_out != NULL && !client_signing_done(s)) {
        r = client_signing_request_save(a->request_out, g->k, s, err);
        if (r == KM_OK) {
            fprintf(stderr, PROG ": signing %s: request written to %s for the approvers\n", s->id_s,
                    a->request_out);
            fflush(stderr);
        }
    }
    for (size_t i = 0; r == KM_OK && a->approve && i < g->k->nusers; i++) {
        if (g->k->users[i].require_approval && user_is_local(&g->k->users[i]))
            r = client_sign_approve(c, g->k, s, i, err);
    }
    if (r == KM_OK && !client_signing_done(s))
        r = client_sign_wait(c, g->k, s, me, (uint32_t)a->wait_secs * 1000u, err);
    rest_client_free(c);
    return r;
}

/* Adds the BIP-373 participant keys (and, for a key path under the keygen's
 * BIP-341 tweak, the internal key and merkle root when absent) to the
 * input e signed, where they describe its key. */
static int describe_input(struct psbt *psbt, const struct group *g, const struct plan_entry *e,
                          struct km_error *err)
{
    size_t i = e->idx;
    /* The key is the untweaked aggregate (a leaf) or a BIP-341 tweak of it
     * the PSBT itself describes (PSBT_IN_TAP_INTERNAL_KEY, ...MERKLE_ROOT);
     * a tweaked key inside a leaf is beyond BIP-373. */
    if (e->script_path && memcmp(e->key, g->internal_x, 32) != 0)
        return KM_OK;
    if (e->script_path || e->own_tweak)
        return psbt_in_set_musig2_participants(psbt, i, g->internal, &g->keys[0][0], g->k->nusers,
                                               err);
    uint8_t ik[32];
    bool has_ik = psbt_in_tap_internal_key(psbt, i, ik) == KM_OK;
    int t = g->k->tweak.type;
    bool bip341 = t == PROTO_TWEAK_UNSPENDABLE_TAPROOT || t == PROTO_TWEAK_TAPROOT_MERKLE_ROOT;
    if (!g->musig_fields || (has_ik && (!bip341 || memcmp(ik, g->internal_x, 32) != 0)))
        return KM_OK; /* the PSBT says something else: leave it be */
    int r = KM_OK;
    if (bip341 && !has_ik)
        r = psbt_in_set_tap_internal_key(psbt, i, g->internal_x, err);
    if (r == KM_OK && t == PROTO_TWEAK_TAPROOT_MERKLE_ROOT &&
        !has_record(psbt, PSBT_SCOPE_INPUT, i, PSBT_IN_TAP_MERKLE_ROOT))
        r = psbt_in_set_tap_merkle_root(psbt, i, g->k->tweak.merkle_root, err);
    if (r == KM_OK)
        r = psbt_in_set_musig2_participants(psbt, i, g->internal, &g->keys[0][0], g->k->nusers,
                                            err);
    return r;
}

/* Writes each signature (64 bytes, || hash type unless SIGHASH_DEFAULT)
 * after checking it against the key it was made for: PSBT_IN_TAP_KEY_SIG,
 * or PSBT_IN_TAP_SCRIPT_SIG under (key, leaf hash). */
static int apply_sigs(struct psbt *psbt, const struct group *g, const struct plan *p,
                      const struct client_signing *s, struct km_error *err)
{
    for (size_t j = 0; j < p->n; j++) {
        const struct plan_entry *e = &p->e[j];
        uint8_t sig[65];
        memcpy(sig, s->sigs[j], 64);
        if (schnorr_verify(sig, 64, p->msgs[j], 32, e->key, 32) != KM_OK)
            return km_error_set(err, KM_ERR_CRYPTO, 0,
                                "input %zu: the signature does not verify under the %s key", e->idx,
                                e->script_path ? "leaf's" : "output");
        size_t len = 64;
        if (e->hash_type != SIGHASH_DEFAULT)
            sig[len++] = (uint8_t)e->hash_type;
        int r = e->script_path ? psbt_in_set_tap_script_sig(psbt, e->idx, e->key, e->leaf.leaf_hash,
                                                            sig, len, err)
                               : psbt_in_set_tap_key_sig(psbt, e->idx, sig, len, err);
        if (r == KM_OK)
            r = describe_input(psbt, g, e, err);
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}

/* BIP-373 participant keys on every output paying the group's key. */
static int describe_outputs(struct psbt *psbt, const struct group *g, struct km_error *err)
{
    const struct tx *tx = psbt_tx_direct(psbt);
    for (size_t o = 0; g->musig_fields && o < tx->n_out; o++) {
        if (!is_p2tr_of(tx->out[o].script.p, tx->out[o].script.len, g->k->xonly))
            continue;
        int r = psbt_out_set_musig2_participants(psbt, o, g->internal, &g->keys[0][0], g->k->nusers,
                                                 err);
        if (r != KM_OK)
            return r;
        tx = psbt_tx_direct(psbt);
    }
    return KM_OK;
}

/* ---- finalizing -------------------------------------------------------- */

/* Input fields a finalizer clears (BIP-174: all but the UTXOs, the final
 * scripts, the version 2 transaction fields and unknown ones). */
static bool cleared_on_finalize(uint64_t type)
{
    switch (type) {
    case PSBT_IN_PARTIAL_SIG:
    case PSBT_IN_SIGHASH_TYPE:
    case PSBT_IN_REDEEM_SCRIPT:
    case PSBT_IN_WITNESS_SCRIPT:
    case PSBT_IN_BIP32_DERIVATION:
    case PSBT_IN_RIPEMD160:
    case PSBT_IN_SHA256:
    case PSBT_IN_HASH160:
    case PSBT_IN_HASH256:
    case PSBT_IN_TAP_KEY_SIG:
    case PSBT_IN_TAP_SCRIPT_SIG:
    case PSBT_IN_TAP_LEAF_SCRIPT:
    case PSBT_IN_TAP_BIP32_DERIVATION:
    case PSBT_IN_TAP_INTERNAL_KEY:
    case PSBT_IN_TAP_MERKLE_ROOT:
    case PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS:
    case PSBT_IN_MUSIG2_PUB_NONCE:
    case PSBT_IN_MUSIG2_PARTIAL_SIG:
        return true;
    default:
        return false;
    }
}

/* Sets input i's final witness (items, BIP-141 stack serialization) and
 * clears what the finalizer must. */
static int set_final_witness(struct psbt *psbt, size_t i, const uint8_t *const *items,
                             const size_t *lens, size_t n, struct km_error *err)
{
    struct buf w;
    buf_init(&w, TX_MAX_SIZE);
    int r = ser_put_compact(&w, n);
    for (size_t k = 0; r == KM_OK && k < n; k++)
        r = ser_put_bytes(&w, items[k], lens[k]); /* CompactSize length || bytes */
    uint8_t key = PSBT_IN_FINAL_SCRIPTWITNESS;
    if (r == KM_OK)
        r = psbt_record_set(psbt, PSBT_SCOPE_INPUT, i, &key, 1, buf_peek(&w), buf_len(&w), err);
    else
        r = km_error_set(err, r, 0, "input %zu: the witness is too large", i);
    buf_release(&w);
    for (size_t k = psbt_record_count(psbt, PSBT_SCOPE_INPUT, i); r == KM_OK && k-- > 0;) {
        struct psbt_record rec;
        psbt_record_get(psbt, PSBT_SCOPE_INPUT, i, k, &rec);
        if (!cleared_on_finalize(rec.type))
            continue;
        uint8_t *copy = xmalloc(rec.key_len);
        memcpy(copy, rec.key, rec.key_len);
        r = psbt_record_remove(psbt, PSBT_SCOPE_INPUT, i, copy, rec.key_len, err);
        free(copy);
    }
    return r;
}

/* Whether script is exactly <key> OP_CHECKSIG: the only leaf whose whole
 * witness a signature of key makes. */
static bool is_pk_leaf(const uint8_t *script, size_t len, const uint8_t key[32])
{
    return len == 34 && script[0] == 0x20 && memcmp(script + 1, key, 32) == 0 && script[33] == 0xac;
}

/*
 * Finalizes the input e signed with sig: the key path witness is the
 * signature alone; a script path one is sig, script, control block, for a
 * <key> OP_CHECKSIG leaf only (*done false for another leaf: its other
 * witness items are not ours to know). An input already final (by another
 * of its leaves) is left as it is.
 */
static int finalize_input(bool *done, struct psbt *psbt, const struct plan_entry *e,
                          const uint8_t *sig, size_t sig_len, struct km_error *err)
{
    *done = true;
    if (has_record(psbt, PSBT_SCOPE_INPUT, e->idx, PSBT_IN_FINAL_SCRIPTWITNESS))
        return KM_OK;
    if (!e->script_path)
        return set_final_witness(psbt, e->idx, &sig, &sig_len, 1, err);
    struct psbt_tap_leaf_script leaf;
    for (size_t k = 0; psbt_in_tap_leaf_script(psbt, e->idx, k, &leaf) == KM_OK; k++) {
        uint8_t h[32];
        taproot_leaf_hash(h, leaf.leaf_version, leaf.script, leaf.script_len);
        if (memcmp(h, e->leaf.leaf_hash, 32) != 0 ||
            !is_pk_leaf(leaf.script, leaf.script_len, e->key))
            continue;
        const uint8_t *items[3] = {sig, leaf.script, leaf.control};
        size_t lens[3] = {sig_len, leaf.script_len, leaf.control_len};
        return set_final_witness(psbt, e->idx, items, lens, 3, err);
    }
    *done = false;
    return KM_OK;
}

/* Moves input i's final witness (BIP-141 stack serialization) into tx. */
static int extract_witness(struct tx *tx, size_t i, const struct psbt_record *rec,
                           struct km_error *err)
{
    struct buf b;
    uint64_t n;
    buf_view(&b, rec->value, rec->value_len);
    int r = ser_get_compact(&b, &n);
    for (uint64_t k = 0; r == KM_OK && k < n; k++) {
        uint64_t len;
        const uint8_t *item;
        r = ser_get_compact(&b, &len);
        if (r == KM_OK)
            r = len > buf_len(&b) ? KM_ERR_INCOMPLETE : ser_get_direct(&b, &item, (size_t)len);
        if (r == KM_OK)
            tx_push_witness(tx, i, item, (size_t)len);
    }
    if (r == KM_OK && buf_len(&b) != 0)
        r = KM_ERR_TRAILING_DATA;
    if (r != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "input %zu: malformed "
                            "PSBT_IN_FINAL_SCRIPTWITNESS",
                            i);
    return KM_OK;
}

/* The network serialization, in hex, of the finalized transaction, or NULL
 * (*err unset) when some input is not final. */
static int extract_tx(char **hex, const struct psbt *psbt, struct km_error *err)
{
    struct tx *tx = tx_dup(psbt_tx_direct(psbt));
    int r = KM_OK;
    *hex = NULL;
    for (size_t i = 0; r == KM_OK && i < tx->n_in; i++) {
        bool final = false;
        for (size_t k = 0; r == KM_OK && k < psbt_record_count(psbt, PSBT_SCOPE_INPUT, i); k++) {
            struct psbt_record rec;
            psbt_record_get(psbt, PSBT_SCOPE_INPUT, i, k, &rec);
            if (rec.type == PSBT_IN_FINAL_SCRIPTSIG) {
                tx_set_script_sig(tx, i, rec.value, rec.value_len);
                final = true;
            } else if (rec.type == PSBT_IN_FINAL_SCRIPTWITNESS) {
                r = extract_witness(tx, i, &rec, err);
                final = true;
            }
        }
        if (r == KM_OK && !final) {
            tx_free(tx);
            return KM_OK;
        }
    }
    struct buf b;
    buf_init(&b, 2 * TX_MAX_SIZE);
    if (r == KM_OK && tx_serialize(&b, tx, 0) != KM_OK)
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "cannot serialize the transaction");
    if (r == KM_OK) {
        size_t cap = 2 * buf_len(&b) + 1;
        *hex = xmalloc(cap);
        hex_encode(*hex, cap, buf_peek(&b), buf_len(&b));
    }
    buf_release(&b);
    tx_free(tx);
    return r;
}

/* --finalize: final witnesses of the signed inputs, then the transaction
 * if every input is final. */
static int finalize(char **tx_hex, struct psbt *psbt, const struct plan *p,
                    const struct client_signing *s, struct km_error *err)
{
    for (size_t j = 0; j < p->n; j++) {
        const struct plan_entry *e = &p->e[j];
        uint8_t sig[65];
        size_t len = 64;
        memcpy(sig, s->sigs[j], 64);
        if (e->hash_type != SIGHASH_DEFAULT)
            sig[len++] = (uint8_t)e->hash_type;
        bool done;
        int r = finalize_input(&done, psbt, e, sig, len, err);
        if (r != KM_OK)
            return r;
        if (!done)
            fprintf(stderr,
                    PROG ": input %zu: signed by a leaf other than <key> OP_CHECKSIG; its "
                         "witness is left to a finalizer that knows the other items\n",
                    e->idx);
    }
    return extract_tx(tx_hex, psbt, err);
}

/* ---- the approver's check ---------------------------------------------- */

/* The request's messages are the plan's sighashes, in order. */
static int request_matches(const struct plan *p, const struct client_signing *req,
                           struct km_error *err)
{
    if (req->nitems != p->n)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "the request signs %zu messages; this PSBT has %zu signatures of the "
                            "group's key to make: not this PSBT's signing",
                            req->nitems, p->n);
    for (size_t j = 0; j < p->n; j++) {
        if (memcmp(req->msgs[j], p->msgs[j], PROTO_MSG_LEN) != 0)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "the request's message %zu is not the sighash of input %zu%s of "
                                "this PSBT: not this PSBT's signing",
                                j, p->e[j].idx, p->e[j].script_path ? " (script path)" : "");
    }
    return KM_OK;
}

/* How the plan signs input i: "key path", "script path" or NULL. */
static const char *signed_how(const struct plan *p, size_t i)
{
    for (size_t j = 0; j < p->n; j++) {
        if (p->e[j].idx == i)
            return p->e[j].script_path ? "script path" : "key path";
    }
    return NULL;
}

/* An output's destination: its address on net, else its script in hex. */
static void format_destination(char *out, size_t cap, const struct tx_out *o,
                               enum address_network net)
{
    const uint8_t *sc = o->script.p;
    size_t len = o->script.len;
    struct address_segwit w = {0};
    bool segwit = len >= 4 && len <= ADDRESS_SCRIPT_MAX &&
                  (sc[0] == 0 || (sc[0] >= 0x51 && sc[0] <= 0x60)) && sc[1] == len - 2;
    if (segwit) {
        w.version = sc[0] == 0 ? 0 : (unsigned)(sc[0] - 0x50);
        w.program_len = len - 2;
        memcpy(w.program, sc + 2, w.program_len);
    }
    if (segwit && address_segwit_encode(out, cap, address_network_hrp(net), &w) == KM_OK)
        return;
    size_t n = len > (cap - 8) / 2 ? (cap - 8) / 2 : len;
    memcpy(out, "script ", 7);
    hex_encode(out + 7, cap - 7, sc, n);
}

static void print_summary(FILE *out, const struct group *g, const struct psbt *psbt,
                          const struct plan *p, enum address_network net)
{
    const struct tx *tx = psbt_tx_direct(psbt);
    uint64_t in_sum = 0, out_sum = 0;
    bool amounts_known = true;
    for (size_t i = 0; i < tx->n_in; i++) {
        struct sighash_spent spent;
        struct km_error ignored;
        const char *how = signed_how(p, i);
        if (psbt_in_spent_output(psbt, i, &spent, &ignored) != KM_OK) {
            amounts_known = false;
            fprintf(out, "  input %zu: amount unknown, %s\n", i, how ? how : "not the group's");
            continue;
        }
        in_sum += spent.amount;
        fprintf(out, "  input %zu: %llu sat, %s%s\n", i, (unsigned long long)spent.amount,
                how ? "the group signs it by its " : "not signed by the group", how ? how : "");
    }
    for (size_t o = 0; o < tx->n_out; o++) {
        char dest[2 * ADDRESS_STR_MAX + 16];
        format_destination(dest, sizeof(dest), &tx->out[o], net);
        out_sum += tx->out[o].amount;
        bool ours = is_p2tr_of(tx->out[o].script.p, tx->out[o].script.len, g->k->xonly);
        fprintf(out, "  output %zu: %llu sat to %s%s\n", o, (unsigned long long)tx->out[o].amount,
                dest, ours ? " (the group's key: change)" : "");
    }
    if (amounts_known && in_sum >= out_sum)
        fprintf(out, "  fee: %llu sat\n", (unsigned long long)(in_sum - out_sum));
    else if (amounts_known)
        fprintf(out, "  fee: none: the outputs exceed the inputs by %llu sat\n",
                (unsigned long long)(out_sum - in_sum));
    else
        fprintf(out, "  fee: unknown (some inputs' amounts are not in the PSBT)\n");
}

int cmd_psbt_check_request(FILE *out, const struct client_keygen *k,
                           const struct client_signing *req, const char *path,
                           enum address_network net, struct km_error *err)
{
    struct psbt *psbt = NULL;
    uint8_t *raw = NULL;
    size_t raw_len;
    struct group g = {.k = k};
    struct plan *p = xcalloc(1, sizeof(*p));
    int r = read_input(&raw, &raw_len, path, err);
    if (r == KM_OK)
        r = decode_psbt(&psbt, raw, raw_len, err);
    free(raw);
    if (r == KM_OK)
        r = group_derive(&g, err);
    if (r == KM_OK)
        r = plan_build(p, &g, psbt, err);
    if (r == KM_OK)
        r = request_matches(p, req, err);
    if (r == KM_OK) {
        uint8_t txid[32];
        char hex[65] = "?";
        if (tx_txid(txid, psbt_tx_direct(psbt)) == KM_OK) {
            for (size_t i = 0; i < 16; i++) { /* displayed byte-reversed, as txids are */
                uint8_t t = txid[i];
                txid[i] = txid[31 - i];
                txid[31 - i] = t;
            }
            hex_encode(hex, sizeof(hex), txid, 32);
        }
        fprintf(out, "the request signs this PSBT (txid %s, %s addresses):\n", hex,
                address_network_name(net));
        print_summary(out, &g, psbt, p, net);
    }
    group_clear(&g);
    free(p);
    psbt_free(psbt);
    return r;
}

/* ---- the command ------------------------------------------------------- */

static void report_signed(const struct plan *p, const struct client_signing *s)
{
    fprintf(stderr, PROG ": signed input%s", p->n == 1 ? "" : "s");
    for (size_t j = 0; j < p->n; j++)
        fprintf(stderr, "%s %zu%s", j ? "," : "", p->e[j].idx,
                p->e[j].script_path ? " (script path)" : "");
    fprintf(stderr, " (signing session %s)\n", s->id_s);
}

static int no_input_error(const struct group *g, struct km_error *err)
{
    char key[65];
    hex_encode(key, sizeof(key), g->k->xonly, 32);
    return km_error_set(err, KM_ERR_NOT_FOUND, 0,
                        "no input of this PSBT left to sign spends the group's key (P2TR output "
                        "key %s) by its key path or a leaf: nothing signed",
                        key);
}

static int sign_and_write(const struct psbt_sign_args *a, struct group *g, struct psbt *psbt,
                          struct km_error *err)
{
    struct plan *p = xcalloc(1, sizeof(*p));
    struct client_signing s = {0};
    char *tx_hex = NULL;
    int r = plan_build(p, g, psbt, err);
    if (r == KM_OK && p->n == 0)
        r = no_input_error(g, err);
    if (r == KM_OK)
        r = sign_plan(&s, a, g, p, err);
    if (r == KM_OK)
        r = apply_sigs(psbt, g, p, &s, err);
    if (r == KM_OK)
        r = describe_outputs(psbt, g, err);
    if (r == KM_OK && a->finalize)
        r = finalize(&tx_hex, psbt, p, &s, err);
    if (r == KM_OK)
        r = write_psbt(a->out, psbt, err);
    if (r == KM_OK)
        report_signed(p, &s);
    if (r == KM_OK && tx_hex != NULL)
        r = write_text("-", tx_hex, err);
    else if (r == KM_OK && a->finalize)
        fprintf(stderr, PROG ": some inputs are not final (not the group's): no transaction\n");
    free(tx_hex);
    client_signing_clear(&s);
    free(p);
    return r;
}

static int psbt_sign_cmd(int argc, char **argv)
{
    struct psbt_sign_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;
    struct km_error err;
    struct group g;
    struct psbt *psbt = NULL;
    uint8_t *raw = NULL;
    size_t raw_len;
    int r = read_input(&raw, &raw_len, a.in, &err);
    if (r == KM_OK)
        r = decode_psbt(&psbt, raw, raw_len, &err);
    free(raw);
    bool loaded = false;
    if (r == KM_OK) {
        r = group_load(&g, a.session, &err);
        loaded = true;
    }
    if (r == KM_OK)
        r = sign_and_write(&a, &g, psbt, &err);
    if (r != KM_OK)
        fprintf(stderr, PROG ": %s\n", err.msg);
    if (loaded)
        group_clear(&g);
    psbt_free(psbt);
    return r == KM_OK ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

int cmd_psbt(int argc, char **argv)
{
    static const struct cmd_entry sub[] = {
        {"sign", "--session FILE --psbt FILE|- [--out FILE|-] [--finalize]",
         "sign the inputs of a PSBT that spend the group's key (key or script path)",
         psbt_sign_cmd},
    };
    return cmd_dispatch("keymeld psbt", sub, KM_ARRAY_LEN(sub), argc, argv);
}
