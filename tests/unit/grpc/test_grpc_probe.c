/* SPDX-License-Identifier: Apache-2.0 */
/* Probe engine against a real gRPC server: poh_node_sim (started once per
 * test case, ports read from its first stdout line, exact call counts read
 * from its control port). Also the status-name table and argument checks.
 * The simulator path is $POH_NODE_SIM or, from the build directory where
 * CTest runs, tests/sim/poh_node_sim/poh_node_sim. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/status.h>

#include "grpc/grpc_probe.h"
#include "grpc/pbwire.h"

enum {
    L_OK,
    L_NOT_SERVING,
    L_BLACKHOLE,
    L_CLOSE,
    L_ABORT,
    L_SLOW,
    L_UNIMPLEMENTED,
    L_AUTH,
    L_SWITCH,
    L_MANY,
    L_COUNT
};

static pid_t g_sim = -1;
static int g_ports[L_COUNT];
static int g_control;
static char g_addr[L_COUNT][32];

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *sim_path(void)
{
    const char *p = getenv("POH_NODE_SIM");
    return p ? p : "tests/sim/poh_node_sim/poh_node_sim";
}

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
        const char *L = "127.0.0.1:0";
        execl(sim_path(), "poh_node_sim",
              "--listen", L, "--tick-rate", "0", "--tick-height", "12345", "--leader-offset", "-7",
              "--listen", L, "--mode", "not_serving",
              "--listen", L, "--mode", "blackhole",
              "--listen", L, "--mode", "close",
              "--listen", L, "--mode", "abort:RESOURCE_EXHAUSTED:busy",
              "--listen", L, "--mode", "slow:300",
              "--listen", L, "--mode", "unimplemented",
              "--listen", L, "--require-metadata", "authorization=Bearer t0ken",
              "--listen", L,
              "--listen", L,
              (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", sim_path(), strerror(errno));
        _exit(127);
    }
    close(out[1]);
    /* Readiness is the first stdout line; bounded wait. */
    char line[512];
    size_t n = 0;
    double until = now_mono() + 15;
    while (n < sizeof line - 1 && now_mono() < until) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0)
            break;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    close(out[0]);
    ck_assert_msg(strncmp(line, "ports=", 6) == 0, "%s did not start (got '%s')", sim_path(),
                  line);
    char *p = line + 6;
    for (int i = 0; i < L_COUNT; i++) {
        g_ports[i] = (int)strtol(p, &p, 10);
        ck_assert_int_gt(g_ports[i], 0);
        snprintf(g_addr[i], sizeof g_addr[i], "127.0.0.1:%d", g_ports[i]);
        if (*p == ',')
            p++;
    }
    p = strstr(line, "control=");
    ck_assert_ptr_nonnull(p);
    g_control = atoi(p + 8);
}

static void sim_stop(void)
{
    if (g_sim <= 0)
        return;
    kill(g_sim, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(g_sim, &status, WNOHANG) == g_sim) {
            g_sim = -1;
            return;
        }
        usleep(50000);
    }
    kill(g_sim, SIGKILL);
    waitpid(g_sim, &status, 0);
    g_sim = -1;
}

/* Send one control command, return its answer (all lines) in out. */
static void control(const char *cmd, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_control),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char line[256];
    snprintf(line, sizeof line, "%s\n", cmd);
    ck_assert_int_eq(send(fd, line, strlen(line), 0), (ssize_t)strlen(line));
    size_t n = 0;
    double until = now_mono() + 5;
    while (n < cap - 1 && now_mono() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        out[n] = '\0';
        const char *last = n >= 2 ? out + n - 2 : out;
        while (last > out && last[-1] != '\n')
            last--;
        if (out[n - 1] == '\n' &&
            (!strncmp(last, "END", 3) || !strncmp(last, "OK", 2) || !strncmp(last, "VALUE", 5) ||
             !strncmp(last, "NONE", 4) || !strncmp(last, "ERR", 3)))
            break;
    }
    out[n] = '\0';
    close(fd);
}

