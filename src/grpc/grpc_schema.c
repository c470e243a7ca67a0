/* SPDX-License-Identifier: Apache-2.0 */
/* Schema of the `grpc` section (issue 3): a list of probe groups.
 *
 *   grpc:
 *     - name: poh
 *       targets: [poh-1:50051, poh-2:50051]
 *       health_service: poh.PoH
 *       timeout: 2s
 *       tls: {enabled: true, ca_file: ..., cert_file: ..., key_file: ...,
 *             server_name: ..., insecure_skip_verify: false}
 *       metadata: {authorization_file: /etc/poh_exporter/token}
 *       state:
 *         method: /poh.PoH/GetState
 *         request_hex: ""
 *         fields:
 *           - {path: "1", metric: poh_node_tick_height, help: "...", type: uint64}
 *
 * Everything that can be checked without the network is checked here, so a
 * bad target or field is a config error with file:line:col, not a runtime
 * surprise: target syntax and port, metadata header names and values, method
 * path, request hex, field paths and metric names. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/schema.h"
#include "core/header_name.h"
#include "grpc/grpc_conf.h"
#include "grpc/grpc_metrics.h"
#include "core/netmatch.h"
#include "grpc/grpc_probe.h"
#include "grpc/pbwire.h"
#include "metrics/metrics.h"

#define MAX_GROUP_NAME 64

/* [A-Za-z0-9_.-]{1,64}: used in the collector name and as the /probe module. */
static int check_group_name(const char *v, poh_strbuf_t *why)
{
    size_t n = strlen(v);
    bool ok = n > 0 && n <= MAX_GROUP_NAME;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '-' || v[i] == '.';
    if (!ok) {
        poh_strbuf_puts(why, "must be 1 to 64 characters of A-Z a-z 0-9 _ - .");
        return -EINVAL;
    }
    return 0;
}

static int check_target(const char *v, poh_strbuf_t *why)
{
    const char *problem = poh_grpc_address_problem(v);
    if (problem) {
        poh_strbuf_puts(why, problem);
        return -EINVAL;
    }
    return 0;
}

static int check_method(const char *v, poh_strbuf_t *why)
{
    const char *slash = v[0] == '/' ? strchr(v + 1, '/') : NULL;
    bool ok = slash && slash > v + 1 && slash[1] && !strchr(slash + 1, '/');
    for (const char *p = v; ok && *p; p++)
        ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
    if (!ok) {
        poh_strbuf_puts(why, "must be a gRPC method path like /package.Service/Method");
        return -EINVAL;
    }
    return 0;
}

static int check_hex(const char *v, poh_strbuf_t *why)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)v[i])) {
            poh_strbuf_puts(why, "must be hexadecimal digits (the request bytes)");
            return -EINVAL;
        }
    }
    if (n % 2) {
        poh_strbuf_puts(why, "must have an even number of hex digits");
        return -EINVAL;
    }
    return 0;
}

static int check_field_path(const char *v, poh_strbuf_t *why)
{
    poh_pb_path_t p;
    if (poh_pb_path_parse(v, &p) < 0) {
        poh_strbuf_printf(why, "must be dot-separated field numbers 1..%u, at most %d deep "
                               "(\"1\", \"5.2\")", POH_PB_MAX_FIELD, POH_PB_MAX_DEPTH);
        return -EINVAL;
    }
    return 0;
}

/* A name the collector itself writes (grpc_metrics.c); a state gauge may not take it. */
static bool reserved_metric(const char *name)
{
    const poh_family_desc_t *const tables[] = {poh_grpc_metrics, poh_grpc_probe_metrics};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const poh_family_desc_t *d = tables[t]; d->name; d++)
            if (strcmp(name, d->name) == 0)
                return true;
    return false;
}

