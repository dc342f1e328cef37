/*
 * Every path through the C API, many times over, so that a leak on any of
 * them adds up: run by tests/c/run.sh under AddressSanitizer (LeakSanitizer)
 * and, with TU_SANITIZE=valgrind, under `valgrind --leak-check=full`, where
 * any definite or indirect leak fails the run (issue 8).
 *
 * Paths: option sets (accepted and refused values), URL parsing (valid,
 * malformed, non-UTF-8, 1 MiB), plain TCP (connect, write, read, close;
 * refused; timeout), UDP, TLS (handshake, echo, close_notify; certificate
 * failure; a silent peer's handshake timeout), STARTTLS on a plain socket that
 * is not TLS, and a write to a reset peer. Servers: its own loopback
 * listeners, plus TU_ECHO_PORT / TU_SELFSIGNED_PORT / TU_TEST_CERTS from
 * run.sh when set (those cases are skipped otherwise).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* TU_LEAK_ROUNDS scales the loops (valgrind is ~30x slower than native). */
static int rounds(int n)
{
    const char *s = th_env("TU_LEAK_ROUNDS");
    int k = s ? atoi(s) : 0;
    return k > 0 ? k : n;
}

static void options_paths(void)
{
    static const char *const bad[][2] = {
        {"timeout", "soon"},       {"timeout", "0"},        {"no.such.key", "1"},
        {"ssl.cafile", "/nonexistent/ca.pem"}, {"ssl.verify_peer", "maybe"},
        {"ssl.peer_name", ""},     {"socket.bindto", "1.2.3.4"}, {"timeout", "\xff"},
    };
    int i, j, n = rounds(200);
    for (i = 0; i < n; i++) {
        tu_options *o = tu_options_new();
        tu_error err;
        TH_CHECK(o != NULL, "tu_options_new");
        if (o == NULL)
            return;
        TH_CHECK(tu_options_set(o, "timeout", "2.5", &err) == TU_OK, "timeout: %s", err.message);
        TH_CHECK(tu_options_set(o, "ssl.peer_name", "example.com", &err) == TU_OK, "peer_name");
        for (j = 0; j < (int)(sizeof bad / sizeof bad[0]); j++)
            TH_CHECK(tu_options_set(o, bad[j][0], bad[j][1], &err) != TU_OK, "%s=%s accepted",
                     bad[j][0], bad[j][1]);
        tu_options_free(o);
    }
}

static void parse_paths(void)
{
    static const char *const urls[] = {
        "tcp://127.0.0.1:80", "tls://[fe80::1%25lo]:443", "unix:///run/x.sock",
        "www.example.com:8080", "tcp://127.0.0.1:65536", "gopher://h:70", "sslv3://h:1",
        "tcp://h\xff:80", "tcp://[::1", "tcp://b\xc3\xbcrger.example:80", "",
    };
    tu_url_parts parts;
    tu_error err;
    char *huge;
    size_t big = 1 << 20;
    int i, j, n = rounds(200);
    for (i = 0; i < n; i++)
        for (j = 0; j < (int)(sizeof urls / sizeof urls[0]); j++)
            (void)tu_parse_url(urls[j], &parts, &err);
    huge = malloc(big + 16);
    TH_CHECK(huge != NULL, "malloc");
    if (huge == NULL)
        return;
    memcpy(huge, "tcp://", 6);
    memset(huge + 6, 'a', big);
    memcpy(huge + 6 + big, ":80", 4);
    TH_CHECK(tu_parse_url(huge, &parts, &err) == TU_E_URL, "1 MiB host: %s", th_code(err.code));
    TH_CHECK(tu_connect(huge, &err) == NULL && err.code == TU_E_URL, "1 MiB connect");
    free(huge);
}

