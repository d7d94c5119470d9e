/*
 * cbor.c - the strict CBOR decoder and shortest-form encoder (cbor.h).
 *
 * The decoder reads through a struct buf view with its checked getters, so
 * every read of the untrusted input is bounds-checked in one place. Item
 * arrays grow by doubling as elements arrive: a container's claimed count
 * is only compared with the limit, never used to size an allocation.
 */
#include "attest/cbor.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

const struct cbor_limits cbor_doc_limits = {CBOR_DOC_MAX_INPUT, CBOR_DOC_MAX_DEPTH,
                                            CBOR_DOC_MAX_ITEMS, CBOR_DOC_MAX_CONTAINER};

/* Recursion bound whatever the caller's limits say: the decoder, the
 * duplicate-key comparison and the free all recurse once per level. */
#define CBOR_HARD_MAX_DEPTH 128

enum {
    CBOR_MT_UINT = 0,
    CBOR_MT_NEGINT = 1,
    CBOR_MT_BYTES = 2,
    CBOR_MT_TEXT = 3,
    CBOR_MT_ARRAY = 4,
    CBOR_MT_MAP = 5,
    CBOR_MT_TAG = 6,
    CBOR_MT_SIMPLE = 7,
};

#define CBOR_AI_INDEFINITE 31

struct cbor_tree {
    struct cbor_item root;
};

struct cbor_dec {
    struct buf in; /* view over the input */
    size_t total;
    size_t max_depth;
    const struct cbor_limits *lim;
    size_t nitems;
    struct km_error *err;
};

static size_t dec_off(const struct cbor_dec *d)
{
    return d->total - buf_len(&d->in);
}

/* Number of child items an item owns in items[]. */
static size_t item_children(const struct cbor_item *it)
{
    switch (it->type) {
    case CBOR_ARRAY:
        return it->count;
    case CBOR_MAP:
        return 2 * it->count;
    case CBOR_TAG:
        return it->items != NULL ? 1 : 0;
    default:
        return 0;
    }
}

static void items_free(struct cbor_item *items, size_t n);

static void item_release(struct cbor_item *it)
{
    items_free(it->items, item_children(it));
    it->items = NULL;
    it->count = 0;
}

static void items_free(struct cbor_item *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        item_release(&items[i]);
    free(items);
}

/* Structural equality, used for duplicate map keys. With shortest
 * encodings and definite strings enforced, two keys are the same value
 * exactly when this holds (an indefinite and a definite container with the
 * same elements compare equal, as they should). */
