/* SPDX-License-Identifier: Apache-2.0 */
/* Tracing configuration: defaults and config > environment > default
 * resolution of endpoint, service name, resource and headers. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/header_name.h"
#include "core/hostport.h"
#include "core/log.h"
#include "poh_version.h"
#include "trace/trace_internal.h"

#define DEFAULT_ENDPOINT "localhost:4317"
#define DEFAULT_SERVICE "poh-exporter"
#define DEFAULT_PORT "4317"

static const char *env_nonempty(poh_getenv_fn get, const char *name)
{
    const char *v = get(name);
    return v && *v ? v : NULL;
}

static bool nonempty(const char *s) { return s && *s; }

static const char *const endpoint_envs[] = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP_GRPC_ENDPOINT"};

int poh_tracing_wanted(const poh_tracing_config_t *cfg, poh_getenv_fn getenv_fn)
{
    poh_getenv_fn get = getenv_fn ? getenv_fn : getenv;
    if (!cfg)
        return 0;
    if (!cfg->enabled || strcmp(cfg->enabled, "auto") == 0) {
        if (nonempty(cfg->endpoint))
            return 1;
        for (size_t i = 0; i < sizeof endpoint_envs / sizeof endpoint_envs[0]; i++)
            if (env_nonempty(get, endpoint_envs[i]))
                return 1;
        return 0;
    }
    if (strcmp(cfg->enabled, "true") == 0)
        return 1;
    if (strcmp(cfg->enabled, "false") == 0)
        return 0;
    return -EINVAL;
}

bool poh_tracing_enabled(const poh_tracing_config_t *cfg)
{
    return poh_tracing_wanted(cfg, NULL) == 1;
}

void poh_trace_kv_free(poh_config_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

int poh_trace_kv_set(poh_config_kv_t **kv, size_t *n, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].value);
            (*kv)[i].value = v;
            return 0;
        }
    }
    char *k = strdup(key);
    poh_config_kv_t *grown = k ? realloc(*kv, (*n + 1) * sizeof **kv) : NULL;
    if (!grown) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    grown[*n].key = k;
    grown[*n].value = v;
    *kv = grown;
    (*n)++;
    return 0;
}

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copy s[0..n) trimmed of blanks and percent-decoded ("%zz" stays as is). */
static char *decode_part(const char *s, size_t n)
{
    while (n && isblank((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isblank((unsigned char)s[n - 1]))
        n--;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexdig(s[i + 1])) >= 0 &&
            (lo = hexdig(s[i + 2])) >= 0) {
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

int poh_trace_parse_kv_list(const char *s, const char *what, poh_config_kv_t **kv, size_t *n,
                            poh_strbuf_t *err)
{
    size_t item = 0;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        item++;
        const char *eq = memchr(s, '=', len);
        size_t blank = 0;
        while (blank < len && isblank((unsigned char)s[blank]))
            blank++;
        if (blank == len) {
            /* an empty item ("a=1,,b=2" or a trailing comma) is skipped */
        } else if (!eq) {
            poh_strbuf_printf(err, "%s: item %zu has no '='", what, item);
            return -EINVAL;
        } else {
            char *k = decode_part(s, (size_t)(eq - s));
            char *v = decode_part(eq + 1, len - (size_t)(eq - s) - 1);
            int rc = (!k || !v) ? -ENOMEM : 0;
            if (rc == 0 && !*k) {
                poh_strbuf_printf(err, "%s: item %zu has an empty key", what, item);
                rc = -EINVAL;
            }
            if (rc == 0)
                rc = poh_trace_kv_set(kv, n, k, v);
            free(k);
            free(v);
            if (rc < 0)
                return rc;
        }
        s = end ? end + 1 : NULL;
    }
    return 0;
}

static const char *endpoint_problem(poh_hostport_problem_t p)
{
    switch (p) {
    case POH_HOSTPORT_OK:
    case POH_HOSTPORT_BAD_SCHEME: /* worded with the scheme by the caller */
        break;
    case POH_HOSTPORT_NO_HOST:
    case POH_HOSTPORT_NO_PORT:
        return "endpoint has no host";
    case POH_HOSTPORT_NO_CLOSE_BRACKET:
    case POH_HOSTPORT_BAD_IPV6:
        return "endpoint has a malformed IPv6 address";
    case POH_HOSTPORT_AFTER_BRACKET:
        return "endpoint has garbage after the IPv6 address";
    case POH_HOSTPORT_UNBRACKETED_IPV6:
        return "endpoint: put an IPv6 address in brackets";
    case POH_HOSTPORT_BAD_CHAR:
        return "endpoint host has a character not allowed in a host name";
    case POH_HOSTPORT_HOST_TOO_LONG:
        return "endpoint host name is longer than 253 characters";
    case POH_HOSTPORT_BAD_IPV4:
        return "endpoint host is not a valid IPv4 address";
    case POH_HOSTPORT_BAD_PORT:
    case POH_HOSTPORT_PORT_RANGE:
        return "endpoint port must be 1..65535";
    }
    return "endpoint is invalid";
}

int poh_trace_parse_endpoint(const char *endpoint, char **target, bool *tls, poh_strbuf_t *err)
{
    *tls = false;
    *target = NULL;
    if (!endpoint || !*endpoint) {
        poh_strbuf_puts(err, "endpoint is empty");
        return -EINVAL;
    }
    poh_hostport_t hp;
    poh_hostport_problem_t p =
        poh_hostport_parse(endpoint, POH_HOSTPORT_PORT_OPTIONAL | POH_HOSTPORT_URL, &hp);
    if (p == POH_HOSTPORT_BAD_SCHEME) {
        poh_strbuf_printf(err, "endpoint scheme '%.*s' is not http or https", hp.scheme_len,
                          endpoint);
        return -EINVAL;
    }
    if (p != POH_HOSTPORT_OK) {
        poh_strbuf_puts(err, endpoint_problem(p));
        return -EINVAL;
    }
    *tls = hp.https;
    poh_strbuf_t t = POH_STRBUF_INIT;
    poh_strbuf_printf(&t, hp.bracketed ? "[%s]:%s" : "%s:%s", hp.host,
                      hp.port[0] ? hp.port : DEFAULT_PORT);
    if (t.failed) {
        poh_strbuf_free(&t);
        return -ENOMEM;
    }
    *target = poh_strbuf_steal(&t);
    return 0;
}

/* Header names are folded to lowercase, then held to the one gRPC header
 * name rule (core/header_name.c). */
static int header_key_normalize(char *key, poh_strbuf_t *why)
{
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    switch (poh_header_name_check(key)) {
    case POH_HEADER_NAME_OK:
        return 0;
    case POH_HEADER_NAME_EMPTY:
        poh_strbuf_puts(why, "empty header name");
        break;
    case POH_HEADER_NAME_BAD_CHAR:
        poh_strbuf_printf(why, "header name '%s' has a character gRPC does not allow", key);
        break;
    case POH_HEADER_NAME_GRPC_RESERVED:
    case POH_HEADER_NAME_SET_BY_US:
        poh_strbuf_printf(why, "header name '%s' is reserved by gRPC", key);
        break;
    case POH_HEADER_NAME_BINARY:
        poh_strbuf_printf(why, "header '%s': binary headers are not supported", key);
        break;
    }
    return -EINVAL;
}

static int header_value_check(const char *key, const char *v, poh_strbuf_t *why)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            poh_strbuf_printf(why, "header '%s' has a value with a non-printable character", key);
            return -EINVAL;
        }
    }
    return 0;
}

