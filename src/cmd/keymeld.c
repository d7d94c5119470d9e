/*
 * keymeld.c - main() of the `keymeld` command line (DESIGN.md section 2).
 *
 *   keymeld demo [--participants N] [--messages M]
 *   keymeld keygen | sign | status     client operations (cmd_session.c)
 *   keymeld key new | keygen join | approve   one party per machine (cmd_join.c)
 *   keymeld psbt sign --session FILE --psbt FILE   sign a PSBT (cmd_psbt.c)
 *   keymeld enclave ping ADDRESS       the seed's connectivity test
 *   keymeld attest ID | verify FILE    enclave attestation (cmd_attest.c)
 *   keymeld dev-ca init DIR            the development attestation CA
 *   keymeld config check [--config FILE]
 *   keymeld audit verify FILE          the audit log's chain (cmd_audit.c)
 *   keymeld apikey create|list|revoke  operator API keys (cmd_apikey.c)
 *   keymeld db migrate --from URL --to URL   copy the database (cmd_db.c)
 *
 * Exit codes: 0 success, 1 the operation failed, 2 usage error. Each
 * subcommand is a row in the table below; see cmd.h.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

static const struct cmd_entry commands[] = {
    {"demo", "[--participants N] [--messages M]", "run a full keygen and signing", cmd_demo},
    {"keygen", "--out FILE [--participants N]", "create a keygen, save the session", cmd_keygen},
    {"sign", "--session FILE --message HEX...", "sign messages with a saved session", cmd_sign},
    {"status", "--session FILE [--signing ID]", "show a keygen or signing session", cmd_status},
    {"key", "new --out FILE", "make a participant's own private key", cmd_key},
    {"approve", "--session FILE --request FILE", "approve a signing as this party", cmd_approve},
    {"psbt", "sign --session FILE --psbt FILE", "sign a PSBT with a saved session", cmd_psbt},
    {"enclave", "ping ADDRESS", "test the connection to one enclave", cmd_enclave},
    {"attest", "ID | verify FILE [--pcrs FILE]", "fetch or check an attestation document",
     cmd_attest},
    {"dev-ca", "init DIR", "create the development attestation CA", cmd_dev_ca},
    {"config", "check [--config FILE]", "check the gateway configuration", cmd_config},
    {"audit", "verify FILE [--json]", "check the audit log's hash chain", cmd_audit},
    {"apikey", "create|list|revoke", "operator API keys for reserve (gateway host only)",
     cmd_apikey},
    {"db", "migrate --from URL --to URL", "copy the database into a new one (SQLite to PostgreSQL)",
     cmd_db},
    {"descriptor", "--session FILE [--network NAME]", "the group's tr(musig(...)) and address",
     cmd_descriptor},
    {"verify", "--message HEX --signature HEX --session FILE", "check a BIP-340 signature offline",
     cmd_verify},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("keymeld %s\n", KM_VERSION);
        return CMD_EXIT_OK;
    }
    return cmd_dispatch("keymeld", commands, KM_ARRAY_LEN(commands), argc, argv);
}
