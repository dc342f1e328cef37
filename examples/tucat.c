/*
 * tucat — a small socat / `openssl s_client` built only on transporturl.h.
 *
 *   tucat [-o key=value]... [--starttls smtp] [-N] [-q] URL
 *
 * Connects to URL (tcp://, udp://, tls://, ssl://, tlsv1.2://, tlsv1.3://,
 * unix://, udg://), then copies stdin to the connection and the connection to
 * stdout at the same time: a thread reads the connection while the main thread
 * writes what stdin gives (full duplex on one handle, which the library allows
 * for one reader and one writer).
 *
 * When stdin ends, tucat keeps copying the connection to stdout until the
 * peer closes it (bounded by read_timeout); when the peer closes first, tucat
 * stops reading stdin. It exits 0 on an orderly end of the connection (for
 * udp:// and udg://, which have no end, read_timeout passing after stdin
 * ended), 1 on any failure (reported as "tucat: TU_E_NAME: message" on
 * stderr), 2 on a usage error (a bad -o option included). With -N, the end
 * of stdin is passed on: tu_shutdown(TU_SHUT_WR) (TLS: close_notify, then
 * FIN), as `nc -N` does, for peers that answer only once their input ends.
 *
 * --starttls smtp: read the 220 greeting, send EHLO, read the 250 reply, send
 * STARTTLS, expect 220, then upgrade with tu_enable_crypto(). The replies are
 * read one byte at a time so that nothing past the server's last line is ever
 * consumed (the library, too, reads no plaintext ahead). What follows the
 * upgrade (SMTP wants a second EHLO) comes from stdin.
 *
 * Build:
 *   cc -Wall -Wextra -Werror -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude \
 *      examples/tucat.c target/release/libtransporturl.a -lpthread -ldl -lm -o tucat
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "transporturl.h"

#define EXIT_USAGE 2
#define SMTP_MAX_LINE 1024  /* RFC 5321: 512 for a reply line; be generous */
#define SMTP_MAX_LINES 100  /* bound on the lines of one reply */

static const char *progname = "tucat";
static int quiet = 0;
static int half_close = 0;

/* State shared between the main thread and the reader thread. */
struct pump {
    tu_handle *h;
    pthread_mutex_t lock;
    int done;            /* the reader has finished (under lock) */
    intptr_t result;     /* 0 = orderly EOF, < 0 = -(code) */
    int stdout_errno;    /* writing to stdout failed with this errno (0 = no) */
    int stdin_ended;     /* stdin reached EOF (main thread only) */
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: %s [-o key=value]... [--starttls smtp] [-N] [-q] URL\n"
            "       %s --version\n"
            "\n"
            "Copies stdin to the connection named by URL and the connection to stdout.\n"
            "  -o key=value      set an option (timeout, read_timeout, write_timeout,\n"
            "                    ssl.verify_peer, ssl.verify_peer_name, ssl.peer_name,\n"
            "                    ssl.cafile, ...); may be repeated\n"
            "  --starttls smtp   speak SMTP up to STARTTLS, then upgrade to TLS\n"
            "  -N                when stdin ends, shut the connection down for writing\n"
            "                    (TLS: close_notify) so that the peer sees the end\n"
            "  -q                quiet: report only errors\n"
            "Exit status: 0 orderly end, 1 failure, 2 usage.\n",
            progname, progname);
}

/* "TU_E_NAME: message" for a code and an error struct (which may be empty). */
static void report(int32_t code, const char *message)
{
    const char *name = tu_code_name(code);
    if (message == NULL || message[0] == '\0')
        message = tu_strerror(code);
    fprintf(stderr, "%s: %s: %s\n", progname, name ? name : "TU_E_?", message ? message : "");
}

/* Report `code`, with the handle's message when its last failure is that code. */
static void report_handle(const tu_handle *h, int32_t code)
{
    tu_error e;
    memset(&e, 0, sizeof e);
    if (tu_last_error(h, &e) == code)
        report(code, e.message);
    else
        report(code, NULL);
}