static void tcp_paths(void)
{
    int lfd, port = 0, i, n = rounds(50), closed = th_closed_port();
    char url[64], buf[16];
    tu_error err;
    tu_handle *h;

    lfd = th_listen(AF_INET, &port);
    TH_CHECK(lfd >= 0, "listen");
    if (lfd < 0)
        return;
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    for (i = 0; i < n; i++) {
        int cfd;
        h = th_connect(url, &err, "timeout", "5", "read_timeout", "2", (const char *)NULL);
        TH_CHECK(h != NULL, "connect: %s", err.message);
        if (h == NULL)
            break;
        cfd = accept(lfd, NULL, NULL);
        TH_CHECK(tu_write(h, "ping", 4) == 4, "write");
        if (cfd >= 0) {
            TH_CHECK(read(cfd, buf, 4) == 4, "peer read");
            TH_CHECK(write(cfd, "pong", 4) == 4, "peer write");
            if (i % 2 == 0) {
                /* a reset peer: writes fail with TU_E_IO, nothing leaks */
                struct linger lg = {1, 0};
                setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(cfd);
        }
        TH_CHECK(tu_read(h, buf, sizeof buf) == 4, "read");
        if (i % 2 == 0) {
            intptr_t r = 0;
            int k;
            th_sleep(0.01);
            for (k = 0; k < 20 && r >= 0; k++)
                r = tu_write(h, buf, sizeof buf);
            TH_CHECK(r == -TU_E_IO, "write to a reset peer: %ld", (long)r);
        }
        tu_close(h);
    }
    /* a read that times out, then close */
    h = th_connect(url, &err, "read_timeout", "0.05", (const char *)NULL);
    if (h != NULL) {
        TH_CHECK(tu_read(h, buf, sizeof buf) == -TU_E_TIMEOUT, "read timeout");
        tu_close(h);
    }
    close(lfd);
    /* refused */
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", closed);
    for (i = 0; closed != 0 && i < n; i++) {
        TH_CHECK(tu_connect(url, &err) == NULL && err.code == TU_E_REFUSED, "refused: %s",
                 th_code(err.code));
    }
}

static void udp_paths(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), i, n = rounds(50);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char url[64], buf[64];
    tu_error err;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0
        || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        TH_CHECK(0, "udp socket");
        if (fd >= 0)
            close(fd);
        return;
    }
    snprintf(url, sizeof url, "udp://127.0.0.1:%d", ntohs(a.sin_port));
    for (i = 0; i < n; i++) {
        tu_handle *h = tu_connect(url, &err);
        TH_CHECK(h != NULL, "udp connect: %s", err.message);
        if (h == NULL)
            break;
        TH_CHECK(tu_write(h, "datagram", 8) == 8, "udp write");
        TH_CHECK(recv(fd, buf, sizeof buf, 0) == 8, "udp peer recv");
        tu_close(h);
    }
    close(fd);
}

static void tls_paths(void)
{
    const char *certs = th_env("TU_TEST_CERTS");
    int echo = th_env_port("TU_ECHO_PORT"), self = th_env_port("TU_SELFSIGNED_PORT");
    int i, n = rounds(20), lfd, port = 0;
    char ca[1024], url[128], buf[64];
    tu_error err;
    tu_handle *h;

    /* a silent peer: the handshake times out */
    lfd = th_listen(AF_INET, &port);
    if (lfd >= 0) {
        snprintf(url, sizeof url, "tls://127.0.0.1:%d", port);
        for (i = 0; i < 3; i++) {
            TH_CHECK(th_connect(url, &err, "timeout", "0.2", (const char *)NULL) == NULL
                         && err.code == TU_E_TIMEOUT,
                     "silent TLS peer: %s", th_code(err.code));
        }
        /* STARTTLS against a plain peer that answers with junk */
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
        h = th_connect(url, &err, "timeout", "2", (const char *)NULL);
        if (h != NULL) {
            int cfd = accept(lfd, NULL, NULL);
            if (cfd >= 0) {
                TH_CHECK(write(cfd, "220 junk\r\n", 10) == 10, "peer write");
                th_sleep(0.05);
            }
            TH_CHECK(tu_enable_crypto(h, TU_CRYPTO_ANY) != TU_OK, "STARTTLS with junk waiting");
            tu_close(h);
            if (cfd >= 0)
                close(cfd);
        }
        close(lfd);
    }
    if (certs == NULL || echo == 0) {
        th_skip("TLS echo and certificate paths", "TU_TEST_CERTS / TU_ECHO_PORT unset");
        return;
    }
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    snprintf(url, sizeof url, "tls://localhost:%d", echo);
    for (i = 0; i < n; i++) {
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "20", "read_timeout", "20",
                       (const char *)NULL);
        TH_CHECK(h != NULL, "tls connect: %s", err.message);
        if (h == NULL)
            break;
        TH_CHECK(th_write_all(h, "leak check\n") == TU_OK, "tls write");
        TH_CHECK(th_read_until(h, "leak check\n", buf, sizeof buf) == TU_OK, "tls echo");
        tu_close(h);
    }
    if (self != 0) {
        snprintf(url, sizeof url, "tls://localhost:%d", self);
        for (i = 0; i < 3; i++) {
            TH_CHECK(th_connect(url, &err, "ssl.cafile", ca, "timeout", "20", (const char *)NULL)
                             == NULL
                         && err.code == TU_E_CERTIFICATE,
                     "self-signed: %s", th_code(err.code));
        }
    }
}

int main(void)
{
    th_begin("options: accepted and refused values, new/free");
    options_paths();
    th_end();
    th_begin("tu_parse_url: valid, malformed, non-UTF-8, 1 MiB");
    parse_paths();
    th_end();
    th_begin("tcp://: connect, echo, reset peer, timeout, refused");
    tcp_paths();
    th_end();
    th_begin("udp://: connect, datagram, close");
    udp_paths();
    th_end();
    th_begin("tls://: silent peer, STARTTLS on junk, echo with close_notify, bad certificate");
    tls_paths();
    th_end();
    return th_summary();
}
