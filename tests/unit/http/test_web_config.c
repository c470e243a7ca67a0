/* SPDX-License-Identifier: Apache-2.0 */
/* The web config file (exporter-toolkit's format): parsing, the checks and
 * messages of exporter-toolkit, GnuTLS priority strings, PEM loading errors
 * and basic auth against bcrypt hashes. */
#include <check.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/schema.h"
#include "http/web_auth.h"
#include "http/web_config.h"
#include "http/web_tls.h"

/* bcrypt of "s3cret" and of "other", cost 4 (fast; the cost is not what is tested) */
static char hash_s3cret[128], hash_other[128];

static void make_hashes(void)
{
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char salt[64];
    ck_assert_ptr_nonnull(crypt_gensalt_rn("$2y$", 4, NULL, 0, salt, sizeof salt));
    snprintf(hash_s3cret, sizeof hash_s3cret, "%s", crypt_r("s3cret", salt, &cd));
    ck_assert_ptr_nonnull(crypt_gensalt_rn("$2b$", 5, NULL, 0, salt, sizeof salt));
    snprintf(hash_other, sizeof hash_other, "%s", crypt_r("other", salt, &cd));
    ck_assert_uint_eq(strlen(hash_s3cret), 60);
}

static poh_web_config_t *parse_ok(const char *yaml)
{
    poh_web_config_t *c = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_web_config_parse("web.yml", yaml, strlen(yaml), "/etc/poh", &c, &err);
    ck_assert_msg(rc == 0, "unexpected errors:\n%s", err.data ? err.data : "");
    poh_strbuf_free(&err);
    return c;
}

/* The file is refused and the errors contain want (and never avoid). */
static void parse_bad(const char *yaml, const char *want, const char *avoid)
{
    poh_web_config_t *c = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_web_config_parse("web.yml", yaml, strlen(yaml), NULL, &c, &err),
                     -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_msg(err.data && strstr(err.data, want), "want \"%s\" in:\n%s", want,
                  err.data ? err.data : "(nothing)");
    if (avoid)
        ck_assert_msg(!strstr(err.data, avoid), "\"%s\" must not be shown:\n%s", avoid,
                      err.data);
    poh_strbuf_free(&err);
}

START_TEST(test_empty_file)
{
    poh_web_config_t *c = parse_ok("");
    ck_assert(!c->tls_enabled);
    ck_assert_uint_eq(c->users_count, 0);
    ck_assert(c->http.http2);
    ck_assert_str_eq(c->tls.min_version, "TLS12");
    ck_assert_str_eq(c->tls.max_version, "TLS13");
    ck_assert(c->tls.prefer_server_cipher_suites);
    poh_web_config_free(c);
    /* basic auth alone: plain HTTP with auth, as exporter-toolkit */
    char yaml[256];
    make_hashes();
    snprintf(yaml, sizeof yaml, "basic_auth_users:\n  alice: '%s'\n", hash_s3cret);
    c = parse_ok(yaml);
    ck_assert(!c->tls_enabled);
    ck_assert_uint_eq(c->users_count, 1);
    ck_assert_str_eq(c->users[0].key, "alice");
    poh_web_config_free(c);
}
END_TEST

START_TEST(test_full_file)
{
    make_hashes();
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n"
             "  cert_file: server.pem\n"
             "  key_file: /abs/server.key\n"
             "  client_auth_type: RequireAndVerifyClientCert\n"
             "  client_ca_file: ca/clients.pem\n"
             "  client_allowed_sans: [scraper.example, 10.0.0.1]\n"
             "  min_version: TLS13\n"
             "  max_version: TLS13\n"
             "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
             "  prefer_server_cipher_suites: false\n"
             "  curve_preferences: [X25519, CurveP256]\n"
             "http_server_config:\n"
             "  http2: false\n"
             "  headers:\n"
             "    X-Frame-Options: SAMEORIGIN\n"
             "    Strict-Transport-Security: max-age=31536000\n"
             "basic_auth_users:\n"
             "  alice: '%s'\n"
             "  bob: %s\n"
             "rate_limit:\n"
             "  interval: 100ms\n"
             "  burst: 5\n",
             hash_s3cret, hash_other);
    poh_web_config_t *c = parse_ok(yaml);
    ck_assert(c->tls_enabled);
    ck_assert_str_eq(c->tls.cert_file, "/etc/poh/server.pem"); /* from the file's directory */
    ck_assert_str_eq(c->tls.key_file, "/abs/server.key");
    ck_assert_str_eq(c->tls.client_ca_file, "/etc/poh/ca/clients.pem");
    ck_assert_int_eq(poh_web_client_auth(&c->tls), POH_CLIENT_REQUIRE_VERIFY);
    ck_assert_uint_eq(c->tls.client_allowed_sans_count, 2);
    ck_assert_uint_eq(c->tls.curve_preferences_count, 2);
    ck_assert(!c->tls.prefer_server_cipher_suites);
    ck_assert(!c->http.http2);
    ck_assert_uint_eq(c->http.headers_count, 2);
    ck_assert_uint_eq(c->users_count, 2);
    ck_assert_double_eq_tol(c->rate_limit.interval, 0.1, 1e-9);
    ck_assert_uint_eq(c->rate_limit.burst, 5);
    poh_web_config_free(c);
}
END_TEST