static int write_all_fd(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write all of buf to the connection; returns TU_OK or a code. */
static int32_t write_all_tu(tu_handle *h, const char *buf, size_t len)
{
    while (len > 0) {
        intptr_t n = tu_write(h, buf, len);
        if (n < 0)
            return (int32_t)-n;
        if (n == 0)
            return TU_E_IO; /* not expected from a blocking handle */
        buf += n;
        len -= (size_t)n;
    }
    return TU_OK;
}

/* Describe the connection: "TLSv1.3 TLS_AES_256_GCM_SHA384" or the transport. */
static void describe(const tu_handle *h, const char *url, char *out, size_t out_len)
{
    const char *version = tu_tls_version(h);
    const char *suite = tu_tls_cipher_suite(h);
    tu_url_parts parts;

    if (version != NULL) {
        snprintf(out, out_len, "%s %s", version, suite ? suite : "?");
        return;
    }
    memset(&parts, 0, sizeof parts);
    if (tu_parse_url(url, &parts, NULL) == TU_OK && parts.transport[0] != '\0')
        snprintf(out, out_len, "%s", parts.transport);
    else
        snprintf(out, out_len, "plain");
}

/* udp:// or udg:// */
static int is_datagram(const char *url)
{
    tu_url_parts parts;
    memset(&parts, 0, sizeof parts);
    if (tu_parse_url(url, &parts, NULL) != TU_OK)
        return 0;
    return strcmp(parts.transport, "udp") == 0 || strcmp(parts.transport, "udg") == 0;
}

/*
 * Read one reply line (up to and including "\n") one byte at a time, so that
 * nothing after it is consumed. The line is NUL-terminated without CR/LF.
 * Returns TU_OK, a TU_E_* code, or TU_E_PROTOCOL for an over-long line or EOF.
 */
static int32_t read_line(tu_handle *h, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char c;
        intptr_t r = tu_read(h, &c, 1);
        if (r < 0)
            return (int32_t)-r;
        if (r == 0) {
            line[n] = '\0';
            fprintf(stderr, "%s: server closed the connection during the SMTP dialogue\n", progname);
            return TU_E_PROTOCOL;
        }
        if (c == '\n')
            break;
        if (n + 1 >= cap) {
            line[n] = '\0';
            fprintf(stderr, "%s: SMTP reply line longer than %zu bytes\n", progname, cap - 1);
            return TU_E_PROTOCOL;
        }
        line[n++] = c;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return TU_OK;
}

/*
 * Read a whole (possibly multi-line) SMTP reply and check its code.
 * If starttls_seen is not NULL it is set when a line advertises STARTTLS.
 */
static int32_t smtp_reply(tu_handle *h, const char *want, int *starttls_seen)
{
    char line[SMTP_MAX_LINE];
    int i;

    for (i = 0; i < SMTP_MAX_LINES; i++) {
        int32_t rc = read_line(h, line, sizeof line);
        if (rc != TU_OK)
            return rc;
        if (!quiet)
            fprintf(stderr, "%s: S: %s\n", progname, line);
        if (strlen(line) < 3 || strncmp(line, want, 3) != 0) {
            fprintf(stderr, "%s: expected an SMTP %s reply, got \"%s\"\n", progname, want, line);
            return TU_E_PROTOCOL;
        }
        if (starttls_seen != NULL && strlen(line) >= 12 && strncasecmp(line + 4, "STARTTLS", 8) == 0
            && (line[12] == '\0' || line[12] == ' '))
            *starttls_seen = 1;
        if (line[3] == ' ' || line[3] == '\0')
            return TU_OK; /* last line of the reply */
        if (line[3] != '-') {
            fprintf(stderr, "%s: malformed SMTP reply line \"%s\"\n", progname, line);
            return TU_E_PROTOCOL;
        }
    }
    fprintf(stderr, "%s: SMTP reply longer than %d lines\n", progname, SMTP_MAX_LINES);
    return TU_E_PROTOCOL;
}

static int32_t smtp_send(tu_handle *h, const char *cmd)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\r\n", cmd);
    if (!quiet)
        fprintf(stderr, "%s: C: %s\n", progname, cmd);
    if (n < 0 || (size_t)n >= sizeof buf)
        return TU_E_INTERNAL;
    return write_all_tu(h, buf, (size_t)n);
}