/* Calls received by a listener for a method, from COUNTS. */
static long sim_count(int listener, const char *method)
{
    char buf[8192], want[160];
    control("COUNTS", buf, sizeof buf);
    snprintf(want, sizeof want, "%d %s ", listener, method);
    for (char *line = buf; line && *line;) {
        if (strncmp(line, want, strlen(want)) == 0)
            return atol(line + strlen(want));
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

static void sim_reset(void)
{
    char buf[64];
    control("RESET", buf, sizeof buf);
    ck_assert_str_eq(buf, "OK\n");
}

typedef struct probe {
    poh_grpc_target_t *t;
    poh_grpc_call_t c;
    uint8_t *req;
} probe_t;

static void probe_init(probe_t *p, const char *address, const char *service, double timeout)
{
    memset(p, 0, sizeof *p);
    p->t = poh_grpc_target_new(address, NULL, 0, 1);
    ck_assert_ptr_nonnull(p->t);
    size_t len;
    ck_assert_int_eq(poh_grpc_health_request(service, &p->req, &len), 0);
    p->c = (poh_grpc_call_t){.target = p->t, .method = POH_GRPC_HEALTH_CHECK_METHOD,
                             .request = p->req, .request_len = len, .timeout = timeout,
                             .health = true};
}

static void probe_free(probe_t *p)
{
    poh_grpc_call_clear(&p->c);
    poh_grpc_target_free(p->t);
    free(p->req);
}

/* ---- tables without a server ---- */

typedef struct code_case {
    int code;
    const char *name;
} code_case_t;

static const code_case_t code_cases[] = {
    {GRPC_STATUS_OK, "OK"},
    {GRPC_STATUS_CANCELLED, "CANCELLED"},
    {GRPC_STATUS_UNKNOWN, "UNKNOWN"},
    {GRPC_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {GRPC_STATUS_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
    {GRPC_STATUS_NOT_FOUND, "NOT_FOUND"},
    {GRPC_STATUS_ALREADY_EXISTS, "ALREADY_EXISTS"},
    {GRPC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED"},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
    {GRPC_STATUS_FAILED_PRECONDITION, "FAILED_PRECONDITION"},
    {GRPC_STATUS_ABORTED, "ABORTED"},
    {GRPC_STATUS_OUT_OF_RANGE, "OUT_OF_RANGE"},
    {GRPC_STATUS_UNIMPLEMENTED, "UNIMPLEMENTED"},
    {GRPC_STATUS_INTERNAL, "INTERNAL"},
    {GRPC_STATUS_UNAVAILABLE, "UNAVAILABLE"},
    {GRPC_STATUS_DATA_LOSS, "DATA_LOSS"},
    {GRPC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED"},
};

START_TEST(test_code_names)
{
    const code_case_t *c = &code_cases[_i];
    ck_assert_str_eq(poh_grpc_code_name(c->code), c->name);
    int back = -1;
    ck_assert_int_eq(poh_grpc_code_parse(c->name, &back), 0);
    ck_assert_int_eq(back, c->code);
    char num[8], lower[32];
    snprintf(num, sizeof num, "%d", c->code);
    ck_assert_int_eq(poh_grpc_code_parse(num, &back), 0);
    ck_assert_int_eq(back, c->code);
    size_t i = 0;
    for (; c->name[i]; i++)
        lower[i] = (char)tolower((unsigned char)c->name[i]);
    lower[i] = '\0';
    ck_assert_int_eq(poh_grpc_code_parse(lower, &back), 0);
    ck_assert_int_eq(back, c->code);
}
END_TEST

START_TEST(test_code_edges)
{
    int code;
    ck_assert_str_eq(poh_grpc_code_name(-1), "UNKNOWN");
    ck_assert_str_eq(poh_grpc_code_name(17), "UNKNOWN");
    ck_assert_int_eq(poh_grpc_code_parse("17", &code), -EINVAL);
    ck_assert_int_eq(poh_grpc_code_parse("1x", &code), -EINVAL);
    ck_assert_int_eq(poh_grpc_code_parse("", &code), -EINVAL);
    ck_assert_int_eq(poh_grpc_code_parse(NULL, &code), -EINVAL);
    ck_assert_int_eq(poh_grpc_code_parse("NOT_SERVING", &code), -EINVAL);
    ck_assert_str_eq(poh_grpc_serving_status_name(1), "SERVING");
    ck_assert_str_eq(poh_grpc_serving_status_name(2), "NOT_SERVING");
    ck_assert_str_eq(poh_grpc_serving_status_name(3), "SERVICE_UNKNOWN");
    ck_assert_str_eq(poh_grpc_serving_status_name(0), "UNKNOWN");
    ck_assert_str_eq(poh_grpc_serving_status_name(-1), "INVALID");
}
END_TEST

START_TEST(test_health_request)
{
    uint8_t *b = NULL;
    size_t n = 99;
    ck_assert_int_eq(poh_grpc_health_request("", &b, &n), 0);
    ck_assert_uint_eq(n, 0); /* proto3 default: nothing on the wire */
    free(b);
    ck_assert_int_eq(poh_grpc_health_request("poh.PoH", &b, &n), 0);
    ck_assert_uint_eq(n, 9);
    ck_assert_mem_eq(b, "\x0a\x07poh.PoH", 9);
    free(b);
    ck_assert_int_eq(poh_grpc_health_request(NULL, &b, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(b);
}
END_TEST

START_TEST(test_bad_arguments)
{
    ck_assert_ptr_null(poh_grpc_target_new(NULL, NULL, 0, 1));
    poh_grpc_target_free(NULL);
    poh_grpc_call_clear(NULL);
    ck_assert_int_eq(poh_grpc_run(NULL, 0, 0), 0);
    ck_assert_int_eq(poh_grpc_run(NULL, 1, 0), -EINVAL);
    poh_grpc_call_t c = {.method = "/x/y", .timeout = 1};
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), -EINVAL); /* no target */
    poh_grpc_target_t *t = poh_grpc_target_new("127.0.0.1:1", NULL, 0, 1);
    c.target = t;
    c.request_len = 3; /* length without bytes */
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), -EINVAL);
    poh_grpc_target_free(t);
}
END_TEST

/* ---- against poh_node_sim ---- */

/* Every fault mode in one run: each costs its own time only. */
START_TEST(test_fault_modes)
{
    sim_reset();
    static const struct {
        const char *addr; /* NULL: g_addr[listener] */
        int listener;
        int code;
        int alt_code; /* also acceptable (DNS environment), or -1 */
        int serving;
    } want[] = {
        {NULL, L_OK, GRPC_STATUS_OK, -1, POH_GRPC_SERVING_SERVING},
        {NULL, L_NOT_SERVING, GRPC_STATUS_OK, -1, POH_GRPC_SERVING_NOT_SERVING},
        {NULL, L_BLACKHOLE, GRPC_STATUS_DEADLINE_EXCEEDED, -1, POH_GRPC_SERVING_INVALID},
        {NULL, L_CLOSE, GRPC_STATUS_UNAVAILABLE, -1, POH_GRPC_SERVING_INVALID},
        {NULL, L_ABORT, GRPC_STATUS_RESOURCE_EXHAUSTED, -1, POH_GRPC_SERVING_INVALID},
        {NULL, L_SLOW, GRPC_STATUS_OK, -1, POH_GRPC_SERVING_SERVING},
        {NULL, L_UNIMPLEMENTED, GRPC_STATUS_UNIMPLEMENTED, -1, POH_GRPC_SERVING_INVALID},
        {"127.0.0.1:1", -1, GRPC_STATUS_UNAVAILABLE, -1, POH_GRPC_SERVING_INVALID},
        {"no-such-host.invalid:50051", -1, GRPC_STATUS_UNAVAILABLE,
         GRPC_STATUS_DEADLINE_EXCEEDED, POH_GRPC_SERVING_INVALID},
        {"[::1:50051", -1, GRPC_STATUS_UNAVAILABLE, -1, POH_GRPC_SERVING_INVALID},
        {"", -1, GRPC_STATUS_UNKNOWN, -1, POH_GRPC_SERVING_INVALID}, /* lame channel */
    };
    enum { N = sizeof want / sizeof want[0] };
    probe_t p[N];
    poh_grpc_call_t calls[N];
    for (size_t i = 0; i < N; i++) {
        probe_init(&p[i], want[i].addr ? want[i].addr : g_addr[want[i].listener], "", 1.0);
        calls[i] = p[i].c;
    }
    double t0 = now_mono();
    ck_assert_int_eq(poh_grpc_run(calls, N, 0), 0);
    double wall = now_mono() - t0;
    for (size_t i = 0; i < N; i++) {
        const poh_grpc_call_t *c = &calls[i];
        ck_assert_msg(c->code == want[i].code || c->code == want[i].alt_code,
                      "%s: code %s (%s), want %s", poh_grpc_target_address(c->target),
                      poh_grpc_code_name(c->code), c->details, poh_grpc_code_name(want[i].code));
        ck_assert_msg(c->serving_status == want[i].serving, "%s: serving %d want %d",
                      poh_grpc_target_address(c->target), c->serving_status, want[i].serving);
        ck_assert(c->latency >= 0 && c->latency < 1.5);
        if (c->code == GRPC_STATUS_OK)
            ck_assert_uint_eq(c->response_len, 2);
        else
            ck_assert_ptr_null(c->response);
    }
    ck_assert_str_eq(calls[L_ABORT].details, "busy");
    ck_assert(calls[L_SLOW].latency >= 0.29);
    ck_assert(calls[L_BLACKHOLE].latency >= 0.95);
    /* Concurrent: the blackhole's 1 s and the slow 0.3 s overlap, so the run
     * is shorter than the two latencies end to end, which one after the other
     * it could not be; a loaded machine stretches both sides alike. */
    ck_assert_msg(wall < calls[L_BLACKHOLE].latency + calls[L_SLOW].latency,
                  "run took %.3f s, blackhole %.3f s + slow %.3f s", wall,
                  calls[L_BLACKHOLE].latency, calls[L_SLOW].latency);
    ck_assert_msg(wall < 3.0, "run took %.3f s", wall);
    for (int l = L_OK; l <= L_UNIMPLEMENTED; l++) {
        if (l == L_BLACKHOLE || l == L_CLOSE)
            ck_assert_int_ge(sim_count(l, "tcp_accept"), 1);
        else
            ck_assert_int_eq(sim_count(l, POH_GRPC_HEALTH_CHECK_METHOD), 1);
    }
    for (size_t i = 0; i < N; i++) {
        p[i].c = calls[i];
        probe_free(&p[i]);
    }
}
END_TEST

START_TEST(test_deadline_caps_timeout)
{
    probe_t p;
    probe_init(&p, g_addr[L_BLACKHOLE], "", 5.0);
    double t0 = now_mono();
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, t0 + 0.3), 0);
    double wall = now_mono() - t0;
    ck_assert_int_eq(p.c.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    /* Capped: ended near the 0.3-s deadline, not at the 5-s timeout. The
     * upper bound leaves a loaded machine's timer lateness room; anything
     * under half the timeout shows the cap. */
    ck_assert_msg(wall >= 0.25 && wall < 2.5, "wall %.3f", wall);
    probe_free(&p);
}
END_TEST

START_TEST(test_deadline_already_passed)
{
    sim_reset();
    probe_t p;
    probe_init(&p, g_addr[L_OK], "", 5.0);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, now_mono() - 1), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    ck_assert_int_eq(sim_count(L_OK, POH_GRPC_HEALTH_CHECK_METHOD), 0);
    probe_free(&p);
}
END_TEST

/* Five rounds over one target: one connection (one peer address), five calls. */
START_TEST(test_channel_reuse)
{
    sim_reset();
    probe_t p;
    probe_init(&p, g_addr[L_OK], "poh.PoH", 2.0);
    for (int r = 0; r < 5; r++) {
        ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
        ck_assert_int_eq(p.c.code, GRPC_STATUS_OK);
        ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_SERVING);
    }
    char buf[2048];
    control("PEERS 0", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "PEER ipv4:127.0.0.1:", 20) == 0 && strstr(buf, "\nEND\n") &&
                      !strstr(strchr(buf, '\n') + 1, "PEER"),
                  "expected one peer, got:\n%s", buf);
    ck_assert_int_eq(sim_count(L_OK, POH_GRPC_HEALTH_CHECK_METHOD), 5);
    probe_free(&p);
}
END_TEST

