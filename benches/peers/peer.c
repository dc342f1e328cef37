/*
 * The C peers of `make bench`, one source compiled three ways:
 *   -DBACKEND_TU       transporturl through include/transporturl.h (the headline row)
 *   -DBACKEND_OPENSSL  OpenSSL 3 (libssl), TLS 1.3 + TLS_AES_128_GCM_SHA256 + X25519 pinned
 *   -DBACKEND_PLAIN    plain TCP/UDP sockets (the floor)
 *
 *   peer WORKLOAD port=P ca=FILE n=N bytes=B
 *
 * Workloads (the same in every peer; see benches/README.md):
 *   version | send | recv | pingpong | hs | resume | idle | ffi | starttls | udp
 * Prints one JSON line on stdout; exits non-zero with a message on stderr on failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16384

static const char *arg_ca = "";
static int arg_port;
static long arg_n;
static long long arg_bytes;

static void die(const char *what) {
    fprintf(stderr, "peer: %s\n", what);
    exit(2);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    size_t fl = strlen(field);
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0) {
            v = atof(line + fl);
            break;
        }
    }
    fclose(f);
    return v;
}

__attribute__((unused)) static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    if (fd < 0) die("socket");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

__attribute__((unused)) static int udp_connect(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    if (fd < 0) die("socket");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect udp");
    return fd;
}

/* ------------------------------------------------------------------------ */
#if defined(BACKEND_TU)
#include "transporturl.h"

typedef tu_handle conn;
static tu_options *opts;

static void setup(void) {
    tu_error err;
    opts = tu_options_new();
    if (tu_options_set(opts, "ssl.cafile", arg_ca, &err) != TU_OK) die(err.message);
    if (tu_options_set(opts, "ssl.peer_name", "localhost", &err) != TU_OK) die(err.message);
    /* Pinned where the library can; the server pins the suite and the group anyway. */
    tu_options_set(opts, "ssl.ciphers", "TLS_AES_128_GCM_SHA256", NULL);
    tu_options_set(opts, "socket.tcp_nodelay", "true", NULL);
}
static const char *version(void) {
    static char v[128];
    snprintf(v, sizeof v, "transporturl %s (C ABI, static library)", tu_version());
    return v;
}
static conn *c_connect(void) {
    char url[64];
    tu_error err;
    snprintf(url, sizeof url, "tlsv1.3://127.0.0.1:%d", arg_port);
    conn *h = tu_connect_opts(url, opts, &err);
    if (!h) die(err.message);
    return h;
}
static inline intptr_t c_read(conn *h, void *b, size_t n) {
    intptr_t r = tu_read(h, b, n);
    if (r < 0) {
        tu_error err;
        tu_last_error(h, &err);
        die(err.message);
    }
    return r;
}
static inline void c_write_all(conn *h, const void *b, size_t n) {
    if (tu_write(h, b, n) != (intptr_t)n) {
        tu_error err;
        tu_last_error(h, &err);
        die(err.message);
    }
}
static void c_close(conn *h) { tu_close(h); }
static int c_resumed(conn *h) { (void)h; return -1; }
#define HAVE_STARTTLS 1
#define HAVE_FFI 1
#define HAVE_UDP 1
static conn *c_connect_plain_starttls(void) {
    char url[64];
    tu_error err;
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", arg_port);
    conn *h = tu_connect_opts(url, opts, &err);
    if (!h) die(err.message);
    return h;
}
static void c_enable_tls(conn *h) {
    if (tu_enable_crypto(h, TU_CRYPTO_TLSV1_3) != TU_OK) {
        tu_error err;
        tu_last_error(h, &err);
        die(err.message);
    }
}
static void ffi(void) {
    char url[64];
    tu_error err;
    unsigned char msg[64];
    memset(msg, 'a', sizeof msg);
    snprintf(url, sizeof url, "udp://127.0.0.1:%d", arg_port);
    tu_handle *h = tu_connect(url, &err);
    if (!h) die(err.message);
    for (int i = 0; i < 1000; i++) tu_write(h, msg, sizeof msg);
    double t0 = now(), c0 = cpu_seconds();
    for (long i = 0; i < arg_n; i++) {
        if (tu_write(h, msg, sizeof msg) != 64) die("write");
    }
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    /* CPU time per call: the loop never sleeps (UDP to a sink), and CPU time is what
       other tenants of a shared machine disturb least. Wall time is kept too. */
    printf("{\"value\":%.3f,\"unit\":\"ns/call\",\"wall_ns\":%.3f,\"wall_s\":%.6f,\"cpu_s\":%.6f}\n",
           cpu / arg_n * 1e9, wall / arg_n * 1e9, wall, cpu);
    tu_close(h);
}
static conn *udp_open(void) {
    char url[64];
    tu_error err;
    snprintf(url, sizeof url, "udp://127.0.0.1:%d", arg_port);
    conn *h = tu_connect(url, &err);
    if (!h) die(err.message);
    return h;
}

/* ------------------------------------------------------------------------ */
#elif defined(BACKEND_OPENSSL)
#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct {
    SSL *ssl;
    int fd;
} conn;
static SSL_CTX *ctx;
static SSL_SESSION *session; /* W5: the latest ticket */
static int want_resume;

