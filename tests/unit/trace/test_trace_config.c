/* SPDX-License-Identifier: Apache-2.0 */
/* Tracing configuration: endpoint precedence and parsing, service name,
 * resource attributes and headers from config and environment. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/schema.h"
#include "poh_version.h"
#include "trace/trace_internal.h"
#include "trace_schema_defaults.h"

/* A fake environment for poh_tracing_resolve(). */
static const char *const *fake_env;

static char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return (char *)e[1];
    return NULL;
}

static const struct {
    const char *cfg;
    const char *env[8];
    const char *target;
    bool tls;
} ep_cases[] = {
    {NULL, {NULL}, "localhost:4317", false},
    {NULL, {"OTLP_GRPC_ENDPOINT", "legacy:1", NULL}, "legacy:1", false},
    {NULL, {"OTLP_GRPC_ENDPOINT", "legacy:1", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:2", NULL},
     "generic:2", false},
    {NULL,
     {"OTLP_GRPC_ENDPOINT", "legacy:1", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:2",
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces:3/v1/traces", NULL},
     "traces:3", true},
    {"cfg:4",
     {"OTLP_GRPC_ENDPOINT", "legacy:1", "OTEL_EXPORTER_OTLP_ENDPOINT", "generic:2",
      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "traces:3", NULL},
     "cfg:4", false},
    {"", {"OTLP_GRPC_ENDPOINT", "legacy:1", NULL}, "legacy:1", false}, /* empty = unset */
    {NULL, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "OTLP_GRPC_ENDPOINT", "legacy:1", NULL},
     "legacy:1", false},
    {"https://secure.example", {NULL}, "secure.example:4317", true},
    {"HTTP://Plain:80/", {NULL}, "Plain:80", false},
    {"http://user:pw@host:5", {NULL}, "host:5", false},
    {"[::1]:4317", {NULL}, "[::1]:4317", false},
    {"https://[::1]", {NULL}, "[::1]:4317", true},
    {"unix-less-host", {NULL}, "unix-less-host:4317", false},
};

START_TEST(test_endpoint_precedence)
{
    poh_tracing_config_t cfg;
    poh_tracing_resolved_t r;
    poh_strbuf_t err = POH_STRBUF_INIT;
    trace_schema_defaults(&cfg);
    cfg.endpoint = (char *)ep_cases[_i].cfg;
    fake_env = ep_cases[_i].env;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.target, ep_cases[_i].target);
    ck_assert_int_eq(r.tls, ep_cases[_i].tls);
    poh_tracing_resolved_free(&r);
    poh_strbuf_free(&err);
}
END_TEST

static const struct {
    const char *in;
    const char *why;
} bad_endpoints[] = {
    {"grpc://x:1", "scheme"},
    {"http://", "no host"},
    {":4317", "no host"},
    {"host:0", "port"},
    {"host:65536", "port"},
    {"host:12a", "port"},
    {"::1:4317", "brackets"},
    {"[::1", "IPv6"},
    {"[::1]x", "garbage"},
};

START_TEST(test_bad_endpoints)
{
    poh_tracing_config_t cfg;
    poh_tracing_resolved_t r;
    poh_strbuf_t err = POH_STRBUF_INIT;
    trace_schema_defaults(&cfg);
    cfg.endpoint = (char *)bad_endpoints[_i].in;
    fake_env = NULL;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), -EINVAL);
    ck_assert_ptr_nonnull(err.data);
    ck_assert_msg(strstr(err.data, "tracing.endpoint") && strstr(err.data, bad_endpoints[_i].why),
                  "'%s' gave '%s'", bad_endpoints[_i].in, err.data);
    ck_assert_ptr_null(r.target);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_tls_switches)
{
    poh_tracing_config_t cfg;
    poh_tracing_resolved_t r;
    poh_strbuf_t err = POH_STRBUF_INIT;
    trace_schema_defaults(&cfg);
    fake_env = NULL;
    cfg.endpoint = "collector:4317";
    cfg.tls.ca_file = "/etc/ssl/ca.pem"; /* TLS settings without a scheme: TLS */
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert(r.tls);
    poh_tracing_resolved_free(&r);
    cfg.endpoint = "http://collector:4317"; /* an explicit http:// wins */
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert(!r.tls);
    poh_tracing_resolved_free(&r);
    cfg.endpoint = "collector:4317";
    cfg.tls.ca_file = NULL;
    cfg.tls.cert_file = "/c.pem"; /* cert without key */
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.data, "key_file"));
    poh_strbuf_free(&err);
}
END_TEST

