/*
 * schema.c - the versioned schema. Migration N brings a database from
 * version N-1 to N; db_set_schema_version records the version reached
 * (SQLite's PRAGMA user_version, PostgreSQL's keymeld_schema table). Never
 * edit a released migration: add the next one, to both engines' lists.
 *
 * Each engine has its own list with the same version numbers, producing
 * the same tables, columns, keys and indexes: the SQLite texts as
 * released; the PostgreSQL ones with BIGINT for every integer (ids,
 * counters and Unix-time timestamps) and no WITHOUT ROWID.
 */
#include "store/internal.h"

#include "common/banned.h"

static const char migration_1[] =
    "CREATE TABLE enclaves ("
    "  enclave_id INTEGER PRIMARY KEY,"
    "  public_key TEXT NOT NULL,"
    "  key_epoch INTEGER NOT NULL,"
    "  first_seen_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"

    "CREATE TABLE keygen_sessions ("
    "  id TEXT PRIMARY KEY,"
    "  status TEXT NOT NULL,"
    "  step INTEGER NOT NULL DEFAULT 0,"
    "  coordinator_user_id TEXT NOT NULL,"
    "  coordinator_enclave_id INTEGER NOT NULL,"
    "  subsets TEXT,"
    "  encrypted_taproot_tweak TEXT,"
    "  timeout_secs INTEGER NOT NULL,"
    "  max_signing_sessions INTEGER NOT NULL,"
    "  session_public_key TEXT NOT NULL DEFAULT '',"
    "  encrypted_session_secret TEXT,"
    "  enclave_keys TEXT,"
    "  state TEXT,"
    "  encrypted_aggregate_public_key TEXT,"
    "  aggregate_check TEXT NOT NULL DEFAULT '',"
    "  subset_results TEXT,"
    "  error TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  completed_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX keygen_by_status ON keygen_sessions(status, expires_at);"

    "CREATE TABLE keygen_participants ("
    "  keygen_session_id TEXT NOT NULL REFERENCES keygen_sessions(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  enclave_id INTEGER NOT NULL,"
    "  registered INTEGER NOT NULL DEFAULT 0,"
    "  encrypted_private_key TEXT,"
    "  auth_pubkey TEXT NOT NULL DEFAULT '',"
    "  require_signing_approval INTEGER NOT NULL DEFAULT 0,"
    "  registered_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (keygen_session_id, user_id)) WITHOUT ROWID;"

    "CREATE TABLE signing_sessions ("
    "  id TEXT PRIMARY KEY,"
    "  keygen_session_id TEXT NOT NULL REFERENCES keygen_sessions(id) ON DELETE CASCADE,"
    "  status TEXT NOT NULL,"
    "  step INTEGER NOT NULL DEFAULT 0,"
    "  items TEXT NOT NULL,"
    "  timeout_secs INTEGER NOT NULL,"
    "  state TEXT,"
    "  results TEXT,"
    "  error TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  completed_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX signing_by_status ON signing_sessions(status, expires_at);"
    "CREATE INDEX signing_by_keygen ON signing_sessions(keygen_session_id);"

    "CREATE TABLE signing_approvals ("
    "  signing_session_id TEXT NOT NULL REFERENCES signing_sessions(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL,"
    "  timestamp INTEGER NOT NULL,"
    "  signature TEXT NOT NULL,"
    "  approved_at INTEGER NOT NULL,"
    "  PRIMARY KEY (signing_session_id, user_id)) WITHOUT ROWID;"

    "CREATE TABLE auth_nonces ("
    "  key TEXT NOT NULL,"
    "  nonce TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  PRIMARY KEY (key, nonce)) WITHOUT ROWID;"
    "CREATE INDEX auth_nonces_by_expiry ON auth_nonces(expires_at);";

/* The signing quota counts sessions ever created, so it needs a counter:
 * counting rows undercounts once retention deletes finished sessions, and
 * costs a scan of the keygen's sessions on every create. Databases from
 * version 1 start from the rows they still hold. */
static const char migration_2[] =
    "ALTER TABLE keygen_sessions ADD COLUMN signing_sessions_created INTEGER NOT NULL DEFAULT 0;"
    "UPDATE keygen_sessions SET signing_sessions_created ="
    "  (SELECT count(*) FROM signing_sessions s WHERE s.keygen_session_id = keygen_sessions.id);";

/* Sealed enclave identity keys (ciphertext: docs/OPERATIONS.md "Durable
 * enclave keys"). One row per enclave and key epoch; state "current" is the
 * key handed to the enclave in configure; rotation adds "next" and retires
 * the old one. */
