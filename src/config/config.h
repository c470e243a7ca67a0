/* Configuration: YAML (libyaml) → typed structs, driven by tables of keys
 * (see config_schema.c). Every error names file:line:column and the dotted key
 * path and, for unknown keys, suggests the nearest valid key.
 *
 * Precedence is flag > config file > environment > built-in default; the
 * loader applies file, environment and defaults; main.c applies flags after.
 * A poh_config_t is immutable once loaded; reload builds a new one.
 * Adding a section: the recipe at the top of config.c (struct fields here,
 * a table in src/config/schema_<name>.c, one line in config_schema.c). */
#ifndef POH_CONFIG_H
#define POH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"

/* One entry of a string map (e.g. headers), in document order. */
typedef struct poh_config_kv {
    char *key;
    char *value;
} poh_config_kv_t;

typedef struct poh_config_web {
    char *listen_address;          /* "host:port", "[v6]:port"; default PROMETHEUS_BIND or 0.0.0.0:8000 */
    char *telemetry_path;          /* default "/metrics" */
    bool enable_reload;            /* POST /-/reload; default false */
    double scrape_timeout_offset;  /* seconds subtracted from X-Prometheus-Scrape-Timeout-Seconds; default 0.5 */
    double default_scrape_timeout; /* seconds when the header is absent; default 10 */
    unsigned max_connections;      /* default 64 */
    double idle_timeout;           /* seconds; default 30 */
    size_t max_request_bytes;      /* default 16384 */
} poh_config_web_t;

typedef struct poh_config_log {
    char *level;                   /* debug|info|warn|error; default info */
    char *format;                  /* logfmt|json; default logfmt */
} poh_config_log_t;

typedef struct poh_config {
    char *source;                  /* file path, or "<embedded>" */
    poh_config_web_t web;
    poh_config_log_t log;
    char *state_dir;               /* default /var/lib/poh_exporter */
    /* Later sections (grpc, mongodb, tracing) are added here by their issues. */
} poh_config_t;

/* Load and validate. On failure returns a negative errno, *out is NULL, and
 * every problem found is appended to errors, one per line, as
 *   "<file>:<line>:<col>: <key.path>: <message>". */
int poh_config_load_file(const char *path, poh_config_t **out, poh_strbuf_t *errors);
/* Same from memory; name is used in messages in place of a file name. */
int poh_config_load_string(const char *name, const char *yaml, size_t len, poh_config_t **out,
                           poh_strbuf_t *errors);
/* The embedded default (no file): an empty document with defaults applied. */
int poh_config_load_default(poh_config_t **out, poh_strbuf_t *errors);
void poh_config_free(poh_config_t *cfg);

/* Parse "500ms", "2s", "1m", "1h", "1m30s" into seconds; 0 or -EINVAL. */
int poh_parse_duration(const char *s, double *seconds);
/* Validate "host:port", "[v6]:port" or ":port" (port 0..65535); 0 or -EINVAL. */
int poh_parse_listen_address(const char *s, char *host, size_t hostlen, unsigned *port);

#endif
