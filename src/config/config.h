/* SPDX-License-Identifier: Apache-2.0 */
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

/* tracing (issue 6): OTLP/gRPC span export; schema in schema_tracing.c,
 * consumed by poh_tracer_create() (trace/trace.h). */
typedef struct poh_config_tracing_tls {
    char *ca_file;                 /* PEM roots; NULL = system roots */
    char *cert_file;               /* client certificate (mTLS), with key_file */
    char *key_file;
    char *server_name;             /* name expected in the server certificate */
    bool insecure_skip_verify;     /* TLS without verifying the server; default false */
} poh_config_tracing_tls_t;

typedef struct poh_tracing_config {
    char *enabled;                 /* auto|true|false; default auto: on when an endpoint
                                      is set here or in the environment */
    char *endpoint;                /* NULL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
                                      OTEL_EXPORTER_OTLP_ENDPOINT, OTLP_GRPC_ENDPOINT,
                                      localhost:4317 */
    char *service_name;            /* NULL: OTEL_SERVICE_NAME, then poh-exporter */
    poh_config_kv_t *resource_attributes; /* over OTEL_RESOURCE_ATTRIBUTES */
    size_t resource_attributes_count;
    poh_config_kv_t *headers;      /* over OTEL_EXPORTER_OTLP_HEADERS; secret values */
    size_t headers_count;
    poh_config_tracing_tls_t tls;
    double sample_ratio;           /* 0..1; default 1 */
    unsigned queue_size;           /* spans; default 2048 */
    unsigned batch_size;           /* spans per Export; default 512 */
    double batch_timeout;          /* seconds; default 5 */
    double export_timeout;         /* seconds per Export call; default 10 */
    double retry_initial_backoff;  /* seconds; default 1 */
    double retry_max_backoff;      /* seconds; default 5 */
    double retry_max_elapsed;      /* seconds retrying one batch; default 30 */
    double shutdown_timeout;       /* seconds the final flush may take; default 5 */
    double drop_log_interval;      /* seconds between "spans dropped" lines; default 60 */
} poh_config_tracing_t;

/* mongodb: clusters and their change streams (issue 5); schema in
 * schema_mongodb.c, consumed by collectors/mongodb.c. */
typedef struct poh_config_mongo_latency {
    char *name;                    /* exported as poh_<name>_latency_seconds */
    char *from_field;              /* document field (dotted path) where the interval starts */
    char *to;                      /* "commit": the event's wallTime; NULL when to_field is set */
    char *to_field;                /* document field where it ends (needs updateLookup) */
    char **on;                     /* to: commit: operations observed; default [insert] */
    size_t on_count;
    char *epoch_unit;              /* numeric field values: ms|s; default ms */
    /* Plausible window of a value, in seconds: above max, or below
     * -clock_skew, it is not observed but counted as a field error (reason
     * too_large / negative); between -clock_skew and 0 it is observed as 0. */
    double max;                    /* default 1d; 0 (a config built by hand) = 1d */
    double clock_skew;             /* default 1s */
} poh_config_mongo_latency_t;

typedef struct poh_config_mongo_stream {
    char *name;                    /* label stream="..." */
    char *database;
    char *collection;
    char **operations;             /* operation types processed; none = all */
    size_t operations_count;
    poh_config_mongo_latency_t *latencies;
    size_t latencies_count;
    double *buckets;               /* histogram bounds in seconds */
    size_t buckets_count;
    char *traceparent_field;       /* W3C traceparent for exemplars; default traceparent */
    double commit_spans_per_second; /* storage.commit spans made at most; 0 = none */
} poh_config_mongo_stream_t;

typedef struct poh_config_mongodb {
    char *name;                    /* label cluster="..." */
    char *uri;                     /* mongodb:// URI; its password is never shown */
    char *password;                /* secret; password or password_file; over the URI's */
    poh_config_mongo_stream_t *change_streams;
    size_t change_streams_count;
} poh_config_mongodb_t;

/* grpc: a list of probe groups (issue 3); schema in schema_grpc.c. */
typedef struct poh_config_grpc_field {
    char *path;                    /* protobuf field path in the reply, "1" or "5.2" */
    char *metric;                  /* gauge name */
    char *help;
    char *type;                    /* auto|uint64|int64|sint64|...; default auto */
} poh_config_grpc_field_t;

typedef struct poh_config_grpc_state {
    char *method;                  /* "/pkg.Service/Method"; NULL = no state call */
    char *request_hex;             /* request bytes in hex; default "" (empty message) */
    poh_config_grpc_field_t *fields;
    size_t fields_count;
} poh_config_grpc_state_t;

typedef struct poh_config_grpc_tls {
    bool enabled;                  /* TLS on; also implied by any key below */
    char *ca_file, *cert_file, *key_file, *server_name;
    bool insecure_skip_verify;
} poh_config_grpc_tls_t;

/* What /probe?module=<group> may reach besides the group's own targets. */
typedef struct poh_config_grpc_probe {
    char **allow;                  /* CIDRs and host-name globs (core/netmatch.h); default none */
    size_t allow_count;
    bool send_credentials;         /* metadata and client certificate to allowed targets too */
} poh_config_grpc_probe_t;

typedef struct poh_config_grpc_group {
    char *name;                    /* label group="..."; /probe module */
    char **targets;                /* "host:port", "[v6]:port" */
    size_t targets_count;
    char *health_service;          /* default "" (whole server) */
    double timeout;                /* seconds; default 2 */
    poh_config_grpc_tls_t tls;
    poh_config_kv_t *metadata;     /* headers sent with every call; "x_file" reads x from a file */
    size_t metadata_count;
    poh_config_grpc_state_t state;
    size_t max_reply_size;         /* largest reply accepted, bytes; default 4 MiB */
    poh_config_grpc_probe_t probe;
} poh_config_grpc_group_t;

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
    poh_config_mongodb_t *mongodb;
    size_t mongodb_count;
    poh_config_tracing_t tracing;
    poh_config_grpc_group_t *grpc;
    size_t grpc_count;
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
