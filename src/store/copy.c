/*
 * copy.c - copies a deployment's database into a new one (store.h
 * "Copying a database"): `keymeld db migrate`, from SQLite to PostgreSQL in
 * practice, though any two db.h backends work.
 *
 * The copy is generic over one list of tables and their columns
 * (copy_tables below). That list is checked against both databases before anything is
 * copied (every table and column present, of the expected type, and
 * nothing the list does not name), so a migration that adds a column or a
 * table without updating the list makes the copy refuse to run instead of
 * dropping data quietly.
 *
 * The check: for every table, the row count and a content digest of the
 * source rows (taken while copying them) must equal those of the rows the
 * target holds, read back inside the same transaction before its commit.
 * The digest is order-independent (SHA-256 over the sorted SHA-256 of each
 * row), because the engines sort text differently (SQLite by bytes,
 * PostgreSQL by the database's collation).
 */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "store/internal.h"
#include "common/banned.h"

/* Rows per SELECT: PostgreSQL hands over a whole result at once, so a
 * table is read in pages (keyset pagination on its primary key) to bound
 * the memory a large table takes. */
#define COPY_PAGE_ROWS 1000

/* Largest encoded row the digest accepts (PostgreSQL's own limit for one
 * value is 1 GiB). */
#define COPY_ROW_MAX ((size_t)1 << 30)

/* Most primary key columns of a table. */
#define COPY_MAX_KEY 2

enum {
    COL_TEXT = 0,     /* TEXT: bound and hashed as text */
    COL_INT = 1 << 0, /* INTEGER / BIGINT: bound and hashed as int64 */
    COL_KEY = 1 << 1, /* part of the primary key, which orders the pages */
};

struct copy_column {
    const char *name;
    unsigned flags;
};

struct copy_table {
    const char *name;
    const struct copy_column *cols;
    size_t ncols;
};

#define T(n)                                                                                       \
    {                                                                                              \
        n, COL_TEXT                                                                                \
    }
#define I(n)                                                                                       \
    {                                                                                              \
        n, COL_INT                                                                                 \
    }
#define T_KEY(n)                                                                                   \
    {                                                                                              \
        n, COL_TEXT | COL_KEY                                                                      \
    }
#define I_KEY(n)                                                                                   \
    {                                                                                              \
        n, COL_INT | COL_KEY                                                                       \
    }

/* ---- the schema at STORE_SCHEMA_VERSION (schema.c): keep in step ---- */

static const struct copy_column enclaves_cols[] = {
    I_KEY("enclave_id"), T("public_key"), I("key_epoch"), I("first_seen_at"), I("updated_at"),
};

static const struct copy_column enclave_sealed_keys_cols[] = {
    I_KEY("enclave_id"), I_KEY("key_epoch"), T("sealer"),     T("sealed_key"),
    T("public_key"),     T("state"),         I("created_at"),
};

static const struct copy_column api_keys_cols[] = {
    T_KEY("id"),       T("secret_sha256"),    T("name"),       I("keygens_per_hour"),
    I("live_keygens"), I("max_participants"), I("created_at"), I("revoked_at"),
};

/* No primary key: read in one page. The gateway keeps an hour of
 * reserves, so the table stays small. */
static const struct copy_column api_key_reserves_cols[] = {
    T("api_key_id"),
    I("reserved_at"),
};

static const struct copy_column keygen_sessions_cols[] = {
    T_KEY("id"),
    T("status"),
    I("step"),
    T("coordinator_user_id"),
    I("coordinator_enclave_id"),
    T("subsets"),
    T("encrypted_taproot_tweak"),
    I("timeout_secs"),
    I("max_signing_sessions"),
    T("session_public_key"),
    T("encrypted_session_secret"),
    T("enclave_keys"),
    T("state"),
    T("encrypted_aggregate_public_key"),
    T("aggregate_check"),
    T("subset_results"),
    T("error"),
    I("attempts"),
    I("next_attempt_at"),
    I("created_at"),
    I("updated_at"),
    I("expires_at"),
    I("completed_at"),
    I("signing_sessions_created"), /* migration 2 */
    T("api_key_id"),               /* migration 4 */
    T("lease_owner"),              /* migration 6 */
    I("lease_expires_at"),
};

