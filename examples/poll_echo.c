/*
 * poll_echo: drives several transporturl connections from one poll(2) loop.
 *
 *   poll_echo                 # its own echo server on 127.0.0.1, 4 connections
 *   poll_echo URL [URL...]    # one connection to each echo server named
 *                             # (tcp://, tls://, unix://...; TU_CAFILE=ca.pem
 *                             # sets ssl.cafile for TLS)
 *
 * Every connection is switched to non-blocking mode, sends 4 MiB and reads
 * the same bytes back. The rules it shows (see tu_set_nonblocking in
 * transporturl.h):
 *   - read and write until -TU_E_WOULD_BLOCK, and only then poll;
 *   - poll for what tu_wants() says right after that call (a TLS read may
 *     need POLLOUT), not for what you were doing;
 *   - tu_write may take fewer bytes than offered; after -TU_E_WOULD_BLOCK it
 *     took none, so the same bytes are offered again.
 * Exits 0 when every connection got its bytes back, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transporturl.h"

#define MAX_CONNS 16
#define DEFAULT_CONNS 4
#define TOTAL (4 * 1024 * 1024)
#define POLL_MS 5000
#define MAX_ROUNDS 100000

struct conn {
    tu_handle *h;
    const char *url;
    unsigned char *out; /* TOTAL bytes to send */
    size_t sent;
    size_t received;
    short events; /* what to poll for, from tu_wants() */
    unsigned long would_block; /* -TU_E_WOULD_BLOCK results seen */
    int done;
};

/* A peer of the built-in echo server: a plain non-blocking socket. */
struct peer {
    int fd;
    unsigned char buf[16384];
    size_t len; /* bytes read and not yet echoed */
    size_t off;
};

static short poll_events(const tu_handle *h)
{
    int32_t w = tu_wants(h);
    short ev = 0;
    if (w & TU_WANT_READ)
        ev |= POLLIN;
    if (w & TU_WANT_WRITE)
        ev |= POLLOUT;
    return ev;
}

static void report(const struct conn *c, const char *what, intptr_t rc)
{
    tu_error e;
    tu_last_error(c->h, &e);
    fprintf(stderr, "poll_echo: %s: %s failed: %s (%s)\n", c->url, what, tu_code_name((int32_t)-rc), e.message);
}

/* Moves one connection as far as it goes without blocking.
 * Returns 0, or -1 on failure. */
static int step(struct conn *c)
{
    unsigned char in[8192];
    c->events = 0;
    while (c->sent < TOTAL) {
        intptr_t n = tu_write(c->h, c->out + c->sent, TOTAL - c->sent);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n == -TU_E_WOULD_BLOCK) {
            c->events |= poll_events(c->h);
            c->would_block++;
            break;
        } else {
            report(c, "tu_write", n);
            return -1;
        }
    }
    while (c->received < TOTAL) {
        intptr_t n = tu_read(c->h, in, sizeof in);
        if (n > 0) {
            if (c->received + (size_t)n > TOTAL || memcmp(in, c->out + c->received, (size_t)n) != 0) {
                fprintf(stderr, "poll_echo: %s: the echo differs at byte %zu\n", c->url, c->received);
                return -1;
            }
            c->received += (size_t)n;
        } else if (n == -TU_E_WOULD_BLOCK) {
            c->events |= poll_events(c->h);
            c->would_block++;
            break;
        } else if (n == 0) {
            fprintf(stderr, "poll_echo: %s: EOF after %zu of %d bytes\n", c->url, c->received, TOTAL);
            return -1;
        } else {
            report(c, "tu_read", n);
            return -1;
        }
    }
    /* Read until WOULD_BLOCK means nothing decrypted is left inside. */
    if (c->received < TOTAL && tu_pending(c->h) != 0) {
        fprintf(stderr, "poll_echo: %s: bytes pending after WOULD_BLOCK\n", c->url);
        return -1;
    }
    c->done = c->received == TOTAL;
    return 0;
}

static int listen_local(int *port_out)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    *port_out = ntohs(a.sin_port);
    return fd;
}

