/*
 * sealed_key_fuzz.c - the sealed identity key parser
 * (enclave/keysource.h, sealed_key_parse) and keysource_open with a fixed
 * file KEK, on arbitrary bytes: what the gateway hands an enclave in
 * `configure` is untrusted. Seeds: blobs made with the test KEK, for
 * enclave 1 epoch 1 and enclave 7 epoch 2, and their headers alone.
 *
 * Contract checked: never crashes, leaks or reads out of bounds; a parse
 * that succeeds describes bytes inside the input; opening anything but an
 * untouched blob fails without a key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enclave/keysource.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keysource *test_source(void)
{
    static struct keysource *ks;
    if (ks == NULL) {
        char path[] = "/tmp/km-fuzz-kek-XXXXXX";
        uint8_t kek[32];
        memset(kek, 0x5a, sizeof(kek));
        int fd = mkstemp(path);
        bool loose;
        if (fd < 0 || write(fd, kek, sizeof(kek)) != (ssize_t)sizeof(kek))
            abort();
        close(fd);
        if (keysource_file_new(&ks, path, &loose, NULL) != KM_OK)
            abort();
        unlink(path);
    }
    return ks;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sealed_key sk;
    struct km_error err;
    if (sealed_key_parse(&sk, data, size, &err) == KM_OK) {
        if (sk.box < data || sk.box + SEALBOX_LEN != data + size || sk.ad != data ||
            sk.ad_len != SEALED_KEY_HEADER + sk.kms_len)
            abort();
    }
    struct keypair kp;
    uint64_t epoch = 0;
    if (keysource_open(test_source(), &kp, &epoch, data, size, sk.enclave_id, &err) == KM_OK)
        keypair_clear(&kp);
    else if (epoch != 0)
        abort();
    return 0;
}
