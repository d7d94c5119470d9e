/*
 * vectors_bip341.c - tests/data/vectors/bip341/wallet-test-vectors.json:
 * every scriptPubKey case (leaf hashes, merkle root, tweak, output key,
 * scriptPubKey, bech32m address both ways through bitcoin/address.h) and
 * every key-path spending input (internal key, tweak, tweaked secret key,
 * BIP-340 signature of the given sighash).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcoin/address.h"
#include "common/hex.h"
#include "cvec.h"
#include "crypto/keypair.h"
#include "crypto/schnorr.h"
#include "crypto/taproot.h"
#include "common/banned.h"

/* Merkle root of a scriptTree (a leaf object or a [left, right] array);
 * leaf hashes are stored by id. */
static void tree_hash(uint8_t out[32], const json_t *node, uint8_t (*leaves)[32], size_t *nleaves)
{
    if (json_is_array(node)) {
        uint8_t l[32], r[32];
        CHECK_EQ(json_array_size(node), 2);
        tree_hash(l, json_array_get(node, 0), leaves, nleaves);
        tree_hash(r, json_array_get(node, 1), leaves, nleaves);
        taproot_branch_hash(out, l, r);
        return;
    }
    size_t slen;
    uint8_t *script = cvec_hex_alloc(json_object_get(node, "script"), &slen);
    size_t id = (size_t)json_integer_value(json_object_get(node, "id"));
    int ver = (int)json_integer_value(json_object_get(node, "leafVersion"));
    taproot_leaf_hash(out, (uint8_t)ver, script, slen);
    CHECK(id < 16);
    memcpy(leaves[id], out, 32);
    if (id + 1 > *nleaves)
        *nleaves = id + 1;
    free(script);
}

static void test_script_pubkey(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip341/wallet-test-vectors.json");
    size_t count = 0, i;
    json_t *c;

    json_array_foreach(json_object_get(v, "scriptPubKey"), i, c)
    {
        const json_t *given = json_object_get(c, "given"),
                     *inter = json_object_get(c, "intermediary");
        const json_t *exp = json_object_get(c, "expected");
        uint8_t internal[32], root[32], tweak[32], want_tweak[32], out[32], want_out[32];
        uint8_t spk[34], want_spk[34];
        char addr[ADDRESS_STR_MAX];
        struct address_segwit back;
        const json_t *tree = json_object_get(given, "scriptTree");
        int parity;

        cvec_hex(internal, 32, json_object_get(given, "internalPubkey"));
        if (!json_is_null(tree)) {
            uint8_t leaves[16][32], want[32];
            size_t nleaves = 0;
            const json_t *lh = json_object_get(inter, "leafHashes");
            tree_hash(root, tree, leaves, &nleaves);
            CHECK_EQ(nleaves, json_array_size(lh));
            for (size_t k = 0; k < nleaves; k++) {
                cvec_hex(want, 32, json_array_get(lh, k));
                CHECK_MEM_EQ(leaves[k], want, 32);
            }
            cvec_hex(want, 32, json_object_get(inter, "merkleRoot"));
            CHECK_MEM_EQ(root, want, 32);
        } else {
            CHECK(json_is_null(json_object_get(inter, "merkleRoot")));
        }
        const uint8_t *mr = json_is_null(tree) ? NULL : root;
        CHECK_OK(taproot_tweak(tweak, internal, mr));
        cvec_hex(want_tweak, 32, json_object_get(inter, "tweak"));
        CHECK_MEM_EQ(tweak, want_tweak, 32);
        CHECK_OK(taproot_output_key(out, &parity, internal, 32, mr));
        cvec_hex(want_out, 32, json_object_get(inter, "tweakedPubkey"));
        CHECK_MEM_EQ(out, want_out, 32);
        taproot_script_pubkey(spk, out);
        cvec_hex(want_spk, 34, json_object_get(exp, "scriptPubKey"));
        CHECK_MEM_EQ(spk, want_spk, 34);
        const char *want_addr = json_string_value(json_object_get(exp, "bip350Address"));
        CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_MAINNET, out));
        CHECK_STR_EQ(addr, want_addr);
        CHECK_OK(address_segwit_decode(&back, NULL, "bc", want_addr, strlen(want_addr)));
        CHECK_EQ(back.version, 1);
        CHECK_EQ(back.program_len, 32);
        CHECK_MEM_EQ(back.program, out, 32);
        /* The control blocks' first byte carries the output key parity. */
        const json_t *cbs = json_object_get(exp, "scriptPathControlBlocks");
        if (json_is_array(cbs) && json_array_size(cbs) > 0) {
            uint8_t b0;
            const char *cb = json_string_value(json_array_get(cbs, 0));
            CHECK_OK(hex_decode_exact(&b0, 1, cb, 2));
            CHECK_EQ(b0 & 1, parity);
        }
        count++;
    }
    printf("bip341/wallet-test-vectors.json scriptPubKey: %zu cases passed\n", count);
    json_decref(v);
}