/* Echo server work for one peer; -1 when it is finished (EOF or error). */
static int serve(struct peer *p)
{
    for (;;) {
        if (p->len > p->off) {
            ssize_t n = send(p->fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            p->off += (size_t)n;
            continue;
        }
        p->len = p->off = 0;
        ssize_t n = recv(p->fd, p->buf, sizeof p->buf, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        p->len = (size_t)n;
    }
}

int main(int argc, char **argv)
{
    struct conn conns[MAX_CONNS];
    struct peer peers[MAX_CONNS];
    char urls[MAX_CONNS][64];
    struct pollfd fds[1 + 2 * MAX_CONNS];
    tu_options *opts = NULL;
    int listener = -1;
    int nconns = 0;
    int npeers = 0;
    int status = 1;
    int rounds;
    memset(conns, 0, sizeof conns);
    memset(peers, 0, sizeof peers);

    opts = tu_options_new();
    if (opts == NULL) {
        fprintf(stderr, "poll_echo: out of memory\n");
        goto cleanup;
    }
    if (getenv("TU_CAFILE") != NULL) {
        tu_error e;
        if (tu_options_set(opts, "ssl.cafile", getenv("TU_CAFILE"), &e) != TU_OK) {
            fprintf(stderr, "poll_echo: %s\n", e.message);
            goto cleanup;
        }
    }
    if (argc > 1) {
        nconns = argc - 1 > MAX_CONNS ? MAX_CONNS : argc - 1;
        for (int i = 0; i < nconns; i++)
            conns[i].url = argv[i + 1];
    } else {
        int port = 0;
        listener = listen_local(&port);
        if (listener < 0) {
            perror("poll_echo: echo server");
            goto cleanup;
        }
        nconns = DEFAULT_CONNS;
        for (int i = 0; i < nconns; i++) {
            snprintf(urls[i], sizeof urls[i], "tcp://127.0.0.1:%d", port);
            conns[i].url = urls[i];
        }
    }

    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        tu_error e;
        c->out = malloc(TOTAL);
        if (c->out == NULL) {
            fprintf(stderr, "poll_echo: out of memory\n");
            goto cleanup;
        }
        for (size_t k = 0; k < TOTAL; k++)
            c->out[k] = (unsigned char)((k * 7 + (size_t)i) % 251);
        /* tu_connect blocks (bounded by the timeout option); the listener
         * queues the connection until the loop below accepts it. */
        c->h = tu_connect_opts(c->url, opts, &e);
        if (c->h == NULL) {
            fprintf(stderr, "poll_echo: %s: %s (%s)\n", c->url, tu_code_name(e.code), e.message);
            goto cleanup;
        }
        if (tu_set_nonblocking(c->h, 1) != TU_OK) {
            report(c, "tu_set_nonblocking", -TU_E_INVALID_ARGUMENT);
            goto cleanup;
        }
    }

    for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
        int nfds = 0;
        int all_done = 1;
        for (int i = 0; i < nconns; i++) {
            if (!conns[i].done && step(&conns[i]) != 0)
                goto cleanup;
            all_done &= conns[i].done;
        }
        if (all_done)
            break;
        if (listener >= 0) {
            fds[nfds].fd = listener;
            fds[nfds].events = POLLIN;
            nfds++;
        }
        for (int i = 0; i < npeers; i++) {
            fds[nfds].fd = peers[i].fd;
            fds[nfds].events = peers[i].len > peers[i].off ? POLLOUT : POLLIN;
            nfds++;
        }
        for (int i = 0; i < nconns; i++) {
            fds[nfds].fd = conns[i].done ? -1 : tu_fileno(conns[i].h);
            fds[nfds].events = conns[i].events;
            nfds++;
        }
        int ready = poll(fds, (nfds_t)nfds, POLL_MS);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            fprintf(stderr, "poll_echo: no progress for %d ms\n", POLL_MS);
            goto cleanup;
        }
        if (listener >= 0 && (fds[0].revents & POLLIN) && npeers < MAX_CONNS) {
            int fd = accept(listener, NULL, NULL);
            if (fd >= 0) {
                if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
                    close(fd);
                } else {
                    peers[npeers].fd = fd;
                    peers[npeers].len = peers[npeers].off = 0;
                    npeers++;
                }
            }
        }
        for (int i = 0; i < npeers; i++) {
            if (peers[i].fd >= 0 && serve(&peers[i]) != 0) {
                close(peers[i].fd);
                peers[i] = peers[npeers - 1];
                npeers--;
                i--;
            }
        }
    }
    if (rounds == MAX_ROUNDS) {
        fprintf(stderr, "poll_echo: gave up after %d rounds\n", MAX_ROUNDS);
        goto cleanup;
    }
    for (int i = 0; i < nconns; i++)
        printf("%s: %d bytes echoed (%lu times TU_E_WOULD_BLOCK)\n", conns[i].url, TOTAL, conns[i].would_block);
    printf("poll_echo: %d connections, %d poll rounds, ok\n", nconns, rounds);
    status = 0;

cleanup:
    for (int i = 0; i < nconns; i++) {
        tu_close(conns[i].h);
        free(conns[i].out);
    }
    for (int i = 0; i < npeers; i++)
        close(peers[i].fd);
    if (listener >= 0)
        close(listener);
    tu_options_free(opts);
    return status;
}