static void ossl_die(const char *what) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    fprintf(stderr, "peer: %s: %s\n", what, buf);
    exit(2);
}
static void setup(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) ossl_die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")) ossl_die("ciphersuites");
    if (!SSL_CTX_set1_groups_list(ctx, "X25519")) ossl_die("groups");
    if (!SSL_CTX_load_verify_locations(ctx, arg_ca, NULL)) ossl_die("ca");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}
static const char *version(void) { return OpenSSL_version(OPENSSL_VERSION); }
static conn *wrap(int fd) {
    conn *c = malloc(sizeof *c);
    c->fd = fd;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    if (want_resume && session) SSL_set_session(c->ssl, session);
    if (SSL_connect(c->ssl) != 1) ossl_die("SSL_connect");
    return c;
}
static conn *c_connect(void) { return wrap(tcp_connect(arg_port)); }
static inline intptr_t c_read(conn *c, void *b, size_t n) {
    int r = SSL_read(c->ssl, b, (int)n);
    if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        ossl_die("SSL_read");
    }
    return r;
}
static inline void c_write_all(conn *c, const void *b, size_t n) {
    if (SSL_write(c->ssl, b, (int)n) != (int)n) ossl_die("SSL_write");
}
static void c_close(conn *c) {
    if (want_resume) {
        SSL_SESSION *s = SSL_get1_session(c->ssl);
        if (s) {
            if (session) SSL_SESSION_free(session);
            session = s;
        }
    }
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}
static int c_resumed(conn *c) { return SSL_session_reused(c->ssl); }

/* ------------------------------------------------------------------------ */
#elif defined(BACKEND_PLAIN)
typedef struct {
    int fd;
} conn;
static void setup(void) {}
static const char *version(void) { return "Linux TCP/UDP sockets (C, no TLS)"; }
static conn *c_connect(void) {
    conn *c = malloc(sizeof *c);
    c->fd = tcp_connect(arg_port);
    return c;
}
static inline intptr_t c_read(conn *c, void *b, size_t n) {
    ssize_t r;
    do r = recv(c->fd, b, n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) die("recv");
    return r;
}
static inline void c_write_all(conn *c, const void *b, size_t n) {
    const char *p = b;
    while (n > 0) {
        ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += r;
        n -= (size_t)r;
    }
}
static void c_close(conn *c) {
    close(c->fd);
    free(c);
}
static int c_resumed(conn *c) { (void)c; return -1; }
#define HAVE_UDP 1
static conn *udp_open(void) {
    conn *c = malloc(sizeof *c);
    c->fd = udp_connect(arg_port);
    return c;
}
#else
#error "define BACKEND_TU, BACKEND_OPENSSL or BACKEND_PLAIN"
#endif

/* ------------------------------------------------------------------------ */

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bulk_report(double t0, double c0) {
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    printf("{\"value\":%.3f,\"unit\":\"MB/s\",\"wall_s\":%.6f,\"cpu_s\":%.6f,\"cpu_per\":%.6f,\"cpu_unit\":\"s/GiB\"}\n",
           (double)arg_bytes / wall / 1e6, wall, cpu, cpu / ((double)arg_bytes / (1024.0 * 1024 * 1024)));
}

static void w_send(void) {
    static unsigned char buf[CHUNK];
    memset(buf, 0x5a, sizeof buf);
    conn *c = c_connect();
    double t0 = now(), c0 = cpu_seconds();
    long long left = arg_bytes;
    while (left > 0) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        c_write_all(c, buf, n);
        left -= (long long)n;
    }
    unsigned char ack;
    if (c_read(c, &ack, 1) != 1) die("no ack");
    c_close(c);
    bulk_report(t0, c0);
}

static void w_recv(void) {
    static unsigned char buf[CHUNK];
    conn *c = c_connect();
    double t0 = now(), c0 = cpu_seconds();
    long long got = 0;
    c_write_all(c, "g", 1);
    for (;;) {
        intptr_t n = c_read(c, buf, sizeof buf);
        if (n == 0) break;
        got += n;
    }
    c_close(c);
    if (got != arg_bytes) die("short bulk receive");
    bulk_report(t0, c0);
}

static void pingpong(conn *c) {
    unsigned char msg[64], buf[64];
    long warm = arg_n / 50 < 10 ? 10 : arg_n / 50;
    double *rtt = malloc(sizeof(double) * (size_t)arg_n), t0 = now(), c0 = cpu_seconds();
    memset(msg, 'a', sizeof msg);
    for (long i = 0; i < warm + arg_n; i++) {
        if (i == warm) {
            t0 = now();
            c0 = cpu_seconds();
        }
        double s = now();
        c_write_all(c, msg, sizeof msg);
        size_t got = 0;
        while (got < sizeof buf) {
            intptr_t k = c_read(c, buf + got, sizeof buf - got);
            if (k <= 0) die("EOF in ping-pong");
            got += (size_t)k;
        }
        if (i >= warm) rtt[i - warm] = (now() - s) * 1e6;
    }
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    qsort(rtt, (size_t)arg_n, sizeof(double), cmp);
    printf("{\"value\":%.4f,\"unit\":\"us\",\"wall_s\":%.6f,\"cpu_s\":%.6f,\"cpu_per\":%.4f,\"cpu_unit\":\"us/RTT\"}\n",
           rtt[arg_n / 2], wall, cpu, cpu / arg_n * 1e6);
    free(rtt);
}

