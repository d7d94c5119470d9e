#include "protocol/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/uuid.h"
#include "common/xmalloc.h"
#include "protocol/envelope.h"
#include "common/banned.h"

/* Where the decoder is, for messages: "keygen_init args: items[3].item_id". */
struct pctx {
    const char *schema;
    char path[192];
    struct km_error *err;
};

static int fail(struct pctx *c, int code, const char *fmt, ...) KM_PRINTF(3, 4);

static int fail(struct pctx *c, int code, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->path[0] != '\0')
        return km_error_set(c->err, code, 0, "%s: %s: %s", c->schema, c->path, what);
    return km_error_set(c->err, code, 0, "%s: %s", c->schema, what);
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t path_push_key(struct pctx *c, const char *name)
{
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof(c->path) - n, "%s%s", n ? "." : "", name);
    return n;
}

static size_t path_push_index(struct pctx *c, size_t i)
{
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof(c->path) - n, "[%zu]", i);
    return n;
}

static void path_pop(struct pctx *c, size_t n)
{
    c->path[n] = '\0';
}

static void *at(void *base, size_t off)
{
    return (uint8_t *)base + off;
}

static const void *cat(const void *base, size_t off)
{
    return (const uint8_t *)base + off;
}

static json_t *jcheck(json_t *j)
{
    if (j == NULL)
        KM_BUG("out of memory building JSON");
    return j;
}

/* ---- decoding ---------------------------------------------------------- */

static int dec_object(const struct proto_schema *s, void *out, const json_t *j, struct pctx *c);

static int dec_uint(const struct proto_field *f, void *dst, const json_t *v, struct pctx *c)
{
    if (!json_is_integer(v))
        return fail(c, KM_ERR_INVALID, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < f->min || (uint64_t)x > f->max)
        return fail(c, KM_ERR_INVALID, "must be an integer in %llu..%llu",
                    (unsigned long long)f->min, (unsigned long long)f->max);
    if (f->type == PF_U32)
        *(uint32_t *)dst = (uint32_t)x;
    else
        *(uint64_t *)dst = (uint64_t)x;
    return KM_OK;
}

static int dec_uuid(struct uuid *dst, const json_t *v, struct pctx *c)
{
    if (!json_is_string(v) || uuid_parse(dst, json_string_value(v), json_string_length(v)) != KM_OK)
        return fail(c, KM_ERR_INVALID, "must be a UUID string");
    if (uuid_is_nil(dst))
        return fail(c, KM_ERR_INVALID, "must not be the nil UUID");
    return KM_OK;
}

static int dec_hex_exact(uint8_t *dst, size_t n, const json_t *v, struct pctx *c)
{
    if (!json_is_string(v) || json_string_length(v) != 2 * n ||
        hex_decode_exact(dst, n, json_string_value(v), 2 * n) != KM_OK)
        return fail(c, KM_ERR_INVALID, "must be %zu bytes of hex", n);
    return KM_OK;
}

static int dec_blob(const struct proto_field *f, struct proto_blob *dst, const json_t *v,
                    struct pctx *c)
{
    if (!json_is_string(v))
        return fail(c, KM_ERR_INVALID, "must be a hex string");
    size_t hexlen = json_string_length(v);
    if (hexlen % 2 != 0 || hexlen / 2 < f->min)
        return fail(c, KM_ERR_INVALID, "must be at least %llu bytes of hex",
                    (unsigned long long)f->min);
    if (hexlen / 2 > f->max)
        return fail(c, KM_ERR_INVALID, "too long (at most %llu bytes)", (unsigned long long)f->max);
    size_t n = hexlen / 2;
    uint8_t *p = n ? xmalloc(n) : NULL;
    size_t got = 0;
    if (n && hex_decode(p, n, &got, json_string_value(v), hexlen) != KM_OK) {
        free(p);
        return fail(c, KM_ERR_INVALID, "not valid hex");
    }
    dst->p = p;
    dst->len = got;
    return KM_OK;
}

static int dec_str(const struct proto_field *f, char *dst, const json_t *v, struct pctx *c)
{
    if (!json_is_string(v))
        return fail(c, KM_ERR_INVALID, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < f->min || n > f->max)
        return fail(c, KM_ERR_INVALID, "must be %llu..%llu characters", (unsigned long long)f->min,
                    (unsigned long long)f->max);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return fail(c, KM_ERR_INVALID, "must be printable ASCII");
    memcpy(dst, s, n);
    dst[n] = '\0';
    return KM_OK;
}

