/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/http.h"
#include "http/landing.h"
#include "http/web_gate.h"

struct poh_http {
    poh_app_t *app;
    struct MHD_Daemon *d;
    unsigned port;
    size_t max_request_bytes;
    unsigned max_probes;          /* web.max_concurrent_probes */
    atomic_uint probes;           /* /probe requests in progress */
    /* Whole-request deadline (web.request_timeout): libmicrohttpd's own
     * timeout is an idle one, reset by every byte, so a client sending a
     * header line every few seconds held its connection for ever. Every
     * connection is listed; the reaper shuts down one whose request is not
     * in by its deadline. */
    double request_timeout, idle_timeout;
    pthread_mutex_t mu;
    struct conn *conns;           /* under mu */
    pthread_t reaper;
    bool reaper_started, stopping; /* stopping under mu */
    pthread_cond_t cv;
    poh_web_gate_t *gate;         /* the web config file (TLS, auth, headers) */
    poh_landing_t *landing;       /* the landing page's pictures, fed by each scrape */
};

/* One TCP connection (libmicrohttpd's socket context). */
typedef struct conn {
    int fd;
    poh_web_tls_t *tls;           /* the TLS generation the connection started with */
    poh_web_gen_t *gen;           /* the web config generation of its current request */
    bool armed;                   /* a request is due by deadline */
    bool cut;
    double deadline;
    struct conn *prev, *next;
} conn_t;

/* Per-request state across the access handler's calls. */
typedef struct req {
    size_t body_bytes;
    bool too_large;
} req_t;

static conn_t *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* nosniff on every answer, and the headers the web config file adds (it may
 * set X-Content-Type-Options itself, to the same value). */
