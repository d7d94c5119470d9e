#include "test.h"

#include <string.h>

#include "transport/addr.h"
#include "common/banned.h"

static void roundtrip(const char *in, const char *canonical, const char *described)
{
    struct tp_addr a, b;
    struct km_error err;
    char out[TP_ADDR_STR_MAX];
    if (tp_addr_parse(&a, in, strlen(in), &err) != KM_OK)
        fail_msg("parse '%s': %s", in, err.msg);
    CHECK_STR_EQ(tp_addr_format(out, sizeof(out), &a), canonical);
    CHECK_STR_EQ(tp_addr_describe(out, sizeof(out), &a), described);
    CHECK_OK(tp_addr_parse(&b, canonical, strlen(canonical), &err));
    CHECK(tp_addr_equal(&a, &b));
}

static void test_valid_addresses(void **state)
{
    (void)state;
    roundtrip("vsock://2:5000", "vsock://2:5000", "CID 2:5000");
    roundtrip("vsock://16:8000", "vsock://16:8000", "CID 16:8000");
    roundtrip("VSOCK://any:5000", "vsock://any:5000", "vsock://any:5000");
    roundtrip("vsock://4294967295:1", "vsock://any:1", "vsock://any:1");
    roundtrip("tcp://keymeld-enclave-0:5000", "tcp://keymeld-enclave-0:5000",
              "tcp://keymeld-enclave-0:5000");
    roundtrip("tcp://127.0.0.1:65535", "tcp://127.0.0.1:65535", "tcp://127.0.0.1:65535");
    roundtrip("tcp://[::1]:5000", "tcp://[::1]:5000", "tcp://[::1]:5000");
    roundtrip("unix:///run/keymeld/enclave-0.sock", "unix:///run/keymeld/enclave-0.sock",
              "unix:///run/keymeld/enclave-0.sock");
}

static void test_invalid_addresses(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "vsock://",
        "vsock://2",
        "vsock://0:5000", /* CID 0 is reserved */
        "vsock://2:0",    /* port 0 */
        "vsock://-1:5000",
        "vsock://2:4294967296", /* > u32 */
        "vsock://02:5000",      /* non-canonical number */
        "vsock://2:50a0",
        "tcp://host",
        "tcp://:5000",
        "tcp://host:0",
        "tcp://host:65536",
        "tcp://ho st:5000",
        "tcp://::1:5000", /* IPv6 needs brackets */
        "tcp://host:5000/x",
        "unix://relative/path",
        "unix://",
        "http://host:80",
        "tcp://host:99999999999999999999999",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        struct tp_addr a;
        struct km_error err;
        km_error_clear(&err);
        if (tp_addr_parse(&a, bad[i], strlen(bad[i]), &err) != KM_ERR_INVALID)
            fail_msg("'%s' should be rejected", bad[i]);
        CHECK(err.msg[0] != '\0');
    }
    char longpath[200] = "unix:///";
    memset(longpath + 8, 'a', 150);
    longpath[158] = '\0';
    struct tp_addr a;
    CHECK_ERR(tp_addr_parse(&a, longpath, strlen(longpath), NULL), KM_ERR_INVALID);
}

static void test_parse_respects_length(void **state)
{
    (void)state;
    /* No NUL needed: parse a prefix of a longer string. */
    const char *s = "tcp://h:5000garbage";
    struct tp_addr a;
    CHECK_OK(tp_addr_parse(&a, s, 12, NULL));
    CHECK_EQ(a.port, 5000);
}

static void test_kind_names(void **state)
{
    (void)state;
    enum tp_kind k;
    CHECK_OK(tp_kind_parse(&k, "TCP"));
    CHECK_EQ(k, TP_KIND_TCP);
    CHECK_OK(tp_kind_parse(&k, "vsock"));
    CHECK_EQ(k, TP_KIND_VSOCK);
    CHECK_OK(tp_kind_parse(&k, "unix"));
    CHECK_ERR(tp_kind_parse(&k, "udp"), KM_ERR_INVALID);
    CHECK_STR_EQ(tp_kind_name(TP_KIND_VSOCK), "vsock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_valid_addresses),
        TEST(test_invalid_addresses),
        TEST(test_parse_respects_length),
        TEST(test_kind_names),
    };
    return RUN_TESTS("transport.addr", tests);
}
