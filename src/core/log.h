/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging to stderr in logfmt (default) or JSON, one line per call:
 *   ts=2026-11-25T15:42:15.123Z level=info module=http msg="listening on 127.0.0.1:8000"
 * Thread-safe; a line is written with a single write(2). Never pass secrets. */
#ifndef POH_LOG_H
#define POH_LOG_H

#include <pthread.h>
#include <stdbool.h>

typedef enum { POH_LOG_DEBUG = 0, POH_LOG_INFO, POH_LOG_WARN, POH_LOG_ERROR } poh_log_level_t;
typedef enum { POH_LOG_LOGFMT = 0, POH_LOG_JSON } poh_log_format_t;

void poh_log_setup(poh_log_level_t level, poh_log_format_t format);
/* Parse "debug|info|warn|error" / "logfmt|json"; return 0 or -EINVAL. */
int poh_log_level_parse(const char *s, poh_log_level_t *out);
int poh_log_format_parse(const char *s, poh_log_format_t *out);
bool poh_log_enabled(poh_log_level_t level);
void poh_log(poh_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A gate for log lines a peer can provoke at will (failed logins, refused
 * TLS handshakes): at most one line per interval; the lines held back are
 * counted and the next line that passes says how many. Thread-safe. */
typedef struct poh_log_throttle {
    pthread_mutex_t mu;
    double interval;           /* seconds */
    double last;               /* CLOCK_MONOTONIC seconds of the last line let through */
    bool any;                  /* a line has been let through */
    unsigned long held;        /* lines held back since then */
} poh_log_throttle_t;

#define POH_LOG_THROTTLE_INIT(seconds) {PTHREAD_MUTEX_INITIALIZER, (seconds), 0, false, 0}

/* For an object that embeds a throttle; poh_log_throttle_fini() undoes it. */
void poh_log_throttle_init(poh_log_throttle_t *t, double seconds);
void poh_log_throttle_fini(poh_log_throttle_t *t);
/* True when a line may be written now, with *held set to the number of
 * lines held back since the last one written; false (and counted) otherwise. */
bool poh_log_throttle_pass(poh_log_throttle_t *t, unsigned long *held);

#define POH_DEBUG(mod, ...) do { if (poh_log_enabled(POH_LOG_DEBUG)) poh_log(POH_LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define POH_INFO(mod, ...) poh_log(POH_LOG_INFO, mod, __VA_ARGS__)
#define POH_WARN(mod, ...) poh_log(POH_LOG_WARN, mod, __VA_ARGS__)
#define POH_ERROR(mod, ...) poh_log(POH_LOG_ERROR, mod, __VA_ARGS__)

#endif
