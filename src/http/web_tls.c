/* SPDX-License-Identifier: Apache-2.0 */
/* The listener's TLS generations (see web_tls.h). */
#include "http/web_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"

#define MAX_PEM_BYTES (1u << 20)

struct poh_web_tls {
    atomic_uint refs;
    gnutls_certificate_credentials_t creds;
    gnutls_priority_t prio;
    poh_client_auth_t auth;
    char **sans;                /* client_allowed_sans, IP addresses in canonical form */
    size_t nsans;
    double not_after;
    struct poh_web_tls *next;   /* in live_list */
};

/* GnuTLS's verify callback is told the session only; it finds the policy
 * of the session's credentials among the live generations. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static poh_web_tls_t *live_list;

/* Go's crypto/tls names (tls.CipherSuites(), the list exporter-toolkit
 * accepts) and the GnuTLS key exchange, cipher and MAC each stands for.
 * GnuTLS enables combinations of these, not single suites. */
static const struct suite {
    const char *name, *kx, *cipher, *mac;
} suites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AES-128-GCM", "AEAD"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AES-256-GCM", "AEAD"},
    {"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM", "AEAD"},
    {"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM", "AEAD"},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305",
     "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
};

static const struct curve {
    const char *name, *group;
} curves[] = {
    {"CurveP256", "SECP256R1"},
    {"CurveP384", "SECP384R1"},
    {"CurveP521", "SECP521R1"},
    {"X25519", "X25519"},
};

static const char *const versions[] = {"TLS10", "TLS11", "TLS12", "TLS13"};
static const char *const gnutls_versions[] = {"TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"};

static const struct suite *find_suite(const char *name)
{
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++)
        if (strcmp(suites[i].name, name) == 0)
            return &suites[i];
    return NULL;
}

static const struct curve *find_curve(const char *name)
{
    for (size_t i = 0; i < sizeof curves / sizeof *curves; i++)
        if (strcmp(curves[i].name, name) == 0)
            return &curves[i];
    return NULL;
}

bool poh_web_tls_cipher_known(const char *name)
{
    return find_suite(name) != NULL;
}

bool poh_web_tls_curve_known(const char *name)
{
    return find_curve(name) != NULL;
}

static int version_index(const char *v, int def)
{
    if (!v)
        return def;
    for (int i = 0; i < 4; i++)
        if (strcmp(v, versions[i]) == 0)
            return i;
    return -1;
}

/* Append ":+<prefix><item>" unless already there. */
static void add_once(poh_strbuf_t *out, const char *prefix, const char *item)
{
    char tok[64];
    snprintf(tok, sizeof tok, ":+%s%s", prefix, item);
    size_t n = strlen(tok);
    for (const char *p = out->data; p && (p = strstr(p, tok)); p += n)
        if (p[n] == ':' || p[n] == '\0')
            return;
    poh_strbuf_puts(out, tok);
}

int poh_web_tls_priorities(const poh_web_tls_config_t *t, poh_strbuf_t *out, poh_strbuf_t *err)
{
    int lo = version_index(t->min_version, 2), hi = version_index(t->max_version, 3);
    if (lo < 0 || hi < 0) {
        poh_strbuf_puts(err, "unknown TLS version\n");
        return -EINVAL;
    }
    if (lo > hi) {
        poh_strbuf_printf(err, "min_version %s is above max_version %s\n", versions[lo],
                          versions[hi]);
        return -EINVAL;
    }
    poh_strbuf_puts(out, "NORMAL");
    if (t->prefer_server_cipher_suites)
        poh_strbuf_puts(out, ":%SERVER_PRECEDENCE");
    poh_strbuf_puts(out, ":-VERS-ALL");
    for (int v = lo; v <= hi; v++)
        add_once(out, "VERS-", gnutls_versions[v]);
    if (t->cipher_suites_count) {
        poh_strbuf_puts(out, ":-KX-ALL:-CIPHER-ALL:-MAC-ALL");
        for (size_t i = 0; i < t->cipher_suites_count; i++) {
            const struct suite *s = find_suite(t->cipher_suites[i]);
            if (!s) {
                poh_strbuf_printf(err, "unknown cipher: %s\n", t->cipher_suites[i]);
                return -EINVAL;
            }
            if (s->kx)
                add_once(out, "", s->kx);
            add_once(out, "", s->cipher);
            add_once(out, "", s->mac);
        }
        /* As in Go, the list is for TLS 1.2 and below: TLS 1.3 keeps its
         * suites. GnuTLS has one cipher list for every version, so these
         * AEAD ciphers may also pair with the listed key exchanges in TLS
         * 1.2 (after the listed ones, which the server prefers). */
        if (hi == 3) {
            static const char *const tls13[] = {"AES-128-GCM", "AES-256-GCM",
                                                "CHACHA20-POLY1305", "AEAD"};
            for (size_t i = 0; i < sizeof tls13 / sizeof *tls13; i++)
                add_once(out, "", tls13[i]);
        }
    }
    if (t->curve_preferences_count) {
        poh_strbuf_puts(out, ":-GROUP-ALL");
        for (size_t i = 0; i < t->curve_preferences_count; i++) {
            const struct curve *c = find_curve(t->curve_preferences[i]);
            if (!c) {
                poh_strbuf_printf(err, "unknown curve: %s\n", t->curve_preferences[i]);
                return -EINVAL;
            }
            add_once(out, "GROUP-", c->group);
        }
    }
    return out->failed ? -ENOMEM : 0;
}

