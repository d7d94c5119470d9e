#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"

const char *test_vectors_dir(void)
{
    const char *dir = getenv("KEYMELD_VECTORS_DIR");
#ifdef KM_VECTORS_DIR_DEFAULT
    if (dir == NULL || dir[0] == '\0')
        dir = KM_VECTORS_DIR_DEFAULT;
#endif
    struct stat st;
    if (dir != NULL && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;

    fprintf(stderr,
            "FAIL: official test vectors not found at '%s' (they are committed in "
            "tests/data/vectors; check the checkout, KM_VECTORS_DIR or "
            "KEYMELD_VECTORS_DIR)\n",
            dir ? dir : "(unset)");
    exit(1);
}

void test_expect_ok(int r, const struct km_error *err)
{
    if (r != KM_OK)
        fail_msg("%s", err->msg);
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n)
        fail_msg("cannot read %s", path);
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = (size_t)n;
    return p;
}

void test_remove_database(const char *db_path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[512];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s", db_path);
    char *slash = strrchr(path, '/');
    if (slash != NULL && slash != path) {
        *slash = '\0';
        rmdir(path);
    }
}
