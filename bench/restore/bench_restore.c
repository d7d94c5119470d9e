/*
 * bench_restore - what durable keys cost (docs/PERFORMANCE.md "Restore"):
 * the first signing of a keygen after its enclave restarted (the gateway
 * hands the enclave its sealed key, re-attests it, and restores the keygen
 * from the stored ciphertexts before signing), beside a normal signing of
 * the same keygens in the same run, and a rotation's cost per keygen.
 *
 * Stack: 3 enclave processes (file sealer) and a gateway on TCP loopback.
 * K keygens of 3 participants; then per keygen, one at a time:
 *   normal    a signing (keygen held by every enclave)
 *   restored  after kill -9 and restart of enclave 1: the first signing
 *   again     the next signing (restored already): back to normal
 * and a key rotation of enclave 2 (every keygen re-encrypted).
 *
 *   bench_restore [keygens]     (default 40)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "stack.h"
#include "common/banned.h"

static void fail_exit(const char *msg)
{
    fprintf(stderr, "bench_restore: %s\n", msg);
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return (double)v[n / 2] / 1e6;
}

/* One signing per keygen, each timed; returns the median in ms. */
static double sign_each(struct rest_client *c, struct client_keygen *k, size_t n, uint64_t *lat)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t msg[1][32];
        struct client_signing s;
        struct km_error err;
        if (secure_random(msg, sizeof(msg)) != KM_OK ||
            client_signing_new(&s, (const uint8_t(*)[32])msg, 1) != KM_OK)
            fail_exit("no randomness");
        uint64_t t0 = clock_now_ns();
        if (client_sign_create(c, &k[i], &s, 600, 30000, &err) != KM_OK ||
            !client_signing_done(&s)) {
            fprintf(stderr, "bench_restore: keygen %zu: %s\n", i, err.msg);
            exit(1);
        }
        lat[i] = clock_now_ns() - t0;
        client_signing_clear(&s);
    }
    return median_ms(lat, n);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 40;
    if (n < 3 || n > 2000)
        fail_exit("keygens: 3..2000");
    struct stack st = {0};
    stack_fail_hook = fail_exit;
    snprintf(st.bin_dir, sizeof(st.bin_dir), "%s", KM_BIN_DIR);
    st.log_level = "warn";
    stack_start(&st, 3);
    struct rest_client *c = rest_client_new(st.base_url, 60000);
    struct client_trust trust;
    stack_client_trust(&st, &trust);
    struct client_keygen *k = calloc(n, sizeof(*k));
    uint64_t *lat = calloc(n, sizeof(*lat));
    struct km_error err;
    for (size_t i = 0; i < n; i++) {
        if (client_keygen_new(&k[i], 3, NULL) != KM_OK)
            fail_exit("keygen_new");
        k[i].trust = &trust;
        if (client_keygen_run(c, &k[i], 3600, 30000, &err) != KM_OK)
            fail_exit(err.msg);
    }
    (void)sign_each(c, k, n, lat); /* warm-up */
    double normal = sign_each(c, k, n, lat);

    stack_kill_enclave(&st, 1);
    stack_start_enclave(&st, 1);
    uint64_t t0 = clock_now_ns();
    while (!stack_log_contains(&st, "enclave-1.log", "identity key epoch 1 restored"))
        clock_sleep_ms(5);
    double back_ms = (double)(clock_now_ns() - t0) / 1e6;
    double restored = sign_each(c, k, n, lat);
    double again = sign_each(c, k, n, lat);

    /* A rotation of enclave 2: every keygen's ciphertexts re-encrypted. */
    struct rest_response rr;
    t0 = clock_now_ns();
    if (rest_call(c, &rr, "POST", "/api/v1/admin/enclaves/2/rotate-key", NULL, NULL, &err) !=
            KM_OK ||
        rr.status != 200)
        fail_exit("rotation failed");
    double rotation_ms = (double)(clock_now_ns() - t0) / 1e6;
    rest_response_clear(&rr);
    double after_rotation = sign_each(c, k, n, lat);

    printf("bench_restore: %zu keygens of 3 participants, 3 enclaves (file sealer), 1 message per "
           "signing, one signing at a time\n",
           n);
    printf("  normal signing (median)                    %8.2f ms  1.00x\n", normal);
    printf(
        "  first signing after enclave 1 restarted    %8.2f ms  %.2fx  (restore of the keygen on "
        "enclave 1 included)\n",
        restored, restored / normal);
    printf("  restore cost per keygen (difference)       %8.2f ms\n", restored - normal);
    printf("  next signing (restored already)            %8.2f ms  %.2fx\n", again, again / normal);
    printf("  enclave restart to sealed key restored     %8.2f ms\n", back_ms);
    printf("  rotation of enclave 2 (%zu keygens)        %8.2f ms  %.2f ms per keygen\n", n,
           rotation_ms, rotation_ms / (double)n);
    printf("  signing after the rotation (median)        %8.2f ms  %.2fx\n", after_rotation,
           after_rotation / normal);
    for (size_t i = 0; i < n; i++)
        client_keygen_clear(&k[i]);
    free(k);
    free(lat);
    client_trust_release(&trust);
    rest_client_free(c);
    stack_stop(&st);
    return 0;
}