static bool item_eq(const struct cbor_item *a, const struct cbor_item *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case CBOR_UINT:
    case CBOR_NEGINT:
        return a->u == b->u;
    case CBOR_BYTES:
    case CBOR_TEXT:
        return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
    case CBOR_TAG:
        return a->u == b->u && item_eq(&a->items[0], &b->items[0]);
    case CBOR_ARRAY:
    case CBOR_MAP:
        if (a->count != b->count)
            return false;
        for (size_t i = 0; i < item_children(a); i++) {
            if (!item_eq(&a->items[i], &b->items[i]))
                return false;
        }
        return true;
    case CBOR_FALSE:
    case CBOR_TRUE:
    case CBOR_NULL:
    case CBOR_UNDEFINED:
        return true;
    }
    return false;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, at most
 * U+10FFFF. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0fu, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t b = p[i + k];
            if ((b & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

static int dec_truncated(struct cbor_dec *d, size_t at, const char *what)
{
    return km_error_set(d->err, KM_ERR_INCOMPLETE, 0, "input ends inside %s at offset %zu", what,
                        at);
}

/* Reads one head: major type, additional info and its argument (0 for an
 * indefinite length). Refuses reserved additional info, floats, simple
 * values in a following byte, and non-shortest arguments. */
static int dec_head(struct cbor_dec *d, uint8_t *major, uint8_t *ai, uint64_t *arg)
{
    size_t at = dec_off(d);
    uint8_t ib, v8;
    uint16_t v16;
    uint32_t v32;
    uint64_t min;

    *arg = 0;
    *major = 0;
    *ai = 0;
    if (buf_get_u8(&d->in, &ib) != KM_OK)
        return km_error_set(d->err, KM_ERR_INCOMPLETE, 0,
                            "input ends at offset %zu where an item was expected", at);
    *major = (uint8_t)(ib >> 5);
    *ai = (uint8_t)(ib & 0x1f);
    if (*ai < 24) {
        *arg = *ai;
        return KM_OK;
    }
    if (*major == CBOR_MT_SIMPLE && *ai != CBOR_AI_INDEFINITE)
        return km_error_set(d->err, KM_ERR_INVALID, 0,
                            "unsupported float or simple value (0x%02x) at offset %zu", ib, at);
    switch (*ai) {
    case 24:
        if (buf_get_u8(&d->in, &v8) != KM_OK)
            return dec_truncated(d, at, "an item head");
        *arg = v8, min = 24;
        break;
    case 25:
        if (buf_get_u16(&d->in, &v16) != KM_OK)
            return dec_truncated(d, at, "an item head");
        *arg = v16, min = 0x100;
        break;
    case 26:
        if (buf_get_u32(&d->in, &v32) != KM_OK)
            return dec_truncated(d, at, "an item head");
        *arg = v32, min = 0x10000;
        break;
    case 27:
        if (buf_get_u64(&d->in, arg) != KM_OK)
            return dec_truncated(d, at, "an item head");
        min = 0x100000000u;
        break;
    case CBOR_AI_INDEFINITE:
        return KM_OK;
    default:
        return km_error_set(d->err, KM_ERR_INVALID, 0,
                            "reserved additional information %u at offset %zu", *ai, at);
    }
    if (*arg < min)
        return km_error_set(d->err, KM_ERR_INVALID, 0,
                            "non-shortest encoding of an integer or length at offset %zu", at);
    return KM_OK;
}

static int dec_item(struct cbor_dec *d, struct cbor_item *it, size_t depth, bool *is_break);

/* Decodes the elements of an array or map whose head was just read. depth
 * is the container's own nesting depth. On failure everything decoded so
 * far is freed. */
static int dec_container(struct cbor_dec *d, struct cbor_item *it, size_t at, bool indef,
                         uint64_t claimed, size_t depth)
{
    bool is_map = it->type == CBOR_MAP;
    size_t per = is_map ? 2 : 1, n = 0, cap = 0;
    struct cbor_item *items = NULL;
    int r = KM_OK;

    if (!indef && claimed > d->lim->max_container)
        return km_error_set(d->err, KM_ERR_TOO_LARGE, 0,
                            "%s of %" PRIu64 " elements at offset %zu exceeds the limit of %zu",
                            is_map ? "map" : "array", claimed, at, d->lim->max_container);
    for (;;) {
        bool brk = false;
        size_t el_at;

        /* claimed <= max_container, so claimed * 2 cannot overflow. */
        if (!indef && n == (size_t)claimed * per)
            break;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 4;
            struct cbor_item *p = realloc(items, ncap * sizeof(*items));
            if (p == NULL) {
                r = km_error_set(d->err, KM_ERR_NOMEM, 0, "out of memory");
                goto out;
            }
            items = p;
            cap = ncap;
        }
        el_at = dec_off(d);
        r = dec_item(d, &items[n], depth, indef ? &brk : NULL);
        if (r != KM_OK)
            goto out;
        if (brk) {
            if (n % per != 0) {
                r = km_error_set(d->err, KM_ERR_INVALID, 0,
                                 "break after a map key (no value) at offset %zu", el_at);
                goto out;
            }
            break;
        }
        n++;
        if ((n + per - 1) / per > d->lim->max_container) {
            r = km_error_set(d->err, KM_ERR_TOO_LARGE, 0,
                             "%s at offset %zu has more than %zu elements",
                             is_map ? "map" : "array", at, d->lim->max_container);
            goto out;
        }
        if (is_map && n % 2 == 1) {
            for (size_t k = 0; k + 1 < n; k += 2) {
                if (item_eq(&items[k], &items[n - 1])) {
                    r = km_error_set(d->err, KM_ERR_INVALID, 0, "duplicate map key at offset %zu",
                                     el_at);
                    goto out;
                }
            }
        }
    }
    it->items = items;
    it->count = n / per;
    items = NULL;
out:
    items_free(items, n);
    return r;
}

/* Decodes one item at nesting depth `depth` (the number of containers
 * around it). When is_break is not NULL a "break" is allowed and reported
 * through it instead of an item. */
static int dec_item(struct cbor_dec *d, struct cbor_item *it, size_t depth, bool *is_break)
{
    size_t at = dec_off(d);
    uint8_t major = 0, ai = 0;
    uint64_t arg = 0;
    int r;

    memset(it, 0, sizeof(*it));
    if ((r = dec_head(d, &major, &ai, &arg)) != KM_OK)
        return r;
    if (ai == CBOR_AI_INDEFINITE) {
        if (major == CBOR_MT_SIMPLE) {
            if (is_break != NULL) {
                *is_break = true;
                return KM_OK;
            }
            return km_error_set(d->err, KM_ERR_INVALID, 0,
                                "break outside an indefinite-length container at offset %zu", at);
        }
        if (major == CBOR_MT_BYTES || major == CBOR_MT_TEXT)
            return km_error_set(d->err, KM_ERR_INVALID, 0, "indefinite-length string at offset %zu",
                                at);
        if (major != CBOR_MT_ARRAY && major != CBOR_MT_MAP)
            return km_error_set(d->err, KM_ERR_INVALID, 0,
                                "indefinite length on major type %u at offset %zu", major, at);
    }
    if (d->nitems >= d->lim->max_items)
        return km_error_set(d->err, KM_ERR_TOO_LARGE, 0, "more than %zu items (at offset %zu)",
                            d->lim->max_items, at);
    d->nitems++;

    switch (major) {
    case CBOR_MT_UINT:
    case CBOR_MT_NEGINT:
        it->type = major == CBOR_MT_UINT ? CBOR_UINT : CBOR_NEGINT;
        it->u = arg;
        return KM_OK;
    case CBOR_MT_BYTES:
    case CBOR_MT_TEXT:
        it->type = major == CBOR_MT_BYTES ? CBOR_BYTES : CBOR_TEXT;
        if (arg > buf_len(&d->in))
            return km_error_set(d->err, KM_ERR_INCOMPLETE, 0,
                                "string of %" PRIu64 " bytes at offset %zu runs past the end", arg,
                                at);
        it->len = (size_t)arg;
        it->ptr = it->len ? buf_peek(&d->in) : NULL;
        if (buf_consume(&d->in, it->len) != KM_OK)
            return dec_truncated(d, at, "a string");
        if (it->type == CBOR_TEXT && !utf8_valid(it->ptr, it->len))
            return km_error_set(d->err, KM_ERR_INVALID, 0,
                                "text string at offset %zu is not valid UTF-8", at);
        return KM_OK;
    case CBOR_MT_ARRAY:
    case CBOR_MT_MAP:
    case CBOR_MT_TAG:
        if (depth + 1 > d->max_depth)
            return km_error_set(d->err, KM_ERR_TOO_LARGE, 0,
                                "nesting deeper than %zu at offset %zu", d->max_depth, at);
        if (major == CBOR_MT_TAG) {
            it->type = CBOR_TAG;
            it->u = arg;
            it->items = calloc(1, sizeof(*it->items));
            if (it->items == NULL)
                return km_error_set(d->err, KM_ERR_NOMEM, 0, "out of memory");
            it->count = 1;
            r = dec_item(d, &it->items[0], depth + 1, NULL);
            if (r != KM_OK) {
                free(it->items);
                it->items = NULL;
                it->count = 0;
            }
            return r;
        }
        it->type = major == CBOR_MT_ARRAY ? CBOR_ARRAY : CBOR_MAP;
        it->indefinite = ai == CBOR_AI_INDEFINITE;
        return dec_container(d, it, at, it->indefinite, arg, depth + 1);
    case CBOR_MT_SIMPLE:
        switch (ai) {
        case 20:
            it->type = CBOR_FALSE;
            return KM_OK;
        case 21:
            it->type = CBOR_TRUE;
            return KM_OK;
        case 22:
            it->type = CBOR_NULL;
            return KM_OK;
        case 23:
            it->type = CBOR_UNDEFINED;
            return KM_OK;
        default:
            return km_error_set(d->err, KM_ERR_INVALID, 0,
                                "unsupported simple value %u at offset %zu", ai, at);
        }
    default:
        break;
    }
    return km_error_set(d->err, KM_ERR_INTERNAL, 0, "bad major type at offset %zu", at);
}

int cbor_decode(struct cbor_tree **out, const uint8_t *p, size_t len, const struct cbor_limits *lim,
                struct km_error *err)
{
    struct cbor_tree *t;
    struct cbor_dec d;
    int r;

    KM_ASSERT(out != NULL && lim != NULL);
    *out = NULL;
    if (len > lim->max_input)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "input of %zu bytes exceeds the limit of %zu",
                            len, lim->max_input);
    if (len == 0)
        return km_error_set(err, KM_ERR_INCOMPLETE, 0, "empty input");
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return km_error_set(err, KM_ERR_NOMEM, 0, "out of memory");
    memset(&d, 0, sizeof(d));
    buf_view(&d.in, p, len);
    d.total = len;
    d.lim = lim;
    d.max_depth = lim->max_depth < CBOR_HARD_MAX_DEPTH ? lim->max_depth : CBOR_HARD_MAX_DEPTH;
    d.err = err;
    r = dec_item(&d, &t->root, 0, NULL);
    if (r != KM_OK) {
        free(t);
        return r;
    }
    if (buf_len(&d.in) != 0) {
        r = km_error_set(err, KM_ERR_TRAILING_DATA, 0, "%zu trailing bytes at offset %zu",
                         buf_len(&d.in), dec_off(&d));
        cbor_tree_free(t);
        return r;
    }
    *out = t;
    return KM_OK;
}