static void hs_report(double t0, double c0, const char *unit, long resumed) {
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    printf("{\"value\":%.3f,\"unit\":\"%s\",\"wall_s\":%.6f,\"cpu_s\":%.6f,\"cpu_per\":%.3f,\"cpu_unit\":\"us/hs\"",
           arg_n / wall, unit, wall, cpu, cpu / arg_n * 1e6);
    if (resumed >= 0) printf(",\"client_resumed\":%ld", resumed);
    printf("}\n");
}

static void w_hs(int resume) {
    unsigned char b;
    long resumed = 0;
    int known = 0;
#if defined(BACKEND_OPENSSL)
    want_resume = resume;
#endif
    if (resume) {
        conn *c = c_connect();
        c_read(c, &b, 1);
        c_close(c);
    }
    double t0 = now(), c0 = cpu_seconds();
    for (long i = 0; i < arg_n; i++) {
        conn *c = c_connect();
        if (c_read(c, &b, 1) != 1) die("no byte");
        int r = c_resumed(c);
        if (r >= 0) {
            known = 1;
            resumed += r;
        }
        c_close(c);
    }
    hs_report(t0, c0, "hs/s", known ? resumed : -1);
}

static void w_idle(void) {
    unsigned char b;
    conn *c = c_connect();
    c_read(c, &b, 1);
    c_close(c);
    conn **held = malloc(sizeof(conn *) * (size_t)arg_n);
    double before = status_kib("VmRSS:");
    for (long i = 0; i < arg_n; i++) {
        held[i] = c_connect();
        c_read(held[i], &b, 1);
    }
    double after = status_kib("VmRSS:"), peak = status_kib("VmHWM:");
    printf("{\"value\":%.3f,\"unit\":\"KiB/conn\",\"rss_before_kib\":%.0f,\"rss_after_kib\":%.0f,\"peak_kib\":%.0f}\n",
           (after - before) / arg_n, before, after, peak);
    for (long i = 0; i < arg_n; i++) c_close(held[i]);
    free(held);
}

#ifdef HAVE_STARTTLS
/* One reply line, read as a client reads one (the server sends each line in one write). */
static void read_line(conn *c) {
    char b[512];
    size_t got = 0;
    while (got < sizeof b) {
        intptr_t k = c_read(c, b + got, sizeof b - got);
        if (k <= 0) die("greeting");
        got += (size_t)k;
        if (b[got - 1] == '\n') return;
    }
    die("greeting too long");
}
static void w_starttls(void) {
    unsigned char b;
    double t0 = now(), c0 = cpu_seconds();
    for (long i = 0; i < arg_n; i++) {
        conn *c = c_connect_plain_starttls();
        read_line(c);
        c_write_all(c, "STARTTLS\r\n", 10);
        read_line(c);
        c_enable_tls(c);
        if (c_read(c, &b, 1) != 1) die("no byte");
        c_close(c);
    }
    hs_report(t0, c0, "upgrades/s", -1);
}
#endif

int main(int argc, char **argv) {
    if (argc < 2) die("usage: peer WORKLOAD port=P ca=FILE n=N bytes=B");
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "port=", 5) == 0) arg_port = atoi(argv[i] + 5);
        else if (strncmp(argv[i], "ca=", 3) == 0) arg_ca = argv[i] + 3;
        else if (strncmp(argv[i], "n=", 2) == 0) arg_n = atol(argv[i] + 2);
        else if (strncmp(argv[i], "bytes=", 6) == 0) arg_bytes = atoll(argv[i] + 6);
    }
    const char *w = argv[1];
    if (strcmp(w, "version") == 0) {
        printf("{\"version\":\"%s\"}\n", version());
        return 0;
    }
#ifdef HAVE_FFI
    if (strcmp(w, "ffi") == 0) {
        ffi();
        return 0;
    }
#endif
#ifdef HAVE_UDP
    if (strcmp(w, "udp") == 0) {
        conn *c = udp_open();
        pingpong(c);
        c_close(c);
        return 0;
    }
#endif
    setup();
    if (strcmp(w, "send") == 0) w_send();
    else if (strcmp(w, "recv") == 0) w_recv();
    else if (strcmp(w, "pingpong") == 0) {
        conn *c = c_connect();
        pingpong(c);
        c_close(c);
    } else if (strcmp(w, "hs") == 0) w_hs(0);
    else if (strcmp(w, "resume") == 0) w_hs(1);
    else if (strcmp(w, "idle") == 0) w_idle();
#ifdef HAVE_STARTTLS
    else if (strcmp(w, "starttls") == 0) w_starttls();
#endif
    else {
        fprintf(stderr, "peer: workload %s not supported by this peer\n", w);
        return 3;
    }
    return 0;
}
