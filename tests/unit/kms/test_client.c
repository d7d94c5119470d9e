/*
 * test_client.c - the KMS client (kms/client.h) against the KMS stand-in
 * (tests/support/kms_server.h) on 127.0.0.1, with development attestation
 * documents (a dev CA in a temp directory; the document's public_key is
 * the SPKI of the client's RSA key): GenerateDataKey then Decrypt give the
 * same data key, also for a "later boot" with a new RSA key; wrong secret,
 * session token, PCR0 policy, key id and ciphertext each give KMS's error
 * by name; the connect seam carries the request over a socket the test
 * connected itself; and a canned HTTP peer covers unreachable, oversized
 * and malformed replies.
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attest/doc.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "kms/client.h"
#include "kms/cms.h"
#include "dev_ca_fixture.h"
#include "kms_server.h"
#include "common/banned.h"

#define AK     "AKIDKEYMELDTEST"
#define SECRET "keymeld/test+secret/0123456789abcdefghij"
#define TOKEN  "FwoGZXIvYXdzEXAMPLE//session+token=="
#define KEY_ID "alias/keymeld-identity"
#define REGION "us-east-1"

/* Shared by every test: the dev CA and its root, a provider whose PCR0 is
 * all 0x5a. */
static struct dev_ca_fixture fx;

static int setup(void **state)
{
    *state = &fx;
    return dev_ca_fixture_setup(&fx, "km-kms-devca", 0x5a, "development-kms-test");
}

/* A fresh RSA key and a development document carrying its SPKI. */
static EVP_PKEY *attested_key(uint8_t **doc, size_t *doc_len)
{
    EVP_PKEY *key = NULL;
    uint8_t spki[KMS_RSA_SPKI_MAX];
    size_t n = 0;
    struct km_error err;
    CHECK_OK(kms_rsa_keypair_new(&key));
    CHECK_OK(kms_rsa_spki_der(spki, sizeof(spki), &n, key));
    struct attest_request rq = {.public_key = spki, .public_key_len = n};
    CHECK_OK(attest_provider_attest(fx.provider, doc, doc_len, &rq, &err));
    return key;
}

static struct kms_server_config server_config(void)
{
    struct kms_server_config c = {
        .region = REGION,
        .access_key_id = AK,
        .secret_access_key = SECRET,
        .key_id = KEY_ID,
    };
    return dev_ca_server_config(&fx, c);
}

