#include "protocol/envelope.h"

#include <string.h>

#include "common/banned.h"

bool env_is_snake_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int dump_cb(const char *p, size_t n, void *ud)
{
    return buf_put(ud, p, n) == KM_OK ? 0 : -1;
}

int env_dump_json(struct buf *out, const json_t *json)
{
    if (json_dump_callback(json, dump_cb, out, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
        /* buf_put poisons the buffer on failure; report its reason. */
        int r = buf_ensure(out, 0);
        return r != KM_OK ? r : KM_ERR_INVALID;
    }
    return KM_OK;
}

/* Parses the frame payload as one JSON object with no duplicate keys. */
static json_t *parse_object(const uint8_t *p, size_t len, struct km_error *err)
{
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: a duplicated "id" or "cmd" must not be
     * resolved differently by two readers. */
    json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        km_error_set(err, KM_ERR_INVALID, 0, "invalid JSON at byte %d: %.200s", jerr.position,
                     jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        km_error_set(err, KM_ERR_INVALID, 0, "message must be a JSON object");
        return NULL;
    }
    return root;
}

static int get_u64(const json_t *obj, const char *key, uint64_t *out, struct km_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "missing \"%s\"", key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > ENV_ID_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "\"%s\" must be an integer 0..2^53-1", key);
    *out = (uint64_t)json_integer_value(v);
    return KM_OK;
}

static int check_version(const json_t *root, struct km_error *err)
{
    const json_t *v = json_object_get(root, "v");
    if (!json_is_integer(v))
        return km_error_set(err, KM_ERR_INVALID, 0, "missing or non-integer \"v\"");
    if (json_integer_value(v) != ENV_VERSION)
        return km_error_set(err, KM_ERR_UNSUPPORTED, 0, "unsupported protocol version %lld",
                            (long long)json_integer_value(v));
    return KM_OK;
}

/* Only the listed keys may appear: catches typos ("arg") early. */
static int check_keys(const json_t *obj, const char *const *allowed, size_t n, struct km_error *err)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)(uintptr_t)obj, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return km_error_set(err, KM_ERR_INVALID, 0, "unexpected key \"%.64s\"", key);
    }
    return KM_OK;
}

int env_request_decode(struct env_request *out, bool *has_id, const uint8_t *p, size_t len,
                       struct km_error *err)
{
    static const char *const keys[] = {"v", "id", "command_id", "cmd", "args"};
    int r = KM_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    *has_id = false;

    json_t *root = parse_object(p, len, err);
    if (root == NULL)
        return KM_ERR_INVALID;
    if ((r = get_u64(root, "id", &out->id, err)) != KM_OK)
        goto out;
    *has_id = true;
    if ((r = check_version(root, err)) != KM_OK || (r = check_keys(root, keys, 5, err)) != KM_OK)
        goto out;

    const json_t *cid = json_object_get(root, "command_id");
    if (!json_is_string(cid) ||
        uuid_parse(&out->command_id, json_string_value(cid), json_string_length(cid)) != KM_OK) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "\"command_id\" must be a UUID string");
        goto out;
    }
    /* docs/PROTOCOL.md: the nil UUID is refused. As an idempotency key it
     * would merge the commands of every client that forgot to set one. */
    if (uuid_is_nil(&out->command_id)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "\"command_id\" must not be the nil UUID");
        goto out;
    }
    const json_t *cmd = json_object_get(root, "cmd");
    if (!json_is_string(cmd) || !env_is_snake_name(json_string_value(cmd), ENV_CMD_MAX)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "\"cmd\" must be a snake_case name");
        goto out;
    }
    memcpy(out->cmd, json_string_value(cmd), json_string_length(cmd) + 1);

    json_t *args = json_object_get(root, "args");
    if (args == NULL) {
        out->args = json_object();
    } else if (json_is_object(args)) {
        out->args = json_incref(args);
    } else {
        r = km_error_set(err, KM_ERR_INVALID, 0, "\"args\" must be an object");
        goto out;
    }
    r = KM_OK;
out:
    json_decref(root);
    if (r != KM_OK) {
        uint64_t id = out->id;
        env_request_clear(out);
        out->id = id;
        r = KM_ERR_INVALID;
    }
    return r;
}

/* The request up to its "args" value. */
static int request_head(struct buf *out, uint64_t id, const struct uuid *command_id,
                        const char *cmd)
{
    char cid[UUID_STR_LEN + 1];
    if (!env_is_snake_name(cmd, ENV_CMD_MAX) || id > ENV_ID_MAX)
        return KM_ERR_INVALID;
    uuid_format(cid, command_id);
    /* The fixed part is formatted directly: cheaper than building a json_t
     * tree for every request, and the values need no escaping (validated
     * above). */
    return buf_putf(out, "{\"v\":%d,\"id\":%llu,\"command_id\":\"%s\",\"cmd\":\"%s\",\"args\":",
                    ENV_VERSION, (unsigned long long)id, cid, cmd);
}

int env_request_encode(struct buf *out, uint64_t id, const struct uuid *command_id, const char *cmd,
                       const json_t *args)
{
    if (args != NULL && !json_is_object(args))
        return KM_ERR_INVALID;
    int r = request_head(out, id, command_id, cmd);
    if (r != KM_OK)
        return r;
    r = args ? env_dump_json(out, args) : buf_put_str(out, "{}");
    if (r != KM_OK)
        return r;
    return buf_put_u8(out, '}');
}

