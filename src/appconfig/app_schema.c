/* SPDX-License-Identifier: Apache-2.0 */
/* The root of the configuration schema: top-level keys and the foundation's
 * sections (web, log, memory). Other sections live beside their code
 * (trace/trace_schema.c, and each collector kind's, e.g. grpc/grpc_schema.c);
 * the kinds' entries come from the list in appconfig/kinds.h. Defaults are
 * written as they would be in YAML and parsed by the same code as the file;
 * etc/poh_exporter.yml documents each of them. */
#include <errno.h>
#include <stddef.h>

#include "appconfig/app_config.h"
#include "config/schema.h"

#define WEB(f) offsetof(poh_config_web_t, f)
static const poh_cfg_entry_t web_entries[] = {
    {.name = "listen_address", .type = POH_CFG_ADDRESS, .offset = WEB(listen_address),
     .def = "0.0.0.0:8000", .env = "PROMETHEUS_BIND"},
    {.name = "telemetry_path", .type = POH_CFG_STRING, .offset = WEB(telemetry_path),
     .def = "/metrics", .check = poh_cfg_check_http_path},
    {.name = "enable_reload", .type = POH_CFG_BOOL, .offset = WEB(enable_reload),
     .def = "false"},
    {.name = "scrape_timeout_offset", .type = POH_CFG_DURATION,
     .offset = WEB(scrape_timeout_offset), .def = "500ms", .min = 0, .max = 60},
    {.name = "default_scrape_timeout", .type = POH_CFG_DURATION,
     .offset = WEB(default_scrape_timeout), .def = "10s", .min = 0.001, .max = 3600},
    /* A client's header must not hold collectors for a day. */
    {.name = "max_scrape_timeout", .type = POH_CFG_DURATION,
     .offset = WEB(max_scrape_timeout), .def = "60s", .min = 0.001, .max = 3600},
    {.name = "max_connections", .type = POH_CFG_UINT, .offset = WEB(max_connections),
     .def = "64", .min = 1, .max = 65536},
    {.name = "max_connections_per_client", .type = POH_CFG_UINT,
     .offset = WEB(max_connections_per_client), .def = "16", .min = 1, .max = 65536},
    {.name = "request_timeout", .type = POH_CFG_DURATION, .offset = WEB(request_timeout),
     .def = "10s", .min = 0.1, .max = 3600},
    {.name = "max_concurrent_probes", .type = POH_CFG_UINT,
     .offset = WEB(max_concurrent_probes), .def = "16", .min = 1, .max = 65536},
    {.name = "idle_timeout", .type = POH_CFG_DURATION, .offset = WEB(idle_timeout),
     .def = "30s", .min = 1, .max = 86400},
    {.name = "max_request_bytes", .type = POH_CFG_SIZE, .offset = WEB(max_request_bytes),
     .def = "16KiB", .min = 1024, .max = 16 << 20},
    /* TLS and basic auth: read by the web layer (src/http/web_config.c) */
    {.name = "config_file", .type = POH_CFG_STRING, .offset = WEB(config_file),
     .flags = POH_CFG_NONEMPTY},
    {NULL},
};
#undef WEB

static const poh_cfg_section_t web_section = {sizeof(poh_config_web_t), web_entries};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};

static const poh_cfg_entry_t log_entries[] = {
    {.name = "level", .type = POH_CFG_ENUM, .offset = offsetof(poh_config_log_t, level),
     .def = "info", .choices = log_levels},
    {.name = "format", .type = POH_CFG_ENUM, .offset = offsetof(poh_config_log_t, format),
     .def = "logfmt", .choices = log_formats},
    {NULL},
};

static const poh_cfg_section_t log_section = {sizeof(poh_config_log_t), log_entries};

static const poh_cfg_entry_t memory_entries[] = {
    {.name = "buffer_limit", .type = POH_CFG_SIZE,
     .offset = offsetof(poh_config_memory_t, buffer_limit), .def = "8MiB", .min = 1 << 20,
     .max = 4096.0 * (1 << 20)},
    {NULL},
};

static const poh_cfg_section_t memory_section = {sizeof(poh_config_memory_t), memory_entries};

extern const poh_cfg_section_t poh_cfg_tracing_section;

#define KIND_ENTRY(k, tag) POH_CONFIG_KIND_ENTRY(poh_config_t, k)

static const poh_cfg_entry_t root_entries[] = {
    {.name = "web", .type = POH_CFG_SECTION, .offset = offsetof(poh_config_t, web),
     .section = &web_section},
    {.name = "log", .type = POH_CFG_SECTION, .offset = offsetof(poh_config_t, log),
     .section = &log_section},
    {.name = "memory", .type = POH_CFG_SECTION, .offset = offsetof(poh_config_t, memory),
     .section = &memory_section},
    {.name = "state_dir", .type = POH_CFG_STRING, .offset = offsetof(poh_config_t, state_dir),
     .flags = POH_CFG_NONEMPTY, .def = "/var/lib/poh_exporter"},
    POH_COLLECTOR_KINDS(KIND_ENTRY)
    {.name = "tracing", .type = POH_CFG_SECTION, .offset = offsetof(poh_config_t, tracing),
     .section = &poh_cfg_tracing_section},
    {NULL},
};

const poh_cfg_section_t poh_cfg_root_section = {sizeof(poh_config_t), root_entries};