static void add_configured_headers(struct MHD_Connection *c, struct MHD_Response *r)
{
    conn_t *cn = conn_of(c);
    size_t n = 0;
    const poh_config_kv_t *hs = cn && cn->gen ? poh_web_gen_headers(cn->gen, &n) : NULL;
    bool nosniff = false;
    for (size_t i = 0; i < n; i++) {
        MHD_add_response_header(r, hs[i].key, hs[i].value);
        nosniff |= strcasecmp(hs[i].key, "X-Content-Type-Options") == 0;
    }
    if (!nosniff)
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* The body of a large answer (a scrape, a probe) is freed once sent, when
 * whatever else its request allocated (the uncompressed exposition, the
 * scrape's registries) is free too; then glibc is asked to give free pages
 * back (malloc_trim also releases free pages inside its arenas, not only at
 * their top), at most once every 5 s. bench/soak, 2 minutes of the full load
 * (1,000 targets + GetState, 10 streams at 2,000 tx/s, 1 s scrapes): VmRSS
 * at the end 49.1 MB every 5 s, 46.7 MB every second, 54.4 MB never; CPU
 * 80.6, 86.0 and 82.8 s; bench/grpc_fanout at 1,000 targets 74-76 µs per
 * probe every 5 s, 80-84 every second, 72-74 never. Every second cost more
 * CPU than the 10% the memory issue allows; every 5 s costs nothing seen. */
#define BIG_BODY (64u << 10)
#define TRIM_EVERY_MS 5000

static void free_big_body(void *p)
{
    static atomic_llong last_ms;
    free(p);
    long long now = (long long)(poh_now_mono() * 1000);
    long long last = atomic_load(&last_ms);
    if (now - last >= TRIM_EVERY_MS && atomic_compare_exchange_strong(&last_ms, &last, now))
        malloc_trim(0);
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                                char *data, size_t len, const char *encoding, const char *allow)
{
    struct MHD_Response *r =
        len >= BIG_BODY ? MHD_create_response_from_buffer_with_free_callback(len, data, free_big_body)
                        : MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    add_configured_headers(c, r);
    if (encoding)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text,
                                 const char *allow)
{
    char *d = strdup(text);
    if (!d)
        return MHD_NO;
    return send_buf(c, status, "text/plain; charset=utf-8", d, strlen(d), NULL, allow);
}

static bool is_get(const char *m)
{
    return strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0;
}

static double scrape_timeout_header(struct MHD_Connection *c)
{
    const char *v =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Prometheus-Scrape-Timeout-Seconds");
    return poh_http_parse_scrape_timeout(v);
}

/* Send a rendered exposition, gzipped when the client accepts it. */
static enum MHD_Result send_metrics(struct MHD_Connection *c, poh_strbuf_t *body,
                                    poh_format_t fmt)
{
    const char *ctype = poh_format_content_type(fmt);
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_ACCEPT_ENCODING);
    enum MHD_Result ret;
    if (poh_http_accepts_gzip(ae)) {
        poh_strbuf_t z = POH_STRBUF_INIT;
        if (poh_gzip(body->data ? body->data : "", body->len, &z) < 0) {
            poh_strbuf_free(&z);
            poh_strbuf_free(body);
            return send_text(c, 500, "compression failed\n", NULL);
        }
        poh_strbuf_free(body);
        size_t len = z.len;
        ret = send_buf(c, 200, ctype, poh_strbuf_steal(&z), len, "gzip", NULL);
    } else {
        size_t len = body->len;
        ret = send_buf(c, 200, ctype, poh_strbuf_steal(body), len, NULL, NULL);
    }
    return ret;
}

static enum MHD_Result scrape_failed(struct MHD_Connection *c, int rc)
{
    POH_ERROR("http", "scrape failed: %s", strerror(rc < 0 ? -rc : ENOMEM));
    return send_text(c, 500, "scrape failed\n", NULL);
}

/* A gzipped scrape is rendered in chunks straight into the compressor: the
 * uncompressed body (4.4 MB at 1,000 targets with a state call) is never
 * whole in memory, only its compressed tenth (bench/soak, docs/sizing.md). */
static enum MHD_Result scrape_gzip(poh_http_t *h, struct MHD_Connection *c, poh_format_t fmt)
{
    poh_strbuf_t chunk = POH_STRBUF_INIT, z = POH_STRBUF_INIT;
    poh_gzip_stream_t g;
    int rc = poh_gzip_begin(&g, &z);
    if (rc == 0) {
        poh_render_sink_t sink = {poh_gzip_take, &g};
        rc = poh_app_scrape(h->app, scrape_timeout_header(c), fmt, &chunk, &sink);
    }
    if (rc == 0 && chunk.failed)
        rc = -ENOMEM;
    poh_strbuf_free(&chunk);
    if (rc == 0)
        rc = poh_gzip_end(&g);
    poh_gzip_abort(&g);
    if (rc < 0 || z.failed) {
        poh_strbuf_free(&z);
        return scrape_failed(c, rc);
    }
    size_t len = z.len;
    return send_buf(c, 200, poh_format_content_type(fmt), poh_strbuf_steal(&z), len, "gzip",
                    NULL);
}

static enum MHD_Result handle_metrics(poh_http_t *h, struct MHD_Connection *c)
{
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    poh_format_t fmt = poh_format_negotiate(accept);
    if (poh_http_accepts_gzip(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING)))
        return scrape_gzip(h, c, fmt);
    poh_strbuf_t body = POH_STRBUF_INIT;
    int rc = poh_app_scrape(h->app, scrape_timeout_header(c), fmt, &body, NULL);
    if (rc < 0 || body.failed) {
        poh_strbuf_free(&body);
        return scrape_failed(c, rc);
    }
    return send_metrics(c, &body, fmt);
}

