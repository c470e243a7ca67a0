/* SPDX-License-Identifier: Apache-2.0 */
/* The web configuration file: schema and checks (see web_config.h). The
 * rules and messages follow exporter-toolkit's web/tls_config.go, so an
 * operator who knows one knows the other. */
#include "http/web_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/schema.h"
#include "core/file.h"
#include "http/web_auth.h"
#include "http/web_tls.h"

#define MAX_WEB_CONFIG_BYTES (1u << 20)

static const char *const client_auth_types[] = {
    "NoClientCert",           "RequestClientCert",         "RequireAnyClientCert",
    "RequireClientCert", /* exporter-toolkit keeps this old name */
    "VerifyClientCertIfGiven", "RequireAndVerifyClientCert", NULL};
static const char *const tls_versions[] = {"TLS10", "TLS11", "TLS12", "TLS13", NULL};

poh_client_auth_t poh_web_client_auth(const poh_web_tls_config_t *t)
{
    const char *a = t->client_auth_type;
    if (!a || strcmp(a, "NoClientCert") == 0)
        return POH_CLIENT_NONE;
    if (strcmp(a, "RequestClientCert") == 0)
        return POH_CLIENT_REQUEST;
    if (strcmp(a, "RequireAnyClientCert") == 0 || strcmp(a, "RequireClientCert") == 0)
        return POH_CLIENT_REQUIRE_ANY;
    if (strcmp(a, "VerifyClientCertIfGiven") == 0)
        return POH_CLIENT_VERIFY_IF_GIVEN;
    return POH_CLIENT_REQUIRE_VERIFY;
}

static int check_cipher(const char *v, poh_strbuf_t *why)
{
    if (poh_web_tls_cipher_known(v))
        return 0;
    poh_strbuf_puts(why, "unknown cipher (Go's crypto/tls names, as tls.CipherSuites() lists "
                         "them, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)");
    return -EINVAL;
}

static int check_curve(const char *v, poh_strbuf_t *why)
{
    if (poh_web_tls_curve_known(v))
        return 0;
    poh_strbuf_puts(why, "unknown curve (one of CurveP256, CurveP384, CurveP521, X25519)");
    return -EINVAL;
}

static bool tls_said(const poh_web_tls_config_t *t)
{
    return t->cert || t->cert_file || t->key || t->key_file || t->client_ca ||
           t->client_ca_file || t->client_auth_type;
}

static int version_rank(const char *v)
{
    for (int i = 0; tls_versions[i]; i++)
        if (v && strcmp(v, tls_versions[i]) == 0)
            return i;
    return -1;
}

static int validate_tls(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_web_tls_config_t *t = obj;
    int rc = 0;
    if (version_rank(t->min_version) > version_rank(t->max_version)) {
        poh_cfg_error(ctx, "min_version", "%s is above max_version %s", t->min_version,
                      t->max_version);
        rc = -EINVAL;
    }
    if (!tls_said(t)) {
        if (t->client_allowed_sans_count) {
            poh_cfg_error(ctx, "client_allowed_sans", "needs TLS with client certificates");
            rc = -EINVAL;
        }
        return rc;
    }
    if (t->cert && t->cert_file) {
        poh_cfg_error(ctx, "cert", "cannot specify both cert_file and cert");
        rc = -EINVAL;
    } else if (!t->cert && !t->cert_file) {
        poh_cfg_error(ctx, NULL, "missing one of cert or cert_file");
        rc = -EINVAL;
    }
    if (t->key && t->key_file) {
        poh_cfg_error(ctx, "key", "cannot specify both key_file and key");
        rc = -EINVAL;
    } else if (!t->key && !t->key_file) {
        poh_cfg_error(ctx, NULL, "missing one of key or key_file");
        rc = -EINVAL;
    }
    if (t->client_ca && t->client_ca_file) {
        poh_cfg_error(ctx, "client_ca", "cannot specify both client_ca_file and client_ca");
        rc = -EINVAL;
    }
    poh_client_auth_t auth = poh_web_client_auth(t);
    if ((t->client_ca || t->client_ca_file) && auth == POH_CLIENT_NONE) {
        poh_cfg_error(ctx, t->client_ca ? "client_ca" : "client_ca_file",
                      "Client CA's have been configured without a Client Auth Policy "
                      "(set client_auth_type, e.g. RequireAndVerifyClientCert)");
        rc = -EINVAL;
    }
    if (t->client_allowed_sans_count && auth != POH_CLIENT_REQUIRE_ANY &&
        auth != POH_CLIENT_REQUIRE_VERIFY) {
        poh_cfg_error(ctx, "client_allowed_sans",
                      "needs client_auth_type RequireAnyClientCert or "
                      "RequireAndVerifyClientCert (otherwise a client may send no "
                      "certificate, and no name to match)");
        rc = -EINVAL;
    }
    return rc;
}

