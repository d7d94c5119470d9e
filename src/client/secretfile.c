#include "client/secretfile_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/secure.h"
#include "common/banned.h"

int secretfile_write(const char *path, json_t *doc, struct km_error *err)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        return km_error_set(err, KM_ERR_NOMEM, 0, "cannot encode %s", path);
    int r = KM_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = km_error_set(err, errno == EEXIST ? KM_ERR_EXISTS : KM_ERR_IO, errno,
                         "cannot create %s: %s", path, strerror(errno));
    } else {
        size_t len = strlen(text);
        ssize_t w = write(fd, text, len);
        if (w != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
            r = km_error_set(err, KM_ERR_IO, errno, "cannot write %s: %s", path, strerror(errno));
        close(fd);
    }
    secure_free(text, strlen(text)); /* it held keys */
    return r;
}

json_t *secretfile_hex_string(const uint8_t *p, size_t n)
{
    char buf[2 * SECRETFILE_HEX_MAX + 1];
    if (n > SECRETFILE_HEX_MAX)
        KM_BUG("secretfile_hex_string: %zu bytes", n);
    return json_string(hex_encode(buf, sizeof(buf), p, n));
}

int secretfile_hex(uint8_t *out, size_t n, const json_t *obj, const char *key, const char *where,
                   struct km_error *err)
{
    const char *h = json_string_value(json_object_get(obj, key));
    if (h == NULL || hex_decode_exact(out, n, h, strlen(h)) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "%s: \"%s\" must be %zu bytes of hex", where,
                            key, n);
    return KM_OK;
}

int secretfile_uuid(struct uuid *out, char *text, const json_t *obj, const char *key,
                    const char *where, struct km_error *err)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL || uuid_parse(out, s, strlen(s)) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "%s: \"%s\" must be a UUID", where, key);
    if (text != NULL)
        uuid_format(text, out);
    return KM_OK;
}
