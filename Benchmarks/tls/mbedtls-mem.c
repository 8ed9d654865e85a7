/*
 * mbedtls-mem: what an mbedTLS 2.28 handshake costs by itself, with no sockets and no
 * runtime (Benchmarks/scripts/bench-tls.sh; docs/benchmarks.md "TLS"). The server CPU
 * per handshake a server measures over TCP, divided by this program's server-side
 * figure, is the "runtime overhead" of that server (issue 9: at most 1.15× for
 * strata-serve, which terminates TLS with mbedTLS 2.28).
 *
 * One thread runs an mbedTLS client and an mbedTLS server in memory: each side's BIO
 * callbacks write into and read from two byte buffers (client -> server, server ->
 * client); recv returns MBEDTLS_ERR_SSL_WANT_READ when its buffer is empty. The two
 * sides take turns calling mbedtls_ssl_handshake_step until both are done; each side's
 * CPU time is clock_gettime(CLOCK_THREAD_CPUTIME_ID) around its own
 * mbedtls_ssl_handshake_step calls (so it includes its BIO copies, nothing of the other
 * side). Context set-up (mbedtls_ssl_init + mbedtls_ssl_setup, which allocates the
 * record buffers) and mbedtls_ssl_free are timed apart ("setup"). After every handshake
 * the client sends 13 bytes and the server reads them (not timed): a check that both
 * derived the same keys.
 *
 * TLS as the rest of the benchmark: TLS 1.2 only, the one suite
 * TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256, the one group secp256r1, SHA-256 signatures,
 * the server's certificate chain and key from PEM files (the benchmark's P-256 ECDSA
 * certificate), the client verifying the chain against -a CA.pem and the name
 * "localhost" (MBEDTLS_SSL_VERIFY_REQUIRED), extended master secret (the default).
 * Session tickets: the server has mbedtls_ssl_ticket_setup (AES-256-GCM, 1 day) with
 * mbedtls_ssl_ticket_write / _parse; the client offers tickets (the default).
 *
 * Full handshakes: a new client and server context each, no session offered.
 * Resumed handshakes: the client's session after the first full handshake
 * (mbedtls_ssl_get_session, which holds the ticket) is set on every new client context
 * (mbedtls_ssl_set_session); whether the server resumed is read from the client's
 * handshake state (handshake->resume, mbedTLS 2.28's own field) and counted.
 *
 * Output: a human summary on stderr and one machine-readable line on stdout:
 *   RESULT full_n=N full_server_us=.. full_client_us=.. full_server_p50_us=..
 *          full_client_p50_us=.. resumed_n=N resumed_ok=K resumed_server_us=..
 *          resumed_client_us=.. resumed_server_p50_us=.. resumed_client_p50_us=..
 *          setup_server_us=.. full_bytes_s2c=.. full_bytes_c2s=.. resumed_bytes_s2c=..
 *          resumed_bytes_c2s=.. mbedtls=2.28.x
 * (_us: mean CPU µs per handshake, _p50_us: the median; bytes: per handshake.)
 *
 *   mbedtls-mem -c CHAIN.pem -k KEY.pem -a CA.pem [-n 200] [-r 1000] [-w 5]
 *
 * Exit status: 0 on success, 1 on any failure, 2 for usage.
 * Build: cc -O2 -Wall -Wextra -o mbedtls-mem mbedtls-mem.c -lmbedtls -lmbedx509 -lmbedcrypto
 */
#define _GNU_SOURCE
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if MBEDTLS_VERSION_MAJOR != 2 || MBEDTLS_VERSION_MINOR != 28
#error "mbedtls-mem is written for mbedTLS 2.28 (Debian's libmbedtls-dev)"
#endif

#define SUITE_NAME "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"

/* A byte pipe: one direction of the in-memory connection. */
struct pipe {
    unsigned char data[65536];
    size_t head, tail; /* readable bytes are data[head..tail) */
    size_t total;      /* bytes ever written */
};

static struct pipe c2s, s2c;

