/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging to stderr in logfmt (default) or JSON, one line per call:
 *   ts=2026-11-25T15:42:15.123Z level=info module=http msg="listening on 127.0.0.1:8000"
 * Thread-safe; a line is written with a single write(2). Never pass secrets. */
#ifndef POH_LOG_H
#define POH_LOG_H

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

#define POH_DEBUG(mod, ...) do { if (poh_log_enabled(POH_LOG_DEBUG)) poh_log(POH_LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define POH_INFO(mod, ...) poh_log(POH_LOG_INFO, mod, __VA_ARGS__)
#define POH_WARN(mod, ...) poh_log(POH_LOG_WARN, mod, __VA_ARGS__)
#define POH_ERROR(mod, ...) poh_log(POH_LOG_ERROR, mod, __VA_ARGS__)

#endif