START_TEST(test_unknown_service)
{
    probe_t p;
    probe_init(&p, g_addr[L_OK], "no.such.Service", 2.0);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_NOT_FOUND);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_INVALID);
    probe_free(&p);
}
END_TEST

START_TEST(test_metadata_and_traceparent)
{
    static const char *const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    probe_t p;
    probe_init(&p, g_addr[L_AUTH], "", 2.0);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_UNAUTHENTICATED);

    poh_grpc_md_t wrong[] = {{"authorization", "Bearer nope"}};
    p.c.metadata = wrong;
    p.c.nmetadata = 1;
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_UNAUTHENTICATED);

    poh_grpc_md_t md[] = {{"authorization", "Bearer t0ken"}, {"x-poh-probe", "1"}};
    p.c.metadata = md;
    p.c.nmetadata = 2;
    p.c.traceparent = tp;
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_OK);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_SERVING);

    char buf[1024], want[256];
    control("LASTMD 7 traceparent", buf, sizeof buf);
    snprintf(want, sizeof want, "VALUE %s\n", tp);
    ck_assert_str_eq(buf, want);
    control("LASTMD 7 x-poh-probe", buf, sizeof buf);
    ck_assert_str_eq(buf, "VALUE 1\n");
    control("LASTMD 7 user-agent", buf, sizeof buf);
    ck_assert_msg(strstr(buf, "poh_exporter/") != NULL, "user-agent: %s", buf);

    p.c.traceparent = NULL;
    p.c.nmetadata = 1;
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    control("LASTMD 7 traceparent", buf, sizeof buf);
    ck_assert_str_eq(buf, "NONE\n");
    probe_free(&p);
}
END_TEST