/* The SMTP dialogue up to STARTTLS, then the upgrade. Returns TU_OK or a code. */
static int32_t starttls_smtp(tu_handle *h)
{
    int32_t rc;
    int offered = 0;

    if ((rc = smtp_reply(h, "220", NULL)) != TU_OK)
        return rc;
    if ((rc = smtp_send(h, "EHLO tucat.localhost")) != TU_OK)
        return rc;
    if ((rc = smtp_reply(h, "250", &offered)) != TU_OK)
        return rc;
    if (!offered) {
        fprintf(stderr, "%s: the server does not offer STARTTLS\n", progname);
        return TU_E_PROTOCOL;
    }
    if ((rc = smtp_send(h, "STARTTLS")) != TU_OK)
        return rc;
    if ((rc = smtp_reply(h, "220", NULL)) != TU_OK)
        return rc;
    return tu_enable_crypto(h, TU_CRYPTO_ANY);
}

static int pump_done(struct pump *p)
{
    int done;
    pthread_mutex_lock(&p->lock);
    done = p->done;
    pthread_mutex_unlock(&p->lock);
    return done;
}

/* Reader thread: connection -> stdout until EOF or an error. */
static void *reader_main(void *arg)
{
    struct pump *p = arg;
    char buf[16384];
    intptr_t result = 0;
    int stdout_errno = 0;

    for (;;) {
        intptr_t n = tu_read(p->h, buf, sizeof buf);
        if (n <= 0) {
            result = n;
            break;
        }
        if (write_all_fd(STDOUT_FILENO, buf, (size_t)n) != 0) {
            stdout_errno = errno ? errno : EIO;
            break;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->result = result;
    p->stdout_errno = stdout_errno;
    p->done = 1;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/*
 * Main thread: stdin -> connection. Returns TU_OK when stdin ended (or the
 * reader finished first), or the code of a failed write.
 */
static int32_t copy_stdin(struct pump *p)
{
    char buf[16384];
    while (!p->stdin_ended) {
        struct pollfd pfd;
        int pr;

        if (pump_done(p))
            return TU_OK; /* the peer is gone: nothing more to send */
        pfd.fd = STDIN_FILENO;
        pfd.events = POLLIN;
        pfd.revents = 0;
        pr = poll(&pfd, 1, 200);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "%s: poll(stdin): %s\n", progname, strerror(errno));
            return TU_E_IO;
        }
        if (pr == 0)
            continue;
        {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                fprintf(stderr, "%s: read(stdin): %s\n", progname, strerror(errno));
                return TU_E_IO;
            }
            if (n == 0) {
                p->stdin_ended = 1;
                if (half_close) {
                    /* allowed while the reader waits in tu_read */
                    int32_t rc = tu_shutdown(p->h, TU_SHUT_WR);
                    if (rc != TU_OK)
                        return rc;
                }
                break;
            }
            {
                int32_t rc = write_all_tu(p->h, buf, (size_t)n);
                if (rc != TU_OK)
                    return rc;
            }
        }
    }
    return TU_OK;
}

