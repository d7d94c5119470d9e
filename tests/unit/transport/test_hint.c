#include "test.h"

#include <errno.h>
#include <string.h>

#include "transport/hint.h"
#include "common/banned.h"

static const char *hint_for(int code, int e, const char *addr_text, int idx, bool dev)
{
    static char out[512];
    struct tp_addr a;
    struct km_error err;
    CHECK_OK(tp_addr_parse(&a, addr_text, strlen(addr_text), NULL));
    km_error_set(&err, code, e, "x");
    return tp_error_hint(out, sizeof(out), &err, &a, idx, dev);
}

static void test_seed_cases(void **state)
{
    (void)state;
    /* "No such device (os error 19)" in development: use CID 2. */
    const char *h = hint_for(KM_ERR_CONNECT, ENODEV, "vsock://3:5000", 0, true);
    CHECK_CONTAINS(h, "use CID 2 for all enclaves in development");
    CHECK_CONTAINS(h, "KEYMELD_ENCLAVE_0_CID");
    /* Same error in production: discover the CID. */
    h = hint_for(KM_ERR_CONNECT, ENODEV, "vsock://17:8000", 1, false);
    CHECK_CONTAINS(h, "nitro-cli describe-enclaves");
    CHECK_CONTAINS(h, "KEYMELD_ENCLAVE_1_CID");
    /* Refused/reset: not listening yet. */
    h = hint_for(KM_ERR_CONNECT, ECONNREFUSED, "vsock://2:5001", 1, true);
    CHECK_CONTAINS(h, "enclave not listening yet");
    CHECK_CONTAINS(h, "VSock server listening");
    h = hint_for(KM_ERR_CLOSED, ECONNRESET, "tcp://keymeld-enclave-0:5000", 0, true);
    CHECK_CONTAINS(h, "kubectl get svc keymeld-enclave-0");
    h = hint_for(KM_ERR_CONNECT, ECONNREFUSED, "tcp://127.0.0.1:5002", 2, true);
    CHECK_CONTAINS(h, "TRANSPORT_MODE=tcp and VSOCK_PORT=5002");
    CHECK(strstr(h, "kubectl") == NULL);
    /* DNS. */
    h = hint_for(KM_ERR_RESOLVE, 0, "tcp://keymeld-enclave-0:5000", 0, true);
    CHECK_CONTAINS(h, "nslookup keymeld-enclave-0");
    CHECK_CONTAINS(h, "KEYMELD_ENCLAVE_0_TCP_HOST");
    /* Timeouts and missing VSock support. */
    h = hint_for(KM_ERR_TIMEOUT, ETIMEDOUT, "vsock://2:5000", 0, true);
    CHECK_CONTAINS(h, "CID and port");
    h = hint_for(KM_ERR_CONNECT, EAFNOSUPPORT, "vsock://2:5000", 2, true);
    CHECK_CONTAINS(h, "KEYMELD_ENCLAVE_2_TRANSPORT=tcp");
    /* Nothing to add. */
    h = hint_for(KM_ERR_INVALID, 0, "tcp://h:1", 0, true);
    CHECK_STR_EQ(h, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_seed_cases),
    };
    return RUN_TESTS("transport.hint", tests);
}
