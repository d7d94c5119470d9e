/*
 * test_address.c - src/bitcoin/address for P2TR (witness v1, bech32m)
 * addresses, beyond the BIP-350 vector file that test_descriptor.c runs: a
 * known output key both ways, upper and mixed case, the wrong network,
 * every one-character typo and every truncation, segwit addresses that
 * decode but are no Taproot output, and the encoder's refusals.
 */
#include "test.h"

#include <string.h>

#include "bitcoin/address.h"
#include "common/banned.h"

/* BIP-350 test vector address (valid P2TR) of the output key 79be667e... */
static const char addr_bc[] = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0";

static void check_p2tr(const struct address_segwit *w, const uint8_t key[32])
{
    CHECK_EQ(w->version, 1);
    CHECK_EQ(w->program_len, 32);
    CHECK_MEM_EQ(w->program, key, 32);
}

static void test_p2tr_round_trip_and_refusals(void **state)
{
    (void)state;
    static const uint8_t g_x[32] = {
        0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62,
        0x95, 0xce, 0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce,
        0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
    };
    struct address_segwit w, w2;
    struct km_error e;
    char addr[ADDRESS_STR_MAX], bad[ADDRESS_STR_MAX];
    size_t len = strlen(addr_bc);

    km_error_clear(&e);
    CHECK_OK(address_segwit_decode(&w, NULL, "bc", addr_bc, len));
    check_p2tr(&w, g_x);
    CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_MAINNET, w.program));
    CHECK_STR_EQ(addr, addr_bc);
    /* Upper case is fine, mixed case is not. */
    for (size_t i = 0; i < len; i++)
        bad[i] = (char)(addr_bc[i] >= 'a' && addr_bc[i] <= 'z' ? addr_bc[i] - 32 : addr_bc[i]);
    CHECK_OK(address_segwit_decode(&w2, NULL, "bc", bad, len));
    check_p2tr(&w2, g_x);
    CHECK(bad[len - 2] >= 'A' && bad[len - 2] <= 'Z'); /* ("...JJ0") */
    bad[len - 2] = (char)(bad[len - 2] + 32);
    CHECK_ERR(address_segwit_decode(&w2, &e, "bc", bad, len), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "mixed case");
    CHECK_EQ(w2.program_len, 0);
    /* Other network, typo, truncation. */
    CHECK_ERR(address_segwit_decode(&w2, &e, "tb", addr_bc, len), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "expected \"tb\"");
    CHECK_EQ(w2.program_len, 0);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, addr_bc, len);
        bad[i] = bad[i] == 'q' ? 'p' : 'q';
        CHECK_ERR(address_segwit_decode(&w2, NULL, "bc", bad, len), KM_ERR_INVALID);
    }
    for (size_t n = 0; n < len; n++)
        CHECK_ERR(address_segwit_decode(&w2, NULL, "bc", addr_bc, n), KM_ERR_INVALID);
    /* The same key with a bech32 (not bech32m) checksum (BIP-350 vector). */
    const char *a = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd";
    CHECK_ERR(address_segwit_decode(&w2, &e, "bc", a, strlen(a)), KM_ERR_INVALID);
    CHECK_CONTAINS(e.msg, "requires bech32m");
    /* Valid segwit addresses that are no Taproot output (BIP-350 vectors):
     * the decoder accepts them, so a caller wanting P2TR checks version 1
     * and a 32-byte program. */
    a = "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y";
    CHECK_OK(address_segwit_decode(&w2, NULL, "bc", a, strlen(a)));
    CHECK_EQ(w2.version, 1);
    CHECK_EQ(w2.program_len, 40);
    a = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    CHECK_OK(address_segwit_decode(&w2, NULL, "bc", a, strlen(a)));
    CHECK_EQ(w2.version, 0);
    CHECK_EQ(w2.program_len, 20);
    /* Encoding: testnet, signet and regtest prefixes. */
    CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_TESTNET, g_x));
    CHECK(strncmp(addr, "tb1p", 4) == 0);
    CHECK_OK(address_segwit_decode(&w2, NULL, "tb", addr, strlen(addr)));
    check_p2tr(&w2, g_x);
    CHECK_OK(address_taproot(bad, sizeof(bad), ADDRESS_SIGNET, g_x));
    CHECK_STR_EQ(bad, addr);
    CHECK_OK(address_taproot(addr, sizeof(addr), ADDRESS_REGTEST, g_x));
    CHECK(strncmp(addr, "bcrt1p", 6) == 0);
    CHECK_OK(address_segwit_decode(&w2, NULL, "bcrt", addr, strlen(addr)));
    check_p2tr(&w2, g_x);
    /* Bad hrps, small buffers (the exact size fits, one byte less not). */
    CHECK_ERR(address_segwit_encode(addr, sizeof(addr), "", &w), KM_ERR_INVALID);
    CHECK_ERR(address_segwit_encode(addr, sizeof(addr), "BC", &w), KM_ERR_INVALID);
    CHECK_STR_EQ(addr, "");
    CHECK_ERR(address_taproot(addr, 20, ADDRESS_MAINNET, g_x), KM_ERR_TOO_LARGE);
    CHECK_ERR(address_taproot(addr, len, ADDRESS_MAINNET, g_x), KM_ERR_TOO_LARGE);
    CHECK_OK(address_taproot(addr, len + 1, ADDRESS_MAINNET, g_x));
    CHECK_STR_EQ(addr, addr_bc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_p2tr_round_trip_and_refusals),
    };
    return RUN_TESTS("bitcoin.address", tests);
}