int main(int argc, char **argv)
{
    int status = 1;
    tu_options *opts = NULL;
    tu_handle *h = NULL;
    tu_error err;
    const char *url = NULL;
    const char *starttls = NULL;
    struct pump pump;
    int pump_lock_ready = 0;
    int reader_started = 0;
    pthread_t reader;
    char info[128];
    int i;

    memset(&err, 0, sizeof err);
    memset(&pump, 0, sizeof pump);

    opts = tu_options_new();
    if (opts == NULL) {
        fprintf(stderr, "%s: out of memory\n", progname);
        goto cleanup;
    }

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0) {
            char key[256];
            const char *eq;
            const char *value;
            size_t klen;
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: -o needs key=value\n", progname);
                status = EXIT_USAGE;
                goto cleanup;
            }
            value = argv[++i];
            eq = strchr(value, '=');
            if (eq == NULL || eq == value || (size_t)(eq - value) >= sizeof key) {
                fprintf(stderr, "%s: -o needs key=value, got \"%s\"\n", progname, value);
                status = EXIT_USAGE;
                goto cleanup;
            }
            klen = (size_t)(eq - value);
            memcpy(key, value, klen);
            key[klen] = '\0';
            if (tu_options_set(opts, key, eq + 1, &err) != TU_OK) {
                report(err.code, err.message);
                status = EXIT_USAGE;
                goto cleanup;
            }
        } else if (strcmp(a, "--starttls") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --starttls needs a protocol (smtp)\n", progname);
                status = EXIT_USAGE;
                goto cleanup;
            }
            starttls = argv[++i];
            if (strcmp(starttls, "smtp") != 0) {
                fprintf(stderr, "%s: --starttls: unsupported protocol \"%s\" (supported: smtp)\n",
                        progname, starttls);
                status = EXIT_USAGE;
                goto cleanup;
            }
        } else if (strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (strcmp(a, "-N") == 0) {
            half_close = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            status = 0;
            goto cleanup;
        } else if (strcmp(a, "--version") == 0) {
            printf("tucat (transporturl %s)\n", tu_version());
            status = 0;
            goto cleanup;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && url == NULL) {
            url = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option \"%s\"\n", progname, a);
            usage(stderr);
            status = EXIT_USAGE;
            goto cleanup;
        } else if (url == NULL) {
            url = a;
        } else {
            fprintf(stderr, "%s: more than one URL given\n", progname);
            usage(stderr);
            status = EXIT_USAGE;
            goto cleanup;
        }
    }
    if (url == NULL) {
        usage(stderr);
        status = EXIT_USAGE;
        goto cleanup;
    }

    h = tu_connect_opts(url, opts, &err);
    if (h == NULL) {
        report(err.code, err.message);
        goto cleanup;
    }
    if (!quiet) {
        describe(h, url, info, sizeof info);
        fprintf(stderr, "%s: connected to %s (%s)\n", progname, url, info);
    }

    if (starttls != NULL) {
        int32_t rc = starttls_smtp(h);
        if (rc != TU_OK) {
            report_handle(h, rc);
            goto cleanup;
        }
        if (!quiet) {
            describe(h, url, info, sizeof info);
            fprintf(stderr, "%s: connected to %s (%s) after STARTTLS\n", progname, url, info);
        }
    }

    if (pthread_mutex_init(&pump.lock, NULL) != 0) {
        fprintf(stderr, "%s: pthread_mutex_init failed\n", progname);
        goto cleanup;
    }
    pump_lock_ready = 1;
    pump.h = h;
    if (pthread_create(&reader, NULL, reader_main, &pump) != 0) {
        fprintf(stderr, "%s: pthread_create failed\n", progname);
        goto cleanup;
    }
    reader_started = 1;

    {
        int32_t wrc = copy_stdin(&pump);
        if (wrc != TU_OK && !pump_done(&pump)) {
            /* A write failed while the reader may still wait for data:
             * tu_shutdown may be called while another thread is in tu_read,
             * and makes that read return at once. */
            tu_shutdown(h, TU_SHUT_RDWR);
        }
        pthread_join(reader, NULL);
        reader_started = 0;
        if (wrc != TU_OK) {
            report_handle(h, wrc);
            goto cleanup;
        }
    }

    if (pump.stdout_errno != 0) {
        fprintf(stderr, "%s: write(stdout): %s\n", progname, strerror(pump.stdout_errno));
        goto cleanup;
    }
    if (pump.result == -TU_E_TIMEOUT && pump.stdin_ended && is_datagram(url)) {
        /* udp:// and udg:// have no end of stream: once stdin has ended,
         * a quiet peer for read_timeout is the end. */
        status = 0;
        goto cleanup;
    }
    if (pump.result < 0) {
        report_handle(h, (int32_t)-pump.result);
        goto cleanup;
    }
    status = 0;

cleanup:
    if (reader_started)
        pthread_join(reader, NULL);
    if (pump_lock_ready)
        pthread_mutex_destroy(&pump.lock);
    tu_close(h);
    tu_options_free(opts);
    return status;
}