struct endpoint {
    struct pipe *out, *in;
};

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
    struct pipe *p = ((struct endpoint *)ctx)->out;
    if (p->head == p->tail) p->head = p->tail = 0;
    if (len > sizeof p->data - p->tail) {
        memmove(p->data, p->data + p->head, p->tail - p->head);
        p->tail -= p->head;
        p->head = 0;
    }
    size_t room = sizeof p->data - p->tail;
    if (room == 0) return MBEDTLS_ERR_SSL_WANT_WRITE;
    if (len > room) len = room;
    memcpy(p->data + p->tail, buf, len);
    p->tail += len;
    p->total += len;
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
    struct pipe *p = ((struct endpoint *)ctx)->in;
    size_t avail = p->tail - p->head;
    if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > avail) len = avail;
    memcpy(buf, p->data + p->head, len);
    p->head += len;
    return (int)len;
}

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, int rc) {
    char msg[200];
    mbedtls_strerror(rc, msg, sizeof msg);
    fprintf(stderr, "mbedtls-mem: %s: -0x%04x %s\n", what, (unsigned)-rc, msg);
    exit(1);
}

static mbedtls_ssl_config server_conf, client_conf;
static struct endpoint client_end = {&c2s, &s2c}, server_end = {&s2c, &c2s};

struct result {
    double server_s, client_s, setup_s;
    int resumed;
    size_t bytes_s2c, bytes_c2s;
};

/* One handshake between fresh contexts; with session, the client offers it; with keep, the
 * client's session after the handshake is copied there. */
static struct result handshake(const mbedtls_ssl_session *session, mbedtls_ssl_session *keep) {
    struct result r = {0};
    mbedtls_ssl_context server, client;
    int rc;
    c2s.head = c2s.tail = s2c.head = s2c.tail = 0;
    size_t c2s0 = c2s.total, s2c0 = s2c.total;

    double t0 = thread_cpu();
    mbedtls_ssl_init(&server);
    if ((rc = mbedtls_ssl_setup(&server, &server_conf)) != 0) fail("server mbedtls_ssl_setup", rc);
    mbedtls_ssl_set_bio(&server, &server_end, bio_send, bio_recv, NULL);
    r.setup_s = thread_cpu() - t0;

    mbedtls_ssl_init(&client);
    if ((rc = mbedtls_ssl_setup(&client, &client_conf)) != 0) fail("client mbedtls_ssl_setup", rc);
    if ((rc = mbedtls_ssl_set_hostname(&client, "localhost")) != 0) fail("mbedtls_ssl_set_hostname", rc);
    mbedtls_ssl_set_bio(&client, &client_end, bio_send, bio_recv, NULL);
    if (session && (rc = mbedtls_ssl_set_session(&client, session)) != 0) fail("mbedtls_ssl_set_session", rc);