START_TEST(test_refused)
{
    make_hashes();
    char yaml[512];
    parse_bad("tls_server_config:\n  cert_fil: a.pem\n", "web.yml:2:3", NULL);
    parse_bad("tls_server_config:\n  cert_fil: a.pem\n", "did you mean \"cert_file\"", NULL);
    parse_bad("basic_auth_user: {}\n", "did you mean \"basic_auth_users\"", NULL);
    parse_bad("tls_server_config:\n  cert_file: a.pem\n", "missing one of key or key_file", NULL);
    parse_bad("tls_server_config:\n  key_file: a.key\n", "missing one of cert or cert_file",
              NULL);
    parse_bad("tls_server_config:\n  cert_file: a.pem\n  cert: x\n  key_file: k\n",
              "cannot specify both cert_file and cert", NULL);
    parse_bad("tls_server_config:\n  cert_file: a\n  key_file: k\n  client_ca_file: ca\n",
              "Client CA's have been configured without a Client Auth Policy", NULL);
    parse_bad("tls_server_config:\n  cert_file: a\n  key_file: k\n"
              "  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [x]\n",
              "needs client_auth_type RequireAnyClientCert", NULL);
    parse_bad("tls_server_config:\n  client_auth_type: Sometimes\n  cert_file: a\n  key_file: k\n",
              "client_auth_type", NULL);
    parse_bad("tls_server_config:\n  min_version: TLS14\n", "min_version", NULL);
    parse_bad("tls_server_config:\n  min_version: TLS13\n  max_version: TLS12\n",
              "TLS13 is above max_version TLS12", NULL);
    parse_bad("tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
              "unknown cipher", NULL);
    parse_bad("tls_server_config:\n  curve_preferences: [CurveP999]\n", "unknown curve", NULL);
    parse_bad("http_server_config:\n  headers:\n    X-Foo: bar\n",
              "HTTP header \"X-Foo\" can not be configured", NULL);
    parse_bad("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
              "invalid value for X-Frame-Options", NULL);
    parse_bad("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
              "invalid value for X-Content-Type-Options", NULL);
    parse_bad("rate_limit:\n  interval: 1s\n", "must be at least 1 when interval is set", NULL);
    /* a broken hash is named by its user, never shown */
    snprintf(yaml, sizeof yaml, "basic_auth_users:\n  alice: '%.59s'\n", hash_s3cret);
    parse_bad(yaml, "user \"alice\": the password is not a bcrypt hash", hash_s3cret + 7);
    parse_bad("basic_auth_users:\n  alice: plaintextpassword\n", "not a bcrypt hash",
              "plaintextpassword");
    snprintf(yaml, sizeof yaml, "basic_auth_users:\n  'a:b': '%s'\n", hash_s3cret);
    parse_bad(yaml, "cannot be used with basic auth", NULL);
}
END_TEST

START_TEST(test_schema)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    ck_assert_msg(poh_cfg_schema_check(&poh_web_config_section, &why) == 0, "%s", why.data);
    poh_strbuf_free(&why);
}
END_TEST

static void priorities_are(const char *yaml, const char *want)
{
    poh_web_config_t *c = parse_ok(yaml);
    poh_strbuf_t out = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_web_tls_priorities(&c->tls, &out, &err), 0);
    ck_assert_str_eq(out.data, want);
    /* GnuTLS takes it */
    gnutls_priority_t p;
    const char *where = NULL;
    ck_assert_msg(gnutls_priority_init(&p, out.data, &where) == 0, "GnuTLS refused at %s",
                  where ? where : "?");
    gnutls_priority_deinit(p);
    poh_strbuf_free(&out);
    poh_strbuf_free(&err);
    poh_web_config_free(c);
}