static int check_metric(const char *v, poh_strbuf_t *why)
{
    if (!poh_metric_name_valid(v)) {
        poh_strbuf_puts(why, "is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
        return -EINVAL;
    }
    if (reserved_metric(v)) {
        poh_strbuf_puts(why, "is a metric the grpc collector writes itself");
        return -EINVAL;
    }
    return 0;
}

static const char *const field_types[] = {
    "auto", "uint64", "int64", "sint64", "uint32", "int32", "sint32", "bool", "double",
    "float", "fixed64", "sfixed64", "fixed32", "sfixed32", NULL,
};

#define FIELD(f) offsetof(poh_config_grpc_field_t, f)
static const poh_cfg_entry_t field_entries[] = {
    {.name = "path", .type = POH_CFG_STRING, .offset = FIELD(path),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY, .check = check_field_path},
    {.name = "metric", .type = POH_CFG_STRING, .offset = FIELD(metric),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY, .check = check_metric},
    {.name = "help", .type = POH_CFG_STRING, .offset = FIELD(help), .def = ""},
    {.name = "type", .type = POH_CFG_ENUM, .offset = FIELD(type), .def = "auto",
     .choices = field_types},
    {NULL},
};
#undef FIELD

static const poh_cfg_section_t field_section = {sizeof(poh_config_grpc_field_t), field_entries};

static int validate_state(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_config_grpc_state_t *st = obj;
    if (!st->method && st->fields_count) {
        poh_cfg_error(ctx, "fields", "fields need a method to call");
        return -EINVAL;
    }
    return 0;
}

#define STATE(f) offsetof(poh_config_grpc_state_t, f)
static const poh_cfg_entry_t state_entries[] = {
    {.name = "method", .type = POH_CFG_STRING, .offset = STATE(method), .check = check_method},
    {.name = "request_hex", .type = POH_CFG_STRING, .offset = STATE(request_hex), .def = "",
     .check = check_hex},
    {.name = "fields", .type = POH_CFG_SECTION_LIST, .offset = STATE(fields),
     .count_offset = STATE(fields_count), .section = &field_section, .unique = "metric"},
    {NULL},
};
#undef STATE

static const poh_cfg_section_t state_section = {sizeof(poh_config_grpc_state_t), state_entries,
                                                validate_state, NULL};

static int check_netpattern(const char *v, poh_strbuf_t *why)
{
    poh_netpattern_t p;
    const char *reason = NULL;
    if (poh_netpattern_parse(v, &p, &reason) < 0) {
        poh_strbuf_puts(why, reason);
        return -EINVAL;
    }
    return 0;
}

#define PROBE(f) offsetof(poh_config_grpc_probe_t, f)
static const poh_cfg_entry_t probe_entries[] = {
    {.name = "allow", .type = POH_CFG_STRING_LIST, .offset = PROBE(allow),
     .count_offset = PROBE(allow_count), .check = check_netpattern},
    {.name = "send_credentials", .type = POH_CFG_BOOL, .offset = PROBE(send_credentials),
     .def = "false"},
    {NULL},
};
#undef PROBE

static const poh_cfg_section_t probe_section = {sizeof(poh_config_grpc_probe_t), probe_entries,
                                                NULL, NULL};

/* gRPC header names: the one rule of core/header_name.c. */
static const char *bad_header_name(const char *k)
{
    switch (poh_header_name_check(k)) {
    case POH_HEADER_NAME_OK:
        return NULL;
    case POH_HEADER_NAME_EMPTY:
        return "is empty";
    case POH_HEADER_NAME_BAD_CHAR:
        return "must be lowercase letters, digits, '-', '_' or '.'";
    case POH_HEADER_NAME_GRPC_RESERVED:
        return "is reserved by gRPC";
    case POH_HEADER_NAME_BINARY:
        return "binary (-bin) headers are not supported";
    case POH_HEADER_NAME_SET_BY_US:
        break;
    }
    return "is set by the exporter itself";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int poh_cfg_grpc_validate(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_config_grpc_group_t *g = obj;
    int rc = 0;
    /* Duplicates, in O(n log n) on a sorted copy of the pointers. */
    char **sorted = malloc((g->targets_count ? g->targets_count : 1) * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    memcpy(sorted, g->targets, g->targets_count * sizeof *sorted);
    qsort(sorted, g->targets_count, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < g->targets_count; i++) {
        if (strcmp(sorted[i], sorted[i - 1]) == 0 && (i < 2 || strcmp(sorted[i], sorted[i - 2]))) {
            poh_cfg_error(ctx, "targets", "target \"%s\" is listed twice", sorted[i]);
            rc = -EINVAL;
        }
    }
    free(sorted);
    for (size_t i = 0; i < g->metadata_count; i++) {
        const char *why = bad_header_name(g->metadata[i].key);
        if (why) {
            poh_cfg_error(ctx, "metadata", "header name \"%s\" %s", g->metadata[i].key, why);
            rc = -EINVAL;
            continue;
        }
        /* The value may be a secret: say what is wrong, never show it. */
        for (const char *p = g->metadata[i].value; *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                poh_cfg_error(ctx, "metadata",
                              "the value of \"%s\" must be printable ASCII on one line",
                              g->metadata[i].key);
                rc = -EINVAL;
                break;
            }
        }
    }
    return rc;
}

#define GROUP(f) offsetof(poh_config_grpc_group_t, f)
const poh_cfg_entry_t poh_cfg_grpc_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = GROUP(name),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY, .check = check_group_name},
    {.name = "targets", .type = POH_CFG_STRING_LIST, .offset = GROUP(targets),
     .count_offset = GROUP(targets_count), .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY,
     .check = check_target},
    {.name = "health_service", .type = POH_CFG_STRING, .offset = GROUP(health_service),
     .def = ""},
    {.name = "timeout", .type = POH_CFG_DURATION, .offset = GROUP(timeout), .def = "2s",
     .min = 0.001, .max = 3600},
    {.name = "tls", .type = POH_CFG_SECTION, .offset = GROUP(tls),
     .section = &poh_grpc_tls_section},
    {.name = "metadata", .type = POH_CFG_STRING_MAP, .offset = GROUP(metadata),
     .count_offset = GROUP(metadata_count), .flags = POH_CFG_FILE_VALUES},
    {.name = "state", .type = POH_CFG_SECTION, .offset = GROUP(state), .section = &state_section},
    /* Enforced while a reply arrives (grpc/channel_args.h), not once whole. */
    {.name = "probe", .type = POH_CFG_SECTION, .offset = GROUP(probe), .section = &probe_section},
    {.name = "max_reply_size", .type = POH_CFG_SIZE, .offset = GROUP(max_reply_size),
     .def = "4MiB", .min = 1024, .max = 1 << 30},
    {NULL},
};
#undef GROUP
