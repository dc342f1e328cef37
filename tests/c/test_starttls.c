/*
 * STARTTLS against tests/support/smtp_server.py. tests/c/run.sh sets:
 *   TU_TEST_CERTS     directory made by tests/support/mkcerts.sh
 *   TU_SMTP_PORT      smtp_server.py (aiosmtpd, STARTTLS), 127.0.0.1
 *   TU_SMTP6_PORT     the same on ::1                            (optional)
 *   TU_INJECT_PORT    smtp_server.py --inject (plaintext queued behind the 220)
 *   TU_LINE_PORT      line_server.py (STARTTLS and STOPTLS: TLS on and off again)
 * A case whose server is not given is skipped.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static char ca[1024];

/* Read a whole SMTP reply; every line must start with `code`. The last line
 * is left in `last`. When `all` is given, the lines are appended there. */
static int32_t smtp_reply(tu_handle *h, const char *code, char *last, size_t cap, char *all,
                          size_t all_cap)
{
    int i;
    if (all != NULL)
        all[0] = '\0';
    for (i = 0; i < 50; i++) {
        int32_t rc = th_read_line(h, last, cap);
        if (rc != TU_OK)
            return rc;
        if (all != NULL && strlen(all) + strlen(last) + 2 < all_cap) {
            strcat(all, last);
            strcat(all, "\n");
        }
        if (strncmp(last, code, 3) != 0)
            return TU_E_PROTOCOL;
        if (last[3] != '-')
            return TU_OK;
    }
    return TU_E_PROTOCOL;
}

static const char *rcs(int32_t rc)
{
    return rc < 0 ? "EOF" : th_code(rc);
}

/* EHLO, STARTTLS, upgrade, EHLO over TLS, QUIT over `url`. */
static void starttls_dialogue(const char *url, const char *k1, const char *v1)
{
    tu_error err;
    tu_handle *h;
    char line[1024], all[4096];
    int32_t rc;
    intptr_t n;

    h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5", k1, v1,
                   (const char *)NULL);
    TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
    if (h == NULL)
        return;
    rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
    TH_CHECK(rc == TU_OK, "greeting: %s \"%s\"", rcs(rc), line);
    if (rc != TU_OK)
        goto cleanup;
    rc = th_write_all(h, "EHLO c-test.localhost\r\n");
    TH_CHECK(rc == TU_OK, "EHLO write: %s", th_code(rc));
    rc = smtp_reply(h, "250", line, sizeof line, all, sizeof all);
    TH_CHECK(rc == TU_OK, "EHLO reply: %s \"%s\"", rcs(rc), line);
    TH_CHECK(strstr(all, "STARTTLS") != NULL, "STARTTLS not offered: %s", all);
    TH_CHECK(tu_tls_version(h) == NULL, "TLS info before the upgrade");
    rc = th_write_all(h, "STARTTLS\r\n");
    TH_CHECK(rc == TU_OK, "STARTTLS write: %s", th_code(rc));
    rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
    TH_CHECK(rc == TU_OK, "STARTTLS reply: %s \"%s\"", rcs(rc), line);
    if (rc != TU_OK)
        goto cleanup;
    rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
    TH_CHECK(rc == TU_OK, "tu_enable_crypto: %s", th_code(rc));
    if (rc != TU_OK) {
        TH_CHECK_LAST(h, TU_OK, NULL); /* shows the message */
        goto cleanup;
    }
    TH_CHECK(tu_tls_version(h) != NULL && strncmp(tu_tls_version(h), "TLSv1.", 6) == 0,
             "tu_tls_version after STARTTLS: %s", tu_tls_version(h) ? tu_tls_version(h) : "NULL");
    TH_CHECK(tu_tls_cipher_suite(h) != NULL, "no cipher suite after STARTTLS");
    rc = th_write_all(h, "EHLO c-test.localhost\r\n");
    TH_CHECK(rc == TU_OK, "EHLO over TLS write: %s", th_code(rc));
    rc = smtp_reply(h, "250", line, sizeof line, all, sizeof all);
    TH_CHECK(rc == TU_OK, "EHLO over TLS: %s \"%s\"", rcs(rc), line);
    TH_CHECK(strstr(all, "STARTTLS") == NULL, "STARTTLS still offered over TLS: %s", all);
    rc = th_write_all(h, "MAIL FROM:<a@localhost>\r\n");
    TH_CHECK(rc == TU_OK, "MAIL write: %s", th_code(rc));
    rc = smtp_reply(h, "250", line, sizeof line, NULL, 0);
    TH_CHECK(rc == TU_OK, "MAIL FROM: %s \"%s\"", rcs(rc), line);
    rc = th_write_all(h, "QUIT\r\n");
    TH_CHECK(rc == TU_OK, "QUIT write: %s", th_code(rc));
    rc = smtp_reply(h, "221", line, sizeof line, NULL, 0);
    TH_CHECK(rc == TU_OK, "QUIT: %s \"%s\"", rcs(rc), line);
    {
        char buf[64];
        n = tu_read(h, buf, sizeof buf);
        TH_CHECK(n == 0, "after 221 the server closes: tu_read returned %ld (%s), want 0",
                 (long)n, n < 0 ? th_code((int32_t)-n) : "data");
    }