START_TEST(test_invalid_metadata)
{
    sim_reset();
    probe_t p;
    probe_init(&p, g_addr[L_OK], "", 2.0);
    poh_grpc_md_t md[] = {{"Bad Key", "x"}};
    p.c.metadata = md;
    p.c.nmetadata = 1;
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_INTERNAL);
    ck_assert_str_eq(p.c.details, "invalid metadata");
    ck_assert_int_eq(sim_count(L_OK, POH_GRPC_HEALTH_CHECK_METHOD), 0);
    probe_free(&p);
}
END_TEST

START_TEST(test_state_call)
{
    poh_grpc_target_t *t = poh_grpc_target_new(g_addr[L_OK], NULL, 0, 1);
    poh_grpc_call_t c = {.target = t, .method = "/poh.PoH/GetState", .timeout = 2.0};
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), 0);
    ck_assert_int_eq(c.code, GRPC_STATUS_OK);
    ck_assert_int_eq(c.serving_status, POH_GRPC_SERVING_INVALID); /* not a health call */
    static const struct {
        const char *path;
        poh_pb_type_t type;
        double want;
    } fields[] = {
        {"1", POH_PB_UINT64, 12345},
        {"2", POH_PB_UINT64, 12345 / 64},
        {"3", POH_PB_AUTO, 2e6},
        {"5.2", POH_PB_SINT64, -7},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        poh_pb_path_t path;
        poh_pb_value_t v;
        ck_assert_int_eq(poh_pb_path_parse(fields[i].path, &path), 0);
        ck_assert_int_eq(poh_pb_read(c.response, c.response_len, &path, fields[i].type, &v), 0);
        ck_assert_double_eq(poh_pb_value_double(&v), fields[i].want);
    }
    poh_pb_path_t path;
    poh_pb_value_t v;
    ck_assert_int_eq(poh_pb_path_parse("4", &path), 0);
    ck_assert_int_eq(poh_pb_read(c.response, c.response_len, &path, POH_PB_AUTO, &v),
                     POH_PB_EWIRETYPE);
    poh_grpc_call_clear(&c);
    ck_assert_ptr_null(c.response);
    poh_grpc_target_free(t);
}
END_TEST