static enum MHD_Result handle_probe(poh_http_t *h, struct MHD_Connection *c)
{
    const char *target = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target");
    const char *module = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "module");
    if (!target || !*target)
        return send_text(c, 400, "target parameter is missing\n", NULL);
    if (!module || !*module)
        return send_text(c, 400, "module parameter is missing\n", NULL);
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    poh_format_t fmt = poh_format_negotiate(accept);
    /* Probes have their own limit, below the connection limit, so they
     * cannot take every connection from /metrics and /-/healthy. */
    if (atomic_fetch_add(&h->probes, 1) >= h->max_probes) {
        atomic_fetch_sub(&h->probes, 1);
        return send_text(c, 503, "too many /probe requests in progress "
                                 "(web.max_concurrent_probes)\n", NULL);
    }
    poh_strbuf_t body = POH_STRBUF_INIT;
    const char *dbg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "debug");
    bool debug = dbg && strcmp(dbg, "true") == 0;
    int rc = poh_app_probe(h->app, module, target, scrape_timeout_header(c), fmt, debug, &body);
    atomic_fetch_sub(&h->probes, 1);
    if (rc == -EINVAL || rc == -EACCES) {
        enum MHD_Result ret = send_text(c, rc == -EACCES ? 403 : 400,
                                        body.data ? body.data : "bad request\n", NULL);
        poh_strbuf_free(&body);
        return ret;
    }
    if (rc < 0 || body.failed) {
        poh_strbuf_free(&body);
        return send_text(c, 500, "probe failed\n", NULL);
    }
    if (debug) {
        size_t len = body.len;
        return send_buf(c, 200, "text/plain; charset=utf-8", poh_strbuf_steal(&body), len, NULL,
                        NULL);
    }
    return send_metrics(c, &body, fmt);
}

/* Whether a request comes from a browser on another site: it says so in
 * Sec-Fetch-Site, or its Origin is not this server. Scripts and curl send
 * neither; a page cannot forge them. */
static bool cross_site(struct MHD_Connection *c)
{
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return true;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return false;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *sep = strstr(origin, "://");
    return !host || !sep || strcasecmp(sep + 3, host) != 0;
}

static enum MHD_Result handle_reload(poh_http_t *h, struct MHD_Connection *c)
{
    if (cross_site(c))
        return send_text(c, 403, "cross-site request refused\n", NULL);
    poh_app_view_t *v = poh_app_acquire(h->app);
    bool enabled = poh_app_view_config(v)->web.enable_reload;
    poh_app_release(v);
    if (!enabled)
        return send_text(c, 403, "Lifecycle API is not enabled (web.enable_reload).\n", NULL);
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_app_reload(h->app, &err);
    if (poh_web_gate_reload(h->gate) < 0) {
        poh_strbuf_puts(&err, "the web config file did not load (see the log)\n");
        rc = rc < 0 ? rc : -EINVAL;
    }
    enum MHD_Result ret;
    if (rc < 0) {
        poh_strbuf_t msg = POH_STRBUF_INIT;
        poh_strbuf_printf(&msg, "failed to reload config:\n%s", err.data ? err.data : "");
        size_t len = msg.len;
        ret = send_buf(c, 500, "text/plain; charset=utf-8", poh_strbuf_steal(&msg), len, NULL,
                       NULL);
    } else {
        ret = send_text(c, 200, "OK\n", NULL);
    }
    poh_strbuf_free(&err);
    return ret;
}

/* The request on c must be in by now + within (never later than an earlier
 * deadline already set), or none is due (within < 0). */