int env_request_encode_text(struct buf *out, uint64_t id, const struct uuid *command_id,
                            const char *cmd, const uint8_t *args_json, size_t len)
{
    if (len < 2 || args_json[0] != '{' || args_json[len - 1] != '}')
        return KM_ERR_INVALID;
    int r = request_head(out, id, command_id, cmd);
    if (r == KM_OK)
        r = buf_put(out, args_json, len);
    if (r != KM_OK)
        return r;
    return buf_put_u8(out, '}');
}

static void copy_str(char *dst, size_t cap, const json_t *v)
{
    size_t n = json_string_length(v);
    if (n > cap - 1)
        n = cap - 1;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
}

static int decode_error(struct env_error *e, const json_t *obj, struct km_error *err)
{
    static const char *const keys[] = {"code", "message", "retryable"};
    if (!json_is_object(obj))
        return km_error_set(err, KM_ERR_INVALID, 0, "\"error\" must be an object");
    if (check_keys(obj, keys, 3, err) != KM_OK)
        return KM_ERR_INVALID;
    const json_t *code = json_object_get(obj, "code");
    const json_t *msg = json_object_get(obj, "message");
    const json_t *retry = json_object_get(obj, "retryable");
    if (!json_is_string(code) || !json_is_string(msg) || !json_is_boolean(retry))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "\"error\" needs string code, string message, bool retryable");
    copy_str(e->code, sizeof(e->code), code);
    if (!env_is_snake_name(e->code, ENV_ERROR_CODE_MAX))
        return km_error_set(err, KM_ERR_INVALID, 0, "error code must be snake_case");
    copy_str(e->message, sizeof(e->message), msg);
    e->retryable = json_is_true(retry);
    return KM_OK;
}

int env_reply_decode(struct env_reply *out, const uint8_t *p, size_t len, struct km_error *err)
{
    static const char *const keys_ok[] = {"v", "id", "ok", "result"};
    static const char *const keys_err[] = {"v", "id", "ok", "error"};
    int r = KM_ERR_INVALID;
    memset(out, 0, sizeof(*out));

    json_t *root = parse_object(p, len, err);
    if (root == NULL)
        return KM_ERR_INVALID;
    if ((r = check_version(root, err)) != KM_OK ||
        (r = get_u64(root, "id", &out->id, err)) != KM_OK)
        goto out;
    const json_t *ok = json_object_get(root, "ok");
    if (!json_is_boolean(ok)) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "\"ok\" must be a boolean");
        goto out;
    }
    out->ok = json_is_true(ok);
    if ((r = check_keys(root, out->ok ? keys_ok : keys_err, 4, err)) != KM_OK)
        goto out;
    if (out->ok) {
        json_t *result = json_object_get(root, "result");
        if (result == NULL) {
            out->result = json_object();
        } else if (json_is_object(result)) {
            out->result = json_incref(result);
        } else {
            r = km_error_set(err, KM_ERR_INVALID, 0, "\"result\" must be an object");
            goto out;
        }
    } else if ((r = decode_error(&out->error, json_object_get(root, "error"), err)) != KM_OK) {
        goto out;
    }
    r = KM_OK;
out:
    json_decref(root);
    if (r != KM_OK) {
        env_reply_clear(out);
        r = KM_ERR_INVALID;
    }
    return r;
}

int env_reply_encode_ok(struct buf *out, uint64_t id, const json_t *result)
{
    if (result != NULL && !json_is_object(result))
        return KM_ERR_INVALID;
    int r = buf_putf(out, "{\"v\":%d,\"id\":%llu,\"ok\":true,\"result\":", ENV_VERSION,
                     (unsigned long long)id);
    if (r != KM_OK)
        return r;
    r = result ? env_dump_json(out, result) : buf_put_str(out, "{}");
    if (r != KM_OK)
        return r;
    return buf_put_u8(out, '}');
}

/* Length of the longest prefix of s of at most max bytes that does not end
 * inside a UTF-8 sequence. */
static size_t utf8_prefix_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

int env_reply_encode_error(struct buf *out, uint64_t id, const char *code, const char *message,
                           bool retryable)
{
    if (!env_is_snake_name(code, ENV_ERROR_CODE_MAX))
        KM_BUG("error code '%s' is not snake_case", code);
    json_t *err = json_pack("{s:s, s:s%, s:b}", "code", code, "message", message,
                            utf8_prefix_len(message, ENV_ERROR_MSG_MAX), "retryable", retryable);
    if (err == NULL) {
        /* Invalid UTF-8 in the message: send a generic one rather than
         * lose the reply. */
        err = json_pack("{s:s, s:s, s:b}", "code", code, "message", "(message was not valid UTF-8)",
                        "retryable", retryable);
        if (err == NULL)
            return KM_ERR_NOMEM;
    }
    int r = buf_putf(out, "{\"v\":%d,\"id\":%llu,\"ok\":false,\"error\":", ENV_VERSION,
                     (unsigned long long)id);
    if (r == KM_OK)
        r = env_dump_json(out, err);
    if (r == KM_OK)
        r = buf_put_u8(out, '}');
    json_decref(err);
    return r;
}

void env_request_clear(struct env_request *r)
{
    json_decref(r->args);
    memset(r, 0, sizeof(*r));
}

void env_reply_clear(struct env_reply *r)
{
    json_decref(r->result);
    memset(r, 0, sizeof(*r));
}