int poh_tracing_check_endpoint(const char *endpoint, poh_strbuf_t *why)
{
    char *target = NULL;
    bool tls;
    int rc = poh_trace_parse_endpoint(endpoint, &target, &tls, why);
    free(target);
    return rc < 0 ? -EINVAL : 0;
}

int poh_tracing_check_header(const char *key, const char *value, poh_strbuf_t *why)
{
    if (!key || !*key) {
        poh_strbuf_puts(why, "empty header name");
        return -EINVAL;
    }
    char *k = strdup(key);
    if (!k)
        return -ENOMEM;
    int rc = header_key_normalize(k, why);
    if (rc == 0)
        rc = header_value_check(k, value ? value : "", why);
    free(k);
    return rc;
}

/* Merge env-style "k=v,..." headers; a bad list or item is skipped with a
 * warning (the OpenTelemetry environment rules), never logged with values. */
static int merge_env_headers(poh_tracing_resolved_t *r, const char *var, const char *val)
{
    poh_config_kv_t *kv = NULL;
    size_t n = 0;
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = poh_trace_parse_kv_list(val, var, &kv, &n, &why);
    if (rc == -EINVAL) {
        POH_WARN("trace", "ignoring %s: %s", var, why.data ? why.data : "malformed");
        rc = 0;
        n = 0;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        poh_strbuf_reset(&why);
        if (header_key_normalize(kv[i].key, &why) < 0 ||
            header_value_check(kv[i].key, kv[i].value, &why) < 0) {
            POH_WARN("trace", "ignoring an item of %s: %s", var, why.data);
            continue;
        }
        rc = poh_trace_kv_set(&r->headers, &r->nheaders, kv[i].key, kv[i].value);
    }
    poh_trace_kv_free(kv, n);
    poh_strbuf_free(&why);
    return rc;
}