static const struct copy_column keygen_participants_cols[] = {
    T_KEY("keygen_session_id"),
    I("position"),
    T_KEY("user_id"),
    I("enclave_id"),
    I("registered"),
    T("encrypted_private_key"),
    T("auth_pubkey"),
    I("require_signing_approval"),
    I("registered_at"),
};

static const struct copy_column signing_sessions_cols[] = {
    T_KEY("id"),
    T("keygen_session_id"),
    T("status"),
    I("step"),
    T("items"),
    I("timeout_secs"),
    T("state"),
    T("results"),
    T("error"),
    I("attempts"),
    I("next_attempt_at"),
    I("created_at"),
    I("updated_at"),
    I("expires_at"),
    I("completed_at"),
    T("lease_owner"), /* migration 6 */
    I("lease_expires_at"),
};

static const struct copy_column signing_approvals_cols[] = {
    T_KEY("signing_session_id"), T_KEY("user_id"), I("timestamp"), T("signature"), I("approved_at"),
};

static const struct copy_column auth_nonces_cols[] = {
    T_KEY("key"),
    T_KEY("nonce"),
    I("expires_at"),
};

#define TABLE(n)                                                                                   \
    {                                                                                              \
#n, n##_cols, KM_ARRAY_LEN(n##_cols)                                                       \
    }

/* In dependency order: a table comes after those its foreign keys name
 * (keygen sessions before their participants and signing sessions,
 * signing sessions before their approvals). */
static const struct copy_table copy_tables[] = {
    TABLE(enclaves),         TABLE(enclave_sealed_keys), TABLE(api_keys),
    TABLE(api_key_reserves), TABLE(keygen_sessions),     TABLE(keygen_participants),
    TABLE(signing_sessions), TABLE(signing_approvals),   TABLE(auth_nonces),
};

_Static_assert(KM_ARRAY_LEN(copy_tables) <= STORE_COPY_MAX_TABLES,
               "struct store_copy_report holds every table");

/* ---- SQL texts ---- */

/* A statement's text. Table and column names come from the lists above,
 * never from input, so a text that does not fit is a bug. */
struct sql {
    char s[4096];
    size_t n;
};

static void sql_add(struct sql *q, const char *fmt, ...) KM_PRINTF(2, 3);
static void sql_add(struct sql *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(q->s + q->n, sizeof(q->s) - q->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof(q->s) - q->n)
        KM_BUG("copy: a statement longer than %zu bytes", sizeof(q->s));
    q->n += (size_t)k;
}

/* The names of t's columns (those with every flag of `only`), quoted:
 * "timestamp" and "key" are words of the SQL grammar. */
static void sql_columns(struct sql *q, const struct copy_table *t, unsigned only)
{
    bool first = true;
    for (size_t i = 0; i < t->ncols; i++) {
        if ((t->cols[i].flags & only) != only)
            continue;
        sql_add(q, "%s\"%s\"", first ? "" : ", ", t->cols[i].name);
        first = false;
    }
}

static bool table_has_key(const struct copy_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (t->cols[i].flags & COL_KEY)
            return true;
    return false;
}

/* A page of rows in key order: the first (after_key false) or the one
 * after the key bound as ?1..?k. A table without a key: all its rows. */
static void sql_select_page(struct sql *q, const struct copy_table *t, bool after_key)
{
    sql_add(q, "SELECT ");
    sql_columns(q, t, 0);
    sql_add(q, " FROM \"%s\"", t->name);
    if (!table_has_key(t))
        return;
    if (after_key) {
        sql_add(q, " WHERE (");
        sql_columns(q, t, COL_KEY);
        sql_add(q, ") > (");
        int k = 0;
        for (size_t i = 0; i < t->ncols; i++) {
            if (t->cols[i].flags & COL_KEY) {
                sql_add(q, "%s?%d", k > 0 ? ", " : "", k + 1);
                k++;
            }
        }
        sql_add(q, ")");
    }
    sql_add(q, " ORDER BY ");
    sql_columns(q, t, COL_KEY);
    sql_add(q, " LIMIT %d", COPY_PAGE_ROWS);
}

