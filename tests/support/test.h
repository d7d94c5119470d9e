/*
 * test.h - the project's thin layer over cmocka (STYLE.md rule 34), so the
 * framework could be swapped without touching every test.
 */
#ifndef KM_TESTS_TEST_H
#define KM_TESTS_TEST_H

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"

#define CHECK(cond)           assert_true(cond)
#define CHECK_EQ(a, b)        assert_int_equal((a), (b))
#define CHECK_NE(a, b)        assert_int_not_equal((a), (b))
#define CHECK_OK(expr)        assert_int_equal((expr), KM_OK)
#define CHECK_ERR(expr, code) assert_int_equal((expr), (code))
#define CHECK_STR_EQ(a, b)    assert_string_equal((a), (b))
#define CHECK_MEM_EQ(a, b, n) assert_memory_equal((a), (b), (n))
#define CHECK_NULL(p)         assert_null(p)
#define CHECK_NOT_NULL(p)     assert_non_null(p)
/* Substring check with a readable failure. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        if (h_ == NULL || strstr(h_, (needle)) == NULL)                                            \
            fail_msg("expected \"%s\" to contain \"%s\"", h_ ? h_ : "(null)", (needle));           \
    } while (0)

#define TEST(fn)               cmocka_unit_test(fn)
#define RUN_TESTS(name, tests) cmocka_run_group_tests_name(name, tests, NULL, NULL)

/* Exit code CTest treats as "skipped" (SKIP_RETURN_CODE). */
#define TEST_SKIP_EXIT 77

/*
 * Directory of the official vectors (tests/data/vectors in the source tree
 * by default, via KM_VECTORS_DIR; set KEYMELD_VECTORS_DIR to override).
 * When it is missing the test fails: prints a message and exits 1 (never
 * skips).
 */
const char *test_vectors_dir(void);

/* Reads a whole file into a malloc'd NUL-terminated buffer (fails the test
 * on error). *len may be NULL. */
char *test_read_file(const char *path, size_t *len);

/* Fails the test with err's message unless r is KM_OK. */
void test_expect_ok(int r, const struct km_error *err);

/* Removes a SQLite database (with its -wal, -shm and -journal files) and
 * then its directory if that is left empty. For clean-up after a passing
 * run; a failing one keeps the files for inspection. */
void test_remove_database(const char *db_path);

#endif /* KM_TESTS_TEST_H */