static struct kms_client *client_for(const struct kms_server *s, const char *secret,
                                     const char *token)
{
    char url[64];
    struct kms_client *c = NULL;
    struct km_error err;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", kms_server_port(s));
    struct kms_client_config cc = {.endpoint = url,
                                   .region = REGION,
                                   .access_key_id = AK,
                                   .secret_access_key = secret,
                                   .session_token = token,
                                   .allow_http = true};
    if (kms_client_new(&c, &cc, &err) != KM_OK)
        fail_msg("kms_client_new: %s", err.msg);
    return c;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct kms_client *c = client_for(s, SECRET, NULL);
    struct km_error err;
    uint8_t *doc = NULL, *blob = NULL;
    size_t doc_len = 0, blob_len = 0;
    uint8_t k1[KMS_DATA_KEY_LEN], k2[KMS_DATA_KEY_LEN], zero[KMS_DATA_KEY_LEN] = {0};
    EVP_PKEY *key = attested_key(&doc, &doc_len);

    /* First boot. */
    if (kms_generate_data_key(c, k1, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err) != KM_OK)
        fail_msg("GenerateDataKey: %s", err.msg);
    CHECK(blob != NULL && blob_len > 32);
    CHECK(memcmp(k1, zero, sizeof(zero)) != 0);
    /* Later boots: Decrypt, with and without KeyId, same key. */
    memset(k2, 0, sizeof(k2));
    if (kms_decrypt(c, k2, blob, blob_len, KEY_ID, doc, doc_len, key, &err) != KM_OK)
        fail_msg("Decrypt: %s", err.msg);
    CHECK_MEM_EQ(k1, k2, sizeof(k1));
    memset(k2, 0, sizeof(k2));
    CHECK_OK(kms_decrypt(c, k2, blob, blob_len, NULL, doc, doc_len, key, &err));
    CHECK_MEM_EQ(k1, k2, sizeof(k1));

    /* A new boot has a new ephemeral key and document. */
    uint8_t *doc2 = NULL;
    size_t doc2_len = 0;
    EVP_PKEY *key2 = attested_key(&doc2, &doc2_len);
    memset(k2, 0, sizeof(k2));
    CHECK_OK(kms_decrypt(c, k2, blob, blob_len, KEY_ID, doc2, doc2_len, key2, &err));
    CHECK_MEM_EQ(k1, k2, sizeof(k1));

    /* The document names key2, the reply opens only with key2. */
    CHECK_ERR(kms_decrypt(c, k2, blob, blob_len, KEY_ID, doc2, doc2_len, key, &err), KM_ERR_CRYPTO);
    CHECK_CONTAINS(err.msg, "Decrypt: CiphertextForRecipient");
    CHECK_MEM_EQ(k2, zero, sizeof(zero));

    /* Each GenerateDataKey makes a new key. */
    uint8_t *blob2 = NULL;
    size_t blob2_len = 0;
    CHECK_OK(kms_generate_data_key(c, k2, &blob2, &blob2_len, KEY_ID, doc, doc_len, key, &err));
    CHECK(memcmp(k1, k2, sizeof(k1)) != 0);

    unsigned ok = 0;
    CHECK_EQ(kms_server_requests(s, &ok), 6);
    CHECK_EQ(ok, 6); /* the server cannot tell the key was wrong */
    free(blob2);
    free(doc2);
    EVP_PKEY_free(key2);
    free(blob);
    free(doc);
    EVP_PKEY_free(key);
    kms_client_free(c);
    kms_server_stop(s);
}

static void test_credentials(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct km_error err;
    uint8_t *doc = NULL, *blob = NULL;
    size_t doc_len = 0, blob_len = 0;
    uint8_t k[KMS_DATA_KEY_LEN];
    EVP_PKEY *key = attested_key(&doc, &doc_len);

    /* Wrong secret: the signature does not match. */
    struct kms_client *c = client_for(s, "not-the-secret", NULL);
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "GenerateDataKey");
    CHECK_CONTAINS(err.msg, "InvalidSignatureException");
    CHECK_CONTAINS(err.msg, "signature we calculated does not match");
    CHECK(strstr(err.msg, "not-the-secret") == NULL);
    CHECK_NULL(blob);
    CHECK_EQ(blob_len, 0);

    /* Rotated credentials fix it. */
    CHECK_OK(kms_client_set_credentials(c, AK, SECRET, NULL, &err));
    CHECK_OK(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err));
    free(blob);
    blob = NULL;
    CHECK_ERR(kms_client_set_credentials(c, AK, "", NULL, &err), KM_ERR_CONFIG);
    kms_client_free(c);
    kms_server_stop(s);

    /* Temporary credentials: the token is sent and signed. */
    sc.session_token = TOKEN;
    s = dev_ca_server_start(&sc);
    c = client_for(s, SECRET, TOKEN);
    if (kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err) != KM_OK)
        fail_msg("with a session token: %s", err.msg);
    free(blob);
    blob = NULL;
    kms_client_free(c);
    c = client_for(s, SECRET, NULL);
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "UnrecognizedClientException");
    kms_client_free(c);
    c = client_for(s, SECRET, "another-token");
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "UnrecognizedClientException");
    kms_client_free(c);
    kms_server_stop(s);

    free(doc);
    EVP_PKEY_free(key);
}