#define TLS(f) offsetof(poh_web_tls_config_t, f)
static const poh_cfg_entry_t tls_entries[] = {
    {.name = "cert", .type = POH_CFG_STRING, .offset = TLS(cert), .flags = POH_CFG_NONEMPTY},
    {.name = "key", .type = POH_CFG_STRING, .offset = TLS(key), .flags = POH_CFG_NONEMPTY},
    {.name = "client_ca", .type = POH_CFG_STRING, .offset = TLS(client_ca),
     .flags = POH_CFG_NONEMPTY},
    {.name = "cert_file", .type = POH_CFG_STRING, .offset = TLS(cert_file),
     .flags = POH_CFG_NONEMPTY},
    {.name = "key_file", .type = POH_CFG_STRING, .offset = TLS(key_file),
     .flags = POH_CFG_NONEMPTY},
    {.name = "client_auth_type", .type = POH_CFG_ENUM, .offset = TLS(client_auth_type),
     .choices = client_auth_types},
    {.name = "client_ca_file", .type = POH_CFG_STRING, .offset = TLS(client_ca_file),
     .flags = POH_CFG_NONEMPTY},
    {.name = "client_allowed_sans", .type = POH_CFG_STRING_LIST,
     .offset = TLS(client_allowed_sans), .count_offset = TLS(client_allowed_sans_count),
     .flags = POH_CFG_NONEMPTY},
    {.name = "min_version", .type = POH_CFG_ENUM, .offset = TLS(min_version), .def = "TLS12",
     .choices = tls_versions},
    {.name = "max_version", .type = POH_CFG_ENUM, .offset = TLS(max_version), .def = "TLS13",
     .choices = tls_versions},
    {.name = "cipher_suites", .type = POH_CFG_STRING_LIST, .offset = TLS(cipher_suites),
     .count_offset = TLS(cipher_suites_count), .check = check_cipher},
    {.name = "prefer_server_cipher_suites", .type = POH_CFG_BOOL,
     .offset = TLS(prefer_server_cipher_suites), .def = "true"},
    {.name = "curve_preferences", .type = POH_CFG_STRING_LIST, .offset = TLS(curve_preferences),
     .count_offset = TLS(curve_preferences_count), .check = check_curve},
    {NULL},
};
#undef TLS

static const poh_cfg_section_t tls_section = {sizeof(poh_web_tls_config_t), tls_entries,
                                              validate_tls, NULL};

/* The headers exporter-toolkit lets a file set, and the values it allows
 * (NULL: any). */