static const char *kv_get(const poh_config_kv_t *kv, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, k) == 0)
            return kv[i].value;
    return NULL;
}

START_TEST(test_service_name_and_resource)
{
    poh_tracing_config_t cfg;
    poh_tracing_resolved_t r;
    poh_strbuf_t err = POH_STRBUF_INIT;
    trace_schema_defaults(&cfg);

    /* Default. */
    fake_env = NULL;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.service_name, "poh-exporter");
    ck_assert_str_eq(r.resource[0].key, "service.name"); /* first, always */
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "service.version"), POH_VERSION);
    ck_assert_ptr_nonnull(kv_get(r.resource, r.nresource, "host.name"));
    ck_assert_uint_eq(r.nresource, 3);
    poh_tracing_resolved_free(&r);

    /* Environment: service.name in OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME. */
    static const char *const env1[] = {
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=from-attrs, deployment.environment = prod ,team=a%2Cb%3Dc,host.name=h9",
        NULL};
    fake_env = env1;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.service_name, "from-attrs");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "deployment.environment"), "prod");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "team"), "a,b=c");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "host.name"), "h9");
    poh_tracing_resolved_free(&r);

    static const char *const env2[] = {"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs",
                                       "OTEL_SERVICE_NAME", "from-env", NULL};
    fake_env = env2;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.service_name, "from-env");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "service.name"), "from-env");
    poh_tracing_resolved_free(&r);

    /* Config beats environment, per key. */
    poh_config_kv_t attrs[] = {{"deployment.environment", "staging"}, {"region.zone", "z1"}};
    cfg.service_name = "from-config";
    cfg.resource_attributes = attrs;
    cfg.resource_attributes_count = 2;
    fake_env = env1;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.service_name, "from-config");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "service.name"), "from-config");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "deployment.environment"), "staging");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "region.zone"), "z1");
    ck_assert_str_eq(kv_get(r.resource, r.nresource, "team"), "a,b=c");
    poh_tracing_resolved_free(&r);

    /* A malformed OTEL_RESOURCE_ATTRIBUTES is ignored as a whole, with a warning. */
    static const char *const env3[] = {"OTEL_RESOURCE_ATTRIBUTES", "good=1,broken", NULL};
    fake_env = env3;
    cfg.resource_attributes_count = 0;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_ptr_null(kv_get(r.resource, r.nresource, "good"));
    poh_tracing_resolved_free(&r);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_headers)
{
    poh_tracing_config_t cfg;
    poh_tracing_resolved_t r;
    poh_strbuf_t err = POH_STRBUF_INIT;
    trace_schema_defaults(&cfg);
    static const char *const env[] = {
        "OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=secret%20one,x-tenant=t1, bad key=v,x-b64=a%3D%3D",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=t2", NULL};
    fake_env = env;
    poh_config_kv_t hdrs[] = {{"X-Scope", "s1"}, {"api-key", "from-config"}};
    cfg.headers = hdrs;
    cfg.headers_count = 2;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(kv_get(r.headers, r.nheaders, "api-key"), "from-config");
    ck_assert_str_eq(kv_get(r.headers, r.nheaders, "x-tenant"), "t2");
    ck_assert_str_eq(kv_get(r.headers, r.nheaders, "x-scope"), "s1");
    ck_assert_str_eq(kv_get(r.headers, r.nheaders, "x-b64"), "a==");
    ck_assert_ptr_null(kv_get(r.headers, r.nheaders, "bad key")); /* skipped */
    ck_assert_uint_eq(r.nheaders, 4);
    poh_tracing_resolved_free(&r);

    /* URL-decoding of the env value. */
    cfg.headers_count = 0;
    ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(kv_get(r.headers, r.nheaders, "api-key"), "secret one");
    poh_tracing_resolved_free(&r);

    /* Invalid config headers are errors, and the message has no value. */
    static const struct {
        const char *k, *v, *msg;
    } bad[] = {
        {"grpc-timeout", "1S", "reserved"},
        {"has space", "v", "character"},
        {"x-bin", "v", "binary"},
        {"x-ok", "line\nbreak", "non-printable"},
        {"", "v", "empty"},
    };
    fake_env = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        poh_config_kv_t h = {(char *)bad[i].k, (char *)bad[i].v};
        cfg.headers = &h;
        cfg.headers_count = 1;
        poh_strbuf_reset(&err);
        ck_assert_int_eq(poh_tracing_resolve(&cfg, fake_getenv, &r, &err), -EINVAL);
        ck_assert_msg(strstr(err.data, bad[i].msg), "%s: %s", bad[i].k, err.data);
        ck_assert_ptr_null(strstr(err.data, "line"));
    }
    poh_strbuf_free(&err);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    size_t n;
} kv_cases[] = {
    {"", 0, 0},      {"a=1", 0, 1},    {"a=1,b=2", 0, 2}, {"a=1,,b=2,", 0, 2},
    {"a=1,a=2", 0, 1}, {"a=", 0, 1},   {"=1", -EINVAL, 0}, {"a", -EINVAL, 0},
    {" a = %41 ", 0, 1}, {"a=%zz", 0, 1}, {"a=%4", 0, 1},
};