static void sql_insert(struct sql *q, const struct copy_table *t)
{
    sql_add(q, "INSERT INTO \"%s\" (", t->name);
    sql_columns(q, t, 0);
    sql_add(q, ") VALUES (");
    for (size_t i = 0; i < t->ncols; i++)
        sql_add(q, "%s?%zu", i > 0 ? ", " : "", i + 1);
    sql_add(q, ")");
}

/* Prepares q's text (emptied afterwards). NULL, with the reason in err,
 * when the engine refuses it. */
static struct db_stmt *prepare_built(struct db_conn *db, struct sql *q, const char *which,
                                     struct km_error *err)
{
    struct db_stmt *st = db_prepare(db, q->s);
    if (st == NULL)
        km_error_set(err, KM_ERR_IO, 0, "%s database: cannot prepare a query: %s", which,
                     db_errmsg(db));
    q->n = 0;
    q->s[0] = '\0';
    return st;
}

/* ---- one side of the copy ---- */

struct side {
    const char *which; /* "source" / "target", for messages */
    enum db_kind kind;
    const char *target; /* db_open's: the SQLite path or the whole URL */
    struct db_conn *db;
};

/* Whether the SQLite file at path is in WAL mode: byte 18 of its header
 * (the write version) is 2. db_open sets a journal mode, so the source is
 * opened in the one it has, which leaves its file as it was. */
static bool sqlite_file_is_wal(const char *path)
{
    uint8_t header[100];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    bool wal = fread(header, 1, sizeof(header), f) == sizeof(header) && header[18] == 2;
    fclose(f);
    return wal;
}

/* Opens one side; the source in its own journal mode, the target as a
 * gateway opens it by default (WAL, fsync on every commit). */
static int side_open(struct side *s, bool source, struct km_error *err)
{
    struct db_open_options o = {
        .busy_timeout_ms = 5000,
        .wal = source && s->kind == DB_SQLITE ? sqlite_file_is_wal(s->target) : true,
        .fsync_each_commit = true,
    };
    int r = db_open(&s->db, s->kind, s->target, &o, err);
    if (r != KM_OK)
        km_error_prefix(err, "%s database", s->which);
    return r;
}

/* The engine's spelling of a column type of ours. */
static bool type_matches(enum db_kind kind, unsigned flags, const char *type)
{
    if (type == NULL)
        return false;
    if (kind == DB_POSTGRES)
        return strcmp(type, (flags & COL_INT) ? "bigint" : "text") == 0;
    return strcmp(type, (flags & COL_INT) ? "INTEGER" : "TEXT") == 0;
}

static const struct copy_table *find_table(const char *name)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(copy_tables); i++)
        if (strcmp(copy_tables[i].name, name) == 0)
            return &copy_tables[i];
    return NULL;
}