    int idle_turns = 0;
    while (client.state != MBEDTLS_SSL_HANDSHAKE_OVER || server.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int progressed = 0;
        if (client.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
            double a = thread_cpu();
            rc = mbedtls_ssl_handshake_step(&client);
            r.client_s += thread_cpu() - a;
            if (client.handshake && client.handshake->resume) r.resumed = 1;
            if (rc == 0) progressed = 1;
            else if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
                if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
                    char info[256];
                    mbedtls_x509_crt_verify_info(info, sizeof info, "", mbedtls_ssl_get_verify_result(&client));
                    fprintf(stderr, "mbedtls-mem: certificate verification failed: %s\n", info);
                }
                fail("client handshake step", rc);
            }
        }
        if (server.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
            double a = thread_cpu();
            rc = mbedtls_ssl_handshake_step(&server);
            r.server_s += thread_cpu() - a;
            if (rc == 0) progressed = 1;
            else if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) fail("server handshake step", rc);
        }
        if (progressed) idle_turns = 0;
        else if (++idle_turns > 4) {
            fprintf(stderr, "mbedtls-mem: the handshake is stuck (client state %d, server state %d)\n", client.state, server.state);
            exit(1);
        }
    }
    r.bytes_c2s = c2s.total - c2s0;
    r.bytes_s2c = s2c.total - s2c0;

    const char *suite = mbedtls_ssl_get_ciphersuite(&server);
    const char *version = mbedtls_ssl_get_version(&server);
    if (!suite || strcmp(suite, SUITE_NAME) != 0 || strcmp(version, "TLSv1.2") != 0) {
        fprintf(stderr, "mbedtls-mem: negotiated %s %s, not TLSv1.2 " SUITE_NAME "\n", version, suite ? suite : "?");
        exit(1);
    }
    /* Both sides derived the same keys: 13 bytes across, not timed. */
    static const unsigned char hello[] = "Hello, World!";
    unsigned char got[32];
    if ((rc = mbedtls_ssl_write(&client, hello, 13)) != 13) fail("client write", rc);
    if ((rc = mbedtls_ssl_read(&server, got, sizeof got)) != 13 || memcmp(got, hello, 13) != 0)
        fail("server read (the sides do not agree on the keys)", rc < 0 ? rc : -1);

    if (keep && (rc = mbedtls_ssl_get_session(&client, keep)) != 0) fail("mbedtls_ssl_get_session", rc);
    mbedtls_ssl_free(&client);
    t0 = thread_cpu();
    mbedtls_ssl_free(&server);
    r.setup_s += thread_cpu() - t0;
    return r;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void) {
    fprintf(stderr, "usage: mbedtls-mem -c CHAIN.pem -k KEY.pem -a CA.pem [-n FULL] [-r RESUMED] [-w WARMUP]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *chain = NULL, *keyfile = NULL, *cafile = NULL;
    int nfull = 200, nres = 1000, warm = 5, opt, rc;
    while ((opt = getopt(argc, argv, "c:k:a:n:r:w:")) != -1) {
        switch (opt) {
        case 'c': chain = optarg; break;
        case 'k': keyfile = optarg; break;
        case 'a': cafile = optarg; break;
        case 'n': nfull = atoi(optarg); break;
        case 'r': nres = atoi(optarg); break;
        case 'w': warm = atoi(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || !chain || !keyfile || !cafile || nfull < 1 || nres < 1 || warm < 0) usage();

    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt crt, ca;
    mbedtls_pk_context key;
    mbedtls_ssl_ticket_context tickets;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&crt);
    mbedtls_x509_crt_init(&ca);
    mbedtls_pk_init(&key);
    mbedtls_ssl_ticket_init(&tickets);
    if ((rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)"mbedtls-mem", 11)) != 0)
        fail("mbedtls_ctr_drbg_seed", rc);
    if ((rc = mbedtls_x509_crt_parse_file(&crt, chain)) != 0) fail(chain, rc);
    if ((rc = mbedtls_x509_crt_parse_file(&ca, cafile)) != 0) fail(cafile, rc);
    if ((rc = mbedtls_pk_parse_keyfile(&key, keyfile, NULL)) != 0) fail(keyfile, rc);
    if (!mbedtls_pk_can_do(&key, MBEDTLS_PK_ECDSA)) {
        fprintf(stderr, "mbedtls-mem: %s is not an ECDSA key\n", keyfile);
        return 1;
    }

    static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0};
    static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
    static const int hashes[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_NONE};
    mbedtls_ssl_config *confs[2] = {&server_conf, &client_conf};
    for (int i = 0; i < 2; i++) {
        mbedtls_ssl_config *c = confs[i];
        mbedtls_ssl_config_init(c);
        if ((rc = mbedtls_ssl_config_defaults(c, i == 0 ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                              MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
            fail("mbedtls_ssl_config_defaults", rc);
        mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &drbg);
        mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_ciphersuites(c, suites);
        mbedtls_ssl_conf_curves(c, curves);
        mbedtls_ssl_conf_sig_hashes(c, hashes);
    }
    if ((rc = mbedtls_ssl_conf_own_cert(&server_conf, &crt, &key)) != 0) fail("mbedtls_ssl_conf_own_cert", rc);
    mbedtls_ssl_conf_authmode(&server_conf, MBEDTLS_SSL_VERIFY_NONE);
    if ((rc = mbedtls_ssl_ticket_setup(&tickets, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_CIPHER_AES_256_GCM, 86400)) != 0)
        fail("mbedtls_ssl_ticket_setup", rc);
    mbedtls_ssl_conf_session_tickets_cb(&server_conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &tickets);
    mbedtls_ssl_conf_ca_chain(&client_conf, &ca, NULL);
    mbedtls_ssl_conf_authmode(&client_conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_session_tickets(&client_conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);

    /* The session to resume: the client's, after one full handshake. */
    mbedtls_ssl_session session;
    mbedtls_ssl_session_init(&session);
    handshake(NULL, &session);
    if (session.ticket == NULL || session.ticket_len == 0) {
        fprintf(stderr, "mbedtls-mem: the server issued no session ticket\n");
        return 1;
    }

    for (int i = 0; i < warm; i++) {
        handshake(NULL, NULL);
        handshake(&session, NULL);
    }

    double *sv = calloc((size_t)(nfull > nres ? nfull : nres), sizeof *sv);
    double *cv = calloc((size_t)(nfull > nres ? nfull : nres), sizeof *cv);
    if (!sv || !cv) return 1;
    double fs = 0, fc = 0, setup = 0;
    size_t fb_s2c = 0, fb_c2s = 0;
    for (int i = 0; i < nfull; i++) {
        struct result r = handshake(NULL, NULL);
        if (r.resumed) {
            fprintf(stderr, "mbedtls-mem: a handshake without a session resumed\n");
            return 1;
        }
        fs += r.server_s;
        fc += r.client_s;
        setup += r.setup_s;
        sv[i] = r.server_s;
        cv[i] = r.client_s;
        fb_s2c = r.bytes_s2c;
        fb_c2s = r.bytes_c2s;
    }
    double fs50 = median(sv, nfull), fc50 = median(cv, nfull);

    double rs = 0, rcl = 0;
    int resumed = 0;
    size_t rb_s2c = 0, rb_c2s = 0;
    for (int i = 0; i < nres; i++) {
        struct result r = handshake(&session, NULL);
        resumed += r.resumed;
        rs += r.server_s;
        rcl += r.client_s;
        setup += r.setup_s;
        sv[i] = r.server_s;
        cv[i] = r.client_s;
        rb_s2c = r.bytes_s2c;
        rb_c2s = r.bytes_c2s;
    }
    double rs50 = median(sv, nres), rc50 = median(cv, nres);

    char version[32];
    mbedtls_version_get_string(version);
    fprintf(stderr,
            "mbedtls-mem: mbedTLS %s, TLSv1.2 " SUITE_NAME ", secp256r1: full handshake server %.1f µs, client %.1f µs CPU "
            "(%d); resumed server %.1f µs, client %.1f µs (%d, %d resumed); server context setup+free %.1f µs\n",
            version, fs / nfull * 1e6, fc / nfull * 1e6, nfull, rs / nres * 1e6, rcl / nres * 1e6, nres, resumed,
            setup / (nfull + nres) * 1e6);
    printf("RESULT full_n=%d full_server_us=%.1f full_client_us=%.1f full_server_p50_us=%.1f full_client_p50_us=%.1f "
           "resumed_n=%d resumed_ok=%d resumed_server_us=%.1f resumed_client_us=%.1f resumed_server_p50_us=%.1f "
           "resumed_client_p50_us=%.1f setup_server_us=%.1f full_bytes_s2c=%zu full_bytes_c2s=%zu resumed_bytes_s2c=%zu "
           "resumed_bytes_c2s=%zu mbedtls=%s\n",
           nfull, fs / nfull * 1e6, fc / nfull * 1e6, fs50 * 1e6, fc50 * 1e6, nres, resumed, rs / nres * 1e6,
           rcl / nres * 1e6, rs50 * 1e6, rc50 * 1e6, setup / (nfull + nres) * 1e6, fb_s2c, fb_c2s, rb_s2c, rb_c2s, version);
    mbedtls_ssl_session_free(&session);
    return resumed == nres ? 0 : 1;
}
