/*
 * dev_ca_fixture.c - see dev_ca_fixture.h.
 */
#include "dev_ca_fixture.h"

#include "test.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/policy.h"
#include "common/banned.h"

/* nftw callback: removes one entry (depth first, so directories are empty). */
static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

void dev_ca_remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int dev_ca_fixture_setup(struct dev_ca_fixture *f, const char *dir_prefix, uint8_t pcr_byte,
                         const char *module_id)
{
    struct km_error err;
    bool created = false;
    char root[128];
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/%s-XXXXXX", dir_prefix);
    if (mkdtemp(f->dir) == NULL || attest_dev_ca_init(f->dir, &created, &err) != KM_OK)
        return -1;
    snprintf(root, sizeof(root), "%s/%s", f->dir, ATTEST_DEV_ROOT_CERT);
    memset(f->pcr0, pcr_byte, sizeof(f->pcr0));
    if (attest_root_load(&f->root, &f->root_len, root, &err) != KM_OK ||
        attest_dev_new(&f->provider, f->dir, f->pcr0, module_id, &err) != KM_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

void dev_ca_fixture_teardown(struct dev_ca_fixture *f)
{
    attest_provider_free(f->provider);
    f->provider = NULL;
    free(f->root);
    f->root = NULL;
    dev_ca_remove_tree(f->dir);
}

int dev_ca_fixture_group_teardown(void **state)
{
    dev_ca_fixture_teardown(*state);
    return 0;
}

struct kms_server_config dev_ca_server_config(const struct dev_ca_fixture *f,
                                              struct kms_server_config base)
{
    base.root_der = f->root;
    base.root_der_len = f->root_len;
    base.pcr0 = f->pcr0;
    return base;
}

struct kms_server *dev_ca_server_start(const struct kms_server_config *c)
{
    struct kms_server *s = NULL;
    struct km_error err;
    if (kms_server_start(&s, c, &err) != KM_OK)
        fail_msg("kms_server_start: %s", err.msg);
    return s;
}