void poh_tracing_resolved_free(poh_tracing_resolved_t *r)
{
    if (!r)
        return;
    free(r->target);
    free(r->service_name);
    poh_trace_kv_free(r->resource, r->nresource);
    poh_trace_kv_free(r->headers, r->nheaders);
    memset(r, 0, sizeof *r);
}

static const char *kv_get(const poh_config_kv_t *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

/* The endpoint: config, then the environment, then the default; TLS from
 * its scheme or the tls settings. */
static int resolve_endpoint(const poh_tracing_config_t *cfg, poh_getenv_fn get,
                            poh_tracing_resolved_t *r, poh_strbuf_t *err)
{
    const char *ep = nonempty(cfg->endpoint) ? cfg->endpoint : NULL;
    const char *ep_src = "tracing.endpoint";
    for (size_t i = 0; !ep && i < sizeof endpoint_envs / sizeof endpoint_envs[0]; i++) {
        ep = env_nonempty(get, endpoint_envs[i]);
        ep_src = endpoint_envs[i];
    }
    if (!ep) {
        ep = DEFAULT_ENDPOINT;
        ep_src = "default";
    }
    bool https = false;
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = poh_trace_parse_endpoint(ep, &r->target, &https, &why);
    if (rc < 0)
        poh_strbuf_printf(err, "%s: %s", ep_src, why.data ? why.data : "invalid");
    poh_strbuf_free(&why);
    if (rc < 0)
        return rc;
    bool tls_settings = poh_grpc_tls_has_settings(&cfg->tls);
    bool explicit_http = strncasecmp(ep, "http://", 7) == 0;
    r->tls = https || (tls_settings && !explicit_http);
    if (explicit_http && tls_settings)
        POH_WARN("trace", "%s uses http://, so the tracing.tls settings are ignored", ep_src);
    const char *tls_problem = poh_grpc_tls_problem(&cfg->tls, NULL);
    if (tls_problem) {
        poh_strbuf_printf(err, "tracing.tls: %s", tls_problem);
        return -EINVAL;
    }
    return 0;
}

/* OTEL_RESOURCE_ATTRIBUTES (a bad list is ignored with a warning), then
 * the config's resource_attributes, into *attrs. */
static int gather_attributes(const poh_tracing_config_t *cfg, poh_getenv_fn get,
                             poh_config_kv_t **attrs, size_t *nattrs, poh_strbuf_t *err)
{
    const char *ra = env_nonempty(get, "OTEL_RESOURCE_ATTRIBUTES");
    if (ra) {
        poh_strbuf_t why = POH_STRBUF_INIT;
        int rc = poh_trace_parse_kv_list(ra, "OTEL_RESOURCE_ATTRIBUTES", attrs, nattrs, &why);
        if (rc == -EINVAL) {
            POH_WARN("trace", "ignoring %s", why.data);
            poh_trace_kv_free(*attrs, *nattrs);
            *attrs = NULL;
            *nattrs = 0;
            rc = 0;
        }
        poh_strbuf_free(&why);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < cfg->resource_attributes_count; i++) {
        const poh_config_kv_t *kv = &cfg->resource_attributes[i];
        if (!nonempty(kv->key)) {
            poh_strbuf_puts(err, "tracing.resource_attributes: empty key");
            return -EINVAL;
        }
        int rc = poh_trace_kv_set(attrs, nattrs, kv->key, kv->value ? kv->value : "");
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The resource: service.name first, service.version and host.name, then
 * the other attributes (environment, then config). */
static int resolve_resource(const poh_tracing_config_t *cfg, poh_getenv_fn get,
                            poh_tracing_resolved_t *r, poh_strbuf_t *err)
{
    poh_config_kv_t *attrs = NULL;
    size_t nattrs = 0;
    int rc = gather_attributes(cfg, get, &attrs, &nattrs, err);
    const char *svc = nonempty(cfg->service_name) ? cfg->service_name : NULL;
    if (!svc)
        svc = env_nonempty(get, "OTEL_SERVICE_NAME");
    if (!svc)
        svc = kv_get(attrs, nattrs, "service.name");
    if (!svc || !*svc)
        svc = DEFAULT_SERVICE;
    if (rc == 0 && !(r->service_name = strdup(svc)))
        rc = -ENOMEM;
    char host[256];
    if (gethostname(host, sizeof host) < 0)
        strcpy(host, "unknown");
    host[sizeof host - 1] = '\0';
    const char *ver = kv_get(attrs, nattrs, "service.version");
    const char *hn = kv_get(attrs, nattrs, "host.name");
    if (rc == 0)
        rc = poh_trace_kv_set(&r->resource, &r->nresource, "service.name", r->service_name);
    if (rc == 0)
        rc = poh_trace_kv_set(&r->resource, &r->nresource, "service.version",
                              ver ? ver : POH_VERSION);
    if (rc == 0)
        rc = poh_trace_kv_set(&r->resource, &r->nresource, "host.name", hn ? hn : host);
    for (size_t i = 0; rc == 0 && i < nattrs; i++)
        if (strcmp(attrs[i].key, "service.name") != 0)
            rc = poh_trace_kv_set(&r->resource, &r->nresource, attrs[i].key, attrs[i].value);
    poh_trace_kv_free(attrs, nattrs);
    return rc;
}

/* Headers: generic env, traces env, then config (the later wins). */
static int resolve_headers(const poh_tracing_config_t *cfg, poh_getenv_fn get,
                           poh_tracing_resolved_t *r, poh_strbuf_t *err)
{
    int rc;
    const char *h = env_nonempty(get, "OTEL_EXPORTER_OTLP_HEADERS");
    if (h && (rc = merge_env_headers(r, "OTEL_EXPORTER_OTLP_HEADERS", h)) < 0)
        return rc;
    h = env_nonempty(get, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (h && (rc = merge_env_headers(r, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", h)) < 0)
        return rc;
    for (size_t i = 0; i < cfg->headers_count; i++) {
        const poh_config_kv_t *kv = &cfg->headers[i];
        char *key = strdup(kv->key ? kv->key : "");
        if (!key)
            return -ENOMEM;
        poh_strbuf_t why = POH_STRBUF_INIT;
        rc = !*key ? -EINVAL : header_key_normalize(key, &why);
        if (rc == 0)
            rc = header_value_check(key, kv->value ? kv->value : "", &why);
        if (rc == 0)
            rc = poh_trace_kv_set(&r->headers, &r->nheaders, key, kv->value ? kv->value : "");
        free(key);
        if (rc == -EINVAL)
            poh_strbuf_printf(err, "tracing.headers: %s",
                              why.data && why.len ? why.data : "empty header name");
        poh_strbuf_free(&why);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int poh_tracing_resolve(const poh_tracing_config_t *cfg, poh_getenv_fn getenv_fn,
                        poh_tracing_resolved_t *out, poh_strbuf_t *err)
{
    poh_getenv_fn get = getenv_fn ? getenv_fn : getenv;
    poh_tracing_resolved_t r;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    int rc = resolve_endpoint(cfg, get, &r, err);
    if (rc == 0)
        rc = resolve_resource(cfg, get, &r, err);
    if (rc == 0)
        rc = resolve_headers(cfg, get, &r, err);
    if (rc < 0) {
        if (rc == -ENOMEM)
            poh_strbuf_puts(err, "out of memory");
        poh_tracing_resolved_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}