static const struct header_rule {
    const char *name;
    const char *const *values;
} header_rules[] = {
    {"Strict-Transport-Security", NULL},
    {"X-Content-Type-Options", (const char *const[]){"nosniff", NULL}},
    {"X-Frame-Options", (const char *const[]){"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", NULL},
    {"Content-Security-Policy", NULL},
};

static int validate_http(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_web_http_config_t *h = obj;
    int rc = 0;
    for (size_t i = 0; i < h->headers_count; i++) {
        const char *k = h->headers[i].key, *v = h->headers[i].value;
        const struct header_rule *r = NULL;
        for (size_t j = 0; j < sizeof header_rules / sizeof *header_rules && !r; j++)
            if (strcmp(header_rules[j].name, k) == 0)
                r = &header_rules[j];
        if (!r) {
            poh_cfg_error(ctx, "headers",
                          "HTTP header \"%.64s\" can not be configured (allowed: "
                          "Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, "
                          "X-XSS-Protection, Strict-Transport-Security)",
                          k);
            rc = -EINVAL;
            continue;
        }
        bool fine = strpbrk(v, "\r\n") == NULL;
        if (fine && r->values) {
            fine = false;
            for (size_t j = 0; r->values[j]; j++)
                fine |= strcasecmp(r->values[j], v) == 0;
        }
        if (!fine) {
            poh_cfg_error(ctx, "headers", "invalid value for %s%s", k,
                          r->values && r->values[1]   ? " (one of deny, sameorigin)"
                          : r->values                 ? " (nosniff)"
                                                      : " (no line breaks)");
            rc = -EINVAL;
        }
    }
    return rc;
}

#define HTTP(f) offsetof(poh_web_http_config_t, f)
static const poh_cfg_entry_t http_entries[] = {
    {.name = "http2", .type = POH_CFG_BOOL, .offset = HTTP(http2), .def = "true"},
    {.name = "headers", .type = POH_CFG_STRING_MAP, .offset = HTTP(headers),
     .count_offset = HTTP(headers_count)},
    {NULL},
};
#undef HTTP

static const poh_cfg_section_t http_section = {sizeof(poh_web_http_config_t), http_entries,
                                               validate_http, NULL};

static int validate_rate(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_web_rate_limit_t *r = obj;
    if (r->interval > 0 && r->burst == 0) {
        poh_cfg_error(ctx, "burst", "must be at least 1 when interval is set (0 refuses "
                                    "every request)");
        return -EINVAL;
    }
    return 0;
}

static const poh_cfg_entry_t rate_entries[] = {
    {.name = "interval", .type = POH_CFG_DURATION,
     .offset = offsetof(poh_web_rate_limit_t, interval), .def = "0s", .min = 0, .max = 3600},
    {.name = "burst", .type = POH_CFG_UINT, .offset = offsetof(poh_web_rate_limit_t, burst),
     .def = "0", .min = 0, .max = 1000000},
    {NULL},
};

static const poh_cfg_section_t rate_section = {sizeof(poh_web_rate_limit_t), rate_entries,
                                               validate_rate, NULL};

static int validate_root(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_web_config_t *c = obj;
    int rc = 0;
    for (size_t i = 0; i < c->users_count; i++) {
        const char *u = c->users[i].key;
        /* The hash is not quoted: it is as good as a password to an attacker
         * with time. */
        if (strchr(u, ':') || !u[0]) {
            poh_cfg_error(ctx, "basic_auth_users",
                          "user name \"%.64s\" cannot be used with basic auth (empty, or "
                          "has a \":\")",
                          u);
            rc = -EINVAL;
        } else if (!poh_web_auth_hash_ok(c->users[i].value)) {
            poh_cfg_error(ctx, "basic_auth_users",
                          "user \"%.64s\": the password is not a bcrypt hash ($2y$, $2b$ or "
                          "$2a$ with a cost from 04 to 31, 60 characters; e.g. from "
                          "htpasswd -nBC 10 \"\" | tr -d ':\\n')",
                          u);
            rc = -EINVAL;
        }
    }
    return rc;
}

#define ROOT(f) offsetof(poh_web_config_t, f)
static const poh_cfg_entry_t root_entries[] = {
    {.name = "tls_server_config", .type = POH_CFG_SECTION, .offset = ROOT(tls),
     .section = &tls_section},
    {.name = "http_server_config", .type = POH_CFG_SECTION, .offset = ROOT(http),
     .section = &http_section},
    {.name = "basic_auth_users", .type = POH_CFG_STRING_MAP, .offset = ROOT(users),
     .count_offset = ROOT(users_count)},
    {.name = "rate_limit", .type = POH_CFG_SECTION, .offset = ROOT(rate_limit),
     .section = &rate_section},
    {NULL},
};
#undef ROOT

const poh_cfg_section_t poh_web_config_section = {sizeof(poh_web_config_t), root_entries,
                                                  validate_root, NULL};

static int resolve(char **path, const char *base_dir)
{
    if (!*path || (*path)[0] == '/' || !base_dir)
        return 0;
    size_t n = strlen(base_dir) + strlen(*path) + 2;
    char *full = malloc(n);
    if (!full)
        return -ENOMEM;
    snprintf(full, n, "%s/%s", base_dir, *path);
    free(*path);
    *path = full;
    return 0;
}

int poh_web_config_parse(const char *name, const char *yaml, size_t len, const char *base_dir,
                         poh_web_config_t **out, poh_strbuf_t *errors)
{
    *out = NULL;
    poh_web_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = poh_cfg_parse(&poh_web_config_section, c, name, yaml, len, base_dir, errors);
    if (rc == 0 && (resolve(&c->tls.cert_file, base_dir) < 0 ||
                    resolve(&c->tls.key_file, base_dir) < 0 ||
                    resolve(&c->tls.client_ca_file, base_dir) < 0))
        rc = -ENOMEM;
    if (rc < 0) {
        poh_web_config_free(c);
        return rc;
    }
    c->tls_enabled = tls_said(&c->tls);
    *out = c;
    return 0;
}

int poh_web_config_load(const char *path, poh_web_config_t **out, poh_strbuf_t *errors)
{
    poh_strbuf_t text = POH_STRBUF_INIT;
    *out = NULL;
    char *dir = NULL;
    int rc = poh_read_config_file(path, MAX_WEB_CONFIG_BYTES, &text, &dir);
    if (rc < 0) {
        poh_strbuf_printf(errors, "%s: cannot read the web config: %s\n", path,
                          poh_read_file_strerror(rc));
        poh_strbuf_free(&text);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    rc = poh_web_config_parse(path, text.data ? text.data : "", text.len, dir, out, errors);
    free(dir);
    poh_strbuf_free(&text);
    return rc;
}

void poh_web_config_free(poh_web_config_t *c)
{
    if (!c)
        return;
    if (c->tls.key)
        explicit_bzero(c->tls.key, strlen(c->tls.key));
    poh_cfg_release(&poh_web_config_section, c);
    free(c);
}