cleanup:
    tu_close(h);
}

/* line_server.py: TLS on, then off again with TU_CRYPTO_NONE. The server
 * sends its close_notify and the plaintext line "OK plain again" in one
 * segment, which the library must not swallow. `big_reads` reads the TLS
 * reply with one large tu_read instead of byte by byte. */
static void tls_on_off(int port, int big_reads)
{
    char url[128], line[512];
    tu_error err;
    tu_handle *h;
    int32_t rc;
    intptr_t n;

    snprintf(url, sizeof url, "tcp://localhost:%d", port);
    h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                   (const char *)NULL);
    TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
    if (h == NULL)
        return;
    rc = th_read_line(h, line, sizeof line);
    TH_CHECK(rc == TU_OK && strcmp(line, "OK plain") == 0, "greeting: %s \"%s\"", rcs(rc), line);
    rc = tu_enable_crypto(h, TU_CRYPTO_NONE);
    TH_CHECK(rc == TU_E_STATE, "TU_CRYPTO_NONE while TLS is off: %s, want TU_E_STATE",
             th_code(rc));
    rc = th_write_all(h, "STARTTLS\n");
    rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
    TH_CHECK(rc == TU_OK && strcmp(line, "OK starttls") == 0, "STARTTLS: %s \"%s\"", rcs(rc),
             line);
    rc = tu_enable_crypto(h, TU_CRYPTO_TLSV1_3);
    TH_CHECK(rc == TU_OK, "tu_enable_crypto(TLSV1_3): %s", th_code(rc));
    if (rc != TU_OK) {
        TH_CHECK_LAST(h, TU_OK, NULL);
        goto cleanup;
    }
    rc = th_write_all(h, "ECHO over tls\n");
    rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
    TH_CHECK(rc == TU_OK && strcmp(line, "over tls") == 0, "echo over TLS: %s \"%s\"", rcs(rc),
             line);
    rc = th_write_all(h, "STOPTLS\n");
    TH_CHECK(rc == TU_OK, "STOPTLS write: %s", th_code(rc));
    if (big_reads)
        rc = th_read_until(h, "OK stoptls\n", line, sizeof line);
    else
        rc = th_read_line(h, line, sizeof line);
    TH_CHECK(rc == TU_OK && strncmp(line, "OK stoptls", 10) == 0, "STOPTLS reply: %s \"%s\"",
             rcs(rc), line);
    if (big_reads)
        TH_CHECK(strcmp(line, "OK stoptls\n") == 0,
                 "a TLS read returned bytes from after the close_notify: \"%s\"", line);
    th_sleep(0.1); /* close_notify + plaintext are surely here now */
    rc = tu_enable_crypto(h, TU_CRYPTO_NONE);
    TH_CHECK(rc == TU_OK, "tu_enable_crypto(TU_CRYPTO_NONE): %s", th_code(rc));
    if (rc != TU_OK) {
        TH_CHECK_LAST(h, TU_OK, NULL);
        goto cleanup;
    }
    TH_CHECK(tu_tls_version(h) == NULL, "TLS still reported after TU_CRYPTO_NONE");
    rc = th_read_line(h, line, sizeof line);
    TH_CHECK(rc == TU_OK && strcmp(line, "OK plain again") == 0,
             "the plaintext that followed the close_notify: %s \"%s\"", rcs(rc), line);
    rc = th_write_all(h, "ECHO plain\n");
    rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
    TH_CHECK(rc == TU_OK && strcmp(line, "plain") == 0, "plaintext echo: %s \"%s\"", rcs(rc),
             line);
    rc = th_write_all(h, "QUIT\n");
    rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
    TH_CHECK(rc == TU_OK && strcmp(line, "OK bye") == 0, "QUIT: %s \"%s\"", rcs(rc), line);
    n = tu_read(h, line, sizeof line);
    TH_CHECK(n == 0, "after QUIT tu_read returned %ld, want 0 (plaintext FIN)", (long)n);
