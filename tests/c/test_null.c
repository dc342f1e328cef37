/*
 * NULL, zero and absurd arguments to every function of the C API give a code
 * and a message, never a crash. Needs no server: it listens on loopback itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static tu_error fresh(void)
{
    tu_error e;
    memset(&e, 0x55, sizeof e); /* garbage that every call must reset */
    return e;
}

int main(void)
{
    int lfd = -1, port = 0;
    tu_handle *h = NULL;
    tu_options *o = NULL;
    tu_error err;
    tu_url_parts parts, before;
    char url[64];
    char buf[16];
    intptr_t n;
    int32_t rc;

    lfd = th_listen(AF_INET, &port);
    th_begin("setup: a loopback listener");
    TH_CHECK(lfd >= 0, "th_listen failed");
    th_end();
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);

    th_begin("tu_version is a non-empty string");
    TH_CHECK(tu_version() != NULL && tu_version()[0] != '\0', "tu_version() empty");
    th_end();

    th_begin("tu_strerror and tu_code_name cover every code");
    {
        int32_t c;
        for (c = TU_OK; c <= TU_E_INTERNAL; c++) {
            const char *s = tu_strerror(c);
            const char *name = tu_code_name(c);
            TH_CHECK(s != NULL && s[0] != '\0', "tu_strerror(%d) empty", (int)c);
            TH_CHECK(name != NULL && strncmp(name, "TU_", 3) == 0, "tu_code_name(%d) = %s",
                     (int)c, name ? name : "NULL");
        }
        TH_CHECK(strcmp(tu_code_name(TU_E_URL), "TU_E_URL") == 0, "TU_E_URL name");
        TH_CHECK(strcmp(tu_code_name(TU_OK), "TU_OK") == 0, "TU_OK name");
        TH_CHECK(tu_code_name(-1) == NULL, "tu_code_name(-1) not NULL");
        TH_CHECK(tu_code_name(9999) == NULL, "tu_code_name(9999) not NULL");
        TH_CHECK(tu_code_name(INT32_MIN) == NULL, "tu_code_name(INT32_MIN) not NULL");
        TH_CHECK(tu_strerror(-1) != NULL && tu_strerror(9999) != NULL,
                 "tu_strerror of an unknown code must still be a string");
    }
    th_end();

    th_begin("tu_connect(NULL, err)");
    err = fresh();
    TH_CHECK(tu_connect(NULL, &err) == NULL, "want NULL");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    th_end();

    th_begin("tu_connect(NULL, NULL) does not crash");
    TH_CHECK(tu_connect(NULL, NULL) == NULL, "want NULL");
    th_end();

    th_begin("tu_connect(bad url, NULL) does not crash");
    TH_CHECK(tu_connect("tcp://", NULL) == NULL, "want NULL");
    th_end();

    th_begin("tu_connect_opts(NULL url)");
    o = tu_options_new();
    TH_CHECK(o != NULL, "tu_options_new returned NULL");
    err = fresh();
    TH_CHECK(tu_connect_opts(NULL, o, &err) == NULL, "want NULL");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    err = fresh();
    TH_CHECK(tu_connect_opts(NULL, NULL, &err) == NULL, "want NULL");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    TH_CHECK(tu_connect_opts(NULL, NULL, NULL) == NULL, "want NULL");
    th_end();

    th_begin("tu_connect_opts(url, NULL opts) means the defaults");
    err = fresh();
    h = tu_connect_opts(url, NULL, &err);
    TH_CHECK(h != NULL, "want a handle, got %s: %.*s", th_code(err.code), 512, err.message);
    TH_CHECK(err.code == TU_OK && err.message[0] == '\0', "err must be reset on success");
    tu_close(h);
    h = NULL;
    th_end();

    th_begin("tu_options_set with NULL arguments");
    err = fresh();
    TH_CHECK(tu_options_set(NULL, "timeout", "1", &err) == TU_E_INVALID_ARGUMENT, "NULL options");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    err = fresh();
    TH_CHECK(tu_options_set(o, NULL, "1", &err) == TU_E_INVALID_ARGUMENT, "NULL key");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    err = fresh();
    TH_CHECK(tu_options_set(o, "timeout", NULL, &err) == TU_E_INVALID_ARGUMENT, "NULL value");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "timeout");
    TH_CHECK(tu_options_set(NULL, NULL, NULL, NULL) == TU_E_INVALID_ARGUMENT, "all NULL");
    TH_CHECK(tu_options_set(o, "timeout", "2.5", NULL) == TU_OK, "valid with NULL err");
    err = fresh();
    TH_CHECK(tu_options_set(o, "timeout", "2.5", &err) == TU_OK, "valid");
    TH_CHECK(err.code == TU_OK && err.message[0] == '\0', "err must be reset on success");
    th_end();

    th_begin("tu_options_set rejects bad keys and values, naming the key");
    err = fresh();
    TH_CHECK(tu_options_set(o, "no.such.key", "1", &err) == TU_E_INVALID_ARGUMENT, "unknown key");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "no.such.key");
    err = fresh();
    TH_CHECK(tu_options_set(o, "timeout", "soon", &err) == TU_E_INVALID_ARGUMENT, "bad timeout");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "timeout");
    err = fresh();
    TH_CHECK(tu_options_set(o, "timeout", "0", &err) == TU_E_INVALID_ARGUMENT, "zero timeout");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "timeout");
    err = fresh();
    TH_CHECK(tu_options_set(o, "read_timeout", "-2", &err) == TU_E_INVALID_ARGUMENT,
             "negative read_timeout other than -1");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "read_timeout");
    TH_CHECK(tu_options_set(o, "read_timeout", "-1", NULL) == TU_OK, "read_timeout -1");
    err = fresh();
    TH_CHECK(tu_options_set(o, "ssl.verify_peer", "maybe", &err) == TU_E_INVALID_ARGUMENT,
             "bad bool");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "ssl.verify_peer");
    TH_CHECK(tu_options_set(o, "ssl.verify_peer", "true", NULL) == TU_OK, "true");
    TH_CHECK(tu_options_set(o, "ssl.verify_peer_name", "0", NULL) == TU_OK, "0");
    err = fresh();
    TH_CHECK(tu_options_set(o, "ssl.cafile", "/nonexistent/ca.pem", &err) == TU_E_INVALID_ARGUMENT,
             "missing cafile");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "ssl.cafile");
    err = fresh();
    TH_CHECK(tu_options_set(o, "timeout\xff", "1", &err) == TU_E_INVALID_ARGUMENT,
             "non-UTF-8 key");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "UTF-8");
    err = fresh();
    TH_CHECK(tu_options_set(o, "ssl.peer_name", "\xc3\x28", &err) == TU_E_INVALID_ARGUMENT,
             "non-UTF-8 value");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "ssl.peer_name");
    th_end();

    th_begin("tu_options_free(NULL) is a no-op");
    tu_options_free(NULL);
    th_end();

    th_begin("tu_parse_url with NULL arguments");
    memset(&parts, 0x33, sizeof parts);
    before = parts;
    err = fresh();
    TH_CHECK(tu_parse_url(NULL, &parts, &err) == TU_E_INVALID_ARGUMENT, "NULL url");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    TH_CHECK(memcmp(&parts, &before, sizeof parts) == 0, "parts written on failure");
    err = fresh();
    TH_CHECK(tu_parse_url("tcp://127.0.0.1:80", NULL, &err) == TU_E_INVALID_ARGUMENT, "NULL out");
    TH_CHECK_ERR(&err, TU_E_INVALID_ARGUMENT, "NULL");
    TH_CHECK(tu_parse_url(NULL, NULL, NULL) == TU_E_INVALID_ARGUMENT, "all NULL");
    TH_CHECK(tu_parse_url("tcp://127.0.0.1:80", &parts, NULL) == TU_OK, "valid, NULL err");
    TH_CHECK(strcmp(parts.transport, "tcp") == 0 && strcmp(parts.host, "127.0.0.1") == 0
                 && parts.port == 80 && parts.explicit_scheme != 0,
             "parts: transport \"%s\" host \"%s\" port %d explicit %d", parts.transport,
             parts.host, (int)parts.port, (int)parts.explicit_scheme);
    th_end();

    th_begin("calls on a NULL handle");
    TH_CHECK(tu_enable_crypto(NULL, TU_CRYPTO_ANY) == TU_E_INVALID_ARGUMENT, "tu_enable_crypto");
    TH_CHECK(tu_read(NULL, buf, sizeof buf) == -TU_E_INVALID_ARGUMENT, "tu_read");
    TH_CHECK(tu_write(NULL, "x", 1) == -TU_E_INVALID_ARGUMENT, "tu_write");
    TH_CHECK(tu_fileno(NULL) == -1, "tu_fileno");
    TH_CHECK(tu_tls_version(NULL) == NULL, "tu_tls_version");
    TH_CHECK(tu_tls_cipher_suite(NULL) == NULL, "tu_tls_cipher_suite");
    err = fresh();
    TH_CHECK(tu_last_error(NULL, &err) == TU_E_INVALID_ARGUMENT, "tu_last_error(NULL, &out)");
    TH_CHECK(tu_last_error(NULL, NULL) == TU_E_INVALID_ARGUMENT, "tu_last_error(NULL, NULL)");
    tu_close(NULL);
    th_end();

    err = fresh();
    h = tu_connect_opts(url, o, &err);
    th_begin("connect to the local listener");
    TH_CHECK(h != NULL, "tu_connect_opts(%s): %s %.*s", url, th_code(err.code), 512, err.message);
    TH_CHECK(err.code == TU_OK && err.message[0] == '\0', "err must be reset on success");
    th_end();
    if (h == NULL)
        goto cleanup;

    th_begin("a fresh handle has no last error, a plain one no TLS info");
    TH_CHECK_LAST(h, TU_OK, NULL);
    TH_CHECK(tu_fileno(h) >= 0, "tu_fileno %d", (int)tu_fileno(h));
    TH_CHECK(tu_tls_version(h) == NULL, "tu_tls_version on tcp:// must be NULL");
    TH_CHECK(tu_tls_cipher_suite(h) == NULL, "tu_tls_cipher_suite on tcp:// must be NULL");
    th_end();

    th_begin("tu_last_error(h, NULL) returns the code without copying");
    rc = tu_last_error(h, NULL);
    TH_CHECK(rc == TU_OK, "tu_last_error(fresh handle, NULL) = %s, want TU_OK", th_code(rc));
    th_end();

    th_begin("tu_read: NULL buffer, zero length, absurd length");
    n = tu_read(h, NULL, 16);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "NULL buffer: %ld", (long)n);
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "NULL");
    n = tu_read(h, buf, 0);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len 0: %ld", (long)n);
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "length");
    rc = tu_last_error(h, NULL);
    TH_CHECK(rc == TU_E_INVALID_ARGUMENT, "tu_last_error(h, NULL) = %s after a failure", th_code(rc));
    n = tu_read(h, NULL, 0);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "NULL, 0: %ld", (long)n);
    n = tu_read(h, buf, SIZE_MAX);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len SIZE_MAX: %ld", (long)n);
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "length");
    n = tu_read(h, buf, (size_t)INTPTR_MAX + 1);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len > INTPTR_MAX: %ld", (long)n);
    th_end();

    th_begin("tu_write: NULL buffer, zero length, absurd length");
    n = tu_write(h, NULL, 16);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "NULL buffer: %ld", (long)n);
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "NULL");
    n = tu_write(h, buf, 0);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len 0: %ld", (long)n);
    n = tu_write(h, buf, SIZE_MAX);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len SIZE_MAX: %ld", (long)n);
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "length");
    n = tu_write(h, buf, (size_t)INTPTR_MAX + 1);
    TH_CHECK(n == -TU_E_INVALID_ARGUMENT, "len > INTPTR_MAX: %ld", (long)n);
    th_end();

    th_begin("the handle still works after rejected arguments");
    n = tu_write(h, "ping", 4);
    TH_CHECK(n == 4, "tu_write returned %ld", (long)n);
    th_end();

    th_begin("tu_enable_crypto: unknown and insecure methods");
    rc = tu_enable_crypto(h, 99);
    TH_CHECK(rc == TU_E_INVALID_ARGUMENT, "method 99: %s", th_code(rc));
    TH_CHECK_LAST(h, TU_E_INVALID_ARGUMENT, "99");
    rc = tu_enable_crypto(h, -1);
    TH_CHECK(rc == TU_E_INVALID_ARGUMENT, "method -1: %s", th_code(rc));
    rc = tu_enable_crypto(h, INT32_MIN);
    TH_CHECK(rc == TU_E_INVALID_ARGUMENT, "method INT32_MIN: %s", th_code(rc));
    rc = tu_enable_crypto(h, TU_CRYPTO_SSLV3);
    TH_CHECK(rc == TU_E_INSECURE_PROTOCOL, "SSLv3: %s", th_code(rc));
    TH_CHECK_LAST(h, TU_E_INSECURE_PROTOCOL, "SSLv3");
    rc = tu_enable_crypto(h, TU_CRYPTO_SSLV2);
    TH_CHECK(rc == TU_E_INSECURE_PROTOCOL, "SSLv2: %s", th_code(rc));
    rc = tu_enable_crypto(h, TU_CRYPTO_TLSV1_0);
    TH_CHECK(rc == TU_E_INSECURE_PROTOCOL, "TLS 1.0: %s", th_code(rc));
    TH_CHECK_LAST(h, TU_E_INSECURE_PROTOCOL, "1.0");
    rc = tu_enable_crypto(h, TU_CRYPTO_TLSV1_1);
    TH_CHECK(rc == TU_E_INSECURE_PROTOCOL, "TLS 1.1: %s", th_code(rc));
    th_end();

    th_begin("connect failures carry a code and message");
    err = fresh();
    TH_CHECK(tu_connect("tcp://127.0.0.1", &err) == NULL, "no port");
    TH_CHECK_ERR(&err, TU_E_URL, "port");
    err = fresh();
    TH_CHECK(tu_connect("gopher://127.0.0.1:70", &err) == NULL, "unknown transport");
    TH_CHECK_ERR(&err, TU_E_UNSUPPORTED_TRANSPORT, "tcp");
    err = fresh();
    TH_CHECK(tu_connect("sslv3://127.0.0.1:443", &err) == NULL, "sslv3");
    TH_CHECK_ERR(&err, TU_E_INSECURE_PROTOCOL, "tls://");
    err = fresh();
    TH_CHECK(tu_connect("tcp://127.0.0.1:65536", &err) == NULL, "port range");
    TH_CHECK_ERR(&err, TU_E_URL, "65536");
    err = fresh();
    TH_CHECK(tu_connect("tcp://\xff\xfe:80", &err) == NULL, "non-UTF-8 URL");
    TH_CHECK(err.code == TU_E_URL || err.code == TU_E_INVALID_ARGUMENT, "non-UTF-8: %s",
             th_code(err.code));
    TH_CHECK(err.message[0] != '\0', "non-UTF-8: empty message");
    th_end();

cleanup:
    tu_close(h);
    tu_options_free(o);
    if (lfd >= 0)
        close(lfd);
    return th_summary();
}
