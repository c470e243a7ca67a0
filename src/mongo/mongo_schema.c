/* SPDX-License-Identifier: Apache-2.0 */
/* Schema of the `mongodb` section: a list of clusters, each with change
 * streams and their latencies (issue 5). Hooked into the root in
 * appconfig/app_schema.c; documented in etc/poh_exporter.yml and the README. */
#include <errno.h>
#include <mongoc/mongoc.h>
#include <stddef.h>
#include <string.h>

#include "config/schema.h"
#include "mongo/mongo_conf.h"
#include "metrics/metrics.h"
#include "mongo/mongo_event.h"
#include "mongo/mongo_util.h"

static int check_name(const char *v, poh_strbuf_t *why)
{
    if (poh_mongo_name_valid(v))
        return 0;
    poh_strbuf_puts(why, "must be 1 to 64 of A-Z a-z 0-9 _ . - (not starting with \".\")");
    return -EINVAL;
}

static int check_op(const char *v, poh_strbuf_t *why)
{
    if (poh_mongo_op_parse(v) >= 0)
        return 0;
    poh_strbuf_puts(why, "unknown operation (insert, update, replace, delete, drop, rename, "
                         "dropDatabase, invalidate)");
    return -EINVAL;
}

static int check_latency_name(const char *v, poh_strbuf_t *why)
{
    char metric[128];
    if ((size_t)snprintf(metric, sizeof metric, "poh_%s_latency_seconds", v) < sizeof metric &&
        *v && !strchr(v, ':') && poh_metric_name_valid(metric))
        return 0;
    poh_strbuf_puts(why, "must be letters, digits and _ (it names poh_<name>_latency_seconds)");
    return -EINVAL;
}

/* The URI is parsed by libmongoc now, so a bad one is a configuration error
 * with a position, not a runtime failure. The value is never echoed. */
static int check_uri(const char *v, poh_strbuf_t *why)
{
    if (strncmp(v, "mongodb://", 10) && strncmp(v, "mongodb+srv://", 14)) {
        poh_strbuf_puts(why, "must start with mongodb:// or mongodb+srv://");
        return -EINVAL;
    }
    poh_mongo_global_init();
    bson_error_t err;
    poh_mongo_log_quiet(true);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(v, &err);
    poh_mongo_log_quiet(false);
    if (uri) {
        mongoc_uri_destroy(uri);
        return 0;
    }
    const char *pw = NULL;
    poh_strbuf_t secret = POH_STRBUF_INIT;
    const char *sep = strstr(v, "://"), *at = strrchr(v, '@');
    const char *colon = sep && at ? memchr(sep + 3, ':', (size_t)(at - sep - 3)) : NULL;
    if (colon && poh_strbuf_append(&secret, colon + 1, (size_t)(at - colon - 1)) == 0)
        pw = secret.data;
    poh_strbuf_puts(why, "not a valid MongoDB URI: ");
    poh_mongo_scrub(why, err.message, pw);
    if (secret.data)
        explicit_bzero(secret.data, secret.cap);
    poh_strbuf_free(&secret);
    return -EINVAL;
}

static const char *const to_choices[] = {"commit", NULL};
static const char *const unit_choices[] = {"ms", "s", NULL};

#define LAT(f) offsetof(poh_config_mongo_latency_t, f)
static const poh_cfg_entry_t latency_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = LAT(name), .flags = POH_CFG_REQUIRED,
     .check = check_latency_name},
    {.name = "from_field", .type = POH_CFG_STRING, .offset = LAT(from_field),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "to", .type = POH_CFG_ENUM, .offset = LAT(to), .choices = to_choices},
    {.name = "to_field", .type = POH_CFG_STRING, .offset = LAT(to_field),
     .flags = POH_CFG_NONEMPTY},
    {.name = "on", .type = POH_CFG_STRING_LIST, .offset = LAT(on), .count_offset = LAT(on_count),
     .flags = POH_CFG_NONEMPTY, .check = check_op},
    {.name = "epoch_unit", .type = POH_CFG_ENUM, .offset = LAT(epoch_unit), .def = "ms",
     .choices = unit_choices},
    /* The plausible window (mongo_event.h): absurd values are counted, not
     * observed, so one bad document cannot skew a histogram's sum. */
    {.name = "max", .type = POH_CFG_DURATION, .offset = LAT(max), .def = "1d", .min = 0.001,
     .max = 315360000},
    {.name = "clock_skew", .type = POH_CFG_DURATION, .offset = LAT(clock_skew), .def = "1s",
     .min = 0, .max = 86400},
    {NULL},
};
#undef LAT

static int validate_latency(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_config_mongo_latency_t *l = obj;
    if (!l->to == !l->to_field) {
        poh_cfg_error(ctx, l->to ? "to_field" : NULL,
                      "give exactly one of \"to: commit\" and \"to_field\"");
        return -EINVAL;
    }
    if (l->on_count && !l->to) {
        poh_cfg_error(ctx, "on", "\"on\" applies to \"to: commit\" latencies only");
        return -EINVAL;
    }
    return 0;
}