static void conn_arm(poh_http_t *h, struct MHD_Connection *c, double within, bool keep_earlier)
{
    conn_t *cn = conn_of(c);
    if (!cn)
        return;
    pthread_mutex_lock(&h->mu);
    double d = poh_now_mono() + within;
    if (within < 0)
        cn->armed = false;
    else if (!cn->armed || !keep_earlier || d < cn->deadline) {
        cn->deadline = keep_earlier && cn->armed && cn->deadline < d ? cn->deadline : d;
        cn->armed = true;
    }
    pthread_mutex_unlock(&h->mu);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    poh_http_t *h = cls;
    conn_t *cn = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(cn = calloc(1, sizeof *cn)))
            return;
        cn->fd = ci->connect_fd;
        cn->armed = true;
        if (poh_web_gate_tls(h->gate)) {
            /* Before the handshake: the TLS generation in force now. */
            poh_web_gen_t *gen = poh_web_gate_acquire(h->gate);
            cn->tls = poh_web_tls_ref(poh_web_gen_tls(gen));
            poh_web_gen_release(gen);
            const union MHD_ConnectionInfo *ti =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            if (!ti || !cn->tls || poh_web_tls_session_setup(cn->tls, ti->tls_session) < 0) {
                POH_ERROR("http", "cannot set up TLS for a new connection; closing it");
                shutdown(cn->fd, SHUT_RDWR);
            }
        }
        pthread_mutex_lock(&h->mu);
        cn->deadline = poh_now_mono() + h->request_timeout;
        cn->next = h->conns;
        if (h->conns)
            h->conns->prev = cn;
        h->conns = cn;
        pthread_mutex_unlock(&h->mu);
        *socket_context = cn;
    } else if (cn) {
        pthread_mutex_lock(&h->mu);
        if (cn->prev)
            cn->prev->next = cn->next;
        else
            h->conns = cn->next;
        if (cn->next)
            cn->next->prev = cn->prev;
        pthread_mutex_unlock(&h->mu);
        poh_web_tls_unref(cn->tls);
        poh_web_gen_release(cn->gen);
        free(cn);
        *socket_context = NULL;
    }
}

/* Called when a request line has arrived: the rest of it is due within
 * the request timeout. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)uri;
    poh_http_t *h = cls;
    conn_arm(h, c, h->request_timeout, true);
    return NULL;
}

static void *reaper_main(void *arg)
{
    poh_http_t *h = arg;
    pthread_mutex_lock(&h->mu);
    double polled = poh_now_mono();
    while (!h->stopping) {
        double now = poh_now_mono();
        if (now - polled >= 1.0) {
            /* the web config and its PEM files: re-read when they change */
            pthread_mutex_unlock(&h->mu);
            poh_web_gate_poll(h->gate);
            pthread_mutex_lock(&h->mu);
            polled = now = poh_now_mono();
        }
        for (conn_t *cn = h->conns; cn; cn = cn->next)
            if (cn->armed && !cn->cut && now > cn->deadline) {
                /* libmicrohttpd sees the error and closes it; the descriptor
                 * stays its own (shutdown, not close). */
                shutdown(cn->fd, SHUT_RDWR);
                cn->cut = true;
                POH_DEBUG("http", "dropped a client that did not send its request within %.1fs",
                          h->request_timeout);
            }
        struct timespec ts = poh_mono_to_abs_realtime(now + 0.25);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static enum MHD_Result route(poh_http_t *h, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    conn_arm(h, c, -1, false); /* the request is in: no deadline while it is served */
    poh_app_view_t *v = poh_app_acquire(h->app);
    bool is_metrics = strcmp(url, poh_app_view_config(v)->web.telemetry_path) == 0;
    poh_app_release(v);

    if (strcmp(url, "/-/reload") == 0) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 && strcmp(method, MHD_HTTP_METHOD_PUT) != 0)
            return send_text(c, 405, "Only POST or PUT requests allowed.\n", "POST, PUT");
        return handle_reload(h, c);
    }
    bool known = is_metrics || strcmp(url, "/") == 0 || strcmp(url, "/probe") == 0 ||
                 strcmp(url, "/-/healthy") == 0 || strcmp(url, "/-/ready") == 0;
    if (!known)
        return send_text(c, 404, "404 page not found\n", NULL);
    if (!is_get(method))
        return send_text(c, 405, "Method Not Allowed\n", "GET, HEAD");
    if (is_metrics)
        return handle_metrics(h, c);
    if (strcmp(url, "/probe") == 0)
        return handle_probe(h, c);
    if (strcmp(url, "/-/healthy") == 0)
        return send_text(c, 200, "Healthy.\n", NULL);
    if (strcmp(url, "/-/ready") == 0)
        return send_text(c, 200, "Ready.\n", NULL);
    poh_strbuf_t html = POH_STRBUF_INIT;
    const char *rs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "refresh");
    char *end = NULL;
    unsigned long refresh = rs ? strtoul(rs, &end, 10) : 30;
    if (rs && (end == rs || *end || refresh > 86400))
        refresh = 30;
    poh_landing_page(h->landing, h->app,
                     MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                     (unsigned)refresh, &html);
    if (html.failed) {
        poh_strbuf_free(&html);
        return send_text(c, 500, "out of memory\n", NULL);
    }
    size_t len = html.len;
    return send_buf(c, 200, "text/html; charset=utf-8", poh_strbuf_steal(&html), len, NULL,
                    NULL);
}

