/* SPDX-License-Identifier: Apache-2.0 */
/* The application's configuration root: web, log, memory, state_dir, tracing
 * and one list per collector kind (appconfig/kinds.h), loaded from YAML by the engine in
 * src/config/ against the root schema (app_schema.c). Each section's struct
 * and schema table live with the code they configure (grpc/grpc_conf.h,
 * mongo/mongo_conf.h, trace/trace_conf.h); see docs/architecture.md.
 *
 * Precedence is flag > config file > environment > built-in default; the
 * loader applies file, environment and defaults; main.c applies flags after.
 * A poh_config_t is immutable once loaded; reload builds a new one. */
#ifndef POH_APP_CONFIG_H
#define POH_APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "appconfig/kinds.h"
#include "config/schema.h"
#include "core/strbuf.h"
#include "grpc/grpc_conf.h"
#include "mongo/mongo_conf.h"
#include "trace/trace_conf.h"

typedef struct poh_config_web {
    char *listen_address;          /* "host:port", "[v6]:port"; default PROMETHEUS_BIND or 0.0.0.0:8000 */
    char *telemetry_path;          /* default "/metrics" */
    bool enable_reload;            /* POST /-/reload; default false */
    double scrape_timeout_offset;  /* seconds subtracted from X-Prometheus-Scrape-Timeout-Seconds; default 0.5 */
    double default_scrape_timeout; /* seconds when the header is absent; default 10 */
    double max_scrape_timeout;     /* the header is capped at this; default 60 */
    unsigned max_connections;      /* default 64 */
    unsigned max_concurrent_probes; /* /probe requests at once; default 16 */
    unsigned max_connections_per_client; /* from one address; default 16 */
    double request_timeout;        /* seconds to send a whole request; default 10 */
    double idle_timeout;           /* seconds; default 30 */
    size_t max_request_bytes;      /* default 16384 */
    char *config_file;             /* web config (TLS, basic auth; exporter-toolkit format);
                                      NULL = none. Relative: from the config file's directory */
} poh_config_web_t;

typedef struct poh_config_log {
    char *level;                   /* debug|info|warn|error; default info */
    char *format;                  /* logfmt|json; default logfmt */
} poh_config_log_t;

typedef struct poh_config_memory {
    /* The most the exporter holds in network buffers at once, in bytes:
     * half for gRPC calls in flight, half for change-stream batches. */
    size_t buffer_limit;           /* default 8 MiB */
} poh_config_memory_t;

typedef struct poh_config {
    char *source;                  /* file path, or "<embedded>" */
    poh_config_web_t web;
    poh_config_log_t log;
    poh_config_memory_t memory;
    char *state_dir;               /* default /var/lib/poh_exporter */
    poh_config_tracing_t tracing;
    /* One list per collector kind (appconfig/kinds.h): e.g. grpc, grpc_count. */
    POH_COLLECTOR_KINDS(POH_CONFIG_KIND_FIELDS)
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

/* The root schema (app_schema.c). */
extern const poh_cfg_section_t poh_cfg_root_section;

#endif
