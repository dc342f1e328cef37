/* The C tests' harness: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int passed, failed, skipped;
static int in_case, case_failed;
static char case_name[256];

void th_begin(const char *fmt, ...)
{
    va_list ap;
    if (in_case)
        th_end();
    va_start(ap, fmt);
    vsnprintf(case_name, sizeof case_name, fmt, ap);
    va_end(ap);
    in_case = 1;
    case_failed = 0;
}

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (!in_case)
        th_begin("(outside a case)");
    case_failed = 1;
    printf("    %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int th_end(void)
{
    int ok;
    if (!in_case)
        return 1;
    in_case = 0;
    ok = !case_failed;
    if (ok)
        passed++;
    else
        failed++;
    printf("%s - %s\n", ok ? "ok" : "FAIL", case_name);
    fflush(stdout);
    return ok;
}

void th_skip(const char *name, const char *why)
{
    if (in_case)
        th_end();
    skipped++;
    printf("skip - %s: %s\n", name, why);
    fflush(stdout);
}

int th_summary(void)
{
    if (in_case)
        th_end();
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

const char *th_code(int32_t code)
{
    static char buf[4][32];
    static int next;
    const char *name = tu_code_name(code);
    if (name != NULL)
        return name;
    next = (next + 1) % 4;
    snprintf(buf[next], sizeof buf[next], "?(%d)", (int)code);
    return buf[next];
}

int th_contains(const char *hay, const char *needle)
{
    size_t n, i;
    if (hay == NULL || needle == NULL)
        return 0;
    n = strlen(needle);
    for (; *hay; hay++) {
        for (i = 0; i < n; i++) {
            if (hay[i] == '\0'
                || tolower((unsigned char)hay[i]) != tolower((unsigned char)needle[i]))
                break;
        }
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int message_ok(const char *file, int line, const char *what, const char *msg,
                      const char *word)
{
    int ok = 1;
    if (memchr(msg, '\0', 512) == NULL) {
        th_fail(file, line, "%s: message is not NUL-terminated within 512 bytes", what);
        return 0;
    }
    if (msg[0] == '\0') {
        th_fail(file, line, "%s: message is empty", what);
        ok = 0;
    }
    if (word != NULL && !th_contains(msg, word)) {
        th_fail(file, line, "%s: message \"%s\" does not mention \"%s\"", what, msg, word);
        ok = 0;
    }
    return ok;
}

void th_check_err(const char *file, int line, const tu_error *err, int32_t want, const char *word)
{
    if (err->code != want) {
        th_fail(file, line, "error code %s, want %s (message: \"%.*s\")", th_code(err->code),
                th_code(want), 512, err->message);
        return;
    }
    if (want != TU_OK)
        message_ok(file, line, "tu_error", err->message, word);
}

void th_check_last(const char *file, int line, const tu_handle *h, int32_t want, const char *word)
{
    tu_error e;
    int32_t rc;
    memset(&e, 0x55, sizeof e); /* garbage: the call must reset it */
    rc = tu_last_error(h, &e);
    if (rc != e.code) {
        th_fail(file, line, "tu_last_error returned %s but wrote %s", th_code(rc), th_code(e.code));
        return;
    }
    if (e.code != want) {
        th_fail(file, line, "tu_last_error code %s, want %s (message: \"%.*s\")", th_code(e.code),
                th_code(want), 512, e.message);
        return;
    }
    if (want != TU_OK)
        message_ok(file, line, "tu_last_error", e.message, word);
}

const char *th_env(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

int th_env_port(const char *name)
{
    const char *v = th_env(name);
    char *end = NULL;
    long p;
    if (v == NULL)
        return 0;
    errno = 0;
    p = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || p < 1 || p > 65535)
        return 0;
    return (int)p;
}

double th_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void th_sleep(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int th_listen(int family, int *port_out)
{
    int fd = socket(family, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) {
        struct sockaddr_in6 a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0
            || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            close(fd);
            return -1;
        }
        *port_out = ntohs(a.sin6_port);
    } else {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0
            || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            close(fd);
            return -1;
        }
        *port_out = ntohs(a.sin_port);
    }
    return fd;
}

int th_closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0
        && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd); /* bound but never listened: connects are refused */
    return port;
}

tu_handle *th_connect(const char *url, tu_error *err, ...)
{
    va_list ap;
    tu_options *o = tu_options_new();
    tu_handle *h = NULL;
    const char *key;

    if (o == NULL) {
        err->code = TU_E_INTERNAL;
        snprintf(err->message, sizeof err->message, "tu_options_new returned NULL");
        return NULL;
    }
    va_start(ap, err);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (tu_options_set(o, key, value, err) != TU_OK) {
            va_end(ap);
            goto cleanup;
        }
    }
    va_end(ap);
    h = tu_connect_opts(url, o, err);
cleanup:
    tu_options_free(o);
    return h;
}

int32_t th_write_all(tu_handle *h, const char *buf)
{
    size_t len = strlen(buf);
    while (len > 0) {
        intptr_t n = tu_write(h, buf, len);
        if (n < 0)
            return (int32_t)-n;
        if (n == 0)
            return TU_E_IO;
        buf += n;
        len -= (size_t)n;
    }
    return TU_OK;
}

int32_t th_read_line(tu_handle *h, char *line, size_t cap)
{
    size_t n = 0;
    line[0] = '\0';
    for (;;) {
        char c;
        intptr_t r = tu_read(h, &c, 1);
        if (r < 0)
            return (int32_t)-r;
        if (r == 0)
            return -1;
        if (c == '\n')
            break;
        if (n + 1 >= cap)
            return -1;
        line[n++] = c;
        line[n] = '\0';
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return TU_OK;
}

int32_t th_read_until(tu_handle *h, const char *want, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    while (strstr(buf, want) == NULL) {
        intptr_t r;
        if (n + 1 >= cap)
            return -1;
        r = tu_read(h, buf + n, cap - 1 - n);
        if (r < 0)
            return (int32_t)-r;
        if (r == 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
    }
    return TU_OK;
}