static void peer_address(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

/* The web config's rate limit and basic auth, before anything else of the
 * request is looked at. false: refused, with *ret the answer. */
static bool admit(poh_http_t *h, struct MHD_Connection *c, enum MHD_Result *ret)
{
    conn_t *cn = conn_of(c);
    poh_web_gen_t *gen = poh_web_gate_acquire(h->gate);
    if (cn) {
        poh_web_gen_release(cn->gen); /* the previous request's, kept alive */
        cn->gen = gen;
    }
    char *user = NULL, *pass = NULL;
    if (poh_web_gen_needs_auth(gen))
        user = MHD_basic_auth_get_username_password(c, &pass);
    char client[INET6_ADDRSTRLEN];
    peer_address(c, client, sizeof client);
    poh_admit_t a = poh_web_gen_admit(h->gate, gen, user, pass, client);
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    if (!cn)
        poh_web_gen_release(gen);
    if (a == POH_ADMIT_OK)
        return true;
    if (a == POH_ADMIT_RATE_LIMITED) {
        *ret = send_text(c, 429, "Too Many Requests\n", NULL);
        return false;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen("Unauthorized\n"), (void *)"Unauthorized\n", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        *ret = MHD_NO;
        return false;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Basic realm=\"poh_exporter\", charset=\"UTF-8\"");
    add_configured_headers(c, r);
    *ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
    MHD_destroy_response(r);
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    poh_http_t *h = cls;
    req_t *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        enum MHD_Result denied;
        if (!admit(h, c, &denied))
            return denied;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->max_request_bytes)
            return send_text(c, 413, "request body too large\n", NULL);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* No route takes a body; it is counted and dropped. */
        rq->body_bytes += *upload_data_size;
        *upload_data_size = 0;
        if (rq->body_bytes > h->max_request_bytes)
            rq->too_large = true;
        return MHD_YES;
    }
    if (rq->too_large)
        return send_text(c, 413, "request body too large\n", NULL);
    return route(h, c, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    poh_http_t *h = cls;
    (void)toe;
    /* kept alive: the next request is due within the idle timeout and then
     * the request timeout */
    conn_arm(h, c, h->idle_timeout + h->request_timeout, false);
    free(*con_cls);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    POH_DEBUG("http", "libmicrohttpd: %s", msg);
}

/* The address web.listen_address names (host and port filled in), from
 * getaddrinfo's *ai (the caller frees it); NULL when it cannot be used
 * (logged). An empty host (":8000") listens on every address, IPv6 and IPv4. */
static const struct addrinfo *listen_addr(const char *listen_address, char *host, size_t hostlen,
                                          unsigned *port, struct addrinfo **ai)
{
    if (poh_parse_listen_address(listen_address, host, hostlen, port) < 0) {
        POH_ERROR("http", "invalid listen address \"%s\"", listen_address);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", *port);
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, ai);
    if (gai != 0) {
        *ai = NULL;
        POH_ERROR("http", "cannot resolve listen address \"%s\": %s", listen_address,
                  gai_strerror(gai));
        return NULL;
    }
    struct addrinfo *pick = *ai;
    for (struct addrinfo *p = *ai; p && !host[0]; p = p->ai_next)
        if (p->ai_family == AF_INET6) {
            pick = p;
            break;
        }
    return pick;
}

/* libmicrohttpd's daemon on addr: a thread per connection, the web
 * section's limits, TLS when the web config asks for it. */