static const struct copy_column *find_column(const struct copy_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* Every table of the database is one the copy knows (PostgreSQL's
 * keymeld_schema holds the version, which db_set_schema_version writes). */
static int check_tables(struct side *s, struct km_error *err)
{
    const char *sql = s->kind == DB_POSTGRES
                          ? "SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                            " AND table_name <> 'keymeld_schema'"
                          : "SELECT name FROM sqlite_master WHERE type = 'table'"
                            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
    struct db_stmt *st = db_prepare(s->db, sql);
    if (st == NULL)
        return km_error_set(err, KM_ERR_IO, 0, "%s database: cannot list its tables: %s", s->which,
                            db_errmsg(s->db));
    int r;
    while ((r = db_step(st)) == DB_ROW) {
        const char *name = db_col_text(st, 0);
        if (name != NULL && find_table(name) == NULL) {
            r = km_error_set(err, KM_ERR_STATE, 0,
                             "%s database has a table '%.64s' this keymeld does not copy (made "
                             "by hand, or src/store/copy.c lags the schema): nothing copied",
                             s->which, name);
            break;
        }
    }
    if (r < 0 && err->code == KM_OK)
        km_error_set(err, r, 0, "%s database: cannot list its tables: %s", s->which,
                     db_errmsg(s->db));
    db_stmt_free(st);
    return r < 0 ? r : KM_OK;
}

/* The columns of table t in the database are exactly t's list, with the
 * types the list gives. */
static int check_columns(struct side *s, const struct copy_table *t, struct km_error *err)
{
    const char *sql = s->kind == DB_POSTGRES
                          ? "SELECT column_name, data_type FROM information_schema.columns"
                            " WHERE table_schema = current_schema()"
                            " AND CAST(table_name AS TEXT) = CAST(?1 AS TEXT)"
                          : "SELECT name, type FROM pragma_table_info(?1)";
    struct db_stmt *st = db_prepare(s->db, sql);
    if (st == NULL)
        return km_error_set(err, KM_ERR_IO, 0, "%s database: cannot read the columns of %s: %s",
                            s->which, t->name, db_errmsg(s->db));
    size_t seen = 0;
    int r = db_bind_text(st, 1, t->name);
    while (r == KM_OK && (r = db_step(st)) == DB_ROW) {
        const char *name = db_col_text(st, 0);
        const struct copy_column *c = find_column(t, name != NULL ? name : "");
        if (c == NULL)
            r = km_error_set(err, KM_ERR_STATE, 0,
                             "%s database has a column %s.%.64s this keymeld does not copy (made "
                             "by hand, or src/store/copy.c lags the schema): nothing copied",
                             s->which, t->name, name != NULL ? name : "?");
        else if (!type_matches(s->kind, c->flags, db_col_text(st, 1)))
            r = km_error_set(err, KM_ERR_STATE, 0,
                             "%s database: column %s.%s has type %.32s, expected %s", s->which,
                             t->name, c->name, db_col_text(st, 1) ? db_col_text(st, 1) : "?",
                             (c->flags & COL_INT) ? "an integer" : "text");
        else {
            seen++;
            r = KM_OK; /* step on */
        }
    }
    if (r == DB_DONE && seen != t->ncols)
        r = km_error_set(err, KM_ERR_STATE, 0,
                         "%s database: table %s has %zu of the %zu columns this keymeld copies",
                         s->which, t->name, seen, t->ncols);
    if (r < 0 && err->code == KM_OK)
        km_error_set(err, r, 0, "%s database: cannot read the columns of %s: %s", s->which, t->name,
                     db_errmsg(s->db));
    db_stmt_free(st);
    return r < 0 ? r : KM_OK;
}

static int check_schema(struct side *s, struct km_error *err)
{
    int r = check_tables(s, err);
    for (size_t i = 0; r == KM_OK && i < KM_ARRAY_LEN(copy_tables); i++)
        r = check_columns(s, &copy_tables[i], err);
    return r;
}

/* SELECT count(*) of table t. */
static int count_rows(struct side *s, const struct copy_table *t, int64_t *n, struct km_error *err)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", t->name);
    struct db_stmt *st = db_prepare(s->db, sql);
    int r = st != NULL ? db_step(st) : KM_ERR_IO;
    if (r == DB_ROW) {
        *n = db_col_int64(st, 0);
        r = KM_OK;
    } else {
        r = km_error_set(err, r < 0 ? r : KM_ERR_IO, 0,
                         "%s database: cannot count the rows of %s: %s", s->which, t->name,
                         db_errmsg(s->db));
    }
    db_stmt_free(st);
    return r;
}

/* ---- rows: reading, digests ---- */

/* The row digests of one table; sorted at the end, so the table's digest
 * does not depend on the order the engine returned the rows in. */
struct digest_set {
    uint8_t (*d)[32];
    size_t n, cap;
};