static void test_attestation_policy(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    uint8_t other[ATTEST_PCR_LEN];
    memset(other, 0x5b, sizeof(other));
    sc.pcr0 = other;
    struct kms_server *s = dev_ca_server_start(&sc);
    struct kms_client *c = client_for(s, SECRET, NULL);
    struct km_error err;
    uint8_t *doc = NULL, *blob = NULL;
    size_t doc_len = 0, blob_len = 0;
    uint8_t k[KMS_DATA_KEY_LEN];
    EVP_PKEY *key = attested_key(&doc, &doc_len);

    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "AccessDeniedException");
    CHECK_CONTAINS(err.msg, "kms:RecipientAttestation:ImageSha384");
    CHECK_ERR(kms_decrypt(c, k, (const uint8_t *)"x", 1, NULL, doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    kms_client_free(c);
    kms_server_stop(s);

    /* A document the root does not vouch for (another dev CA) is invalid. */
    sc = server_config();
    char dir2[64];
    bool created = false;
    snprintf(dir2, sizeof(dir2), "/tmp/km-kms-devca2-XXXXXX");
    CHECK_NOT_NULL(mkdtemp(dir2));
    CHECK_OK(attest_dev_ca_init(dir2, &created, &err));
    struct attest_provider *p2 = NULL;
    CHECK_OK(attest_dev_new(&p2, dir2, fx.pcr0, "development-other", &err));
    uint8_t spki[KMS_RSA_SPKI_MAX], *doc2 = NULL;
    size_t n = 0, doc2_len = 0;
    CHECK_OK(kms_rsa_spki_der(spki, sizeof(spki), &n, key));
    struct attest_request rq = {.public_key = spki, .public_key_len = n};
    CHECK_OK(attest_provider_attest(p2, &doc2, &doc2_len, &rq, &err));
    s = dev_ca_server_start(&sc);
    c = client_for(s, SECRET, NULL);
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc2, doc2_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "ValidationException");
    CHECK_CONTAINS(err.msg, "root");
    /* Not a document at all. */
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, (const uint8_t *)"junk", 4, key,
                                    &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "ValidationException");
    /* A document without a public key. */
    uint8_t *doc3 = NULL;
    size_t doc3_len = 0;
    struct attest_request none = {0};
    CHECK_OK(attest_provider_attest(fx.provider, &doc3, &doc3_len, &none, &err));
    CHECK_ERR(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc3, doc3_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "public_key");
    free(doc3);
    kms_client_free(c);
    kms_server_stop(s);
    attest_provider_free(p2);
    dev_ca_remove_tree(dir2);
    free(doc2);
    free(doc);
    EVP_PKEY_free(key);
}

