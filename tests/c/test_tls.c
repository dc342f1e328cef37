/*
 * Real TLS against `openssl s_server -rev` and tests/support/tls_server.py.
 * tests/c/run.sh starts the servers and sets:
 *   TU_TEST_CERTS       directory made by tests/support/mkcerts.sh
 *   TU_TLS_PORT         s_server -rev, server.pem, 127.0.0.1
 *   TU_TLS6_PORT        s_server -rev, server.pem, ::1            (optional)
 *   TU_WRONGNAME_PORT   s_server, wrongname.pem (wrong.example)
 *   TU_SELFSIGNED_PORT  s_server, selfsigned.pem
 *   TU_EXPIRED_PORT     s_server, expired.pem
 *   TU_NOTYET_PORT      s_server, notyet.pem
 *   TU_ECHO_PORT        tls_server.py --close-notify
 *   TU_TRUNC_PORT       tls_server.py --no-close-notify
 * A case whose server is not given is skipped.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static char ca[1024];

static int need(const char *case_name, int port)
{
    if (port == 0)
        th_skip(case_name, "its server was not started (port variable unset)");
    return port != 0;
}

/* write a line to an `s_server -rev` and expect it back reversed */
static void rev_round_trip(tu_handle *h)
{
    char buf[256];
    int32_t rc = th_write_all(h, "hello transporturl\n");
    TH_CHECK(rc == TU_OK, "write: %s", th_code(rc));
    rc = th_read_until(h, "\n", buf, sizeof buf);
    TH_CHECK(rc == TU_OK, "read: %s", rc < 0 ? "EOF" : th_code(rc));
    TH_CHECK(strstr(buf, "lrutropsnart olleh") != NULL, "got \"%s\"", buf);
}

static void expect_tls(tu_handle *h, const char *version)
{
    const char *v = tu_tls_version(h);
    const char *s = tu_tls_cipher_suite(h);
    TH_CHECK(v != NULL && (version == NULL ? strncmp(v, "TLSv1.", 6) == 0 : strcmp(v, version) == 0),
             "tu_tls_version \"%s\", want %s", v ? v : "(NULL)", version ? version : "TLSv1.x");
    TH_CHECK(s != NULL && strncmp(s, "TLS_", 4) == 0, "tu_tls_cipher_suite \"%s\"",
             s ? s : "(NULL)");
    if (v != NULL && s != NULL && strcmp(v, "TLSv1.2") == 0)
        TH_CHECK(strstr(s, "_WITH_") != NULL, "TLS 1.2 suite \"%s\" is not an IANA name", s);
}

/* connect, expecting success and a reversed echo */
static void good(const char *name, const char *scheme, const char *host, int port,
                 const char *version, const char *k1, const char *v1)
{
    char url[128];
    tu_error err;
    tu_handle *h;

    th_begin("%s", name);
    snprintf(url, sizeof url, "%s://%s:%d", scheme, host, port);
    h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5", k1, v1,
                   (const char *)NULL);
    TH_CHECK(h != NULL, "%s: %s: %.*s", url, th_code(err.code), 512, err.message);
    if (h != NULL) {
        TH_CHECK(err.code == TU_OK && err.message[0] == '\0', "err not reset on success");
        expect_tls(h, version);
        TH_CHECK(tu_fileno(h) >= 0, "tu_fileno");
        rev_round_trip(h);
        TH_CHECK_LAST(h, TU_OK, NULL);
    }
    tu_close(h);
    th_end();
}

/* connect, expecting failure with code and a word of the message */
static void bad(const char *name, const char *url, int32_t want, const char *word, const char *k1,
                const char *v1)
{
    tu_error err;
    tu_handle *h;
    th_begin("%s", name);
    h = th_connect(url, &err, "timeout", "5", k1, v1, (const char *)NULL);
    TH_CHECK(h == NULL, "%s: connected, want %s", url, th_code(want));
    if (h == NULL)
        TH_CHECK_ERR(&err, want, word);
    tu_close(h);
    th_end();
}

struct reader_arg {
    tu_handle *h;
    char buf[256];
    int32_t rc;
    double finished;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    a->rc = th_read_until(a->h, "\n", a->buf, sizeof a->buf);
    a->finished = th_now();
    return NULL;
}