static int digest_set_add(struct digest_set *ds, const struct buf *row)
{
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? st_mult(ds->cap, 2) : 1024;
        ds->d = xrealloc(ds->d, st_mult(ds->cap, sizeof(*ds->d)));
    }
    const uint8_t *p = buf_peek(row);
    return crypto_sha256_digest(ds->d[ds->n++], p != NULL ? p : (const uint8_t *)"", buf_len(row));
}

static int cmp_digest(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* The table's digest: SHA-256 of its sorted row digests. Frees the set. */
static int digest_set_final(struct digest_set *ds, uint8_t out[32])
{
    if (ds->n > 0)
        qsort(ds->d, ds->n, sizeof(*ds->d), cmp_digest);
    int r = crypto_sha256_digest(out, ds->n > 0 ? (const void *)ds->d : (const void *)"",
                                 ds->n * sizeof(*ds->d));
    free(ds->d);
    memset(ds, 0, sizeof(*ds));
    return r;
}

/* What a scan does with each row. */
struct scan {
    struct side *side;
    const struct copy_table *t;
    struct buf row; /* the current row's encoding */
    struct digest_set digests;
    int64_t rows;           /* rows seen */
    struct db_stmt *insert; /* copying: the target's INSERT; else NULL */
    struct side *to;        /* copying: the target */
    /* The last row's primary key, where the next page starts. */
    char *key_text[COPY_MAX_KEY];
    int64_t key_int[COPY_MAX_KEY];
};

/* Reads column i of st's row into the row's encoding (a tag, then the
 * value: NULL; int64 big-endian; text length-prefixed) and, when copying,
 * binds it to the INSERT. Refuses a value its column type cannot carry
 * unchanged: text in an integer column (SQLite accepts it) would read as
 * 0, text with a NUL byte would be cut at it. */
static int take_value(struct scan *sc, struct db_stmt *st, int i, struct km_error *err)
{
    const struct copy_column *c = &sc->t->cols[i];
    int r;
    if (db_col_is_null(st, i)) {
        r = buf_put_u8(&sc->row, 0);
        if (r == KM_OK && sc->insert != NULL)
            r = db_bind_null(sc->insert, i + 1);
        return r;
    }
    if (c->flags & COL_INT) {
        int64_t v = db_col_int64(st, i);
        char dec[24];
        snprintf(dec, sizeof(dec), "%" PRId64, v);
        const char *text = db_col_text(st, i);
        if (text == NULL || strcmp(text, dec) != 0)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "%s database: %s.%s of row %" PRId64 " is not an integer",
                                sc->side->which, sc->t->name, c->name, sc->rows + 1);
        r = buf_put_u8(&sc->row, 1);
        if (r == KM_OK)
            r = buf_put_u64(&sc->row, (uint64_t)v);
        if (r == KM_OK && sc->insert != NULL)
            r = db_bind_int64(sc->insert, i + 1, v);
        return r;
    }
    const char *text = db_col_text(st, i);
    size_t len = db_col_bytes(st, i);
    if (text == NULL || strlen(text) != len)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "%s database: %s.%s of row %" PRId64 " is not text (a NUL byte or "
                            "a blob)",
                            sc->side->which, sc->t->name, c->name, sc->rows + 1);
    r = buf_put_u8(&sc->row, 2);
    if (r == KM_OK)
        r = buf_put_u64(&sc->row, (uint64_t)len);
    if (r == KM_OK)
        r = buf_put(&sc->row, text, len);
    if (r == KM_OK && sc->insert != NULL)
        r = db_bind_text(sc->insert, i + 1, text);
    return r;
}

/* Remembers the key of st's row: the next page starts after it. */
static void remember_key(struct scan *sc, struct db_stmt *st)
{
    int k = 0;
    for (size_t i = 0; i < sc->t->ncols && k < COPY_MAX_KEY; i++) {
        if (!(sc->t->cols[i].flags & COL_KEY))
            continue;
        free(sc->key_text[k]);
        sc->key_text[k] = NULL;
        if (sc->t->cols[i].flags & COL_INT)
            sc->key_int[k] = db_col_int64(st, (int)i);
        else
            sc->key_text[k] = xstrdup(db_col_text(st, (int)i) ? db_col_text(st, (int)i) : "");
        k++;
    }
}