/* Health status changes are seen on the same channel at the next run. */
START_TEST(test_status_follows_server)
{
    char buf[128];
    probe_t p;
    probe_init(&p, g_addr[L_SWITCH], "", 2.0);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_SERVING);
    control("MODE 8 not_serving", buf, sizeof buf);
    ck_assert_str_eq(buf, "OK\n");
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_OK);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_NOT_SERVING);
    control("MODE 8 abort:UNAVAILABLE", buf, sizeof buf);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_UNAVAILABLE);
    control("MODE 8 ok", buf, sizeof buf);
    control("HEALTH 8 SERVICE_UNKNOWN", buf, sizeof buf);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_SERVICE_UNKNOWN);
    control("HEALTH 8 SERVING", buf, sizeof buf);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.serving_status, POH_GRPC_SERVING_SERVING);
    probe_free(&p);
}
END_TEST

/* Many calls on one queue: all answered, counted exactly once each. */
START_TEST(test_many_calls)
{
    enum { N = 300, TARGETS = 30 };
    sim_reset();
    poh_grpc_target_t *t[TARGETS];
    for (int i = 0; i < TARGETS; i++)
        t[i] = poh_grpc_target_new(g_addr[L_MANY], NULL, 0, 1);
    static poh_grpc_call_t calls[N];
    for (int i = 0; i < N; i++)
        calls[i] = (poh_grpc_call_t){.target = t[i % TARGETS],
                                     .method = POH_GRPC_HEALTH_CHECK_METHOD, .timeout = 5,
                                     .health = true};
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(poh_grpc_run(calls, N, now_mono() + 10), 0);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(calls[i].code == GRPC_STATUS_OK, "call %d: %s %s", i,
                          poh_grpc_code_name(calls[i].code), calls[i].details);
            ck_assert_int_eq(calls[i].serving_status, POH_GRPC_SERVING_SERVING);
        }
    }
    ck_assert_int_eq(sim_count(L_MANY, POH_GRPC_HEALTH_CHECK_METHOD), 2 * N);
    char buf[8192];
    control("PEERS 9", buf, sizeof buf);
    int peers = 0;
    for (char *s = buf; (s = strstr(s, "PEER ")); s++)
        peers++;
    ck_assert_int_eq(peers, TARGETS); /* one connection per target, kept */
    for (int i = 0; i < N; i++)
        poh_grpc_call_clear(&calls[i]);
    for (int i = 0; i < TARGETS; i++)
        poh_grpc_target_free(t[i]);
}
END_TEST

static long sim_max_active(void)
{
    char buf[256];
    control("MAXACTIVE", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "VALUE ", 6) == 0, "MAXACTIVE: %s", buf);
    return atol(buf + 6);
}

/* A window bounds the calls in flight as the server sees them; every call
 * still gets its answer, and its timeout counts from when it begins: the
 * fourth wave of 300 ms calls starts about 0.9 s in, so 1 s timeouts counted
 * from the run's start would fail it. Without a window all are in flight. */
