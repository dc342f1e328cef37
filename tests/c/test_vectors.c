/*
 * Runs the shared URL vectors (tests/vectors/urls.json) through tu_parse_url.
 *
 *   test_vectors [path/to/urls.json]     (default: $TU_VECTORS or tests/vectors/urls.json)
 *
 * The file is a JSON array of objects:
 *   {"url": "...", "ok": {"transport": "tcp", "host": "h", "port": 80 | null,
 *                         "explicit_scheme": true|false|0|1, "path": "..."?}}
 *   {"url": "..." | "url_hex": "74637...", "error": "TU_E_URL", "message_contains": "..."?}
 * Other keys are ignored. A URL holding a NUL byte cannot be given to a C
 * function and is skipped (reported). A small JSON reader is built in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- a minimal JSON reader (RFC 8259; depth-limited) ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    int boolean;
    double number;
    char *str;            /* J_STR: bytes, NUL-terminated (may hold NULs: see len) */
    size_t len;
    struct jval *items;   /* J_ARR / J_OBJ values */
    char **keys;          /* J_OBJ keys */
    size_t count;
};

struct jparser {
    const char *p, *end;
    const char *error;
    size_t error_at;
    const char *start;
};

#define J_MAX_DEPTH 32

static void j_free(struct jval *v)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i < v->count; i++) {
        j_free(&v->items[i]);
        if (v->keys != NULL)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static int j_fail(struct jparser *jp, const char *what)
{
    if (jp->error == NULL) {
        jp->error = what;
        jp->error_at = (size_t)(jp->p - jp->start);
    }
    return -1;
}

static void j_ws(struct jparser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
        jp->p++;
}

static int j_hex4(struct jparser *jp, unsigned *out)
{
    unsigned v = 0;
    int i;
    if (jp->end - jp->p < 4)
        return j_fail(jp, "short \\u escape");
    for (i = 0; i < 4; i++) {
        char c = *jp->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return j_fail(jp, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at jp->p (on the opening quote). */
static int j_string(struct jparser *jp, char **out, size_t *out_len)
{
    /* the decoded string is never longer than the source */
    const char *q = jp->p + 1;
    size_t cap, n = 0;
    char *s;

    while (q < jp->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= jp->end)
        return j_fail(jp, "unterminated string");
    cap = (size_t)(q - jp->p) + 4;
    s = malloc(cap);
    if (s == NULL)
        return j_fail(jp, "out of memory");
    jp->p++;
    while (*jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c < 0x20) {
            free(s);
            return j_fail(jp, "control character in string");
        }
        if (c != '\\') {
            s[n++] = (char)c;
            continue;
        }
        c = (unsigned char)*jp->p++;
        switch (c) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (j_hex4(jp, &cp) != 0) {
                free(s);
                return -1;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (jp->end - jp->p >= 6 && jp->p[0] == '\\' && jp->p[1] == 'u') {
                    jp->p += 2;
                    if (j_hex4(jp, &lo) != 0) {
                        free(s);
                        return -1;
                    }
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        free(s);
                        return j_fail(jp, "unpaired surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    free(s);
                    return j_fail(jp, "unpaired surrogate");
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(s);
                return j_fail(jp, "unpaired surrogate");
            }
            n += utf8_put(s + n, cp);
            break;
        }
        default:
            free(s);
            return j_fail(jp, "bad escape");
        }
    }
    jp->p++;
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return 0;
}

static int j_value(struct jparser *jp, struct jval *v, int depth);

static int j_push(struct jparser *jp, struct jval *v, char *key, struct jval *item)
{
    struct jval *items = realloc(v->items, (v->count + 1) * sizeof *items);
    if (items == NULL)
        return j_fail(jp, "out of memory");
    v->items = items;
    if (v->type == J_OBJ) {
        char **keys = realloc(v->keys, (v->count + 1) * sizeof *keys);
        if (keys == NULL)
            return j_fail(jp, "out of memory");
        v->keys = keys;
        v->keys[v->count] = key;
    }
    v->items[v->count++] = *item;
    return 0;
}

static int j_value(struct jparser *jp, struct jval *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > J_MAX_DEPTH)
        return j_fail(jp, "nested too deeply");
    j_ws(jp);
    if (jp->p >= jp->end)
        return j_fail(jp, "unexpected end");
    switch (*jp->p) {
    case '{':
    case '[': {
        char close = *jp->p == '{' ? '}' : ']';
        v->type = *jp->p == '{' ? J_OBJ : J_ARR;
        jp->p++;
        j_ws(jp);
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            return 0;
        }
        for (;;) {
            struct jval item;
            char *key = NULL;
            size_t klen;
            j_ws(jp);
            if (v->type == J_OBJ) {
                if (jp->p >= jp->end || *jp->p != '"')
                    return j_fail(jp, "expected a key");
                if (j_string(jp, &key, &klen) != 0)
                    return -1;
                j_ws(jp);
                if (jp->p >= jp->end || *jp->p != ':') {
                    free(key);
                    return j_fail(jp, "expected ':'");
                }
                jp->p++;
            }
            if (j_value(jp, &item, depth + 1) != 0) {
                j_free(&item);
                free(key);
                return -1;
            }
            if (j_push(jp, v, key, &item) != 0) {
                j_free(&item);
                free(key);
                return -1;
            }
            j_ws(jp);
            if (jp->p < jp->end && *jp->p == ',') {
                jp->p++;
                continue;
            }
            if (jp->p < jp->end && *jp->p == close) {
                jp->p++;
                return 0;
            }
            return j_fail(jp, "expected ',' or a closing bracket");
        }
    }
    case '"':
        v->type = J_STR;
        return j_string(jp, &v->str, &v->len);
    case 't':
        if (jp->end - jp->p >= 4 && memcmp(jp->p, "true", 4) == 0) {
            v->type = J_BOOL;
            v->boolean = 1;
            jp->p += 4;
            return 0;
        }
        return j_fail(jp, "bad literal");
    case 'f':
        if (jp->end - jp->p >= 5 && memcmp(jp->p, "false", 5) == 0) {
            v->type = J_BOOL;
            jp->p += 5;
            return 0;
        }
        return j_fail(jp, "bad literal");
    case 'n':
        if (jp->end - jp->p >= 4 && memcmp(jp->p, "null", 4) == 0) {
            v->type = J_NULL;
            jp->p += 4;
            return 0;
        }
        return j_fail(jp, "bad literal");
    default: {
        char tmp[64];
        size_t n = 0;
        char *end;
        while (jp->p + n < jp->end && n < sizeof tmp - 1
               && strchr("+-0123456789.eE", jp->p[n]) != NULL) {
            tmp[n] = jp->p[n];
            n++;
        }
        tmp[n] = '\0';
        if (n == 0)
            return j_fail(jp, "unexpected character");
        errno = 0;
        v->number = strtod(tmp, &end);
        if (end != tmp + n || errno != 0)
            return j_fail(jp, "bad number");
        v->type = J_NUM;
        jp->p += n;
        return 0;
    }
    }
}

static const struct jval *j_get(const struct jval *obj, const char *key)
{
    size_t i;
    if (obj == NULL || obj->type != J_OBJ)
        return NULL;
    for (i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

/* ---- the test ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* printable form of a URL for case names */
static void show(const char *s, size_t len, char *out, size_t cap)
{
    size_t i, n = 0;
    for (i = 0; i < len && n + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out[n++] = (char)c;
        } else {
            snprintf(out + n, cap - n, "\\x%02x", c);
            n += 4;
        }
    }
    out[n] = '\0';
}

static void check_ok(const char *url, const struct jval *ok)
{
    tu_url_parts parts;
    tu_error err;
    const struct jval *f;
    int32_t rc;

    memset(&parts, 0, sizeof parts);
    memset(&err, 0x55, sizeof err); /* garbage: the call must reset it */
    rc = tu_parse_url(url, &parts, &err);
    TH_CHECK(rc == TU_OK, "tu_parse_url returned %s (%.*s), want TU_OK", th_code(rc), 512,
             err.message);
    if (rc != TU_OK)
        return;
    TH_CHECK(err.code == TU_OK && err.message[0] == '\0',
             "on success err must be reset (code %d, message \"%.40s\")", (int)err.code,
             err.message);

    f = j_get(ok, "transport");
    if (f != NULL && f->type == J_STR)
        TH_CHECK(strcmp(parts.transport, f->str) == 0, "transport \"%s\", want \"%s\"",
                 parts.transport, f->str);
    f = j_get(ok, "host");
    if (f != NULL && f->type == J_STR)
        TH_CHECK(strcmp(parts.host, f->str) == 0, "host \"%s\", want \"%s\"", parts.host, f->str);
    f = j_get(ok, "port");
    if (f != NULL && f->type == J_NULL)
        TH_CHECK(parts.port == 0, "port %d, want none (0)", (int)parts.port);
    else if (f != NULL && f->type == J_NUM)
        TH_CHECK(parts.port == (int32_t)f->number, "port %d, want %d", (int)parts.port,
                 (int)f->number);
    f = j_get(ok, "explicit_scheme");
    if (f != NULL && (f->type == J_BOOL || f->type == J_NUM)) {
        int want = f->type == J_BOOL ? f->boolean : f->number != 0;
        TH_CHECK((parts.explicit_scheme != 0) == want, "explicit_scheme %d, want %d",
                 (int)parts.explicit_scheme, want);
    }
    f = j_get(ok, "path");
    if (f != NULL && f->type == J_STR)
        TH_CHECK(strcmp(parts.path, f->str) == 0, "path \"%s\", want \"%s\"", parts.path, f->str);
    else if (f != NULL && f->type == J_NULL)
        TH_CHECK(parts.path[0] == '\0', "path \"%s\", want none", parts.path);
}

static void check_error(const char *url, const char *want, const struct jval *contains)
{
    tu_url_parts parts, before;
    tu_error err;
    int32_t rc;

    memset(&parts, 0x33, sizeof parts);
    before = parts;
    memset(&err, 0x55, sizeof err);
    rc = tu_parse_url(url, &parts, &err);
    TH_CHECK(strcmp(th_code(rc), want) == 0, "tu_parse_url returned %s (%.*s), want %s",
             th_code(rc), 512, err.message, want);
    TH_CHECK(err.code == rc, "err.code %s differs from the return value %s", th_code(err.code),
             th_code(rc));
    TH_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL && err.message[0] != '\0',
             "error message empty or not NUL-terminated");
    if (contains != NULL && contains->type == J_STR && memchr(err.message, '\0', 512) != NULL)
        TH_CHECK(strstr(err.message, contains->str) != NULL, "message \"%s\" lacks \"%s\"",
                 err.message, contains->str);
    TH_CHECK(memcmp(&parts, &before, sizeof parts) == 0,
             "outputs must be written only on success, but parts changed");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        size_t got;
        if (n + 4096 + 1 > cap) {
            char *nb;
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : th_env("TU_VECTORS");
    char *text = NULL;
    char *url = NULL;
    size_t len = 0, i;
    struct jval root;
    struct jparser jp;
    int status;

    memset(&root, 0, sizeof root);
    if (path == NULL)
        path = "tests/vectors/urls.json";
    text = read_file(path, &len);
    th_begin("load %s", path);
    TH_CHECK(text != NULL, "cannot read %s: %s", path, strerror(errno));
    if (text == NULL)
        goto cleanup;
    memset(&jp, 0, sizeof jp);
    jp.p = jp.start = text;
    jp.end = text + len;
    if (j_value(&jp, &root, 0) == 0) {
        j_ws(&jp);
        if (jp.p != jp.end)
            j_fail(&jp, "trailing data");
    }
    TH_CHECK(jp.error == NULL, "JSON error at byte %zu: %s", jp.error_at,
             jp.error ? jp.error : "");
    TH_CHECK(root.type == J_ARR && root.count > 0, "want a non-empty JSON array");
    if (!th_end())
        goto cleanup;

    for (i = 0; i < root.count; i++) {
        const struct jval *v = &root.items[i];
        const struct jval *u = j_get(v, "url");
        const struct jval *hx = j_get(v, "url_hex");
        const struct jval *ok = j_get(v, "ok");
        const struct jval *error = j_get(v, "error");
        size_t ulen = 0;
        char name[200];

        free(url);
        url = NULL;
        if (u != NULL && u->type == J_STR) {
            url = malloc(u->len + 1);
            if (url != NULL) {
                memcpy(url, u->str, u->len + 1);
                ulen = u->len;
            }
        } else if (hx != NULL && hx->type == J_STR && hx->len % 2 == 0) {
            size_t k;
            url = malloc(hx->len / 2 + 1);
            for (k = 0; url != NULL && k < hx->len / 2; k++) {
                int hi = hexval(hx->str[2 * k]), lo = hexval(hx->str[2 * k + 1]);
                if (hi < 0 || lo < 0) {
                    free(url);
                    url = NULL;
                    break;
                }
                url[k] = (char)(hi * 16 + lo);
            }
            if (url != NULL) {
                url[k] = '\0';
                ulen = k;
            }
        }
        if (url == NULL) {
            th_begin("vector %zu", i);
            TH_CHECK(0, "vector %zu has neither a usable \"url\" nor \"url_hex\"", i);
            th_end();
            continue;
        }
        show(url, ulen, name, sizeof name);
        if (memchr(url, '\0', ulen) != NULL) {
            char sname[240];
            snprintf(sname, sizeof sname, "vector %zu \"%s\"", i, name);
            th_skip(sname, "holds a NUL byte, which a C string cannot carry");
            continue;
        }
        th_begin("vector %zu \"%s\"", i, name);
        if (ok != NULL && ok->type == J_OBJ)
            check_ok(url, ok);
        else if (error != NULL && error->type == J_STR)
            check_error(url, error->str, j_get(v, "message_contains"));
        else
            TH_CHECK(0, "vector has neither \"ok\" nor \"error\"");
        th_end();
    }

cleanup:
    free(url);
    j_free(&root);
    free(text);
    status = th_summary();
    return status;
}