START_TEST(test_priorities)
{
    priorities_are("", "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
    priorities_are("tls_server_config:\n  min_version: TLS10\n  max_version: TLS11\n"
                   "  prefer_server_cipher_suites: false\n",
                   "NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.1");
    priorities_are("tls_server_config:\n  cipher_suites:\n"
                   "  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
                   "  - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"
                   "  - TLS_RSA_WITH_AES_128_CBC_SHA\n"
                   "  curve_preferences: [X25519, CurveP384]\n",
                   "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"
                   ":-KX-ALL:-CIPHER-ALL:-MAC-ALL:+ECDHE-RSA:+AES-256-GCM:+AEAD:+ECDHE-ECDSA"
                   ":+RSA:+AES-128-CBC:+SHA1:+AES-128-GCM:+CHACHA20-POLY1305"
                   ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP384R1");
    /* without TLS 1.3, nothing is added back */
    priorities_are("tls_server_config:\n  max_version: TLS12\n"
                   "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
                   "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2"
                   ":-KX-ALL:-CIPHER-ALL:-MAC-ALL:+ECDHE-RSA:+AES-128-CBC:+SHA1");
}
END_TEST

static void build_fails(const char *yaml, const char *want)
{
    poh_web_config_t *c = parse_ok(yaml);
    poh_web_tls_t *t = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_lt(poh_web_tls_build(c, &t, &err), 0);
    ck_assert_ptr_null(t);
    ck_assert_msg(err.data && strstr(err.data, want), "want \"%s\" in: %s", want,
                  err.data ? err.data : "(nothing)");
    poh_strbuf_free(&err);
    poh_web_config_free(c);
}

START_TEST(test_pem_errors)
{
    char dir[] = "/tmp/poh-webcfg-XXXXXX", path[128], yaml[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n  cert_file: %s/nowhere.pem\n  key_file: %s/k\n", dir, dir);
    build_fails(yaml, "nowhere.pem");
    /* a FIFO in place of the key: refused, not waited on */
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n  cert_file: %s/cert.pem\n  key_file: %s/fifo\n", dir, dir);
    build_fails(yaml, "not a regular file");
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n  cert_file: %s/cert.pem\n  key_file: %s/cert.pem\n", dir, dir);
    build_fails(yaml, "failed to load X509KeyPair");
    unlink(path);
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_bcrypt_hashes)
{
    make_hashes();
    ck_assert(poh_web_auth_hash_ok(hash_s3cret));
    ck_assert(poh_web_auth_hash_ok(hash_other));
    char h[128];
    snprintf(h, sizeof h, "%s", hash_s3cret);
    h[2] = 'x';
    ck_assert(!poh_web_auth_hash_ok(h));
    snprintf(h, sizeof h, "%s", hash_s3cret);
    h[4] = '3', h[5] = '2'; /* cost 32 */
    ck_assert(!poh_web_auth_hash_ok(h));
    h[4] = '0', h[5] = '3'; /* cost 3 */
    ck_assert(!poh_web_auth_hash_ok(h));
    ck_assert(!poh_web_auth_hash_ok(""));
    ck_assert(!poh_web_auth_hash_ok("$1$abcdefgh$0123456789012345678901"));
    ck_assert(!poh_web_auth_hash_ok("$6$saltsalt$hash"));
}
END_TEST

START_TEST(test_basic_auth)
{
    make_hashes();
    poh_config_kv_t users[] = {{"alice", hash_s3cret}, {"bob", hash_other}};
    bool oom = true;
    ck_assert_ptr_null(poh_web_auth_new(users, 0, &oom));
    ck_assert(!oom);
    poh_web_auth_t *a = poh_web_auth_new(users, 2, &oom);
    ck_assert_ptr_nonnull(a);
    for (int round = 0; round < 2; round++) { /* the second round answers from the cache */
        ck_assert(poh_web_auth_check(a, "alice", "s3cret"));
        ck_assert(poh_web_auth_check(a, "bob", "other"));
        ck_assert(!poh_web_auth_check(a, "alice", "other"));
        ck_assert(!poh_web_auth_check(a, "bob", "s3cret"));
        ck_assert(!poh_web_auth_check(a, "alice", "s3cre"));
        ck_assert(!poh_web_auth_check(a, "alice", ""));
        ck_assert(!poh_web_auth_check(a, "carol", "other")); /* unknown user, bob's password */
        ck_assert(!poh_web_auth_check(a, "carol", "s3cret"));
        ck_assert(!poh_web_auth_check(a, "", ""));
    }
    /* more distinct attempts than the cache holds: still right */
    char pw[32];
    for (int i = 0; i < 300; i++) {
        snprintf(pw, sizeof pw, "guess%d", i);
        ck_assert(!poh_web_auth_check(a, "alice", pw));
    }
    ck_assert(poh_web_auth_check(a, "alice", "s3cret"));
    poh_web_auth_free(a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("web_config");
    TCase *tc = tcase_create("web_config");
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_schema);
    tcase_add_test(tc, test_priorities);
    tcase_add_test(tc, test_pem_errors);
    tcase_add_test(tc, test_bcrypt_hashes);
    tcase_add_test(tc, test_basic_auth);
    suite_add_tcase(s, tc);
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