static void test_key_path(void **state)
{
    (void)state;
    json_t *v = cvec_load_json("bip341/wallet-test-vectors.json");
    size_t count = 0, i, j, same_sig = 0;
    json_t *kps, *c;

    json_array_foreach(json_object_get(v, "keyPathSpending"), j, kps)
    {
        json_array_foreach(json_object_get(kps, "inputSpending"), i, c)
        {
            const json_t *given = json_object_get(c, "given");
            const json_t *inter = json_object_get(c, "intermediary");
            uint8_t sk[32], pub[32], tweak[32], want[32], root[32], sighash[32], wit[65];
            uint8_t sig[64], zero[32] = {0};
            struct keypair kp, tk;
            const json_t *mrj = json_object_get(given, "merkleRoot");
            size_t witlen;

            cvec_hex(sk, 32, json_object_get(given, "internalPrivkey"));
            CHECK_OK(keypair_init(&kp, sk));
            cvec_hex(pub, 32, json_object_get(inter, "internalPubkey"));
            CHECK_MEM_EQ(kp.xonly, pub, 32);
            if (!json_is_null(mrj))
                cvec_hex(root, 32, mrj);
            const uint8_t *mr = json_is_null(mrj) ? NULL : root;
            CHECK_OK(taproot_tweak(tweak, kp.xonly, mr));
            cvec_hex(want, 32, json_object_get(inter, "tweak"));
            CHECK_MEM_EQ(tweak, want, 32);
            CHECK_OK(taproot_tweak_keypair(&tk, &kp, mr));
            cvec_hex(want, 32, json_object_get(inter, "tweakedPrivkey"));
            CHECK_MEM_EQ(tk.seckey, want, 32);

            /* The witness signature verifies under the output key, and
             * signing the sighash with zero aux_rand reproduces it. */
            uint8_t out[32];
            CHECK_OK(taproot_output_key(out, NULL, kp.xonly, 32, mr));
            CHECK_MEM_EQ(tk.xonly, out, 32);
            cvec_hex(sighash, 32, json_object_get(inter, "sigHash"));
            uint8_t *w = cvec_hex_alloc(
                json_array_get(json_object_get(json_object_get(c, "expected"), "witness"), 0),
                &witlen);
            CHECK(witlen == 64 || witlen == 65);
            memcpy(wit, w, witlen);
            free(w);
            CHECK_OK(schnorr_verify(wit, 64, sighash, 32, out, 32));
            CHECK_OK(schnorr_sign(sig, &tk, sighash, 32, zero));
            same_sig += memcmp(sig, wit, 64) == 0;
            CHECK_OK(schnorr_verify(sig, 64, sighash, 32, out, 32));
            keypair_clear(&kp);
            keypair_clear(&tk);
            count++;
        }
    }
    CHECK_EQ(same_sig, count);
    printf("bip341/wallet-test-vectors.json keyPathSpending: %zu cases passed\n", count);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_script_pubkey),
        TEST(test_key_path),
    };
    (void)test_vectors_dir();
    return RUN_TESTS("crypto.vectors_bip341", tests);
}
