/*
 * schema.c - the versioned schema. Migration N brings a database from
 * version N-1 to N; PRAGMA user_version records the version reached. Never
 * edit a released migration: add the next one.
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

static const char *const migrations[] = {
    NULL, /* version 0: empty database */
    migration_1, migration_2, migration_3, migration_4, migration_5,
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION + 1,
               "one migration per schema version");

int store_migrate(sqlite3 *db, struct km_error *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return km_error_set(err, KM_ERR_STATE, 0, "cannot read schema version: %s",
                            sqlite3_errmsg(db));
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > STORE_SCHEMA_VERSION)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "database schema version %d is newer than this gateway supports "
                            "(%d); upgrade the gateway or restore a matching backup",
                            version, STORE_SCHEMA_VERSION);

    for (int v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
        char *msg = NULL;
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v);
        /* Each migration and its version bump commit together. */
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            km_error_set(err, KM_ERR_STATE, 0, "migration to schema version %d failed: %s", v,
                         msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return KM_ERR_STATE;
        }
    }
    return KM_OK;
}