static int bind_key(struct scan *sc, struct db_stmt *st)
{
    int k = 0, r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < sc->t->ncols; i++) {
        if (!(sc->t->cols[i].flags & COL_KEY))
            continue;
        r = (sc->t->cols[i].flags & COL_INT) ? db_bind_int64(st, k + 1, sc->key_int[k])
                                             : db_bind_text(st, k + 1, sc->key_text[k]);
        k++;
    }
    return r;
}

/* One row: its digest and, when copying, its INSERT into the target. */
static int scan_row(struct scan *sc, struct db_stmt *st, struct km_error *err)
{
    buf_reset(&sc->row);
    if (sc->insert != NULL)
        db_reset(sc->insert);
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < sc->t->ncols; i++)
        r = take_value(sc, st, (int)i, err);
    if (r != KM_OK) {
        if (err->code == KM_OK)
            km_error_set(err, r, 0, "%s database: row %" PRId64 " of %s: cannot read it (%s)",
                         sc->side->which, sc->rows + 1, sc->t->name, km_strerror(r));
        return r;
    }
    r = digest_set_add(&sc->digests, &sc->row);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "SHA-256 is not available");
    if (sc->insert != NULL) {
        r = db_step(sc->insert);
        if (r != DB_DONE)
            return km_error_set(err, r < 0 ? r : KM_ERR_IO, 0,
                                "target database: row %" PRId64 " of %s was refused: %s",
                                sc->rows + 1, sc->t->name, db_errmsg(sc->to->db));
    }
    sc->rows++;
    remember_key(sc, st);
    return KM_OK;
}

/* Walks every row of the table, page by page, until a page comes short. */
static int scan_pages(struct scan *sc, struct db_stmt *first, struct db_stmt *next,
                      struct km_error *err)
{
    bool keyed = table_has_key(sc->t);
    for (bool after = false;; after = true) {
        struct db_stmt *st = after ? next : first;
        db_reset(st);
        int r = after ? bind_key(sc, st) : KM_OK;
        int64_t n = 0;
        while (r == KM_OK && (r = db_step(st)) == DB_ROW) {
            r = scan_row(sc, st, err);
            n++;
        }
        if (r != DB_DONE) {
            if (err->code == KM_OK)
                km_error_set(err, r < 0 ? r : KM_ERR_IO, 0, "%s database: cannot read table %s: %s",
                             sc->side->which, sc->t->name, db_errmsg(sc->side->db));
            return r < 0 ? r : KM_ERR_IO;
        }
        if (!keyed || n < COPY_PAGE_ROWS)
            return KM_OK;
    }
}

/*
 * Reads every row of t from side (copying each into `to` when not NULL),
 * and returns the count and digest of the rows read. The count must equal
 * count(*): a row the key order cannot reach (a NULL key, which SQLite
 * allows in a TEXT PRIMARY KEY) is an error, not a row silently left out.
 */