/* PEM from the inline value or the file; wiped by the caller when secret. */
static int read_pem(const char *inline_pem, const char *path, const char *what, poh_strbuf_t *pem,
                    poh_strbuf_t *err)
{
    if (inline_pem)
        return poh_strbuf_puts(pem, inline_pem) < 0 ? -ENOMEM : 0;
    int rc = poh_read_file(path, MAX_PEM_BYTES, pem, NULL);
    if (rc < 0)
        poh_strbuf_printf(err, "tls_server_config: cannot read %s \"%s\": %s\n", what, path,
                          poh_read_file_strerror(rc));
    return rc;
}

static void wipe(poh_strbuf_t *sb)
{
    if (sb->data)
        explicit_bzero(sb->data, sb->cap);
    poh_strbuf_free(sb);
}

static void free_tls(poh_web_tls_t *t)
{
    if (t->creds)
        gnutls_certificate_free_credentials(t->creds);
    if (t->prio)
        gnutls_priority_deinit(t->prio);
    for (size_t i = 0; i < t->nsans; i++)
        free(t->sans[i]);
    free(t->sans);
    free(t);
}

static bool san_matches(const poh_web_tls_t *t, const char *v, size_t len)
{
    for (size_t i = 0; i < t->nsans; i++)
        if (strlen(t->sans[i]) == len && memcmp(t->sans[i], v, len) == 0)
            return true;
    return false;
}

/* Does the client certificate carry one of the allowed names (DNS, IP,
 * e-mail or URI subject alternative name, matched exactly)? */
static bool sans_allowed(const poh_web_tls_t *t, const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt;
    bool ok = false;
    if (gnutls_x509_crt_init(&crt) < 0)
        return false;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
        goto out;
    for (unsigned seq = 0; seq < 1024 && !ok; seq++) {
        char buf[1024];
        size_t sz = sizeof buf - 1;
        unsigned critical = 0;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &sz, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (type < 0)
            continue; /* e.g. a name longer than any we would match */
        if (type == GNUTLS_SAN_IPADDRESS) {
            char ip[INET6_ADDRSTRLEN];
            int af = sz == 4 ? AF_INET : sz == 16 ? AF_INET6 : 0;
            if (af && inet_ntop(af, buf, ip, sizeof ip))
                ok = san_matches(t, ip, strlen(ip));
        } else if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_RFC822NAME ||
                   type == GNUTLS_SAN_URI) {
            ok = memchr(buf, '\0', sz) == NULL && san_matches(t, buf, sz);
        }
    }
out:
    gnutls_x509_crt_deinit(crt);
    return ok;
}

/* A refused client certificate, logged at most once a second: libmicrohttpd
 * closes the connection without an alert, so the log is where an operator
 * learns why. */
static void log_refused(const char *why)
{
    static poh_log_throttle_t throttle = POH_LOG_THROTTLE_INIT(1.0);
    unsigned long n;
    if (!poh_log_throttle_pass(&throttle, &n))
        return;
    POH_WARN("http", "TLS handshake refused: client certificate %s (%lu more refusals not "
                     "logged in the last second)",
             why, n);
}

/* Run by GnuTLS in the handshake once the client's certificate (or its
 * absence) is known; non-zero fails the handshake, as Go's crypto/tls does. */