static int dec_enum(const struct proto_field *f, int *dst, const json_t *v, struct pctx *c)
{
    if (json_is_string(v)) {
        for (int i = 0; f->names[i] != NULL; i++) {
            if (strlen(f->names[i]) == json_string_length(v) &&
                strcmp(f->names[i], json_string_value(v)) == 0) {
                *dst = i;
                return KM_OK;
            }
        }
    }
    char list[160] = "";
    for (int i = 0; f->names[i] != NULL; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "", f->names[i]);
    }
    return fail(c, KM_ERR_INVALID, "must be one of %s", list);
}

/* Checks the element count of a JSON array against [min, max]. */
static int check_count(const struct proto_field *f, const json_t *v, size_t *n, struct pctx *c)
{
    if (!json_is_array(v))
        return fail(c, KM_ERR_INVALID, "must be an array");
    *n = json_array_size(v);
    if (*n > f->max)
        return fail(c, KM_ERR_LIMIT, "too many entries (%zu; at most %llu)", *n,
                    (unsigned long long)f->max);
    if (*n < f->min)
        return fail(c, KM_ERR_INVALID, "needs at least %llu entries", (unsigned long long)f->min);
    return KM_OK;
}

static int uuid_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct uuid));
}

/* Fails if ids[0..n) (spaced stride bytes apart) repeat one. */
static int check_distinct(const void *ids, size_t n, size_t stride, struct pctx *c)
{
    if (n < 2)
        return KM_OK;
    struct uuid *copy = XALLOC_ARRAY(struct uuid, n);
    for (size_t i = 0; i < n; i++)
        memcpy(&copy[i], cat(ids, i * stride), sizeof(struct uuid));
    qsort(copy, n, sizeof(struct uuid), uuid_cmp);
    int r = KM_OK;
    for (size_t i = 1; i < n && r == KM_OK; i++) {
        if (uuid_equal(&copy[i - 1], &copy[i])) {
            char s[UUID_STR_LEN + 1];
            uuid_format(s, &copy[i]);
            r = fail(c, KM_ERR_INVALID, "%s appears more than once", s);
        }
    }
    free(copy);
    return r;
}

static int dec_uuids(const struct proto_field *f, void *base, const json_t *v, struct pctx *c)
{
    size_t n = 0;
    int r = check_count(f, v, &n, c);
    if (r != KM_OK || n == 0)
        return r;
    struct uuid *ids = XALLOC_ARRAY(struct uuid, n);
    *(struct uuid **)at(base, f->off) = ids;
    *(size_t *)at(base, f->count_off) = n;
    for (size_t i = 0; i < n; i++) {
        size_t mark = path_push_index(c, i);
        r = dec_uuid(&ids[i], json_array_get(v, i), c);
        path_pop(c, mark);
        if (r != KM_OK)
            return r;
    }
    return (f->flags & PF_F_DISTINCT) ? check_distinct(ids, n, sizeof(*ids), c) : KM_OK;
}

static int dec_hex_array(const struct proto_field *f, void *base, const json_t *v, struct pctx *c)
{
    size_t n = 0;
    int r = check_count(f, v, &n, c);
    if (r != KM_OK || n == 0)
        return r;
    uint8_t *vals = xcalloc(n, f->len);
    *(uint8_t **)at(base, f->off) = vals;
    *(size_t *)at(base, f->count_off) = n;
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        size_t mark = path_push_index(c, i);
        r = dec_hex_exact(vals + i * f->len, f->len, json_array_get(v, i), c);
        path_pop(c, mark);
    }
    return r;
}

static int dec_array(const struct proto_field *f, void *base, const json_t *v, struct pctx *c)
{
    size_t n = 0;
    int r = check_count(f, v, &n, c);
    if (r != KM_OK || n == 0)
        return r;
    /* Zeroed elements are valid input to proto_clear, so the array is
     * attached before decoding: an error half-way frees cleanly. */
    uint8_t *elems = xcalloc(n, f->elem->size);
    *(void **)at(base, f->off) = elems;
    *(size_t *)at(base, f->count_off) = n;
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        size_t mark = path_push_index(c, i);
        r = dec_object(f->elem, elems + i * f->elem->size, json_array_get(v, i), c);
        path_pop(c, mark);
    }
    if (r == KM_OK && (f->flags & PF_F_DISTINCT)) {
        if (f->elem->fields[0].type != PF_UUID)
            KM_BUG("PF_F_DISTINCT array '%s' needs a UUID first field", f->name);
        r = check_distinct(elems + f->elem->fields[0].off, n, f->elem->size, c);
    }
    return r;
}