START_TEST(test_window)
{
    enum { N = 24, TARGETS = 8, WINDOW = 6 };
    poh_grpc_target_t *t[TARGETS];
    for (int i = 0; i < TARGETS; i++)
        t[i] = poh_grpc_target_new(g_addr[L_SLOW], NULL, 0, 1);
    poh_grpc_call_t calls[N];
    for (int i = 0; i < N; i++)
        calls[i] = (poh_grpc_call_t){.target = t[i % TARGETS],
                                     .method = POH_GRPC_HEALTH_CHECK_METHOD, .timeout = 1.0,
                                     .health = true};
    sim_reset();
    ck_assert_int_eq(poh_grpc_run_window(calls, N, now_mono() + 20, WINDOW), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(calls[i].code == GRPC_STATUS_OK, "call %d: %s %s", i,
                      poh_grpc_code_name(calls[i].code), calls[i].details);
        ck_assert(calls[i].latency < 1.0);
    }
    long most = sim_max_active();
    ck_assert_msg(most >= 1 && most <= WINDOW, "%ld calls in flight at once, window %d", most,
                  WINDOW);
    ck_assert_int_eq(sim_count(L_SLOW, POH_GRPC_HEALTH_CHECK_METHOD), N);

    for (int i = 0; i < N; i++)
        calls[i].timeout = 5;
    sim_reset();
    ck_assert_int_eq(poh_grpc_run_window(calls, N, now_mono() + 20, 0), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(calls[i].code, GRPC_STATUS_OK);
    ck_assert_int_eq(sim_max_active(), N);
    for (int i = 0; i < N; i++)
        poh_grpc_call_clear(&calls[i]);
    for (int i = 0; i < TARGETS; i++)
        poh_grpc_target_free(t[i]);
}
END_TEST

/* Calls still waiting for the window when the run's deadline passes fail
 * with DEADLINE_EXCEEDED without reaching the server. */
START_TEST(test_window_deadline)
{
    enum { N = 12, WINDOW = 4 };
    poh_grpc_target_t *t = poh_grpc_target_new(g_addr[L_SLOW], NULL, 0, 1);
    poh_grpc_call_t calls[N];
    for (int i = 0; i < N; i++)
        calls[i] = (poh_grpc_call_t){.target = t, .method = POH_GRPC_HEALTH_CHECK_METHOD,
                                     .timeout = 5, .health = true};
    sim_reset();
    /* Room for the first wave only (300 ms each, deadline 0.45 s). */
    ck_assert_int_eq(poh_grpc_run_window(calls, N, now_mono() + 0.45, WINDOW), 0);
    int ok = 0, late = 0;
    for (int i = 0; i < N; i++) {
        if (calls[i].code == GRPC_STATUS_OK)
            ok++;
        else if (calls[i].code == GRPC_STATUS_DEADLINE_EXCEEDED)
            late++;
    }
    ck_assert_int_eq(ok + late, N);
    ck_assert_int_le(ok, WINDOW);
    /* The server saw the first wave and the calls begun after it, never
     * the ones that were refused before they started. */
    long seen = sim_count(L_SLOW, POH_GRPC_HEALTH_CHECK_METHOD);
    ck_assert_int_le(seen, 2 * WINDOW);
    ck_assert_int_le(sim_max_active(), WINDOW);
    for (int i = 0; i < N; i++)
        poh_grpc_call_clear(&calls[i]);
    poh_grpc_target_free(t);
}
END_TEST

START_TEST(test_tls_failures)
{
    poh_grpc_tls_t tls = {.ca_file = "/nonexistent/ca.pem"};
    poh_grpc_target_t *t = poh_grpc_target_new(g_addr[L_OK], &tls, 0, 1);
    poh_grpc_call_t c = {.target = t, .method = POH_GRPC_HEALTH_CHECK_METHOD, .timeout = 2,
                         .health = true};
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), 0);
    ck_assert_int_eq(c.code, GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(c.details, "tls: cannot read ca_file");
    poh_grpc_target_free(t);

    poh_grpc_tls_t half = {.cert_file = POH_SOURCE_DIR "/tests/sim/poh_node_sim/README.md"};
    t = poh_grpc_target_new(g_addr[L_OK], &half, 0, 1);
    c.target = t;
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), 0);
    ck_assert_int_eq(c.code, GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_str_eq(c.details, "tls: cert_file and key_file must be given together");
    poh_grpc_target_free(t);

    /* TLS towards a plaintext server: the handshake fails, the call says so.
     * It fails at once; the timeout only has to outlast a loaded machine
     * (2 s ran out once under ASan with a load average of 12: code 4). */
    poh_grpc_tls_t skip = {.insecure_skip_verify = true};
    t = poh_grpc_target_new(g_addr[L_OK], &skip, 0, 1);
    c.target = t;
    c.timeout = 20;
    ck_assert_int_eq(poh_grpc_run(&c, 1, 0), 0);
    ck_assert_int_eq(c.code, GRPC_STATUS_UNAVAILABLE);
    poh_grpc_call_clear(&c);
    poh_grpc_target_free(t);
}
END_TEST