static int verify_client(gnutls_session_t s)
{
    void *cred = NULL;
    if (gnutls_credentials_get(s, GNUTLS_CRD_CERTIFICATE, &cred) < 0)
        return -1;
    poh_web_tls_t *t = NULL;
    pthread_mutex_lock(&live_mu);
    for (poh_web_tls_t *p = live_list; p; p = p->next)
        if ((void *)p->creds == cred) {
            t = poh_web_tls_ref(p);
            break;
        }
    pthread_mutex_unlock(&live_mu);
    if (!t)
        return -1;
    int rc = 0;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0) {
        rc = t->auth == POH_CLIENT_REQUIRE_ANY || t->auth == POH_CLIENT_REQUIRE_VERIFY ? -1 : 0;
        if (rc)
            log_refused("missing (client_auth_type requires one)");
        goto out;
    }
    if (t->auth == POH_CLIENT_VERIFY_IF_GIVEN || t->auth == POH_CLIENT_REQUIRE_VERIFY) {
        gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                         .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
        unsigned status = 0;
        if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0) {
            gnutls_datum_t why = {NULL, 0};
            bool have = status &&
                        gnutls_certificate_verification_status_print(
                            status, GNUTLS_CRT_X509, &why, 0) == 0;
            char text[200];
            snprintf(text, sizeof text, "not accepted: %s",
                     have ? (const char *)why.data : "verification failed");
            if (have)
                gnutls_free(why.data);
            log_refused(text);
            rc = -1;
            goto out;
        }
    }
    if (t->nsans && !sans_allowed(t, &peers[0])) {
        log_refused("has none of client_allowed_sans");
        rc = -1;
    }
out:
    poh_web_tls_unref(t);
    return rc;
}

static int no_certificate(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned int *pcert_length,
                          gnutls_privkey_t *privkey)
{
    (void)s, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    (void)pcert, (void)privkey;
    *pcert_length = 0;
    return -1;
}

/* libmicrohttpd wants a certificate source to start a TLS daemon; every
 * session gets a generation's credentials before its handshake, so the
 * daemon's own are never used and need not hold a copy of the key. */
void *poh_web_tls_daemon_cert_callback(void)
{
    return (void *)no_certificate;
}

static double cert_not_after(gnutls_certificate_credentials_t creds)
{
    gnutls_datum_t raw;
    gnutls_x509_crt_t crt;
    double t = 0;
    if (gnutls_certificate_get_crt_raw(creds, 0, 0, &raw) < 0)
        return 0;
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &raw, GNUTLS_X509_FMT_DER) == 0) {
            time_t e = gnutls_x509_crt_get_expiration_time(crt);
            if (e != (time_t)-1)
                t = (double)e;
        }
        gnutls_x509_crt_deinit(crt);
    }
    return t;
}

/* The server's key pair, and the CAs client certificates are checked
 * against (t->auth set), into t->creds. The key's copy is wiped. */
static int load_credentials(poh_web_tls_t *t, const poh_web_tls_config_t *tc, poh_strbuf_t *err)
{
    poh_strbuf_t cert = POH_STRBUF_INIT, key = POH_STRBUF_INIT, ca = POH_STRBUF_INIT;
    int rc, g;
    if ((rc = read_pem(tc->cert, tc->cert_file, "cert_file", &cert, err)) < 0 ||
        (rc = read_pem(tc->key, tc->key_file, "key_file", &key, err)) < 0)
        goto out;
    if ((tc->client_ca || tc->client_ca_file) &&
        (rc = read_pem(tc->client_ca, tc->client_ca_file, "client_ca_file", &ca, err)) < 0)
        goto out;
    rc = -EINVAL;
    if ((g = gnutls_certificate_allocate_credentials(&t->creds)) < 0) {
        poh_strbuf_printf(err, "tls_server_config: %s\n", gnutls_strerror(g));
        goto out;
    }
    gnutls_datum_t dc = {(unsigned char *)cert.data, (unsigned)cert.len},
                   dk = {(unsigned char *)key.data, (unsigned)key.len};
    if ((g = gnutls_certificate_set_x509_key_mem(t->creds, &dc, &dk, GNUTLS_X509_FMT_PEM)) < 0) {
        poh_strbuf_printf(err, "tls_server_config: failed to load X509KeyPair: %s\n",
                          gnutls_strerror(g));
        goto out;
    }
    if (ca.len) {
        gnutls_datum_t da = {(unsigned char *)ca.data, (unsigned)ca.len};
        g = gnutls_certificate_set_x509_trust_mem(t->creds, &da, GNUTLS_X509_FMT_PEM);
        if (g <= 0) {
            poh_strbuf_printf(err, "tls_server_config: client_ca%s: %s\n",
                              tc->client_ca ? "" : "_file",
                              g < 0 ? gnutls_strerror(g) : "no certificates found");
            goto out;
        }
    } else if (t->auth == POH_CLIENT_VERIFY_IF_GIVEN || t->auth == POH_CLIENT_REQUIRE_VERIFY) {
        /* as Go: no client CAs means the host's roots */
        if ((g = gnutls_certificate_set_x509_system_trust(t->creds)) < 0) {
            poh_strbuf_printf(err, "tls_server_config: system trust store: %s\n",
                              gnutls_strerror(g));
            goto out;
        }
    }
    gnutls_certificate_set_known_dh_params(t->creds, GNUTLS_SEC_PARAM_MEDIUM);
    gnutls_certificate_set_verify_function(t->creds, verify_client);
    rc = 0;
out:
    wipe(&key);
    poh_strbuf_free(&cert);
    poh_strbuf_free(&ca);
    return rc;
}