static void test_kms_errors(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct kms_client *c = client_for(s, SECRET, NULL);
    struct km_error err;
    uint8_t *doc = NULL, *blob = NULL, *b2 = NULL;
    size_t doc_len = 0, blob_len = 0, b2_len = 0;
    uint8_t k[KMS_DATA_KEY_LEN];
    EVP_PKEY *key = attested_key(&doc, &doc_len);

    CHECK_ERR(kms_generate_data_key(c, k, &b2, &b2_len, "alias/nope", doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "NotFoundException");
    CHECK_CONTAINS(err.msg, "alias/nope");
    CHECK_OK(kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err));
    CHECK_ERR(kms_decrypt(c, k, blob, blob_len, "alias/other", doc, doc_len, key, &err),
              KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "IncorrectKeyException");
    blob[blob_len - 1] ^= 1;
    CHECK_ERR(kms_decrypt(c, k, blob, blob_len, KEY_ID, doc, doc_len, key, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "InvalidCiphertextException");
    blob[blob_len - 1] ^= 1;

    /* Inputs refused before anything is sent. */
    unsigned before = kms_server_requests(s, NULL);
    CHECK_ERR(kms_generate_data_key(c, k, &b2, &b2_len, "", doc, doc_len, key, &err),
              KM_ERR_INVALID);
    CHECK_ERR(kms_generate_data_key(c, k, &b2, &b2_len, "bad\nid", doc, doc_len, key, &err),
              KM_ERR_INVALID);
    CHECK_ERR(kms_generate_data_key(c, k, &b2, &b2_len, KEY_ID, doc, 0, key, &err), KM_ERR_INVALID);
    CHECK_ERR(kms_decrypt(c, k, blob, 0, KEY_ID, doc, doc_len, key, &err), KM_ERR_INVALID);
    CHECK_ERR(kms_decrypt(c, k, blob, KMS_CIPHERTEXT_BLOB_MAX + 1, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_INVALID);
    CHECK_EQ(kms_server_requests(s, NULL), before);
    kms_client_free(c);
    kms_server_stop(s);

    /* A KMS that also sends the plaintext key is not trusted. */
    sc.leak_plaintext = true;
    s = dev_ca_server_start(&sc);
    c = client_for(s, SECRET, NULL);
    static const uint8_t zero[KMS_DATA_KEY_LEN];
    memset(k, 0xaa, sizeof(k));
    CHECK_ERR(kms_generate_data_key(c, k, &b2, &b2_len, KEY_ID, doc, doc_len, key, &err),
              KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "Plaintext");
    CHECK_MEM_EQ(k, zero, sizeof(zero));
    CHECK_NULL(b2);
    kms_client_free(c);
    kms_server_stop(s);

    free(blob);
    free(doc);
    EVP_PKEY_free(key);
}

/* ---- The connect seam ---------------------------------------------------------------- */

struct seam {
    uint16_t port;
    int calls;
    bool fail;
};

static int seam_connect(void *ctx, struct km_error *err)
{
    struct seam *sm = ctx;
    sm->calls++;
    if (sm->fail) {
        km_error_set(err, KM_ERR_CONNECT, 0, "the proxy is not running");
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(sm->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        km_error_set(err, KM_ERR_CONNECT, 0, "cannot connect to 127.0.0.1:%u", sm->port);
        return -1;
    }
    return fd;
}

static void test_connect_seam(void **state)
{
    (void)state;
    struct kms_server_config sc = server_config();
    struct kms_server *s = dev_ca_server_start(&sc);
    struct seam sm = {.port = kms_server_port(s)};
    struct kms_client *c = NULL;
    struct km_error err;
    char url[64];
    /* A name that resolves nowhere: only the seam can reach the server. */
    snprintf(url, sizeof(url), "http://kms.us-east-1.invalid:%u", sm.port);
    struct kms_client_config cc = {.endpoint = url,
                                   .region = REGION,
                                   .access_key_id = AK,
                                   .secret_access_key = SECRET,
                                   .allow_http = true,
                                   .connect = seam_connect,
                                   .connect_ctx = &sm};
    CHECK_OK(kms_client_new(&c, &cc, &err));
    uint8_t *doc = NULL, *blob = NULL;
    size_t doc_len = 0, blob_len = 0;
    uint8_t k1[KMS_DATA_KEY_LEN], k2[KMS_DATA_KEY_LEN];
    EVP_PKEY *key = attested_key(&doc, &doc_len);
    if (kms_generate_data_key(c, k1, &blob, &blob_len, KEY_ID, doc, doc_len, key, &err) != KM_OK)
        fail_msg("through the seam: %s", err.msg);
    CHECK_OK(kms_decrypt(c, k2, blob, blob_len, KEY_ID, doc, doc_len, key, &err));
    CHECK_MEM_EQ(k1, k2, sizeof(k1));
    CHECK_EQ(sm.calls, 2);

    /* The seam's failure is reported with the endpoint. */
    sm.fail = true;
    CHECK_ERR(kms_decrypt(c, k2, blob, blob_len, KEY_ID, doc, doc_len, key, &err), KM_ERR_CONNECT);
    CHECK_CONTAINS(err.msg, "the proxy is not running");
    CHECK_CONTAINS(err.msg, "kms.us-east-1.invalid");
    kms_client_free(c);
    kms_server_stop(s);
    free(blob);
    free(doc);
    EVP_PKEY_free(key);
}

/* ---- A canned HTTP peer ---------------------------------------------------------------- */

struct canned {
    int lfd;
    uint16_t port;
    const char *head; /* status line and headers, without Content-Length */
    size_t body_len;
    char fill; /* body bytes; '{' etc. for JSON given in body */
    const char *body;
    pthread_t thread;
};

/* Reads the request (headers, then Content-Length bytes) and answers. */
static void *canned_run(void *arg)
{
    struct canned *cn = arg;
    int fd = accept(cn->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char req[65536];
    size_t n = 0;
    const char *end = NULL;
    while (n < sizeof(req) - 1) {
        ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(req, "Content-Length: ");
            size_t want = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
            if (n >= (size_t)(end + 4 - req) + want)
                break;
        }
    }
    char head[256];
    size_t blen = cn->body != NULL ? strlen(cn->body) : cn->body_len;
    int hl = snprintf(head, sizeof(head), "%s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      cn->head, blen);
    ssize_t w = write(fd, head, (size_t)hl);
    char *body = malloc(blen + 1);
    if (cn->body != NULL)
        memcpy(body, cn->body, blen);
    else
        memset(body, cn->fill, blen);
    for (size_t off = 0; w >= 0 && off < blen; off += (size_t)w)
        w = write(fd, body + off, blen - off);
    free(body);
    close(fd);
    return NULL;
}

static void canned_start(struct canned *cn)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cn->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(cn->lfd >= 0);
    CHECK_EQ(bind(cn->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(cn->lfd, 1), 0);
    CHECK_EQ(getsockname(cn->lfd, (struct sockaddr *)&sa, &sl), 0);
    cn->port = ntohs(sa.sin_port);
    CHECK_EQ(pthread_create(&cn->thread, NULL, canned_run, cn), 0);
}

static void canned_stop(struct canned *cn)
{
    pthread_join(cn->thread, NULL);
    close(cn->lfd);
}

static int call_canned(struct canned *cn, struct km_error *err)
{
    char url[64];
    struct kms_client *c = NULL;
    uint8_t doc[] = {1, 2, 3}, k[KMS_DATA_KEY_LEN], *blob = NULL;
    size_t blob_len = 0;
    EVP_PKEY *key = NULL;
    canned_start(cn);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", cn->port);
    struct kms_client_config cc = {.endpoint = url,
                                   .region = REGION,
                                   .access_key_id = AK,
                                   .secret_access_key = SECRET,
                                   .allow_http = true};
    CHECK_OK(kms_client_new(&c, &cc, err));
    CHECK_OK(kms_rsa_keypair_new(&key));
    int r = kms_generate_data_key(c, k, &blob, &blob_len, KEY_ID, doc, sizeof(doc), key, err);
    CHECK_NULL(blob);
    canned_stop(cn);
    EVP_PKEY_free(key);
    kms_client_free(c);
    return r;
}

static void test_bad_replies(void **state)
{
    (void)state;
    struct km_error err;

    struct canned big = {.head = "HTTP/1.1 200 OK", .body_len = KMS_RESPONSE_MAX + 1, .fill = ' '};
    CHECK_ERR(call_canned(&big, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "http://127.0.0.1:");

    struct canned unavailable = {.head = "HTTP/1.1 503 Service Unavailable", .body = "<html/>"};
    CHECK_ERR(call_canned(&unavailable, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "HTTP 503");

    struct canned typed = {.head = "HTTP/1.1 400 Bad Request",
                           .body = "{\"__type\":\"com.amazonaws.kms#KMSInvalidStateException\","
                                   "\"Message\":\"key is pending deletion\"}"};
    CHECK_ERR(call_canned(&typed, &err), KM_ERR_REMOTE);
    CHECK_CONTAINS(err.msg, "GenerateDataKey at http://127.0.0.1:");
    CHECK_CONTAINS(err.msg, ": KMSInvalidStateException: key is pending deletion (HTTP 400)");

    struct canned notjson = {.head = "HTTP/1.1 200 OK", .body = "hello"};
    CHECK_ERR(call_canned(&notjson, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "not a JSON object");

    struct canned missing = {.head = "HTTP/1.1 200 OK", .body = "{\"CiphertextBlob\":\"AAAA\"}"};
    CHECK_ERR(call_canned(&missing, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "CiphertextForRecipient");

    struct canned badb64 = {.head = "HTTP/1.1 200 OK",
                            .body =
                                "{\"CiphertextBlob\":\"AAAA\",\"CiphertextForRecipient\":\"A\"}"};
    CHECK_ERR(call_canned(&badb64, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "base64");

    struct canned badcms = {.head = "HTTP/1.1 200 OK",
                            .body = "{\"CiphertextBlob\":\"AAAA\",\"CiphertextForRecipient\":"
                                    "\"MAA=\"}"};
    CHECK_ERR(call_canned(&badcms, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "GenerateDataKey: CiphertextForRecipient: cms:");

    /* Nobody listening: the port of a socket just closed. */
    struct canned gone = {0};
    canned_start(&gone);
    shutdown(gone.lfd, SHUT_RDWR);
    pthread_join(gone.thread, NULL);
    close(gone.lfd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", gone.port);
    struct kms_client_config cc = {.endpoint = url,
                                   .region = REGION,
                                   .access_key_id = AK,
                                   .secret_access_key = SECRET,
                                   .allow_http = true};
    struct kms_client *c = NULL;
    EVP_PKEY *key = NULL;
    uint8_t k[KMS_DATA_KEY_LEN], doc[1] = {0};
    CHECK_OK(kms_client_new(&c, &cc, &err));
    CHECK_OK(kms_rsa_keypair_new(&key));
    CHECK_ERR(kms_decrypt(c, k, doc, 1, NULL, doc, 1, key, &err), KM_ERR_CONNECT);
    CHECK_CONTAINS(err.msg, "cannot reach http://127.0.0.1:");
    EVP_PKEY_free(key);
    kms_client_free(c);
}

static void test_config(void **state)
{
    (void)state;
    struct kms_client *c = NULL;
    struct km_error err;
    static const struct {
        const char *endpoint;
        bool allow_http;
        const char *msg;
    } bad[] = {
        {"ftp://kms.us-east-1.amazonaws.com", true, "scheme"},
        {"http://127.0.0.1:8080", false, "scheme must be https"},
        {"https://kms.us-east-1.amazonaws.com/v1", false, "no path"},
        {"https://kms.us-east-1.amazonaws.com/?x=1", false, "no path"},
        {"not a url", false, "not a URL"},
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        struct kms_client_config cc = {.endpoint = bad[i].endpoint,
                                       .region = REGION,
                                       .access_key_id = AK,
                                       .secret_access_key = SECRET,
                                       .allow_http = bad[i].allow_http};
        CHECK_ERR(kms_client_new(&c, &cc, &err), KM_ERR_CONFIG);
        CHECK_NULL(c);
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
    struct kms_client_config cc = {.endpoint = "https://kms.us-east-1.amazonaws.com/",
                                   .region = "US EAST",
                                   .access_key_id = AK,
                                   .secret_access_key = SECRET};
    CHECK_ERR(kms_client_new(&c, &cc, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "region");
    cc.region = REGION;
    cc.access_key_id = "AK/ID";
    CHECK_ERR(kms_client_new(&c, &cc, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "access key");
    cc.access_key_id = AK;
    cc.secret_access_key = NULL;
    CHECK_ERR(kms_client_new(&c, &cc, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "secret");
    cc.secret_access_key = SECRET;
    cc.session_token = "";
    CHECK_ERR(kms_client_new(&c, &cc, &err), KM_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "session token");
    cc.session_token = NULL;
    CHECK_OK(kms_client_new(&c, &cc, &err));
    kms_client_free(c);
    kms_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_round_trip), TEST(test_credentials),  TEST(test_attestation_policy),
        TEST(test_kms_errors), TEST(test_connect_seam), TEST(test_bad_replies),
        TEST(test_config),
    };
    return cmocka_run_group_tests_name("unit.kms.client", tests, setup,
                                       dev_ca_fixture_group_teardown);
}