static int dec_field(const struct proto_field *f, void *base, const json_t *v, struct pctx *c)
{
    void *dst = at(base, f->off);
    switch (f->type) {
    case PF_BOOL:
        if (!json_is_boolean(v))
            return fail(c, KM_ERR_INVALID, "must be true or false");
        *(bool *)dst = json_is_true(v);
        return KM_OK;
    case PF_U32:
    case PF_U64:
        return dec_uint(f, dst, v, c);
    case PF_UUID:
        return dec_uuid(dst, v, c);
    case PF_HEX:
        return dec_hex_exact(dst, f->len, v, c);
    case PF_BLOB:
        return dec_blob(f, dst, v, c);
    case PF_STR:
        return dec_str(f, dst, v, c);
    case PF_ENUM:
        return dec_enum(f, dst, v, c);
    case PF_OBJECT:
        return dec_object(f->elem, dst, v, c);
    case PF_UUIDS:
        return dec_uuids(f, base, v, c);
    case PF_HEX_ARRAY:
        return dec_hex_array(f, base, v, c);
    case PF_ARRAY:
        return dec_array(f, base, v, c);
    }
    KM_BUG("unknown field type %d", (int)f->type);
}

static const struct proto_field *find_field(const struct proto_schema *s, const char *key)
{
    for (size_t i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, key) == 0)
            return &s->fields[i];
    return NULL;
}

/* Every key must be a field of s: a typo is an error, never ignored. */
static int check_known_keys(const struct proto_schema *s, const json_t *j, struct pctx *c)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)(uintptr_t)j, key, val)
    {
        (void)val;
        size_t keylen = json_object_iter_key_len(json_object_key_to_iter(key));
        if (keylen != strlen(key) || find_field(s, key) == NULL)
            return fail(c, KM_ERR_INVALID, "unknown key \"%.64s\"", key);
    }
    return KM_OK;
}

static int dec_object(const struct proto_schema *s, void *out, const json_t *j, struct pctx *c)
{
    if (s->root_array)
        return dec_field(&s->fields[0], out, j, c);
    if (!json_is_object(j))
        return fail(c, KM_ERR_INVALID, "must be an object");
    int r = check_known_keys(s, j, c);
    for (size_t i = 0; i < s->nfields && r == KM_OK; i++) {
        const struct proto_field *f = &s->fields[i];
        const json_t *v = json_object_get(j, f->name);
        if (v == NULL) {
            if (!(f->flags & PF_F_OPTIONAL))
                r = fail(c, KM_ERR_INVALID, "missing \"%s\"", f->name);
            continue;
        }
        if (f->present_off != PROTO_NO_PRESENT)
            *(bool *)at(out, f->present_off) = true;
        size_t mark = path_push_key(c, f->name);
        r = dec_field(f, out, v, c);
        path_pop(c, mark);
    }
    if (r == KM_OK && s->check != NULL && (r = s->check(out, c->err)) != KM_OK)
        km_error_prefix(c->err, "%s%s%s", s->name, c->path[0] ? ": " : "", c->path);
    return r;
}

int proto_decode(const struct proto_schema *s, void *out, const json_t *json, struct km_error *err)
{
    struct pctx c = {.schema = s->name, .err = err};
    memset(out, 0, s->size);
    int r = dec_object(s, out, json, &c);
    if (r != KM_OK)
        proto_clear(s, out);
    return r;
}

int proto_decode_bytes(const struct proto_schema *s, void *out, const uint8_t *p, size_t len,
                       struct km_error *err)
{
    json_error_t jerr;
    memset(out, 0, s->size);
    json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "%s: invalid JSON at byte %d: %.100s", s->name,
                            jerr.position, jerr.text);
    int r = proto_decode(s, out, root, err);
    json_decref(root);
    return r;
}

/* ---- encoding ---------------------------------------------------------- */

static json_t *enc_object(const struct proto_schema *s, const void *in);

static bool is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* True if an optional field is absent and must be omitted. */
static bool omitted(const struct proto_field *f, const void *base)
{
    if (f->present_off != PROTO_NO_PRESENT)
        return !*(const bool *)cat(base, f->present_off);
    if (!(f->flags & PF_F_OPTIONAL))
        return false;
    const void *v = cat(base, f->off);
    switch (f->type) {
    case PF_BOOL:
        return !*(const bool *)v;
    case PF_U32:
        return *(const uint32_t *)v == 0;
    case PF_U64:
        return *(const uint64_t *)v == 0;
    case PF_UUID:
        return uuid_is_nil(v);
    case PF_HEX:
        return is_zero(v, f->len);
    case PF_BLOB:
        return ((const struct proto_blob *)v)->len == 0;
    case PF_STR:
        return *(const char *)v == '\0';
    case PF_UUIDS:
    case PF_HEX_ARRAY:
    case PF_ARRAY:
        return *(const size_t *)cat(base, f->count_off) == 0;
    case PF_ENUM:
    case PF_OBJECT:
        return false;
    }
    return false;
}

static json_t *enc_hex(const uint8_t *p, size_t n)
{
    char *hex = xmalloc(st_add(st_mult(n, 2), 1));
    hex_encode(hex, 2 * n + 1, p, n);
    json_t *j = jcheck(json_stringn_nocheck(hex, 2 * n));
    free(hex);
    return j;
}