static int scan_table(struct side *side, const struct copy_table *t, struct side *to, int64_t *rows,
                      uint8_t digest[32], struct km_error *err)
{
    struct scan sc = {.side = side, .t = t, .to = to};
    struct sql sql = {.n = 0};
    struct db_stmt *first = NULL, *next = NULL;
    int64_t counted = 0;
    int r = KM_ERR_IO;
    buf_init(&sc.row, COPY_ROW_MAX);

    sql_select_page(&sql, t, false);
    first = prepare_built(side->db, &sql, side->which, err);
    if (first == NULL)
        goto out;
    sql_select_page(&sql, t, true);
    next = prepare_built(side->db, &sql, side->which, err);
    if (next == NULL)
        goto out;
    if (to != NULL) {
        sql_insert(&sql, t);
        sc.insert = prepare_built(to->db, &sql, to->which, err);
        if (sc.insert == NULL)
            goto out;
    }
    r = scan_pages(&sc, first, next, err);
    if (r == KM_OK)
        r = count_rows(side, t, &counted, err);
    if (r == KM_OK && counted != sc.rows)
        r = km_error_set(err, KM_ERR_STATE, 0,
                         "%s database: read %" PRId64
                         " rows of %s in key order but it holds %" PRId64
                         " (a row with a NULL key?)",
                         side->which, sc.rows, t->name, counted);
    if (r == KM_OK && digest_set_final(&sc.digests, digest) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "SHA-256 is not available");
    *rows = sc.rows;
out:
    db_stmt_free(first);
    db_stmt_free(next);
    db_stmt_free(sc.insert);
    for (size_t k = 0; k < COPY_MAX_KEY; k++)
        free(sc.key_text[k]);
    free(sc.digests.d);
    buf_release(&sc.row);
    return r;
}

/* ---- the steps of store_copy ---- */

/* Opens the source, which must exist (db_open would create an empty SQLite
 * file) and be at this keymeld's schema version, and checks its tables. */
static int open_source(struct side *s, struct km_error *err)
{
    struct stat sb;
    if (s->kind == DB_SQLITE && stat(s->target, &sb) != 0) {
        if (errno == ENOENT)
            return km_error_set(err, KM_ERR_NOT_FOUND, errno,
                                "source database file '%.200s' does not exist", s->target);
        return km_error_set(err, KM_ERR_IO, errno, "source database file '%.200s': %s", s->target,
                            strerror(errno));
    }
    if (s->kind == DB_SQLITE && !S_ISREG(sb.st_mode))
        return km_error_set(err, KM_ERR_INVALID, 0, "source database '%.200s' is not a file",
                            s->target);
    int r = side_open(s, true, err);
    if (r != KM_OK)
        return r;
    int version = 0;
    if (db_schema_version(s->db, &version) != KM_OK)
        return km_error_set(err, KM_ERR_IO, 0,
                            "source database: cannot read its schema "
                            "version: %s",
                            db_errmsg(s->db));
    if (version == 0)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "source database holds no KeyMeld data (schema version 0): is it "
                            "the gateway's database?");
    if (version < STORE_SCHEMA_VERSION)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "source database is at schema version %d, this keymeld at %d: start "
                            "this version's keymeld-gateway on it once (it migrates at start), "
                            "stop it, then copy",
                            version, STORE_SCHEMA_VERSION);
    if (version > STORE_SCHEMA_VERSION)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "source database is at schema version %d, newer than this keymeld "
                            "(%d): copy with the keymeld of the gateway that wrote it",
                            version, STORE_SCHEMA_VERSION);
    return check_schema(s, err);
}

/* Opens the target and brings it to the current schema (creating the
 * tables of a new database), as a gateway starting on it would. */
static int open_target(struct side *s, struct km_error *err)
{
    int r = side_open(s, false, err);
    if (r == KM_OK) {
        r = store_migrate(s->db, err);
        if (r != KM_OK)
            km_error_prefix(err, "target database");
    }
    return r == KM_OK ? check_schema(s, err) : r;
}

/* Inside the target's transaction: a copy goes only into empty tables,
 * never merged with another deployment's rows. */
static int check_target_empty(struct side *s, struct km_error *err)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(copy_tables); i++) {
        int64_t n = 0;
        int r = count_rows(s, &copy_tables[i], &n, err);
        if (r != KM_OK)
            return r;
        if (n > 0)
            return km_error_set(err, KM_ERR_EXISTS, 0,
                                "target database is not empty: table %s holds %" PRId64
                                " rows; copy only into a new, empty database",
                                copy_tables[i].name, n);
    }
    return KM_OK;
}

/* Copies every table, then reads each back from the target: the counts
 * and digests must be the source's. */
