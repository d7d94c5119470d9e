/*
 * ecies_helper.c - command-line access to src/crypto/ecies for the eciesjs
 * interop test (tests/node/ecies_interop.js drives it).
 *
 *   ecies_helper keygen              -> "<sk hex> <pk33 hex> <pk65 hex>"
 *   ecies_helper encrypt <pk hex>    stdin: plaintext hex  -> ciphertext hex
 *   ecies_helper decrypt <sk hex>    stdin: ciphertext hex -> plaintext hex
 *
 * Exit status: 0 ok, 1 the operation was refused (message on stderr),
 * 2 usage error. Never crashes on bad input: that is part of what is tested.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "crypto/ecies.h"
#include "crypto/keypair.h"
#include "common/banned.h"

#define MAX_IN (8u << 20)

static char *read_stdin(size_t *len)
{
    char *buf = malloc(MAX_IN + 1);
    size_t n = 0, got;
    if (buf == NULL)
        return NULL;
    while ((got = fread(buf + n, 1, MAX_IN - n, stdin)) > 0)
        n += got;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_hex(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (h == NULL)
        exit(2);
    hex_encode(h, 2 * n + 1, p, n);
    printf("%s\n", h);
    free(h);
}

static int cmd_keygen(void)
{
    struct keypair kp;
    secp256k1_pubkey pub;
    uint8_t full[65];
    size_t len = sizeof(full);

    if (keypair_generate(&kp) != KM_OK)
        return 1;
    if (!secp256k1_ec_pubkey_parse(secp256k1_context_static, &pub, kp.pubkey, 33) ||
        !secp256k1_ec_pubkey_serialize(secp256k1_context_static, full, &len, &pub,
                                       SECP256K1_EC_UNCOMPRESSED))
        return 1;
    char sk[65], pk[67], pkf[131];
    hex_encode(sk, sizeof(sk), kp.seckey, 32);
    hex_encode(pk, sizeof(pk), kp.pubkey, 33);
    hex_encode(pkf, sizeof(pkf), full, 65);
    printf("%s %s %s\n", sk, pk, pkf);
    keypair_clear(&kp);
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t key[65];
    size_t keylen, hlen, inlen, outlen;
    char *hex;
    uint8_t *in, *out;
    int r;

    if (argc == 2 && strcmp(argv[1], "keygen") == 0)
        return cmd_keygen();
    if (argc != 3 || (strcmp(argv[1], "encrypt") != 0 && strcmp(argv[1], "decrypt") != 0)) {
        fprintf(stderr,
                "usage: ecies_helper keygen | encrypt <pk> | decrypt <sk> (data on stdin)\n");
        return 2;
    }
    if (hex_decode(key, sizeof(key), &keylen, argv[2], strlen(argv[2])) != KM_OK) {
        fprintf(stderr, "error: bad key hex\n");
        return 2;
    }
    if ((hex = read_stdin(&hlen)) == NULL)
        return 2;
    in = malloc(hlen / 2 + 1);
    out = malloc(hlen / 2 + ECIES_OVERHEAD + 1);
    if (in == NULL || out == NULL || hex_decode(in, hlen / 2 + 1, &inlen, hex, hlen) != KM_OK) {
        fprintf(stderr, "error: bad data hex\n");
        return 2;
    }
    if (strcmp(argv[1], "encrypt") == 0) {
        r = ecies_encrypt(out, inlen + ECIES_OVERHEAD, &outlen, key, keylen, in, inlen);
        if (r != KM_OK)
            fprintf(stderr, "error: %s\n", km_strerror(r));
    } else {
        struct km_error err;
        km_error_clear(&err);
        if (keylen != 32) {
            fprintf(stderr, "error: secret key must be 32 bytes\n");
            return 2;
        }
        r = ecies_decrypt(out, inlen + 1, &outlen, &err, key, in, inlen);
        if (r != KM_OK)
            fprintf(stderr, "error: %s (%s)\n", err.msg, km_errname(r));
    }
    if (r == KM_OK)
        print_hex(out, outlen);
    free(hex);
    free(in);
    free(out);
    return r == KM_OK ? 0 : 1;
}