/* client_allowed_sans, IP addresses in their canonical text form. */
static int copy_allowed_sans(poh_web_tls_t *t, const poh_web_tls_config_t *tc)
{
    if (!tc->client_allowed_sans_count)
        return 0;
    t->sans = calloc(tc->client_allowed_sans_count, sizeof *t->sans);
    if (!t->sans)
        return -ENOMEM;
    for (size_t i = 0; i < tc->client_allowed_sans_count; i++) {
        const char *s = tc->client_allowed_sans[i];
        unsigned char bin[16];
        char ip[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET, s, bin) == 1)
            s = inet_ntop(AF_INET, bin, ip, sizeof ip);
        else if (inet_pton(AF_INET6, s, bin) == 1)
            s = inet_ntop(AF_INET6, bin, ip, sizeof ip);
        if (!s || !(t->sans[t->nsans++] = strdup(s)))
            return -ENOMEM;
    }
    return 0;
}

int poh_web_tls_build(const poh_web_config_t *c, poh_web_tls_t **out, poh_strbuf_t *err)
{
    const poh_web_tls_config_t *tc = &c->tls;
    poh_strbuf_t prio = POH_STRBUF_INIT;
    poh_web_tls_t *t = calloc(1, sizeof *t);
    int rc = -ENOMEM, g;
    *out = NULL;
    if (!t)
        goto out;
    atomic_init(&t->refs, 1);
    t->auth = poh_web_client_auth(tc);
    if ((rc = load_credentials(t, tc, err)) < 0 || (rc = poh_web_tls_priorities(tc, &prio, err)) < 0)
        goto out;
    rc = -EINVAL;
    const char *where = NULL;
    if ((g = gnutls_priority_init(&t->prio, prio.data, &where)) < 0) {
        t->prio = NULL;
        poh_strbuf_printf(err, "tls_server_config: GnuTLS refused the settings (%s at \"%s\")\n",
                          gnutls_strerror(g), where ? where : "?");
        goto out;
    }
    if ((rc = copy_allowed_sans(t, tc)) < 0)
        goto out;
    t->not_after = cert_not_after(t->creds);
    pthread_mutex_lock(&live_mu);
    t->next = live_list;
    live_list = t;
    pthread_mutex_unlock(&live_mu);
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (t)
        free_tls(t);
    poh_strbuf_free(&prio);
    return rc;
}

poh_web_tls_t *poh_web_tls_ref(poh_web_tls_t *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void poh_web_tls_unref(poh_web_tls_t *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    pthread_mutex_lock(&live_mu);
    for (poh_web_tls_t **pp = &live_list; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    pthread_mutex_unlock(&live_mu);
    free_tls(t);
}

int poh_web_tls_session_setup(poh_web_tls_t *t, void *session)
{
    gnutls_session_t s = session;
    gnutls_certificate_request_t req = GNUTLS_CERT_IGNORE;
    if (t->auth == POH_CLIENT_REQUEST || t->auth == POH_CLIENT_VERIFY_IF_GIVEN)
        req = GNUTLS_CERT_REQUEST;
    else if (t->auth == POH_CLIENT_REQUIRE_ANY || t->auth == POH_CLIENT_REQUIRE_VERIFY)
        req = GNUTLS_CERT_REQUIRE;
    if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds) < 0 ||
        gnutls_priority_set(s, t->prio) < 0)
        return -EPROTO;
    gnutls_certificate_server_set_request(s, req);
    return 0;
}

double poh_web_tls_not_after(const poh_web_tls_t *t)
{
    return t ? t->not_after : 0;
}
