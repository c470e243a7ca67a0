/* SPDX-License-Identifier: Apache-2.0 */
/* The grpc collector without HTTP: its schema (grpc/grpc_schema.c) parsed through
 * the config engine with a test root holding only `grpc`, error cases as a
 * table, then the collector built from a parsed config and run against
 * poh_node_sim ($POH_NODE_SIM or tests/sim/poh_node_sim/poh_node_sim from the
 * build directory), reading counters back from the registries. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collectors/grpc.h"
#include "config/schema.h"
#include "core/clock.h"
#include "series_lookup.h"

extern const poh_cfg_section_t poh_cfg_grpc_section;

static const poh_cfg_entry_t t_root_entries[] = {
    {.name = "grpc", .type = POH_CFG_SECTION_LIST, .offset = offsetof(poh_config_t, grpc),
     .count_offset = offsetof(poh_config_t, grpc_count), .section = &poh_cfg_grpc_section,
     .unique = "name"},
    {NULL},
};
static const poh_cfg_section_t t_root = {sizeof(poh_config_t), t_root_entries};

static int parse(const char *yaml, poh_config_t *cfg, poh_strbuf_t *errors)
{
    memset(cfg, 0, sizeof *cfg);
    return poh_cfg_parse(&t_root, cfg, "t.yml", yaml, strlen(yaml), NULL, errors);
}

START_TEST(test_schema_tables)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    ck_assert_msg(poh_cfg_schema_check(&t_root, &why) == 0, "%s", why.data);
    poh_strbuf_free(&why);
}
END_TEST

typedef struct err_case {
    const char *yaml;
    const char *want; /* substring of the error text */
} err_case_t;