static json_t *enc_uuid(const struct uuid *u)
{
    char s[UUID_STR_LEN + 1];
    uuid_format(s, u);
    return jcheck(json_string_nocheck(s));
}

static json_t *enc_array(const struct proto_field *f, const void *base)
{
    size_t n = *(const size_t *)cat(base, f->count_off);
    const uint8_t *elems = *(const uint8_t *const *)cat(base, f->off);
    json_t *a = jcheck(json_array());
    for (size_t i = 0; i < n; i++) {
        json_t *e;
        if (f->type == PF_UUIDS)
            e = enc_uuid((const struct uuid *)(const void *)elems + i);
        else if (f->type == PF_HEX_ARRAY)
            e = enc_hex(elems + i * f->len, f->len);
        else
            e = enc_object(f->elem, elems + i * f->elem->size);
        if (json_array_append_new(a, e) != 0)
            KM_BUG("out of memory building JSON");
    }
    return a;
}

static json_t *enc_field(const struct proto_field *f, const void *base)
{
    const void *v = cat(base, f->off);
    switch (f->type) {
    case PF_BOOL:
        return jcheck(json_boolean(*(const bool *)v));
    case PF_U32:
        return jcheck(json_integer((json_int_t) * (const uint32_t *)v));
    case PF_U64:
        return jcheck(json_integer((json_int_t) * (const uint64_t *)v));
    case PF_UUID:
        return enc_uuid(v);
    case PF_HEX:
        return enc_hex(v, f->len);
    case PF_BLOB:
        return enc_hex(((const struct proto_blob *)v)->p, ((const struct proto_blob *)v)->len);
    case PF_STR:
        return jcheck(json_string(v));
    case PF_ENUM:
        return jcheck(json_string(f->names[*(const int *)v]));
    case PF_OBJECT:
        return enc_object(f->elem, v);
    case PF_UUIDS:
    case PF_HEX_ARRAY:
    case PF_ARRAY:
        return enc_array(f, base);
    }
    KM_BUG("unknown field type %d", (int)f->type);
}

static json_t *enc_object(const struct proto_schema *s, const void *in)
{
    if (s->root_array)
        return enc_field(&s->fields[0], in);
    json_t *o = jcheck(json_object());
    for (size_t i = 0; i < s->nfields; i++) {
        const struct proto_field *f = &s->fields[i];
        if (!omitted(f, in) && json_object_set_new_nocheck(o, f->name, enc_field(f, in)) != 0)
            KM_BUG("out of memory building JSON");
    }
    return o;
}

json_t *proto_encode(const struct proto_schema *s, const void *in)
{
    return enc_object(s, in);
}

int proto_encode_bytes(struct buf *out, const struct proto_schema *s, const void *in)
{
    json_t *j = proto_encode(s, in);
    int r = env_dump_json(out, j);
    json_decref(j);
    return r;
}

/* ---- freeing ----------------------------------------------------------- */

static void clear_object(const struct proto_schema *s, void *obj);

static void clear_field(const struct proto_field *f, void *base)
{
    void *v = at(base, f->off);
    switch (f->type) {
    case PF_BLOB:
        proto_blob_clear(v);
        break;
    case PF_OBJECT:
        clear_object(f->elem, v);
        break;
    case PF_ARRAY: {
        size_t n = *(size_t *)at(base, f->count_off);
        uint8_t *elems = *(uint8_t **)v;
        for (size_t i = 0; elems != NULL && i < n; i++)
            clear_object(f->elem, elems + i * f->elem->size);
        free(elems);
        *(void **)v = NULL;
        *(size_t *)at(base, f->count_off) = 0;
        break;
    }
    case PF_UUIDS:
    case PF_HEX_ARRAY:
        free(*(void **)v);
        *(void **)v = NULL;
        *(size_t *)at(base, f->count_off) = 0;
        break;
    case PF_BOOL:
    case PF_U32:
    case PF_U64:
    case PF_UUID:
    case PF_HEX:
    case PF_STR:
    case PF_ENUM:
        break;
    }
}

static void clear_object(const struct proto_schema *s, void *obj)
{
    for (size_t i = 0; i < s->nfields; i++)
        clear_field(&s->fields[i], obj);
}

void proto_clear(const struct proto_schema *s, void *obj)
{
    clear_object(s, obj);
    memset(obj, 0, s->size);
}

void proto_blob_set(struct proto_blob *blob, const uint8_t *p, size_t len)
{
    blob->p = NULL;
    blob->len = len;
    if (len > 0) {
        blob->p = xmalloc(len);
        memcpy(blob->p, p, len);
    }
}

void proto_blob_clear(struct proto_blob *blob)
{
    free(blob->p);
    blob->p = NULL;
    blob->len = 0;
}