cleanup:
    tu_close(h);
}

/* An in-process "SMTP" server that greets each connection at once, so that
 * the greeting races the client's ClientHello as closely as possible. */
struct greeter {
    int lfd;
    int count;
};

static void *greeter_main(void *p)
{
    struct greeter *g = p;
    int i;
    for (i = 0; i < g->count; i++) {
        char buf[512];
        int fd = accept(g->lfd, NULL, NULL);
        if (fd < 0)
            break;
        (void)!write(fd, "220 greeter.localhost ESMTP\r\n", 29);
        /* wait (bounded by the client's timeout) for the client to give up */
        while (read(fd, buf, sizeof buf) > 0) {
        }
        close(fd);
    }
    return NULL;
}

int main(void)
{
    const char *certs = th_env("TU_TEST_CERTS");
    int smtp = th_env_port("TU_SMTP_PORT");
    int smtp6 = th_env_port("TU_SMTP6_PORT");
    int inject = th_env_port("TU_INJECT_PORT");
    int linep = th_env_port("TU_LINE_PORT");
    char url[128];
    char line[1024];
    tu_error err;
    tu_handle *h = NULL;
    int32_t rc;

    th_begin("environment");
    TH_CHECK(certs != NULL, "TU_TEST_CERTS is not set (run tests/c/run.sh)");
    if (!th_end())
        return th_summary();
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);

    if (smtp == 0) {
        th_skip("SMTP STARTTLS", "TU_SMTP_PORT unset");
    } else {
        th_begin("SMTP STARTTLS: EHLO, STARTTLS, upgrade, EHLO, MAIL, QUIT");
        snprintf(url, sizeof url, "tcp://localhost:%d", smtp);
        starttls_dialogue(url, NULL, NULL);
        th_end();

        th_begin("SMTP STARTTLS to 127.0.0.1 verifies the IP SAN");
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", smtp);
        starttls_dialogue(url, NULL, NULL);
        th_end();

        th_begin("SMTP STARTTLS with ssl.peer_name=wrong.example fails verification");
        snprintf(url, sizeof url, "tcp://localhost:%d", smtp);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       "ssl.peer_name", "wrong.example", (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
            TH_CHECK(rc == TU_OK, "greeting: %s", rcs(rc));
            rc = th_write_all(h, "STARTTLS\r\n");
            rc = rc == TU_OK ? smtp_reply(h, "220", line, sizeof line, NULL, 0) : rc;
            TH_CHECK(rc == TU_OK, "STARTTLS: %s \"%s\"", rcs(rc), line);
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_CERTIFICATE, "tu_enable_crypto: %s, want TU_E_CERTIFICATE",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_CERTIFICATE, "name");
        }
        tu_close(h);
        h = NULL;
        th_end();

        th_begin("tls:// to the STARTTLS port: TU_E_PLAINTEXT_PEER quoting the 220");
        snprintf(url, sizeof url, "tls://localhost:%d", smtp);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", (const char *)NULL);
        TH_CHECK(h == NULL, "tls:// to an SMTP port connected");
        if (h == NULL) {
            TH_CHECK_ERR(&err, TU_E_PLAINTEXT_PEER, "220");
            TH_CHECK(th_contains(err.message, "STARTTLS") || th_contains(err.message, "tcp://"),
                     "the message names no fix (STARTTLS / tcp://): \"%s\"", err.message);
        }
        tu_close(h);
        h = NULL;
        th_end();

        /* The greeting may arrive before or after the ClientHello goes out:
         * both orders must give TU_E_PLAINTEXT_PEER (implicit TLS is not a
         * STARTTLS upgrade, so bytes already waiting are no injection). */
        th_begin("tls:// to the STARTTLS port, 20 times: always TU_E_PLAINTEXT_PEER");
        {
            int i, plaintext = 0, other = 0;
            char first_other[600] = "";
            for (i = 0; i < 20; i++) {
                h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", (const char *)NULL);
                if (h == NULL && err.code == TU_E_PLAINTEXT_PEER && strstr(err.message, "220"))
                    plaintext++;
                else if (other++ == 0)
                    snprintf(first_other, sizeof first_other, "%s: %.500s",
                             h ? "connected" : th_code(err.code), h ? "" : err.message);
                tu_close(h);
                h = NULL;
                if (i % 2 == 1)
                    th_sleep(0.01);
            }
            TH_CHECK(other == 0, "%d of 20 attempts were not TU_E_PLAINTEXT_PEER; the first: %s",
                     other, first_other);
        }
        th_end();
    }

    th_begin("tls:// to a server that greets at once, 50 times: always TU_E_PLAINTEXT_PEER");
    {
        struct greeter g;
        pthread_t t;
        int gport = 0, i, other = 0;
        char first_other[600] = "";
        g.count = 50;
        g.lfd = th_listen(AF_INET, &gport);
        TH_CHECK(g.lfd >= 0, "th_listen");
        if (g.lfd >= 0 && pthread_create(&t, NULL, greeter_main, &g) == 0) {
            snprintf(url, sizeof url, "tls://localhost:%d", gport);
            for (i = 0; i < g.count; i++) {
                h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", (const char *)NULL);
                if (!(h == NULL && err.code == TU_E_PLAINTEXT_PEER && strstr(err.message, "220"))
                    && other++ == 0)
                    snprintf(first_other, sizeof first_other, "%s: %.500s",
                             h ? "connected" : th_code(err.code), h ? "" : err.message);
                tu_close(h);
                h = NULL;
            }
            shutdown(g.lfd, SHUT_RDWR);
            pthread_join(t, NULL);
            TH_CHECK(other == 0, "%d of %d attempts were not TU_E_PLAINTEXT_PEER; the first: %s",
                     other, g.count, first_other);
        }
        if (g.lfd >= 0)
            close(g.lfd);
    }
    th_end();

    if (smtp6 == 0) {
        th_skip("SMTP STARTTLS over ::1", "TU_SMTP6_PORT unset");
    } else {
        th_begin("SMTP STARTTLS over [::1] verifies the IPv6 SAN");
        snprintf(url, sizeof url, "tcp://[::1]:%d", smtp6);
        starttls_dialogue(url, NULL, NULL);
        th_end();
    }

    if (inject == 0) {
        th_skip("STARTTLS injection", "TU_INJECT_PORT unset");
    } else {
        th_begin("plaintext queued behind the STARTTLS 220: TU_E_PROTOCOL");
        snprintf(url, sizeof url, "tcp://localhost:%d", inject);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
            TH_CHECK(rc == TU_OK, "greeting: %s", rcs(rc));
            rc = th_write_all(h, "EHLO c-test.localhost\r\n");
            rc = rc == TU_OK ? smtp_reply(h, "250", line, sizeof line, NULL, 0) : rc;
            TH_CHECK(rc == TU_OK, "EHLO: %s", rcs(rc));
            rc = th_write_all(h, "STARTTLS\r\n");
            /* read exactly the 220 line, leaving "250 injected" in the socket */
            rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
            TH_CHECK(rc == TU_OK && strncmp(line, "220", 3) == 0, "STARTTLS reply: %s \"%s\"",
                     rcs(rc), line);
            th_sleep(0.2); /* the queued line is in the same segment; be sure it arrived */
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_PROTOCOL, "tu_enable_crypto: %s, want TU_E_PROTOCOL",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_PROTOCOL, "250 injected");
            TH_CHECK(tu_tls_version(h) == NULL, "TLS reported on after a refused upgrade");
        }
        tu_close(h);
        h = NULL;
        th_end();
    }

    if (linep == 0) {
        th_skip("TLS on and off again", "TU_LINE_PORT unset");
    } else {
        th_begin("STARTTLS, then TU_CRYPTO_NONE keeps the plaintext sent right after close_notify");
        tls_on_off(linep, 0);
        th_end();
        th_begin("the same with large reads: no TLS read returns bytes after the close_notify");
        tls_on_off(linep, 1);
        th_end();
    }

    th_begin("tu_enable_crypto on udp://: TU_E_STATE");
    {
        int port = th_closed_port();
        snprintf(url, sizeof url, "udp://127.0.0.1:%d", port ? port : 9);
        h = tu_connect(url, &err);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_STATE, "tu_enable_crypto: %s, want TU_E_STATE", th_code(rc));
            TH_CHECK_LAST(h, TU_E_STATE, "udp");
        }
        tu_close(h);
        h = NULL;
    }
    th_end();

    return th_summary();
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);

    if (smtp == 0) {
        th_skip("SMTP STARTTLS", "TU_SMTP_PORT unset");
    } else {
        th_begin("SMTP STARTTLS: EHLO, STARTTLS, upgrade, EHLO, MAIL, QUIT");
        snprintf(url, sizeof url, "tcp://localhost:%d", smtp);
        starttls_dialogue(url, NULL, NULL);
        th_end();

        th_begin("SMTP STARTTLS to 127.0.0.1 verifies the IP SAN");
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", smtp);
        starttls_dialogue(url, NULL, NULL);
        th_end();

        th_begin("SMTP STARTTLS with ssl.peer_name=wrong.example fails verification");
        snprintf(url, sizeof url, "tcp://localhost:%d", smtp);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       "ssl.peer_name", "wrong.example", (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
            TH_CHECK(rc == TU_OK, "greeting: %s", rcs(rc));
            rc = th_write_all(h, "STARTTLS\r\n");
            rc = rc == TU_OK ? smtp_reply(h, "220", line, sizeof line, NULL, 0) : rc;
            TH_CHECK(rc == TU_OK, "STARTTLS: %s \"%s\"", rcs(rc), line);
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_CERTIFICATE, "tu_enable_crypto: %s, want TU_E_CERTIFICATE",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_CERTIFICATE, "name");
        }
        tu_close(h);
        h = NULL;
        th_end();

        th_begin("tls:// to the STARTTLS port: TU_E_PLAINTEXT_PEER quoting the 220");
        snprintf(url, sizeof url, "tls://localhost:%d", smtp);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", (const char *)NULL);
        TH_CHECK(h == NULL, "tls:// to an SMTP port connected");
        if (h == NULL) {
            TH_CHECK_ERR(&err, TU_E_PLAINTEXT_PEER, "220");
            TH_CHECK(th_contains(err.message, "STARTTLS") || th_contains(err.message, "tcp://"),
                     "the message names no fix (STARTTLS / tcp://): \"%s\"", err.message);
        }
        tu_close(h);
        h = NULL;
        th_end();

        /* The greeting may arrive before or after the ClientHello goes out:
         * both orders must give TU_E_PLAINTEXT_PEER (implicit TLS is not a
         * STARTTLS upgrade, so bytes already waiting are no injection). */
        th_begin("tls:// to the STARTTLS port, 20 times: always TU_E_PLAINTEXT_PEER");
        {
            int i, plaintext = 0, other = 0;
            char first_other[600] = "";
            for (i = 0; i < 20; i++) {
                h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", (const char *)NULL);
                if (h == NULL && err.code == TU_E_PLAINTEXT_PEER && strstr(err.message, "220"))
                    plaintext++;
                else if (other++ == 0)
                    snprintf(first_other, sizeof first_other, "%s: %.500s",
                             h ? "connected" : th_code(err.code), h ? "" : err.message);
                tu_close(h);
                h = NULL;
                if (i % 2 == 1)
                    th_sleep(0.01);
            }
            TH_CHECK(other == 0, "%d of 20 attempts were not TU_E_PLAINTEXT_PEER; the first: %s",
                     other, first_other);
        }
        th_end();
    }

    if (smtp6 == 0) {
        th_skip("SMTP STARTTLS over ::1", "TU_SMTP6_PORT unset");
    } else {
        th_begin("SMTP STARTTLS over [::1] verifies the IPv6 SAN");
        snprintf(url, sizeof url, "tcp://[::1]:%d", smtp6);
        starttls_dialogue(url, NULL, NULL);
        th_end();
    }

    if (inject == 0) {
        th_skip("STARTTLS injection", "TU_INJECT_PORT unset");
    } else {
        th_begin("plaintext queued behind the STARTTLS 220: TU_E_PROTOCOL");
        snprintf(url, sizeof url, "tcp://localhost:%d", inject);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = smtp_reply(h, "220", line, sizeof line, NULL, 0);
            TH_CHECK(rc == TU_OK, "greeting: %s", rcs(rc));
            rc = th_write_all(h, "EHLO c-test.localhost\r\n");
            rc = rc == TU_OK ? smtp_reply(h, "250", line, sizeof line, NULL, 0) : rc;
            TH_CHECK(rc == TU_OK, "EHLO: %s", rcs(rc));
            rc = th_write_all(h, "STARTTLS\r\n");
            /* read exactly the 220 line, leaving "250 injected" in the socket */
            rc = rc == TU_OK ? th_read_line(h, line, sizeof line) : rc;
            TH_CHECK(rc == TU_OK && strncmp(line, "220", 3) == 0, "STARTTLS reply: %s \"%s\"",
                     rcs(rc), line);
            th_sleep(0.2); /* the queued line is in the same segment; be sure it arrived */
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_PROTOCOL, "tu_enable_crypto: %s, want TU_E_PROTOCOL",
                     th_code(rc));
            TH_CHECK_LAST(h, TU_E_PROTOCOL, "250 injected");
            TH_CHECK(tu_tls_version(h) == NULL, "TLS reported on after a refused upgrade");
        }
        tu_close(h);
        h = NULL;
        th_end();
    }

    th_begin("tu_enable_crypto on udp://: TU_E_STATE");
    {
        int port = th_closed_port();
        snprintf(url, sizeof url, "udp://127.0.0.1:%d", port ? port : 9);
        h = tu_connect(url, &err);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = tu_enable_crypto(h, TU_CRYPTO_ANY);
            TH_CHECK(rc == TU_E_STATE, "tu_enable_crypto: %s, want TU_E_STATE", th_code(rc));
            TH_CHECK_LAST(h, TU_E_STATE, "udp");
        }
        tu_close(h);
        h = NULL;
    }
    th_end();

    th_begin("tls over udp does not exist");
    {
        tu_handle *u = tu_connect("udp://127.0.0.1:9", &err);
        TH_CHECK(u != NULL, "udp connect: %s", th_code(err.code));
        tu_close(u);
    }
    th_end();

    return th_summary();
}