/* A plaintext host:port target, name or address, gets the engine's own
 * connection (a name looked up on a helper thread); anything else, a gRPC
 * target URI here, goes through gRPC's client channel (as TLS targets do).
 * Both keep one connection for all rounds. */
START_TEST(test_channel_reuse_by_name)
{
    static const char *const forms[] = {"localhost:", "ipv4:127.0.0.1:"};
    for (size_t f = 0; f < 2; f++) {
        sim_reset();
        char addr[40];
        snprintf(addr, sizeof addr, "%s%d", forms[f], g_ports[L_SWITCH]);
        probe_t p;
        probe_init(&p, addr, "", 2.0);
        for (int r = 0; r < 5; r++) {
            ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
            ck_assert_msg(p.c.code == GRPC_STATUS_OK, "%s round %d: %s %s", addr, r,
                          poh_grpc_code_name(p.c.code), p.c.details);
        }
        char buf[2048];
        control("PEERS 8", buf, sizeof buf);
        ck_assert_msg(strncmp(buf, "PEER ", 5) == 0 && !strstr(strchr(buf, '\n') + 1, "PEER"),
                      "%s: expected one peer, got:\n%s", addr, buf);
        ck_assert_int_eq(sim_count(L_SWITCH, POH_GRPC_HEALTH_CHECK_METHOD), 5);
        probe_free(&p);
    }
}
END_TEST

/* A TCP relay in a child process: 127.0.0.1:*port (0 = pick one) to the
 * simulator's port `to`. Killing the child cuts every relayed connection. */
static pid_t relay_start(int *port, int to)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(ls, 16), 0);
    socklen_t len = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0) {
        close(ls);
        return pid;
    }
    struct pollfd pf[33];
    int peer[33];
    size_t n = 1;
    pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    for (int iter = 0; iter < 1000000; iter++) { /* killed long before */
        if (poll(pf, n, 1000) < 0)
            _exit(1);
        if ((pf[0].revents & POLLIN) && n + 2 <= 33) {
            int a = accept(ls, NULL, NULL);
            int b = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in ta = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&ta, sizeof ta) != 0)
                _exit(1);
            pf[n] = (struct pollfd){.fd = a, .events = POLLIN};
            peer[n++] = b;
            pf[n] = (struct pollfd){.fd = b, .events = POLLIN};
            peer[n++] = a;
        }
        for (size_t i = 1; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            char buf[16384];
            ssize_t r = read(pf[i].fd, buf, sizeof buf);
            if (r <= 0 || write(peer[i], buf, (size_t)r) != r)
                _exit(0);
        }
    }
    _exit(0);
}

static void relay_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The engine's own connection: a target that drops its connections while
 * idle is reconnected at the next run; one that is down fails UNAVAILABLE
 * and is probed again once it is back. */
START_TEST(test_reconnect_after_disconnect)
{
    int port = 0;
    pid_t relay = relay_start(&port, g_ports[L_OK]);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    probe_t p;
    probe_init(&p, addr, "", 2.0);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_OK);

    relay_kill(relay); /* cuts the kept connection while idle */
    relay = relay_start(&port, g_ports[L_OK]);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_msg(p.c.code == GRPC_STATUS_OK, "after restart: %s %s",
                  poh_grpc_code_name(p.c.code), p.c.details);

    relay_kill(relay); /* and now nobody listens */
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_msg(strstr(p.c.details, "Connection refused"), "%s", p.c.details);
    ck_assert(p.c.latency >= 0 && p.c.latency < 1.0);

    relay = relay_start(&port, g_ports[L_OK]);
    ck_assert_int_eq(poh_grpc_run(&p.c, 1, 0), 0);
    ck_assert_int_eq(p.c.code, GRPC_STATUS_OK);
    relay_kill(relay);
    probe_free(&p);
}
END_TEST

/* A connection that never completes (the listener's accept queue is full, so
 * its SYNs go unanswered) costs only that target's timeout: the other calls
 * of the run finish on time and their latency is their own. */
