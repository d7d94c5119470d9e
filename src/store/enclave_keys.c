/*
 * enclave_keys.c - a keygen's enclave keys: typed in the API
 * (struct store_enclave_key), JSON object text in the enclave_keys column
 * ({"<enclave id>":"<pubkey hex>"}), the format the engines' JSON queries
 * on it (STORE_ENCLAVE_KEY_IS_*) and existing databases rely on.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "store/internal.h"
#include "common/banned.h"

#define LOG_COMP "store"

/* What the store has always written: compact, keys in the order given. */
#define ENCLAVE_KEYS_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

const char *store_keygen_enclave_key(const struct store_keygen *k, uint32_t enclave_id)
{
    for (size_t i = 0; i < k->nenclave_keys; i++) {
        if (k->enclave_keys[i].enclave_id == enclave_id)
            return k->enclave_keys[i].public_key;
    }
    return NULL;
}

int store_keygen_set_enclave_key(struct store_keygen *k, uint32_t enclave_id,
                                 const char *public_key_hex)
{
    if (strlen(public_key_hex) >= sizeof(k->enclave_keys[0].public_key))
        return KM_ERR_INVALID;
    size_t i = 0;
    while (i < k->nenclave_keys && k->enclave_keys[i].enclave_id != enclave_id)
        i++;
    if (i == STORE_MAX_ENCLAVES)
        return KM_ERR_LIMIT;
    struct store_enclave_key *e = &k->enclave_keys[i];
    e->enclave_id = enclave_id;
    snprintf(e->public_key, sizeof(e->public_key), "%s", public_key_hex);
    if (i == k->nenclave_keys)
        k->nenclave_keys++;
    return KM_OK;
}

int store_bind_enclave_keys(struct db_stmt *st, int idx, const struct store_enclave_key *keys,
                            size_t n)
{
    if (n == 0)
        return db_bind_null(st, idx);
    if (n > STORE_MAX_ENCLAVES)
        return KM_ERR_LIMIT;
    json_t *obj = json_object();
    int r = obj ? KM_OK : KM_ERR_NOMEM;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%u", keys[i].enclave_id);
        if (json_object_set_new(obj, id, json_string(keys[i].public_key)) != 0)
            r = KM_ERR_INVALID; /* not UTF-8 text: no key the gateway records */
    }
    char *text = r == KM_OK ? json_dumps(obj, ENCLAVE_KEYS_DUMP_FLAGS) : NULL;
    if (r == KM_OK && text == NULL)
        r = KM_ERR_NOMEM;
    if (r == KM_OK)
        r = db_bind_text(st, idx, text); /* copies the text */
    free(text);
    json_decref(obj);
    return r;
}

/* An enclave id as written ("%u"): digits, no sign, no leading zero. */
static bool parse_enclave_id(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    size_t len = strlen(s);
    if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

void store_col_enclave_keys(struct db_stmt *st, int col, struct store_enclave_key *keys, size_t *n)
{
    *n = 0;
    const char *text = db_col_text(st, col);
    if (text == NULL)
        return;
    json_t *obj = json_loadb(text, db_col_bytes(st, col), 0, NULL);
    const char *id;
    json_t *val;
    json_object_foreach(obj, id, val)
    {
        const char *hex = json_string_value(val);
        uint32_t eid;
        if (*n == STORE_MAX_ENCLAVES || hex == NULL || strlen(hex) >= sizeof(keys[0].public_key) ||
            !parse_enclave_id(id, &eid)) {
            log_warn(LOG_COMP, "a keygen's enclave_keys entry \"%.16s\" is unusable: left out", id);
            continue;
        }
        keys[*n].enclave_id = eid;
        snprintf(keys[*n].public_key, sizeof(keys[*n].public_key), "%s", hex);
        (*n)++;
    }
    json_decref(obj);
}