START_TEST(test_kv_list_table)
{
    poh_config_kv_t *kv = NULL;
    size_t n = 0;
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_trace_parse_kv_list(kv_cases[_i].in, "X", &kv, &n, &err);
    ck_assert_msg(rc == kv_cases[_i].rc, "'%s' gave %d", kv_cases[_i].in, rc);
    if (rc == 0)
        ck_assert_uint_eq(n, kv_cases[_i].n);
    else
        ck_assert_ptr_nonnull(strstr(err.data, "X: item"));
    if (strcmp(kv_cases[_i].in, " a = %41 ") == 0)
        ck_assert_str_eq(kv[0].value, "A");
    if (strcmp(kv_cases[_i].in, "a=%zz") == 0)
        ck_assert_str_eq(kv[0].value, "%zz");
    if (strcmp(kv_cases[_i].in, "a=%4") == 0)
        ck_assert_str_eq(kv[0].value, "%4");
    if (strcmp(kv_cases[_i].in, "a=1,a=2") == 0)
        ck_assert_str_eq(kv[0].value, "2");
    poh_trace_kv_free(kv, n);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_create_rejects_bad_settings)
{
    poh_tracing_config_t cfg;
    trace_schema_defaults(&cfg);
    cfg.endpoint = "127.0.0.1:9";
    cfg.sample_ratio = 1.5;
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    cfg.sample_ratio = 1;
    cfg.queue_size = 0;
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    cfg.queue_size = 8;
    cfg.batch_timeout = 0;
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    cfg.queue_size = 512; /* what fits batch_size (512), as the schema says */
    cfg.batch_timeout = 1;
    cfg.endpoint = "ftp://x:1";
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    cfg.endpoint = "https://127.0.0.1:9";
    cfg.tls.ca_file = "/nonexistent/ca.pem";
    ck_assert_ptr_null(poh_tracer_create(&cfg));
    cfg.tls.ca_file = NULL;
    poh_tracer_t *t = poh_tracer_create(&cfg); /* https with system roots */
    ck_assert_ptr_nonnull(t);
    poh_tracer_destroy(t);
}
END_TEST

