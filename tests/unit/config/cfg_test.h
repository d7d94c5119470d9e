/*
 * cfg_test.h - helpers shared by the tests of src/config.
 */
#ifndef KM_TESTS_CFG_TEST_H
#define KM_TESTS_CFG_TEST_H

#include <stddef.h>

#include "config/config.h"

/* A complete, valid development configuration (3 enclaves on CID 2,
 * ports 5000-5002, enclave list items at lines 4, 7 and 10). */
extern const char cfgt_dev_yaml[];

/* A complete, valid production configuration (CIDs 3/4/5, port 8000; the
 * cid values are on lines 5, 8 and 11). */
extern const char cfgt_prod_yaml[];

/* Parses yaml (as "test.yaml") with envp (NULL-terminated NAME=VALUE list,
 * may be NULL) used for ${VAR}. Returns cfg_parse's result. */
int cfgt_parse(struct cfg *c, struct cfg_diag *d, const char *yaml, const char *const *envp);

/* cfgt_parse + cfg_apply_env + cfg_validate with the same envp. Returns
 * KM_OK when d holds no error. */
int cfgt_full(struct cfg *c, struct cfg_diag *d, const char *yaml, const char *const *envp);

/* The first entry of severity sev whose "loc: msg" contains needle, or NULL. */
const struct cfg_diag_entry *cfgt_find(const struct cfg_diag *d, enum cfg_severity sev,
                                       const char *needle);

/* Fails the test unless d holds exactly one error, located at loc (exact),
 * whose message contains needle; warnings are not counted. */
void cfgt_one_error(const struct cfg_diag *d, const char *loc, const char *needle);

/* Fails unless d holds no error and no warning (prints them otherwise). */
void cfgt_clean(const struct cfg_diag *d);

/* Prints every diagnostic to stderr (debugging aid for failing tests). */
void cfgt_dump(const struct cfg_diag *d);

/* "$KEYMELD_SOURCE_DIR/rel" into a static buffer (fails if unset). */
const char *cfgt_source_path(const char *rel);

/* The enclave with this id, or NULL. */
const struct cfg_enclave *cfgt_enclave(const struct cfg *c, uint32_t id);

#endif /* KM_TESTS_CFG_TEST_H */