static const char migration_3[] = "CREATE TABLE enclave_sealed_keys ("
                                  "  enclave_id INTEGER NOT NULL,"
                                  "  key_epoch INTEGER NOT NULL,"
                                  "  sealer TEXT NOT NULL,"
                                  "  sealed_key TEXT NOT NULL,"
                                  "  public_key TEXT NOT NULL,"
                                  "  state TEXT NOT NULL,"
                                  "  created_at INTEGER NOT NULL,"
                                  "  PRIMARY KEY (enclave_id, key_epoch)) WITHOUT ROWID;";

/* Operator API keys (stored hashed) and who reserved each keygen: only a
 * key may create work, within its quotas (docs/API.md "API keys"). The
 * session key given at reserve binds initialize to the reserver. */
static const char migration_4[] =
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  secret_sha256 TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  keygens_per_hour INTEGER NOT NULL,"
    "  live_keygens INTEGER NOT NULL,"
    "  max_participants INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "ALTER TABLE keygen_sessions ADD COLUMN api_key_id TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX keygen_by_api_key ON keygen_sessions(api_key_id, created_at);";

/* Every reserve of an API key, kept an hour: the keygens_per_hour quota
 * counts these, so deleting a keygen does not give its reserve back. */
static const char migration_5[] =
    "CREATE TABLE api_key_reserves ("
    "  api_key_id TEXT NOT NULL,"
    "  reserved_at INTEGER NOT NULL);"
    "CREATE INDEX api_key_reserves_by_key ON api_key_reserves(api_key_id, reserved_at);";

/* Leases: which gateway drives a running session when several share one
 * PostgreSQL database (store.h "Leases"). Unused with SQLite (one gateway),
 * added there too so both engines keep the same version numbers and
 * columns. */
static const char migration_6[] =
    "ALTER TABLE keygen_sessions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE keygen_sessions ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE signing_sessions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE signing_sessions ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;";

static const char *const sqlite_migrations[] = {
    NULL, /* version 0: empty database */
    migration_1, migration_2, migration_3, migration_4, migration_5, migration_6,
};

_Static_assert(KM_ARRAY_LEN(sqlite_migrations) == STORE_SCHEMA_VERSION + 1,
               "one SQLite migration per schema version");

/* ---- PostgreSQL: migrations 1..5 in its dialect ---- */

static const char pg_migration_1[] =
    "CREATE TABLE enclaves ("
    "  enclave_id BIGINT PRIMARY KEY,"
    "  public_key TEXT NOT NULL,"
    "  key_epoch BIGINT NOT NULL,"
    "  first_seen_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL);"

    "CREATE TABLE keygen_sessions ("
    "  id TEXT PRIMARY KEY,"
    "  status TEXT NOT NULL,"
    "  step BIGINT NOT NULL DEFAULT 0,"
    "  coordinator_user_id TEXT NOT NULL,"
    "  coordinator_enclave_id BIGINT NOT NULL,"
    "  subsets TEXT,"
    "  encrypted_taproot_tweak TEXT,"
    "  timeout_secs BIGINT NOT NULL,"
    "  max_signing_sessions BIGINT NOT NULL,"
    "  session_public_key TEXT NOT NULL DEFAULT '',"
    "  encrypted_session_secret TEXT,"
    "  enclave_keys TEXT,"
    "  state TEXT,"
    "  encrypted_aggregate_public_key TEXT,"
    "  aggregate_check TEXT NOT NULL DEFAULT '',"
    "  subset_results TEXT,"
    "  error TEXT,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  next_attempt_at BIGINT NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  completed_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX keygen_by_status ON keygen_sessions(status, expires_at);"

    "CREATE TABLE keygen_participants ("
    "  keygen_session_id TEXT NOT NULL REFERENCES keygen_sessions(id) ON DELETE CASCADE,"
    "  position BIGINT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  enclave_id BIGINT NOT NULL,"
    "  registered BIGINT NOT NULL DEFAULT 0,"
    "  encrypted_private_key TEXT,"
    "  auth_pubkey TEXT NOT NULL DEFAULT '',"
    "  require_signing_approval BIGINT NOT NULL DEFAULT 0,"
    "  registered_at BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (keygen_session_id, user_id));"

    "CREATE TABLE signing_sessions ("
    "  id TEXT PRIMARY KEY,"
    "  keygen_session_id TEXT NOT NULL REFERENCES keygen_sessions(id) ON DELETE CASCADE,"
    "  status TEXT NOT NULL,"
    "  step BIGINT NOT NULL DEFAULT 0,"
    "  items TEXT NOT NULL,"
    "  timeout_secs BIGINT NOT NULL,"
    "  state TEXT,"
    "  results TEXT,"
    "  error TEXT,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  next_attempt_at BIGINT NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  completed_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX signing_by_status ON signing_sessions(status, expires_at);"
    "CREATE INDEX signing_by_keygen ON signing_sessions(keygen_session_id);"

    "CREATE TABLE signing_approvals ("
    "  signing_session_id TEXT NOT NULL REFERENCES signing_sessions(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL,"
    "  timestamp BIGINT NOT NULL,"
    "  signature TEXT NOT NULL,"
    "  approved_at BIGINT NOT NULL,"
    "  PRIMARY KEY (signing_session_id, user_id));"

    "CREATE TABLE auth_nonces ("
    "  key TEXT NOT NULL,"
    "  nonce TEXT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  PRIMARY KEY (key, nonce));"
    "CREATE INDEX auth_nonces_by_expiry ON auth_nonces(expires_at);";