START_TEST(test_enabled_auto)
{
    poh_tracing_config_t cfg;
    trace_schema_defaults(&cfg);
    fake_env = NULL;
    ck_assert_ptr_null(cfg.enabled); /* auto */
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), 0);
    static const char *const envs[][3] = {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "a:1", NULL},
                                          {"OTEL_EXPORTER_OTLP_ENDPOINT", "a:1", NULL},
                                          {"OTLP_GRPC_ENDPOINT", "a:1", NULL},
                                          {"OTLP_GRPC_ENDPOINT", "", NULL}};
    for (int i = 0; i < 4; i++) {
        fake_env = envs[i];
        ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), i < 3);
    }
    fake_env = NULL;
    cfg.endpoint = "c:1";
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), 1);
    cfg.enabled = "false";
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), 0);
    cfg.endpoint = NULL;
    cfg.enabled = "true"; /* localhost:4317 */
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), 1);
    cfg.enabled = "auto";
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), 0);
    cfg.enabled = "yes";
    ck_assert_int_eq(poh_tracing_wanted(&cfg, fake_getenv), -EINVAL);
    ck_assert_int_eq(poh_tracing_wanted(NULL, fake_getenv), 0);
}
END_TEST

/* The `tracing` schema table, parsed on its own as a root section. */
extern const poh_cfg_section_t poh_cfg_tracing_section;

static int parse_tracing(const char *yaml, poh_config_tracing_t *out, poh_strbuf_t *err)
{
    memset(out, 0, sizeof *out);
    return poh_cfg_parse(&poh_cfg_tracing_section, out, "t.yml", yaml, strlen(yaml), NULL, err);
}

START_TEST(test_schema_defaults_match)
{
    poh_config_tracing_t c;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_cfg_schema_check(&poh_cfg_tracing_section, &err), 0);
    ck_assert_int_eq(parse_tracing("{}\n", &c, &err), 0);
    /* the only defaults there are: the schema's (trace_conf.h documents them) */
    const poh_config_tracing_t d = {.sample_ratio = 1, .queue_size = 2048, .batch_size = 512,
                                    .batch_timeout = 5, .export_timeout = 10,
                                    .retry_initial_backoff = 1, .retry_max_backoff = 5,
                                    .retry_max_elapsed = 30, .shutdown_timeout = 5,
                                    .drop_log_interval = 60};
    ck_assert_str_eq(c.enabled, "auto");
    ck_assert_ptr_null(c.endpoint);
    ck_assert_ptr_null(c.service_name);
    ck_assert(c.sample_ratio == d.sample_ratio);
    ck_assert_uint_eq(c.queue_size, d.queue_size);
    ck_assert_uint_eq(c.batch_size, d.batch_size);
    ck_assert(c.batch_timeout == d.batch_timeout);
    ck_assert(c.export_timeout == d.export_timeout);
    ck_assert(c.retry_initial_backoff == d.retry_initial_backoff);
    ck_assert(c.retry_max_backoff == d.retry_max_backoff);
    ck_assert(c.retry_max_elapsed == d.retry_max_elapsed);
    ck_assert(c.shutdown_timeout == d.shutdown_timeout);
    ck_assert(c.drop_log_interval == d.drop_log_interval);
    ck_assert(!c.tls.insecure_skip_verify);
    poh_cfg_release(&poh_cfg_tracing_section, &c);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_schema_full)
{
    const char *yaml = "enabled: true\n"
                       "endpoint: https://otel.example:4317\n"
                       "service_name: poh-exporter-eu\n"
                       "resource_attributes: {deployment.environment: prod}\n"
                       "headers: {x-tenant: t1}\n"
                       "tls: {ca_file: /etc/ca.pem, server_name: otel.example}\n"
                       "sample_ratio: 0.25\n"
                       "queue_size: 4096\n"
                       "batch_size: 256\n"
                       "batch_timeout: 500ms\n"
                       "export_timeout: 2s\n"
                       "retry_initial_backoff: 100ms\n"
                       "retry_max_backoff: 2s\n"
                       "retry_max_elapsed: 1m\n"
                       "shutdown_timeout: 3s\n"
                       "drop_log_interval: 10s\n";
    poh_config_tracing_t c;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_msg(parse_tracing(yaml, &c, &err) == 0, "%s", err.data);
    ck_assert_str_eq(c.enabled, "true");
    ck_assert_str_eq(c.endpoint, "https://otel.example:4317");
    ck_assert_str_eq(c.service_name, "poh-exporter-eu");
    ck_assert_uint_eq(c.resource_attributes_count, 1);
    ck_assert_str_eq(c.resource_attributes[0].key, "deployment.environment");
    ck_assert_uint_eq(c.headers_count, 1);
    ck_assert_str_eq(c.headers[0].value, "t1");
    ck_assert_str_eq(c.tls.ca_file, "/etc/ca.pem");
    ck_assert_str_eq(c.tls.server_name, "otel.example");
    ck_assert(c.sample_ratio == 0.25);
    ck_assert_uint_eq(c.queue_size, 4096);
    ck_assert_uint_eq(c.batch_size, 256);
    ck_assert(c.batch_timeout == 0.5);
    ck_assert(c.retry_max_elapsed == 60);
    poh_tracing_resolved_t r;
    fake_env = NULL;
    ck_assert_int_eq(poh_tracing_resolve(&c, fake_getenv, &r, &err), 0);
    ck_assert_str_eq(r.target, "otel.example:4317");
    ck_assert(r.tls);
    poh_tracing_resolved_free(&r);
    poh_cfg_release(&poh_cfg_tracing_section, &c);
    poh_strbuf_free(&err);
}
END_TEST