static struct MHD_Daemon *start_daemon(poh_http_t *h, const poh_config_web_t *web,
                                       const struct addrinfo *addr, bool any_host, unsigned port)
{
    /* poll(), not select(): with a thousand targets the kept gRPC
     * connections hold a thousand descriptors, and select() cannot watch one
     * numbered FD_SETSIZE (1024) or more: libmicrohttpd closed every HTTP
     * connection accepted above it without an answer. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (poh_web_gate_tls(h->gate))
        flags |= MHD_USE_TLS;
    if (addr->ai_family == AF_INET6)
        flags |= any_host ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    size_t mem = web->max_request_bytes + 4096;
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                            MHD_OPTION_SOCK_ADDR, addr->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)web->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(web->idle_timeout + 0.5),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned int)web->max_connections_per_client,
                            /* ignored without MHD_USE_TLS */
                            MHD_OPTION_HTTPS_CERT_CALLBACK, poh_web_tls_daemon_cert_callback(),
                            MHD_OPTION_END);
}

poh_http_t *poh_http_start(poh_app_t *app)
{
    poh_app_view_t *v = poh_app_acquire(app);
    const poh_config_web_t *web = &poh_app_view_config(v)->web;
    poh_http_t *h = calloc(1, sizeof *h);
    struct addrinfo *ai = NULL;
    if (!h)
        goto err;
    h->app = app;
    h->max_request_bytes = web->max_request_bytes;
    h->max_probes = web->max_concurrent_probes;
    atomic_init(&h->probes, 0);
    h->request_timeout = web->request_timeout;
    h->idle_timeout = web->idle_timeout;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    poh_strbuf_t werr = POH_STRBUF_INIT;
    int wrc = poh_web_gate_new(web->config_file, poh_app_self(app), &h->gate, &werr);
    if (wrc < 0) {
        POH_ERROR("http", "web config: %s", werr.data ? werr.data : "out of memory");
        poh_strbuf_free(&werr);
        goto err;
    }
    poh_strbuf_free(&werr);
    if ((h->landing = poh_landing_new()))
        poh_app_set_scrape_observer(app, poh_landing_observe, h->landing);

    char host[256];
    unsigned port;
    const struct addrinfo *addr = listen_addr(web->listen_address, host, sizeof host, &port, &ai);
    if (!addr)
        goto err;
    if (!(h->d = start_daemon(h, web, addr, !host[0], port))) {
        POH_ERROR("http", "cannot listen on %s: %s", web->listen_address,
                  errno ? strerror(errno) : "libmicrohttpd failed to start");
        goto err;
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
        POH_ERROR("http", "cannot start the request deadline thread");
        goto err;
    }
    h->reaper_started = true;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : port;
    char shown[300];
    if (strchr(host, ':'))
        snprintf(shown, sizeof shown, "[%s]:%u", host, h->port);
    else
        snprintf(shown, sizeof shown, "%s:%u", host, h->port);
    POH_INFO("http", "listening on %s", shown);
    freeaddrinfo(ai);
    poh_app_release(v);
    return h;
err:
    if (ai)
        freeaddrinfo(ai);
    poh_app_release(v);
    poh_http_stop(h);
    return NULL;
}

void poh_http_stop(poh_http_t *h)
{
    if (!h)
        return;
    if (h->reaper_started) {
        pthread_mutex_lock(&h->mu);
        h->stopping = true;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->reaper, NULL);
    }
    if (h->d)
        MHD_stop_daemon(h->d);
    poh_web_gate_free(h->gate);
    if (h->landing)
        poh_app_set_scrape_observer(h->app, NULL, NULL);
    poh_landing_free(h->landing);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

unsigned poh_http_port(const poh_http_t *h)
{
    return h->port;
}

int poh_http_reload_web_config(poh_http_t *h)
{
    return poh_web_gate_reload(h->gate);
}

int poh_http_check_web_config(const char *path, poh_strbuf_t *err)
{
    return poh_web_gate_check_file(path, err);
}
