/*
 * SIGPIPE: with SIGPIPE at its default action (terminate), writing to a peer
 * that has gone away must give -TU_E_IO, never kill the process.
 * The plain TCP cases need no server; the TLS case uses TU_ECHO_PORT
 * (tests/support/tls_server.py) and TU_TEST_CERTS when set.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define MAX_WRITES 200

/* Write until the library reports the dead peer. Returns the final result. */
static intptr_t write_until_error(tu_handle *h, int *writes_out)
{
    char chunk[4096];
    intptr_t n = 0;
    int i;
    memset(chunk, 'x', sizeof chunk);
    for (i = 0; i < MAX_WRITES; i++) {
        n = tu_write(h, chunk, sizeof chunk);
        if (n < 0)
            break;
        th_sleep(0.01);
    }
    *writes_out = i;
    return n;
}

/* A peer that accepts and then closes: with reset = 1 it sends an RST
 * (SO_LINGER 0), otherwise a FIN. */
static void dead_tcp_peer(int reset)
{
    int lfd, cfd = -1, port = 0, writes = 0;
    char url[64];
    tu_error err;
    tu_handle *h = NULL;
    intptr_t n;

    lfd = th_listen(AF_INET, &port);
    TH_CHECK(lfd >= 0, "th_listen");
    if (lfd < 0)
        return;
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    h = th_connect(url, &err, "timeout", "5", "write_timeout", "5", (const char *)NULL);
    TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
    if (h == NULL)
        goto cleanup;
    cfd = accept(lfd, NULL, NULL);
    TH_CHECK(cfd >= 0, "accept");
    if (cfd < 0)
        goto cleanup;
    if (reset) {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = 0;
        setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(cfd);
    cfd = -1;
    th_sleep(0.1);
    n = write_until_error(h, &writes);
    TH_CHECK(n == -TU_E_IO, "after %d writes tu_write returned %ld (%s), want -TU_E_IO", writes,
             (long)n, n < 0 ? th_code((int32_t)-n) : "bytes");
    if (n == -TU_E_IO)
        TH_CHECK_LAST(h, TU_E_IO, "os error");
cleanup:
    tu_close(h);
    if (cfd >= 0)
        close(cfd);
    close(lfd);
}

int main(void)
{
    const char *certs = th_env("TU_TEST_CERTS");
    int echo = th_env_port("TU_ECHO_PORT");
    sigset_t set;

    /* SIGPIPE at its default action, and not blocked */
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    th_begin("tcp://: write to a peer that reset gives -TU_E_IO, not SIGPIPE");
    dead_tcp_peer(1);
    th_end();

    th_begin("tcp://: write to a peer that closed gives -TU_E_IO, not SIGPIPE");
    dead_tcp_peer(0);
    th_end();

    if (echo == 0 || certs == NULL) {
        th_skip("tls://: write to a closed peer", "TU_ECHO_PORT or TU_TEST_CERTS unset");
    } else {
        char url[64], ca[1024], buf[64];
        tu_error err;
        tu_handle *h;
        int32_t rc;
        int writes = 0;
        intptr_t n;

        th_begin("tls://: TLS records to a closed peer give -TU_E_IO, not SIGPIPE");
        snprintf(ca, sizeof ca, "%s/ca.pem", certs);
        snprintf(url, sizeof url, "tls://localhost:%d", echo);
        h = th_connect(url, &err, "ssl.cafile", ca, "timeout", "5", "read_timeout", "5",
                       "write_timeout", "5", (const char *)NULL);
        TH_CHECK(h != NULL, "%s: %s %.*s", url, th_code(err.code), 512, err.message);
        if (h != NULL) {
            rc = th_write_all(h, "QUIT\n"); /* the server echoes it, then closes */
            TH_CHECK(rc == TU_OK, "write: %s", th_code(rc));
            rc = th_read_until(h, "QUIT\n", buf, sizeof buf);
            TH_CHECK(rc == TU_OK, "echo: %s", rc < 0 ? "EOF" : th_code(rc));
            th_sleep(0.5); /* the server closes its socket */
            n = write_until_error(h, &writes);
            TH_CHECK(n == -TU_E_IO, "after %d writes tu_write returned %ld (%s), want -TU_E_IO",
                     writes, (long)n, n < 0 ? th_code((int32_t)-n) : "bytes");
        }
        tu_close(h);
        th_end();
    }

    th_begin("still alive: SIGPIPE never fired");
    th_end();
    return th_summary();
}