static const struct {
    const char *yaml;
    const char *msg;
} schema_errors[] = {
    {"enabled: maybe\n", "t.yml:1:10: enabled: invalid value \"maybe\""},
    {"endpoint: ftp://x\n", "t.yml:1:11: endpoint: "},
    {"endpoint: \"\"\n", "endpoint"},
    {"sample_ratio: 1.5\n", "t.yml:1:15: sample_ratio"},
    {"queue_size: 0\n", "t.yml:1:13: queue_size"},
    {"queue_size: 10\nbatch_size: 20\n", "batch_size: must not exceed queue_size (10)"},
    {"retry_initial_backoff: 2s\nretry_max_backoff: 1s\n", "retry_max_backoff: must not be below"},
    {"headers: {\"grpc-timeout\": 1S}\n", "headers: header name 'grpc-timeout' is reserved"},
    {"headers: {authorization: \"Bearer x\\ny\"}\n", "non-printable"},
    {"tls: {cert_file: /c.pem}\n", "tls.cert_file: cert_file and key_file must be given together"},
    {"batch_timeout: soon\n", "t.yml:1:16: batch_timeout"},
    {"sample_rate: 1\n", "did you mean \"sample_ratio\""},
};

START_TEST(test_schema_errors)
{
    poh_config_tracing_t c;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(parse_tracing(schema_errors[_i].yaml, &c, &err), -EINVAL);
    ck_assert_msg(err.data && strstr(err.data, schema_errors[_i].msg), "%s: got '%s'",
                  schema_errors[_i].yaml, err.data);
    ck_assert_ptr_null(strstr(err.data, "Bearer")); /* header values stay secret */
    poh_cfg_release(&poh_cfg_tracing_section, &c);
    poh_strbuf_free(&err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_config");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_endpoint_precedence, 0, sizeof ep_cases / sizeof ep_cases[0]);
    tcase_add_loop_test(tc, test_bad_endpoints, 0, sizeof bad_endpoints / sizeof bad_endpoints[0]);
    tcase_add_test(tc, test_tls_switches);
    tcase_add_test(tc, test_service_name_and_resource);
    tcase_add_test(tc, test_headers);
    tcase_add_loop_test(tc, test_kv_list_table, 0, sizeof kv_cases / sizeof kv_cases[0]);
    tcase_add_test(tc, test_create_rejects_bad_settings);
    tcase_add_test(tc, test_enabled_auto);
    tcase_add_test(tc, test_schema_defaults_match);
    tcase_add_test(tc, test_schema_full);
    tcase_add_loop_test(tc, test_schema_errors, 0, sizeof schema_errors / sizeof schema_errors[0]);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