static const err_case_t err_cases[] = {
    {"grpc: [{targets: [a:1]}]", "t.yml:1:8: grpc[0].name: missing required key"},
    {"grpc: [{name: p}]", "grpc[0].targets: missing required key"},
    {"grpc: [{name: p, targets: [a]}]", "grpc[0].targets[0]: must be host:port or [v6]:port"},
    {"grpc: [{name: p, targets: [\"a:0\"]}]", "the port must be a number from 1 to 65535"},
    {"grpc: [{name: p, targets: [\"a:65536\"]}]", "the port must be a number from 1 to 65535"},
    {"grpc: [{name: p, targets: [\"a:5x\"]}]", "the port must be a number from 1 to 65535"},
    {"grpc: [{name: p, targets: [\"a b:1\"]}]", "not allowed in a host name"},
    {"grpc: [{name: p, targets: [\"[::1:1\"]}]", "[addr]:port"},
    {"grpc: [{name: p, targets: [\"fe80::1:1\"]}]", "[addr]:port"},
    {"grpc: [{name: p, targets: [\"a:1\", \"b:1\", \"a:1\"]}]", "target \"a:1\" is listed twice"},
    {"grpc: [{name: \"p/q\", targets: [\"a:1\"]}]", "grpc[0].name: must be 1 to 64 characters"},
    {"grpc: [{name: p, targets: [\"a:1\"]}, {name: p, targets: [\"b:1\"]}]",
     "grpc[1].name: duplicate value \"p\""},
    {"grpc: [{name: p, targets: [\"a:1\"], timeout: 0s}]", "grpc[0].timeout"},
    {"grpc: [{name: p, targets: [\"a:1\"], metadata: {X-Token: v}}]", "must be lowercase"},
    {"grpc: [{name: p, targets: [\"a:1\"], metadata: {grpc-status: v}}]", "reserved by gRPC"},
    {"grpc: [{name: p, targets: [\"a:1\"], metadata: {x-bin: v}}]", "binary (-bin)"},
    {"grpc: [{name: p, targets: [\"a:1\"], metadata: {traceparent: v}}]", "set by the exporter"},
    {"grpc: [{name: p, targets: [\"a:1\"], metadata: {x: \"a\\nb\"}}]",
     "the value of \"x\" must be printable ASCII"},
    {"grpc: [{name: p, targets: [\"a:1\"], tls: {key_file: /k}}]",
     "grpc[0].tls.key_file: cert_file and key_file must be given together"},
    {"grpc: [{name: p, targets: [\"a:1\"], tls: {ca_file: \"\"}}]", "grpc[0].tls.ca_file"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B}}]",
     "grpc[0].state.method: must be a gRPC method path"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C/D}}]", "must be a gRPC method"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, request_hex: 0g}}]",
     "must be hexadecimal digits"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {fields: [{path: \"1\", metric: m}]}}]",
     "grpc[0].state.fields: fields need a method to call"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, fields: [{path: \"0\", metric: m}]}}]",
     "grpc[0].state.fields[0].path: must be dot-separated field numbers"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, fields: [{path: \"1\", metric: 9m}]}}]",
     "is not a valid metric name"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, fields: [{path: \"1\", metric: poh_probe_success}]}}]",
     "is a metric the grpc collector writes itself"},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, fields: [{path: \"1\", metric: m}, {path: \"2\", metric: m}]}}]",
     "grpc[0].state.fields[1].metric: duplicate value \"m\""},
    {"grpc: [{name: p, targets: [\"a:1\"], state: {method: /a.B/C, fields: [{path: \"1\", metric: m, type: text}]}}]",
     "grpc[0].state.fields[0].type"},
    {"grpc: [{name: p, targets: [\"a:1\"], helth_service: x}]",
     "grpc[0].helth_service: unknown key (did you mean \"health_service\"?)"},
};

START_TEST(test_schema_errors)
{
    const err_case_t *c = &err_cases[_i];
    poh_config_t cfg;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    int rc = parse(c->yaml, &cfg, &errors);
    ck_assert_msg(rc < 0, "accepted: %s", c->yaml);
    ck_assert_msg(errors.data && strstr(errors.data, c->want), "%s\n-> %s\nwant: %s", c->yaml,
                  errors.data ? errors.data : "(no errors)", c->want);
    poh_cfg_release(&t_root, &cfg);
    poh_strbuf_free(&errors);
}
END_TEST

START_TEST(test_schema_values)
{
    char dir[] = "/tmp/poh-grpc-cfg-XXXXXX", token[64], yaml[1024];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(token, sizeof token, "%s/token", dir);
    FILE *f = fopen(token, "w");
    fputs("Bearer abc\n", f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "grpc:\n"
             "  - name: poh\n"
             "    targets: [\"poh-1:50051\", \"[::1]:50052\"]\n"
             "    metadata: {authorization_file: %s, x-team: dag}\n"
             "    state:\n"
             "      method: /poh.PoH/GetState\n"
             "      fields: [{path: \"5.2\", metric: poh_leader_offset, type: sint64}]\n"
             "  - name: presence\n"
             "    targets: [\"presence:50052\"]\n"
             "    health_service: presence.Presence\n"
             "    timeout: 750ms\n"
             "    tls: {ca_file: /etc/ca.pem}\n",
             token);
    poh_config_t cfg;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    ck_assert_msg(parse(yaml, &cfg, &errors) == 0, "%s", errors.data);
    ck_assert_uint_eq(cfg.grpc_count, 2);
    const poh_config_grpc_group_t *p = &cfg.grpc[0], *q = &cfg.grpc[1];
    ck_assert_str_eq(p->name, "poh");
    ck_assert_uint_eq(p->targets_count, 2);
    ck_assert_str_eq(p->targets[1], "[::1]:50052");
    ck_assert_str_eq(p->health_service, "");
    ck_assert_double_eq(p->timeout, 2.0);
    ck_assert(!p->tls.enabled);
    ck_assert_uint_eq(p->metadata_count, 2);
    ck_assert_str_eq(p->metadata[0].key, "authorization");
    ck_assert_str_eq(p->metadata[0].value, "Bearer abc"); /* newline cut */
    ck_assert_str_eq(p->state.method, "/poh.PoH/GetState");
    ck_assert_str_eq(p->state.request_hex, "");
    ck_assert_str_eq(p->state.fields[0].type, "sint64");
    ck_assert_str_eq(p->state.fields[0].help, "");
    ck_assert_str_eq(q->health_service, "presence.Presence");
    ck_assert_double_eq_tol(q->timeout, 0.75, 1e-9);
    ck_assert(q->tls.enabled); /* implied by ca_file */
    ck_assert_ptr_null(q->state.method);
    poh_cfg_release(&t_root, &cfg);
    poh_strbuf_free(&errors);
    unlink(token);
    rmdir(dir);
}
END_TEST

/* ---- the collector against poh_node_sim ---- */

static pid_t g_sim = -1;
static int g_ports[4];

static void sim_start(void)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    g_sim = fork();
    ck_assert_int_ge(g_sim, 0);
    if (g_sim == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        const char *sim = getenv("POH_NODE_SIM");
        sim = sim ? sim : "tests/sim/poh_node_sim/poh_node_sim";
        execl(sim, "poh_node_sim", "--listen", "127.0.0.1:0", "--tick-rate", "0",
              "--tick-height", "12345", "--listen", "127.0.0.1:0", "--mode", "not_serving",
              "--listen", "127.0.0.1:0", "--mode", "blackhole", "--listen", "127.0.0.1:0",
              "--mode", "abort:UNAVAILABLE", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[256];
    size_t n = 0;
    double until = poh_now_mono() + 15;
    while (n < sizeof line - 1 && poh_now_mono() < until) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        if (read(out[0], line + n, 1) != 1 || line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    close(out[0]);
    ck_assert_msg(sscanf(line, "ports=%d,%d,%d,%d", &g_ports[0], &g_ports[1], &g_ports[2],
                         &g_ports[3]) == 4,
                  "poh_node_sim did not start: '%s'", line);
}

static void sim_stop(void)
{
    if (g_sim <= 0)
        return;
    kill(g_sim, SIGTERM);
    for (int i = 0; i < 100 && waitpid(g_sim, NULL, WNOHANG) != g_sim; i++)
        usleep(50000);
    kill(g_sim, SIGKILL);
    waitpid(g_sim, NULL, WNOHANG);
    g_sim = -1;
}

static const char *const L_GTM[] = {"group", "target", "method"};
static const char *const L_GTMC[] = {"group", "target", "method", "code"};
static const char *const L_GT[] = {"group", "target"};

/* Values of series the collector must have emitted; a series it never
 * emitted fails the test (series_lookup.h creates nothing). */
static double counter(poh_registry_t *r, const char *name, int nl, const char *const *ln,
                      const char *const *lv)
{
    return series_value(r, POH_COUNTER, name, (size_t)nl, ln, lv);
}

static double gauge(poh_registry_t *r, const char *name, const char *const *lv)
{
    return series_value(r, POH_GAUGE, name, lv ? 2 : 0, lv ? L_GT : NULL, lv);
}

START_TEST(test_collector_counts)
{
    char t[4][32], yaml[1024];
    for (int i = 0; i < 4; i++)
        snprintf(t[i], sizeof t[i], "127.0.0.1:%d", g_ports[i]);
    snprintf(yaml, sizeof yaml,
             "grpc:\n  - name: poh\n    targets: [\"%s\", \"%s\", \"%s\", \"%s\"]\n"
             "    timeout: 300ms\n    state:\n      method: /poh.PoH/GetState\n"
             "      fields: [{path: \"1\", metric: poh_tick, type: uint64}]\n",
             t[0], t[1], t[2], t[3]);
    poh_config_t cfg;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    ck_assert_msg(parse(yaml, &cfg, &errors) == 0, "%s", errors.data);
    poh_registry_t *persist = poh_registry_new();
    poh_collector_list_t list = {0};
    ck_assert_int_eq(poh_grpc_collectors_create(&cfg, &(poh_collector_env_t){persist, NULL}, &list), 0);
    poh_cfg_release(&t_root, &cfg); /* the collector keeps copies */
    ck_assert_uint_eq(list.len, 1);
    ck_assert_str_eq(list.items[0].name, "grpc/poh");
    const poh_collector_ops_t *ops = list.items[0].ops;
    void *st = list.items[0].state;

    enum { N = 3 };
    poh_registry_t *out = NULL;
    for (int k = 0; k < N; k++) {
        poh_registry_free(out);
        out = poh_registry_new();
        poh_scrape_t sc = {.out = out, .deadline = poh_now_mono() + 5};
        double t0 = poh_now_mono();
        ck_assert_int_eq(ops->collect(st, &sc), 0);
        ck_assert(poh_now_mono() - t0 < 1.0); /* the blackhole costs its 300 ms once */
    }
    static const char *const methods[] = {"/grpc.health.v1.Health/Check", "/poh.PoH/GetState"};
    for (int i = 0; i < 4; i++) {
        for (int m = 0; m < 2; m++) {
            const char *lv[] = {"poh", t[i], methods[m]};
            ck_assert_double_eq(counter(persist, "poh_requests_total", 3, L_GTM, lv), N);
        }
    }
    const char *h0[] = {"poh", t[0], methods[0]}, *h1[] = {"poh", t[1], methods[0]};
    const char *s1[] = {"poh", t[1], methods[1]};
    ck_assert_double_eq(counter(persist, "poh_ack_total", 3, L_GTM, h0), N);
    ck_assert_double_eq(counter(persist, "poh_ack_total", 3, L_GTM, h1), 0);
    ck_assert_double_eq(counter(persist, "poh_ack_total", 3, L_GTM, s1), N);
    const char *f1[] = {"poh", t[1], methods[0], "NOT_SERVING"};
    const char *f2[] = {"poh", t[2], methods[0], "DEADLINE_EXCEEDED"};
    const char *f3[] = {"poh", t[3], methods[1], "UNAVAILABLE"};
    ck_assert_double_eq(counter(persist, "poh_request_failures_total", 4, L_GTMC, f1), N);
    ck_assert_double_eq(counter(persist, "poh_request_failures_total", 4, L_GTMC, f2), N);
    ck_assert_double_eq(counter(persist, "poh_request_failures_total", 4, L_GTMC, f3), N);

    const char *g0[] = {"poh", t[0]}, *g2[] = {"poh", t[2]};
    ck_assert_double_eq(gauge(out, "poh_probe_success", g0), 1);
    ck_assert_double_eq(gauge(out, "poh_probe_success", g2), 0);
    ck_assert_double_eq(gauge(out, "poh_tick", g0), 12345);

    /* /probe through the vtable */
    poh_registry_t *pr = poh_registry_new();
    poh_scrape_t psc = {.out = pr, .deadline = poh_now_mono() + 2};
    ck_assert_int_eq(ops->probe(st, "other", t[0], &psc), -ENOENT);
    ck_assert_int_eq(ops->probe(st, "poh", "no-port", &psc), -EINVAL);
    ck_assert_int_eq(ops->probe(st, "poh", t[0], &psc), 0);
    ck_assert_double_eq(gauge(pr, "poh_probe_success", NULL), 1);
    ck_assert_double_eq(gauge(pr, "poh_tick", NULL), 12345);
    poh_registry_free(pr);
    /* ... does not count */
    ck_assert_double_eq(counter(persist, "poh_requests_total", 3, L_GTM, h0), N);

    poh_status_rows_t rows = POH_STATUS_ROWS_INIT;
    ops->status(st, &rows);
    ck_assert(!rows.failed);
    bool seen[3] = {false, false, false};
    const char *want[3] = {"SERVING", "NOT_SERVING", "DEADLINE_EXCEEDED"};
    for (size_t i = 0; i < rows.len; i++)
        for (size_t k = 0; k < 3; k++)
            seen[k] |= !strcmp(rows.items[i].result, want[k]);
    ck_assert(seen[0] && seen[1] && seen[2]);
    poh_status_rows_free(&rows);

    poh_registry_free(out);
    free(list.items);
    ops->destroy(st);
    poh_registry_free(persist);
    poh_strbuf_free(&errors);
}
END_TEST

START_TEST(test_no_section_no_collectors)
{
    poh_config_t cfg;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    ck_assert_int_eq(parse("{}", &cfg, &errors), 0);
    poh_registry_t *persist = poh_registry_new();
    poh_collector_list_t list = {0};
    ck_assert_int_eq(poh_grpc_collectors_create(&cfg, &(poh_collector_env_t){persist, NULL}, &list), 0);
    ck_assert_uint_eq(list.len, 0);
    poh_grpc_collector_ops.destroy(NULL);
    poh_registry_free(persist);
    poh_cfg_release(&t_root, &cfg);
    poh_strbuf_free(&errors);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grpc_collector");
    TCase *schema = tcase_create("schema");
    tcase_add_test(schema, test_schema_tables);
    tcase_add_loop_test(schema, test_schema_errors, 0, sizeof err_cases / sizeof err_cases[0]);
    tcase_add_test(schema, test_schema_values);
    tcase_add_test(schema, test_no_section_no_collectors);
    suite_add_tcase(s, schema);
    TCase *sim = tcase_create("poh_node_sim");
    tcase_add_unchecked_fixture(sim, sim_start, sim_stop);
    tcase_set_timeout(sim, 60);
    tcase_add_test(sim, test_collector_counts);
    suite_add_tcase(s, sim);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