const struct cbor_item *cbor_root(const struct cbor_tree *t)
{
    KM_ASSERT(t != NULL);
    return &t->root;
}

void cbor_tree_free(struct cbor_tree *t)
{
    if (t == NULL)
        return;
    item_release(&t->root);
    free(t);
}

const struct cbor_item *cbor_map_get_text(const struct cbor_item *m, const char *key)
{
    if (m == NULL || m->type != CBOR_MAP)
        return NULL;
    for (size_t i = 0; i < m->count; i++) {
        if (cbor_text_eq(&m->items[2 * i], key))
            return &m->items[2 * i + 1];
    }
    return NULL;
}

const struct cbor_item *cbor_map_get_int(const struct cbor_item *m, int64_t key)
{
    enum cbor_type type = key < 0 ? CBOR_NEGINT : CBOR_UINT;
    /* -1 - u = key  <=>  u = -(key + 1), computed without overflow. */
    uint64_t u = key < 0 ? (uint64_t)(-(key + 1)) : (uint64_t)key;

    if (m == NULL || m->type != CBOR_MAP)
        return NULL;
    for (size_t i = 0; i < m->count; i++) {
        const struct cbor_item *k = &m->items[2 * i];
        if (k->type == type && k->u == u)
            return &m->items[2 * i + 1];
    }
    return NULL;
}