static const char pg_migration_2[] =
    "ALTER TABLE keygen_sessions ADD COLUMN signing_sessions_created BIGINT NOT NULL DEFAULT 0;"
    "UPDATE keygen_sessions SET signing_sessions_created ="
    "  (SELECT count(*) FROM signing_sessions s WHERE s.keygen_session_id = keygen_sessions.id);";

static const char pg_migration_3[] = "CREATE TABLE enclave_sealed_keys ("
                                     "  enclave_id BIGINT NOT NULL,"
                                     "  key_epoch BIGINT NOT NULL,"
                                     "  sealer TEXT NOT NULL,"
                                     "  sealed_key TEXT NOT NULL,"
                                     "  public_key TEXT NOT NULL,"
                                     "  state TEXT NOT NULL,"
                                     "  created_at BIGINT NOT NULL,"
                                     "  PRIMARY KEY (enclave_id, key_epoch));";

static const char pg_migration_4[] =
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  secret_sha256 TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  keygens_per_hour BIGINT NOT NULL,"
    "  live_keygens BIGINT NOT NULL,"
    "  max_participants BIGINT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  revoked_at BIGINT NOT NULL DEFAULT 0);"
    "ALTER TABLE keygen_sessions ADD COLUMN api_key_id TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX keygen_by_api_key ON keygen_sessions(api_key_id, created_at);";

static const char pg_migration_5[] =
    "CREATE TABLE api_key_reserves ("
    "  api_key_id TEXT NOT NULL,"
    "  reserved_at BIGINT NOT NULL);"
    "CREATE INDEX api_key_reserves_by_key ON api_key_reserves(api_key_id, reserved_at);";

static const char pg_migration_6[] =
    "ALTER TABLE keygen_sessions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE keygen_sessions ADD COLUMN lease_expires_at BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE signing_sessions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE signing_sessions ADD COLUMN lease_expires_at BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX keygen_by_lease ON keygen_sessions(status, lease_expires_at);"
    "CREATE INDEX signing_by_lease ON signing_sessions(status, lease_expires_at);";

static const char *const pg_migrations[] = {
    NULL, /* version 0: empty database */
    pg_migration_1, pg_migration_2, pg_migration_3, pg_migration_4, pg_migration_5, pg_migration_6,
};

_Static_assert(KM_ARRAY_LEN(pg_migrations) == STORE_SCHEMA_VERSION + 1,
               "one PostgreSQL migration per schema version");

/* Runs migration v and records v, in one transaction: a crash leaves the
 * database at v-1 or v, never between. The version is read again under
 * the write lock: another gateway starting on the same database may have
 * migrated meanwhile. */
static int migrate_one(struct db_conn *db, const char *sql, int v, struct km_error *err)
{
    int version = 0;
    int r = db_begin(db);
    if (r == KM_OK)
        r = db_schema_version(db, &version);
    if (r == KM_OK && version < v) {
        r = db_exec_script(db, sql);
        if (r == KM_OK)
            r = db_set_schema_version(db, v);
    }
    if (r == KM_OK)
        r = db_commit(db);
    if (r == KM_OK)
        return KM_OK;
    km_error_set(err, KM_ERR_STATE, 0, "migration to schema version %d failed: %s", v,
                 db_errmsg(db));
    db_rollback(db);
    return KM_ERR_STATE;
}

int store_migrate(struct db_conn *db, struct km_error *err)
{
    int version = 0;
    if (db_schema_version(db, &version) != KM_OK)
        return km_error_set(err, KM_ERR_STATE, 0, "cannot read schema version: %s", db_errmsg(db));
    if (version > STORE_SCHEMA_VERSION)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "database schema version %d is newer than this gateway supports "
                            "(%d); upgrade the gateway or restore a matching backup",
                            version, STORE_SCHEMA_VERSION);

    const char *const *migrations = db_kind(db) == DB_POSTGRES ? pg_migrations : sqlite_migrations;
    for (int v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
        int r = migrate_one(db, migrations[v], v, err);
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}