static const poh_cfg_section_t latency_section = {sizeof(poh_config_mongo_latency_t),
                                                  latency_entries, validate_latency, NULL};

#define CS(f) offsetof(poh_config_mongo_stream_t, f)
static const poh_cfg_entry_t stream_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = CS(name), .flags = POH_CFG_REQUIRED,
     .check = check_name},
    {.name = "database", .type = POH_CFG_STRING, .offset = CS(database),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "collection", .type = POH_CFG_STRING, .offset = CS(collection),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "operations", .type = POH_CFG_STRING_LIST, .offset = CS(operations),
     .count_offset = CS(operations_count), .flags = POH_CFG_NONEMPTY, .check = check_op},
    {.name = "latencies", .type = POH_CFG_SECTION_LIST, .offset = CS(latencies),
     .count_offset = CS(latencies_count), .section = &latency_section, .unique = "name"},
    {.name = "buckets", .type = POH_CFG_DOUBLE_LIST, .offset = CS(buckets),
     .count_offset = CS(buckets_count), .flags = POH_CFG_NONEMPTY | POH_CFG_INCREASING,
     .def = "0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10"},
    {.name = "traceparent_field", .type = POH_CFG_STRING, .offset = CS(traceparent_field),
     .def = "traceparent"},
    {.name = "commit_spans_per_second", .type = POH_CFG_DOUBLE,
     .offset = CS(commit_spans_per_second), .def = "100", .min = 0, .max = 100000},
    {NULL},
};
#undef CS

static bool has_op(const poh_config_mongo_stream_t *s, const char *op)
{
    if (!s->operations_count)
        return true;
    for (size_t i = 0; i < s->operations_count; i++)
        if (!strcmp(s->operations[i], op))
            return true;
    return false;
}

static int validate_stream(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_config_mongo_stream_t *s = obj;
    int rc = 0;
    if (s->buckets_count > POH_MAX_BUCKETS) {
        poh_cfg_error(ctx, "buckets", "at most %d buckets", POH_MAX_BUCKETS);
        rc = -EINVAL;
    }
    for (size_t i = 0; i < s->latencies_count; i++) {
        const poh_config_mongo_latency_t *l = &s->latencies[i];
        if (l->to_field && !has_op(s, "insert") && !has_op(s, "update")) {
            poh_cfg_error(ctx, "operations",
                          "latency \"%s\" uses to_field, so insert or update must be processed",
                          l->name);
            rc = -EINVAL;
        }
        for (size_t j = 0; l->to && j < (l->on_count ? l->on_count : 1); j++) {
            const char *op = l->on_count ? l->on[j] : "insert";
            if (!has_op(s, op)) {
                poh_cfg_error(ctx, "operations",
                              "latency \"%s\" is observed on %s, which is not processed",
                              l->name, op);
                rc = -EINVAL;
            }
        }
    }
    return rc;
}

static const poh_cfg_section_t stream_section = {sizeof(poh_config_mongo_stream_t),
                                                 stream_entries, validate_stream, NULL};

#define CL(f) offsetof(poh_config_mongodb_t, f)
const poh_cfg_entry_t poh_cfg_mongodb_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = CL(name), .flags = POH_CFG_REQUIRED,
     .check = check_name},
    {.name = "uri", .type = POH_CFG_STRING, .offset = CL(uri), .flags = POH_CFG_REQUIRED,
     .check = check_uri},
    {.name = "password", .type = POH_CFG_SECRET, .offset = CL(password)},
    {.name = "change_streams", .type = POH_CFG_SECTION_LIST, .offset = CL(change_streams),
     .count_offset = CL(change_streams_count), .section = &stream_section, .unique = "name"},
    {NULL},
};
#undef CL

/* Histograms of one name share their buckets: two streams of a cluster
 * exporting poh_<name>_latency_seconds must agree on them. */
int poh_cfg_mongodb_validate(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_config_mongodb_t *c = obj;
    for (size_t i = 0; i < c->change_streams_count; i++) {
        const poh_config_mongo_stream_t *a = &c->change_streams[i];
        for (size_t j = 0; j < i; j++) {
            const poh_config_mongo_stream_t *b = &c->change_streams[j];
            bool same = a->buckets_count == b->buckets_count &&
                        !memcmp(a->buckets, b->buckets, a->buckets_count * sizeof *a->buckets);
            for (size_t x = 0; !same && x < a->latencies_count; x++) {
                for (size_t y = 0; y < b->latencies_count; y++) {
                    if (strcmp(a->latencies[x].name, b->latencies[y].name))
                        continue;
                    poh_cfg_error(ctx, "change_streams",
                                  "streams \"%s\" and \"%s\" both export latency \"%s\" and so "
                                  "need the same buckets",
                                  b->name, a->name, a->latencies[x].name);
                    return -EINVAL;
                }
            }
        }
    }
    return 0;
}
