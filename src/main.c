/* SPDX-License-Identifier: Apache-2.0 */
/* poh_exporter: flags, config load, signals, start and stop. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "collectors/collector.h"
#include "core/log.h"
#include "grpc/grpc_probe.h"
#include "http/http.h"
#include "poh_version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: poh_exporter [<flags>]\n\n"
            "Prometheus exporter for the PoH/DAG transaction network: MongoDB change streams\n"
            "and oplog, gRPC probes of PoH and Presence nodes, OpenTelemetry spans.\n\n"
            "Flags:\n"
            "  -h, --help                     Show this help and exit.\n"
            "      --version                  Show version and exit.\n"
            "      --config.file=PATH         Configuration file (YAML). Without it the embedded\n"
            "                                 default runs (listen $PROMETHEUS_BIND or 0.0.0.0:8000).\n"
            "      --config.check             Validate the configuration, print what is wrong,\n"
            "                                 exit 0 if valid, 1 if not.\n"
            "      --web.listen-address=ADDR  Address to listen on (host:port), overrides\n"
            "                                 web.listen_address.\n"
            "      --web.telemetry-path=PATH  Path of the metrics endpoint (default /metrics).\n"
            "      --web.config.file=PATH     Web config for TLS and basic auth, in the format of\n"
            "                                 prometheus/exporter-toolkit; overrides\n"
            "                                 web.config_file. Re-read when it changes.\n"
            "      --log.level=LEVEL          debug, info, warn or error (default info).\n"
            "      --log.format=FORMAT        logfmt or json (default logfmt).\n\n"
            "Signals: SIGHUP reloads the configuration and the web config; SIGTERM and SIGINT\n"
            "stop cleanly.\n");
}

enum {
    OPT_VERSION = 256,
    OPT_CONFIG,
    OPT_CHECK,
    OPT_LISTEN,
    OPT_PATH,
    OPT_LEVEL,
    OPT_FORMAT,
    OPT_WEB_CONFIG,
    OPT_METRIC_TABLE /* hidden: the collectors' metric tables, for tests */
};

/* What --config.check found of the web config, for its verdict line. */
typedef struct web_check {
    char file[4096];   /* "" when the configuration names none */
    bool failed;
} web_check_t;

static int check_web_config(void *ctx, const poh_config_t *cfg, poh_strbuf_t *err)
{
    web_check_t *wc = ctx;
    if (!cfg->web.config_file)
        return 0;
    snprintf(wc->file, sizeof wc->file, "%s", cfg->web.config_file);
    int rc = poh_http_check_web_config(cfg->web.config_file, err);
    wc->failed = rc < 0;
    return rc;
}

/* glibc's allocator: two arenas, not eight per core. Our threads (scrapes,
 * change streams, gRPC's pollers) allocate in one arena and free in
 * another, and each arena keeps its own free pages: with eight, the soak
 * (bench/soak) held 2-3 MB more for nothing. Two suit the two cores this is
 * sized for; bench/grpc_fanout shows no cost. (A fixed M_MMAP_THRESHOLD
 * saved another 2-3 MB but cost 20-35% more CPU per probe: not taken.) */
static void malloc_tune(void)
{
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 2);
#endif
}

/* The command line: what main() runs and with what. */
typedef struct {
    const char *config_path;
    bool check;
    poh_overrides_t ov;
} flags_t;

/* Parse argv into f. Returns -1 to go on, or the exit status when a flag
 * said all there was to do (--help, --version, --print-metric-table) or was
 * wrong. */
static int parse_flags(int argc, char **argv, flags_t *f)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"config.file", required_argument, NULL, OPT_CONFIG},
        {"config.check", no_argument, NULL, OPT_CHECK},
        {"web.listen-address", required_argument, NULL, OPT_LISTEN},
        {"web.telemetry-path", required_argument, NULL, OPT_PATH},
        {"web.config.file", required_argument, NULL, OPT_WEB_CONFIG},
        {"log.level", required_argument, NULL, OPT_LEVEL},
        {"log.format", required_argument, NULL, OPT_FORMAT},
        {"print-metric-table", no_argument, NULL, OPT_METRIC_TABLE},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case OPT_VERSION:
            printf("poh_exporter, version %s (revision: %s)\n", POH_VERSION, POH_REVISION);
            return 0;
        case OPT_CONFIG: f->config_path = optarg; break;
        case OPT_CHECK: f->check = true; break;
        case OPT_LISTEN: f->ov.listen_address = optarg; break;
        case OPT_PATH: f->ov.telemetry_path = optarg; break;
        case OPT_WEB_CONFIG: f->ov.web_config_file = optarg; break;
        case OPT_LEVEL: f->ov.log_level = optarg; break;
        case OPT_FORMAT: f->ov.log_format = optarg; break;
        case OPT_METRIC_TABLE: return poh_collector_kinds_print_metrics(stdout) < 0;
        default:
            fprintf(stderr, "poh_exporter: unknown or incomplete flag \"%s\"; see --help\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "poh_exporter: unexpected argument \"%s\"; see --help\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* --config.check: the exit status. */
static int check_config(const flags_t *f)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    const char *name = f->config_path ? f->config_path : "<embedded>";
    web_check_t wc = {.file = "", .failed = false};
    int rc = poh_app_check_config(f->config_path, &f->ov, &err, check_web_config, &wc);
    if (rc < 0) {
        fprintf(stderr, "%s", err.data ? err.data : "invalid configuration\n");
        if (wc.failed)
            fprintf(stderr, "FAILED: the web config %s is not valid\n", wc.file);
        else
            fprintf(stderr, "FAILED: %s is not valid\n", name);
    } else {
        printf("SUCCESS: %s is valid%s%s%s\n", name, wc.file[0] ? " (and its web config " : "",
               wc.file, wc.file[0] ? ")" : "");
    }
    poh_strbuf_free(&err);
    return rc < 0 ? 1 : 0;
}

/* Signals are taken synchronously by this thread; every thread started
 * later inherits the mask, so none of them is interrupted by them. */
static void block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGHUP);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Reload on SIGHUP until SIGTERM or SIGINT. */
static void wait_signals(const sigset_t *sigs, poh_app_t *app, poh_http_t *http)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            POH_INFO("main", "SIGHUP: reloading configuration");
            poh_strbuf_t rerr = POH_STRBUF_INIT;
            poh_app_reload(app, &rerr);
            poh_http_reload_web_config(http);
            poh_strbuf_free(&rerr);
            continue;
        }
        POH_INFO("main", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
}

int main(int argc, char **argv)
{
    malloc_tune();
    flags_t f = {0};
    int status = parse_flags(argc, argv, &f);
    if (status >= 0)
        return status;
    poh_grpc_runtime_init(); /* before any thread starts */
    if (f.check)
        return check_config(&f);

    sigset_t sigs;
    block_signals(&sigs);
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_app_t *app = poh_app_create(f.config_path, &f.ov, &err);
    if (!app) {
        /* Logging may not be set up yet: the config was not readable. */
        fprintf(stderr, "%s", err.data ? err.data : "cannot start\n");
        poh_strbuf_free(&err);
        return 1;
    }
    poh_strbuf_free(&err);
    POH_INFO("main", "starting poh_exporter version %s (revision %s), config %s", POH_VERSION,
             POH_REVISION, f.config_path ? f.config_path : "<embedded>");
    poh_http_t *http = poh_http_start(app);
    if (!http) {
        poh_app_destroy(app);
        return 1;
    }
    wait_signals(&sigs, app, http);
    poh_http_stop(http);
    poh_app_destroy(app);
    POH_INFO("main", "stopped");
    return 0;
}
