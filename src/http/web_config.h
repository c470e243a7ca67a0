/* SPDX-License-Identifier: Apache-2.0 */
/* The web configuration file (--web.config.file, web.config_file), in the
 * format of prometheus/exporter-toolkit (docs/web-configuration.md there):
 * TLS of the listener, client certificates, basic auth users with bcrypt
 * hashes, extra response headers and a request rate limit. This module
 * parses and validates the file; web_tls.c and web_auth.c build what runs
 * from it. An operator's existing exporter-toolkit file works unchanged;
 * the differences are listed in the README. */
#ifndef POH_WEB_CONFIG_H
#define POH_WEB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "appconfig/app_config.h"
#include "core/strbuf.h"

typedef struct poh_web_tls_config {
    char *cert, *key, *client_ca;             /* inline PEM */
    char *cert_file, *key_file, *client_ca_file; /* resolved against the file's directory */
    char *client_auth_type;                   /* NULL = NoClientCert */
    char **client_allowed_sans;
    size_t client_allowed_sans_count;
    char *min_version, *max_version;          /* "TLS10".."TLS13" */
    char **cipher_suites;
    size_t cipher_suites_count;
    bool prefer_server_cipher_suites;
    char **curve_preferences;
    size_t curve_preferences_count;
} poh_web_tls_config_t;

typedef struct poh_web_http_config {
    bool http2;                               /* accepted; there is no HTTP/2 here */
    poh_config_kv_t *headers;
    size_t headers_count;
} poh_web_http_config_t;

typedef struct poh_web_rate_limit {
    double interval;                          /* seconds between requests; 0 = off */
    unsigned burst;
} poh_web_rate_limit_t;

typedef struct poh_web_config {
    poh_web_tls_config_t tls;
    poh_web_http_config_t http;
    poh_config_kv_t *users;                   /* basic_auth_users: name -> bcrypt hash */
    size_t users_count;
    poh_web_rate_limit_t rate_limit;
    bool tls_enabled;                         /* derived: the TLS section says anything */
} poh_web_config_t;

/* Client certificate policies, as Go's tls.ClientAuthType. */
typedef enum poh_client_auth {
    POH_CLIENT_NONE,
    POH_CLIENT_REQUEST,         /* RequestClientCert */
    POH_CLIENT_REQUIRE_ANY,     /* RequireAnyClientCert (RequireClientCert) */
    POH_CLIENT_VERIFY_IF_GIVEN, /* VerifyClientCertIfGiven */
    POH_CLIENT_REQUIRE_VERIFY,  /* RequireAndVerifyClientCert */
} poh_client_auth_t;

/* Parse and check the file at path. 0 with *out set, or -EINVAL/-ENOMEM
 * with one error per line in errors (never a secret value). The PEM files
 * are not read here (web_tls_build does that). */
int poh_web_config_load(const char *path, poh_web_config_t **out, poh_strbuf_t *errors);
/* The same from text; name prefixes messages; base_dir resolves relative
 * file names (NULL = the working directory). */
int poh_web_config_parse(const char *name, const char *yaml, size_t len, const char *base_dir,
                         poh_web_config_t **out, poh_strbuf_t *errors);
void poh_web_config_free(poh_web_config_t *c);

/* The schema (for the schema self-check of the unit tests). */
struct poh_cfg_section;
extern const struct poh_cfg_section poh_web_config_section;

poh_client_auth_t poh_web_client_auth(const poh_web_tls_config_t *t);

#endif
