/*
 * A tiny test harness for the C tests (no external dependencies).
 *
 *   th_begin("name");
 *   TH_CHECK(x == 1, "x is %d", x);
 *   TH_CHECK_ERR(&err, TU_E_URL, "offset");
 *   th_end();
 *   ...
 *   return th_summary();   // prints "N passed, M failed" (", K skipped")
 *
 * A case passes when none of its checks failed. Output goes to stdout, one
 * line per case ("ok - name", "FAIL - name", "skip - name: why"), failure
 * details indented under it.
 */
#ifndef TU_TEST_HARNESS_H
#define TU_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "transporturl.h"

void th_begin(const char *fmt, ...);
void th_fail(const char *file, int line, const char *fmt, ...);
int th_end(void);                     /* 1 if the case passed */
void th_skip(const char *name, const char *why);
int th_summary(void);                 /* exit status: 0 when nothing failed */

#define TH_CHECK(cond, ...)                                 \
    do {                                                    \
        if (!(cond))                                        \
            th_fail(__FILE__, __LINE__, __VA_ARGS__);       \
    } while (0)

/* err->code == want, message non-empty, NUL-terminated, and containing
 * `word` (case-insensitive) unless word is NULL. */
#define TH_CHECK_ERR(err, want, word) th_check_err(__FILE__, __LINE__, (err), (want), (word))
void th_check_err(const char *file, int line, const tu_error *err, int32_t want, const char *word);

/* tu_last_error(h) is `want` with a message containing `word`. */
#define TH_CHECK_LAST(h, want, word) th_check_last(__FILE__, __LINE__, (h), (want), (word))
void th_check_last(const char *file, int line, const tu_handle *h, int32_t want, const char *word);

/* "TU_E_URL" or "?(42)"; never NULL */
const char *th_code(int32_t code);

/* case-insensitive substring test */
int th_contains(const char *hay, const char *needle);

/* getenv that treats "" as unset; th_env_port: 0 when unset or not a port */
const char *th_env(const char *name);
int th_env_port(const char *name);

/* monotonic seconds; sleep for seconds */
double th_now(void);
void th_sleep(double seconds);

/* A listening TCP socket on 127.0.0.1 (family AF_INET) or ::1 (AF_INET6),
 * port 0. Returns the fd (port in *port_out) or -1. */
int th_listen(int family, int *port_out);

/* A 127.0.0.1 port that nothing listens on (bound, then closed). 0 on failure. */
int th_closed_port(void);

/* Open url with the options given as key, value pairs ending in NULL. */
tu_handle *th_connect(const char *url, tu_error *err, ...);

/* Write all of buf; TU_OK or the code. */
int32_t th_write_all(tu_handle *h, const char *buf);

/* Read one line byte by byte (never past its "\n"); CR/LF stripped.
 * TU_OK, TU_E_* code, or -1 on EOF before a line. */
int32_t th_read_line(tu_handle *h, char *line, size_t cap);

/* Read until `want` has appeared in what was read (bounded by cap bytes).
 * TU_OK, a TU_E_* code, or -1 on EOF / overflow. */
int32_t th_read_until(tu_handle *h, const char *want, char *buf, size_t cap);

#endif