bool cbor_text_eq(const struct cbor_item *it, const char *s)
{
    size_t n = strlen(s);
    return it != NULL && it->type == CBOR_TEXT && it->len == n &&
           (n == 0 || memcmp(it->ptr, s, n) == 0);
}

/* Encoder. */

static int put_head(struct buf *b, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    uint8_t mt = (uint8_t)(major << 5);

    if (v < 24) {
        h[0] = (uint8_t)(mt | v);
        n = 1;
    } else if (v <= 0xff) {
        h[0] = mt | 24;
        h[1] = (uint8_t)v;
        n = 2;
    } else if (v <= 0xffff) {
        h[0] = mt | 25;
        h[1] = (uint8_t)(v >> 8);
        h[2] = (uint8_t)v;
        n = 3;
    } else if (v <= 0xffffffffu) {
        h[0] = mt | 26;
        buf_store_be32(h + 1, (uint32_t)v);
        n = 5;
    } else {
        h[0] = mt | 27;
        buf_store_be64(h + 1, v);
        n = 9;
    }
    return buf_put(b, h, n);
}

int cbor_put_uint(struct buf *b, uint64_t v)
{
    return put_head(b, CBOR_MT_UINT, v);
}

int cbor_put_int(struct buf *b, int64_t v)
{
    if (v < 0)
        return put_head(b, CBOR_MT_NEGINT, (uint64_t)(-(v + 1)));
    return put_head(b, CBOR_MT_UINT, (uint64_t)v);
}

int cbor_put_bytes(struct buf *b, const uint8_t *p, size_t len)
{
    int r = put_head(b, CBOR_MT_BYTES, len);
    if (r == KM_OK && len > 0)
        r = buf_put(b, p, len);
    return r;
}

int cbor_put_text_n(struct buf *b, const char *s, size_t len)
{
    int r = put_head(b, CBOR_MT_TEXT, len);
    if (r == KM_OK && len > 0)
        r = buf_put(b, s, len);
    return r;
}

int cbor_put_text(struct buf *b, const char *s)
{
    return cbor_put_text_n(b, s, strlen(s));
}

int cbor_put_array(struct buf *b, size_t count)
{
    return put_head(b, CBOR_MT_ARRAY, count);
}

int cbor_put_map(struct buf *b, size_t count)
{
    return put_head(b, CBOR_MT_MAP, count);
}

int cbor_put_tag(struct buf *b, uint64_t tag)
{
    return put_head(b, CBOR_MT_TAG, tag);
}

int cbor_put_null(struct buf *b)
{
    return buf_put_u8(b, 0xf6);
}

int cbor_put_bool(struct buf *b, bool v)
{
    return buf_put_u8(b, v ? 0xf5 : 0xf4);
}