int main(void)
{
    const char *certs = th_env("TU_TEST_CERTS");
    int port = th_env_port("TU_TLS_PORT");
    int port6 = th_env_port("TU_TLS6_PORT");
    int wrong = th_env_port("TU_WRONGNAME_PORT");
    int self = th_env_port("TU_SELFSIGNED_PORT");
    int expired = th_env_port("TU_EXPIRED_PORT");
    int notyet = th_env_port("TU_NOTYET_PORT");
    int echo = th_env_port("TU_ECHO_PORT");
    int trunc = th_env_port("TU_TRUNC_PORT");
    char url[128];
    tu_error err;
    tu_handle *h = NULL;
    int lfd = -1, silent_port = 0;
    int32_t rc;
    intptr_t n;
    char buf[256];

    th_begin("environment");
    TH_CHECK(certs != NULL, "TU_TEST_CERTS is not set (run tests/c/run.sh)");
    if (!th_end())
        return th_summary();
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);

    if (need("tls round trips", port)) {
        good("tls://localhost with ssl.cafile", "tls", "localhost", port, "TLSv1.3", NULL, NULL);
        good("ssl:// is TLS 1.2 or 1.3", "ssl", "localhost", port, NULL, NULL, NULL);
        good("tlsv1.2:// pins TLS 1.2", "tlsv1.2", "localhost", port, "TLSv1.2", NULL, NULL);
        good("tlsv1.3:// pins TLS 1.3", "tlsv1.3", "localhost", port, "TLSv1.3", NULL, NULL);
        good("tls://127.0.0.1 matches the IP SAN", "tls", "127.0.0.1", port, NULL, NULL, NULL);
        good("TLS:// scheme is case-insensitive", "TLS", "localhost", port, NULL, NULL, NULL);
    }
    if (need("tls://[::1]", port6))
        good("tls://[::1] matches the IPv6 SAN", "tls", "[::1]", port6, NULL, NULL, NULL);

    if (port != 0) {
        th_begin("tcp:// then tu_enable_crypto(TU_CRYPTO_ANY)");
        snprintf(url, sizeof url, "tcp://localhost:%d", port);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            TH_CHECK(tu_tls_version(h) == NULL, "TLS info before the upgrade");
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_OK, "tu_enable_crypto: %s", th_code(rc));
            if (rc != TU_OK)
                TH_CHECK_LAST(h, TU_OK, NULL);
            expect_tls(h, "TLSv1.3");
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_STATE, "second tu_enable_crypto: %s, want TU_E_STATE",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_STATE, "already");
            rev_round_trip(h);
        }
        tu_close(h);
        h = NULL;
        th_end();

        th_begin("tcp:// then tu_enable_crypto(TU_CRYPTO_TLSV1_2)");
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = tu_enable_crypto(h, TU_CRYPTO_TLSV1_2);
            TH_CHECK(rc == TU_OK, "tu_enable_crypto: %s", th_code(rc));
            expect_tls(h, "TLSv1.2");
            rev_round_trip(h);
        }
        tu_close(h);
        h = NULL;
        th_end();

        snprintf(url, sizeof url, "tls://localhost:%d", port);
        bad("no ssl.cafile: the test CA is unknown to the system roots", url, TU_E_CERTIFICATE,
            "issuer", NULL, NULL);

        th_begin("full duplex: a blocked tu_read does not block tu_write");
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            struct reader_arg ra;
            pthread_t t;
            double t0, t1;
            memset(&ra, 0, sizeof ra);
            ra.h = h;
            if (pthread_create(&t, NULL, reader_main, &ra) == 0) {
                th_sleep(0.3); /* let the reader block in tu_read */
                t0 = th_now();
                rc = th_write_all(h, "duplex\n");
                t1 = th_now();
                TH_CHECK(rc == TU_OK, "write while reading: %s", th_code(rc));
                TH_CHECK(t1 - t0 < 2.0, "the write waited %.2f s for the blocked read", t1 - t0);
                pthread_join(t, NULL);
                TH_CHECK(ra.rc == TU_OK, "reader: %s", ra.rc < 0 ? "EOF" : th_code(ra.rc));
                TH_CHECK(strstr(ra.buf, "xelpud") != NULL, "reader got \"%s\"", ra.buf);
            } else {
                TH_CHECK(0, "pthread_create failed");
            }
        }
        tu_close(h);
        h = NULL;
        th_end();

        th_begin("read_timeout expires as TU_E_TIMEOUT");
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "0.3",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            double t0 = th_now(), dt;
            n = tu_read(h, buf, sizeof buf);
            dt = th_now() - t0;
            TH_CHECK(n == -TU_E_TIMEOUT, "tu_read returned %ld, want -TU_E_TIMEOUT", (long)n);
            TH_CHECK(dt >= 0.2 && dt < 3.0, "timed out after %.2f s, want about 0.3 s", dt);
            TH_CHECK_LAST(h, TU_E_TIMEOUT, "time");
        }
        tu_close(h);
        h = NULL;
        th_end();
    }

    if (need("certificate failures: wrong name", wrong)) {
        snprintf(url, sizeof url, "tls://localhost:%d", wrong);
        bad("wrong name: TU_E_CERTIFICATE", url, TU_E_CERTIFICATE, "name", "ssl.cafile", ca);
        good("wrong name with ssl.verify_peer_name=false", "tls", "localhost", wrong, NULL,
             "ssl.verify_peer_name", "false");
        good("wrong name with ssl.peer_name=wrong.example", "tls", "127.0.0.1", wrong, NULL,
             "ssl.peer_name", "wrong.example");
    }
    if (need("certificate failures: unknown issuer", self)) {
        snprintf(url, sizeof url, "tls://localhost:%d", self);
        bad("self-signed (unknown issuer): TU_E_CERTIFICATE", url, TU_E_CERTIFICATE, "issuer",
            "ssl.cafile", ca);
        good("self-signed with ssl.verify_peer=false", "tls", "localhost", self, NULL,
             "ssl.verify_peer", "false");
    }
    if (need("certificate failures: expired", expired)) {
        snprintf(url, sizeof url, "tls://localhost:%d", expired);
        bad("expired: TU_E_CERTIFICATE", url, TU_E_CERTIFICATE, "expired", "ssl.cafile", ca);
    }
    if (need("certificate failures: not yet valid", notyet)) {
        snprintf(url, sizeof url, "tls://localhost:%d", notyet);
        bad("not yet valid: TU_E_CERTIFICATE", url, TU_E_CERTIFICATE, "yet", "ssl.cafile", ca);
    }

    {
        int closed = th_closed_port();
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", closed);
        bad("refused port, tcp://: TU_E_REFUSED", url, TU_E_REFUSED, "refused", NULL, NULL);
        snprintf(url, sizeof url, "tls://localhost:%d", closed);
        bad("refused port, tls://: TU_E_REFUSED", url, TU_E_REFUSED, "refused", "ssl.cafile", ca);
    }

    lfd = th_listen(AF_INET, &silent_port);
    th_begin("a TLS handshake with a silent peer times out (timeout=0.5)");
    TH_CHECK(lfd >= 0, "th_listen");
    if (lfd >= 0) {
        double t0 = th_now(), dt;
        snprintf(url, sizeof url, "tls://localhost:%d", silent_port);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "0.5", (const char *)NULL);
        dt = th_now() - t0;
        TH_CHECK(h == NULL, "connected to a silent peer");
        if (h == NULL)
            TH_CHECK_ERR(&err, TU_E_TIMEOUT, "time");
        TH_CHECK(dt >= 0.3 && dt < 3.0, "gave up after %.2f s, want about 0.5 s", dt);
        tu_close(h);
        h = NULL;
    }
    th_end();

    if (need("close_notify ends the stream with 0", echo)) {
        th_begin("close_notify: tu_read returns 0");
        snprintf(url, sizeof url, "tls://localhost:%d", echo);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = th_write_all(h, "QUIT\n");
            TH_CHECK(rc == TU_OK, "write: %s", th_code(rc));
            rc = th_read_until(h, "QUIT\n", buf, sizeof buf);
            TH_CHECK(rc == TU_OK, "echo: %s", rc < 0 ? "EOF" : th_code(rc));
            n = tu_read(h, buf, sizeof buf);
            TH_CHECK(n == 0, "tu_read after close_notify returned %ld, want 0", (long)n);
            n = tu_read(h, buf, sizeof buf);
            TH_CHECK(n == 0, "a second tu_read after EOF returned %ld, want 0", (long)n);
            rc = tu_enable_crypto(h, TU_CRYPTO_NONE);
            TH_CHECK(rc == TU_E_STATE, "TU_CRYPTO_NONE on tls://: %s, want TU_E_STATE",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_STATE, "implicit");
        }
        tu_close(h);
        h = NULL;
        th_end();
    }
    if (need("a FIN without close_notify is TU_E_TRUNCATED", trunc)) {
        th_begin("no close_notify: tu_read returns -TU_E_TRUNCATED");
        snprintf(url, sizeof url, "tls://localhost:%d", trunc);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = th_write_all(h, "QUIT\n");
            TH_CHECK(rc == TU_OK, "write: %s", th_code(rc));
            rc = th_read_until(h, "QUIT\n", buf, sizeof buf);
            TH_CHECK(rc == TU_OK, "echo: %s", rc < 0 ? "EOF" : th_code(rc));
            n = tu_read(h, buf, sizeof buf);
            TH_CHECK(n == -TU_E_TRUNCATED, "tu_read returned %ld, want -TU_E_TRUNCATED",
                     (long)n);
            TH_CHECK_LAST(h, TU_E_TRUNCATED, "close_notify");
        }
        tu_close(h);
        h = NULL;
        th_end();
    }

    if (lfd >= 0)
        close(lfd);
    return th_summary();
}
