/*
 * keysource_file.c - the file sealer: a 32-byte key-encryption key from a
 * file (a Kubernetes Secret, a systemd credential), read once at start and
 * held in a fixed buffer wiped at exit (enclave/keysource.h).
 */
#include "enclave/keysource.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "enclave/keysource_impl.h"
#include "common/banned.h"

struct file_source {
    struct keysource base;
    uint8_t kek[SEALBOX_KEK_LEN];
};

static int file_kek(struct keysource *ks, uint8_t kek[SEALBOX_KEK_LEN], uint8_t **kms_blob,
                    size_t *kms_len, const struct sealed_key *existing, struct km_error *err)
{
    (void)existing;
    (void)err;
    if (kms_blob != NULL) {
        *kms_blob = NULL;
        *kms_len = 0;
    }
    memcpy(kek, ((struct file_source *)ks)->kek, SEALBOX_KEK_LEN);
    return KM_OK;
}

static void file_free(struct keysource *ks)
{
    secure_free(ks, sizeof(struct file_source));
}

static const struct keysource_ops file_ops = {"file", SEALER_FILE, file_kek, NULL, file_free};

/* 32 raw bytes, or 64 hex digits with an optional trailing newline. */
static int parse_kek(uint8_t kek[SEALBOX_KEK_LEN], const uint8_t *p, size_t n)
{
    if (n == SEALBOX_KEK_LEN) {
        memcpy(kek, p, SEALBOX_KEK_LEN);
        return KM_OK;
    }
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n != 2 * SEALBOX_KEK_LEN)
        return KM_ERR_INVALID;
    return hex_decode_exact(kek, SEALBOX_KEK_LEN, (const char *)p, n);
}

int keysource_file_new(struct keysource **out, const char *kek_path, bool *warning,
                       struct km_error *err)
{
    uint8_t raw[2 * SEALBOX_KEK_LEN + 3];
    *out = NULL;
    *warning = false;
    int fd = open(kek_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return km_error_set(err, KM_ERR_IO, errno, "cannot read the key-encryption key %s: %s",
                            kek_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        *warning = true;
    ssize_t n = read(fd, raw, sizeof(raw));
    close(fd);
    struct file_source *fs = xcalloc(1, sizeof(*fs));
    fs->base.ops = &file_ops;
    int r = n > 0 ? parse_kek(fs->kek, raw, (size_t)n) : KM_ERR_INVALID;
    secure_wipe(raw, sizeof(raw));
    if (r != KM_OK) {
        file_free(&fs->base);
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "the key-encryption key %s must hold 32 bytes, raw or as 64 hex digits "
                            "(make one with: head -c 32 /dev/urandom > %s)",
                            kek_path, kek_path);
    }
    *out = &fs->base;
    return KM_OK;
}