static int copy_and_check(struct side *src, struct side *dst, struct store_copy_report *rep,
                          struct km_error *err)
{
    uint8_t digest[KM_ARRAY_LEN(copy_tables)][32];
    for (size_t i = 0; i < KM_ARRAY_LEN(copy_tables); i++) {
        int r = scan_table(src, &copy_tables[i], dst, &rep->tables[i].rows, digest[i], err);
        if (r != KM_OK)
            return r;
    }
    for (size_t i = 0; i < KM_ARRAY_LEN(copy_tables); i++) {
        struct store_copy_table *rt = &rep->tables[i];
        uint8_t back[32];
        int r = scan_table(dst, &copy_tables[i], NULL, &rt->target_rows, back, err);
        if (r != KM_OK)
            return r;
        if (rt->target_rows != rt->rows)
            return km_error_set(err, KM_ERR_STATE, 0,
                                "check failed: table %s has %" PRId64
                                " rows in the source, %" PRId64 " in the target",
                                rt->name, rt->rows, rt->target_rows);
        if (memcmp(back, digest[i], 32) != 0)
            return km_error_set(err, KM_ERR_STATE, 0,
                                "check failed: table %s holds other values in the target than "
                                "in the source (SHA-256 content digests differ)",
                                rt->name);
        rt->checked = true;
    }
    return KM_OK;
}

/* The same database on both sides (the copy would wait on itself, or read
 * what it writes). */
static bool same_database(const struct side *a, const struct side *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == DB_POSTGRES)
        return strcmp(a->target, b->target) == 0;
    struct stat sa, sb;
    if (stat(a->target, &sa) != 0 || stat(b->target, &sb) != 0)
        return strcmp(a->target, b->target) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int store_copy(const char *from_url, const char *to_url, struct store_copy_report *rep,
               struct km_error *err)
{
    struct side src = {.which = "source"}, dst = {.which = "target"};
    memset(rep, 0, sizeof(*rep));
    km_error_clear(err);
    rep->ntables = KM_ARRAY_LEN(copy_tables);
    for (size_t i = 0; i < rep->ntables; i++)
        rep->tables[i].name = copy_tables[i].name;

    int r = db_parse_url(from_url, &src.kind, &src.target, err);
    if (r != KM_OK) {
        km_error_prefix(err, "source");
        return r;
    }
    r = db_parse_url(to_url, &dst.kind, &dst.target, err);
    if (r != KM_OK) {
        km_error_prefix(err, "target");
        return r;
    }
    if (same_database(&src, &dst))
        return km_error_set(err, KM_ERR_INVALID, 0, "source and target are the same database");

    r = open_source(&src, err);
    if (r == KM_OK)
        r = open_target(&dst, err);
    /* The source's write transaction holds every writer off, so the rows
     * copied are the rows hashed; nothing is written to it. */
    if (r == KM_OK && (r = db_begin(src.db)) != KM_OK)
        km_error_set(err, r, 0,
                     "source database: cannot hold writers off (%s): is a gateway still "
                     "running on it? stop it first",
                     db_errmsg(src.db));
    if (r == KM_OK && (r = db_begin(dst.db)) != KM_OK)
        km_error_set(err, r, 0, "target database: cannot begin a transaction: %s",
                     db_errmsg(dst.db));
    if (r == KM_OK)
        r = check_target_empty(&dst, err);
    if (r == KM_OK) {
        r = copy_and_check(&src, &dst, rep, err);
        rep->rolled_back = r != KM_OK;
    }
    if (r == KM_OK && (r = db_commit(dst.db)) != KM_OK)
        km_error_set(err, r, 0,
                     "target database: the commit failed (%s); if the connection was lost, "
                     "the target may hold the copy: check it before another attempt",
                     db_errmsg(dst.db));
    rep->committed = r == KM_OK;
    if (dst.db != NULL)
        db_rollback(dst.db);
    if (src.db != NULL)
        db_rollback(src.db);
    db_close(src.db, false);
    db_close(dst.db, dst.kind == DB_SQLITE);
    return r;
}