START_TEST(test_connect_timeout)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(ls, 0), 0);
    socklen_t len = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &len);
    /* Fill the queue: connects complete (without accept) until one hangs. */
    int fill[8];
    size_t nfill = 0;
    bool hangs = false;
    while (nfill < 8 && !hangs) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        fill[nfill++] = fd;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            continue;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        hangs = poll(&pf, 1, 200) == 0;
    }
    ck_assert_msg(hangs, "could not make a connect hang on loopback");
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    probe_t hang, ok;
    /* The hanging connect's 3 s deadline is far from the slow target's 0.3 s,
     * so the bounds below hold on a loaded 2-core machine: the slow call ends
     * in well under the hang's deadline, the run soon after that deadline. */
    probe_init(&hang, addr, "", 3.0);
    probe_init(&ok, g_addr[L_SLOW], "", 3.0);
    poh_grpc_call_t calls[2] = {hang.c, ok.c};
    double t0 = now_mono();
    ck_assert_int_eq(poh_grpc_run(calls, 2, 0), 0);
    double wall = now_mono() - t0;
    ck_assert_int_eq(calls[0].code, GRPC_STATUS_DEADLINE_EXCEEDED);
    ck_assert_msg(calls[0].latency >= 2.95 && calls[0].latency < 4.5, "%.3f",
                  calls[0].latency);
    ck_assert_int_eq(calls[1].code, GRPC_STATUS_OK);
    ck_assert_msg(calls[1].latency >= 0.29 && calls[1].latency < 1.5, "%.3f", calls[1].latency);
    ck_assert_msg(wall < 4.5, "wall %.3f", wall);
    hang.c = calls[0];
    ok.c = calls[1];
    probe_free(&hang);
    probe_free(&ok);
    for (size_t i = 0; i < nfill; i++)
        close(fill[i]);
    close(ls);
}
END_TEST

typedef struct shared_run {
    poh_grpc_target_t **t;
    int ntargets;
    int fails;
} shared_run_t;

static void *run_thread(void *arg)
{
    shared_run_t *sr = arg;
    poh_grpc_call_t calls[8];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < sr->ntargets; i++)
            calls[i] = (poh_grpc_call_t){.target = sr->t[i],
                                         .method = POH_GRPC_HEALTH_CHECK_METHOD, .timeout = 5,
                                         .health = true};
        if (poh_grpc_run(calls, (size_t)sr->ntargets, 0) != 0)
            sr->fails++;
        for (int i = 0; i < sr->ntargets; i++) {
            if (calls[i].code != GRPC_STATUS_OK)
                sr->fails++;
            poh_grpc_call_clear(&calls[i]);
        }
    }
    return NULL;
}

/* Two runs at once over the same fresh targets (a scrape and a /probe): one
 * opens each connection, the other waits for none of it and still answers. */
START_TEST(test_concurrent_runs)
{
    sim_reset();
    enum { T = 8 };
    poh_grpc_target_t *t[T];
    for (int i = 0; i < T; i++)
        t[i] = poh_grpc_target_new(g_addr[L_MANY], NULL, 0, 1);
    shared_run_t a = {t, T, 0}, b = {t, T, 0};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, run_thread, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, run_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.fails + b.fails, 0);
    ck_assert_int_eq(sim_count(L_MANY, POH_GRPC_HEALTH_CHECK_METHOD), 2 * 20 * T);
    for (int i = 0; i < T; i++)
        poh_grpc_target_free(t[i]);
}
END_TEST

static Suite *grpc_probe_suite(void)
{
    Suite *s = suite_create("grpc_probe");
    TCase *tables = tcase_create("tables");
    tcase_add_loop_test(tables, test_code_names, 0, sizeof code_cases / sizeof code_cases[0]);
    tcase_add_test(tables, test_code_edges);
    tcase_add_test(tables, test_health_request);
    tcase_add_test(tables, test_bad_arguments);
    suite_add_tcase(s, tables);

    TCase *sim = tcase_create("poh_node_sim");
    tcase_add_unchecked_fixture(sim, sim_start, sim_stop);
    tcase_set_timeout(sim, 60);
    tcase_add_test(sim, test_fault_modes);
    tcase_add_test(sim, test_deadline_caps_timeout);
    tcase_add_test(sim, test_deadline_already_passed);
    tcase_add_test(sim, test_channel_reuse);
    tcase_add_test(sim, test_unknown_service);
    tcase_add_test(sim, test_metadata_and_traceparent);
    tcase_add_test(sim, test_invalid_metadata);
    tcase_add_test(sim, test_state_call);
    tcase_add_test(sim, test_status_follows_server);
    tcase_add_test(sim, test_many_calls);
    tcase_add_test(sim, test_window);
    tcase_add_test(sim, test_window_deadline);
    tcase_add_test(sim, test_tls_failures);
    tcase_add_test(sim, test_channel_reuse_by_name);
    tcase_add_test(sim, test_reconnect_after_disconnect);
    tcase_add_test(sim, test_connect_timeout);
    tcase_add_test(sim, test_concurrent_runs);
    suite_add_tcase(s, sim);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(grpc_probe_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
