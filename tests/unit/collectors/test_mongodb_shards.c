/* SPDX-License-Identifier: Apache-2.0 */
/* collectors/mongodb_shards.c: the URI a shard's replica set is reached with
 * (mongo_shards_uri) carries the entry's credentials, TLS and other options,
 * names the shard's own hosts and set, and not the router's topology; its
 * timeouts are capped at the scrape's share; and how long clients' timeouts
 * are and when a kept client still fits (mongodb.c). */
#include <check.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/mongodb_internal.h"

static mongoc_uri_t *shard_of(const char *base_uri, const char *host, int ms)
{
    mongoc_uri_t *base = mongoc_uri_new(base_uri);
    ck_assert_ptr_nonnull(base);
    mongoc_uri_t *u = mongo_shards_uri(base, host, ms);
    mongoc_uri_destroy(base);
    ck_assert_ptr_nonnull(u);
    return u;
}

START_TEST(test_credentials_and_tls_follow)
{
    mongoc_uri_t *u = shard_of("mongodb://monitor:pw%40x@mongos1:27017,mongos2:27017/"
                               "?authSource=admin&authMechanism=SCRAM-SHA-256&tls=true"
                               "&tlsCAFile=/etc/ca.pem&tlsCertificateKeyFile=/etc/client.pem"
                               "&tlsAllowInvalidHostnames=true&appName=x&readPreference=secondary"
                               "&loadBalanced=false&directConnection=false",
                               "shard1/db1:27018,db2:27018", 400);
    ck_assert_str_eq(mongoc_uri_get_username(u), "monitor");
    ck_assert_str_eq(mongoc_uri_get_password(u), "pw@x");
    ck_assert_str_eq(mongoc_uri_get_auth_source(u), "admin");
    ck_assert_str_eq(mongoc_uri_get_auth_mechanism(u), "SCRAM-SHA-256");
    ck_assert(mongoc_uri_get_tls(u));
    ck_assert_str_eq(mongoc_uri_get_option_as_utf8(u, MONGOC_URI_TLSCAFILE, ""), "/etc/ca.pem");
    ck_assert_str_eq(mongoc_uri_get_option_as_utf8(u, MONGOC_URI_TLSCERTIFICATEKEYFILE, ""),
                     "/etc/client.pem");
    ck_assert(mongoc_uri_get_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, false));
    /* the shard's own set and hosts, not the router's */
    ck_assert_str_eq(mongoc_uri_get_replica_set(u), "shard1");
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(u);
    ck_assert_str_eq(h->host_and_port, "db1:27018");
    ck_assert_str_eq(h->next->host_and_port, "db2:27018");
    ck_assert_ptr_null(h->next->next);
    ck_assert(!mongoc_uri_has_option(u, MONGOC_URI_DIRECTCONNECTION));
    ck_assert(!mongoc_uri_has_option(u, MONGOC_URI_LOADBALANCED));
    /* timeouts: the share's */
    ck_assert_int_eq(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 400);
    ck_assert_int_eq(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 0), 400);
    ck_assert_int_eq(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     400);
    mongoc_uri_destroy(u);
}
END_TEST

START_TEST(test_shorter_timeouts_kept_and_bare_host)
{
    mongoc_uri_t *u = shard_of("mongodb://mongos1/?connectTimeoutMS=100&replicaSet=rsX",
                               "db9:27019", 400);
    ck_assert_int_eq(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 100);
    ck_assert_ptr_null(mongoc_uri_get_replica_set(u)); /* a host without "set/" */
    ck_assert_ptr_null(mongoc_uri_get_username(u));
    ck_assert_str_eq(mongoc_uri_get_hosts(u)->host_and_port, "db9:27019");
    mongoc_uri_destroy(u);
}
END_TEST

/* mongo_timeout_pick/_fits: a new client's timeouts are just under half
 * the budget on a 25 ms x 2^k ladder; a kept one is used while it fits in
 * half the budget and is not under a quarter of a new one's. */
START_TEST(test_client_timeouts)
{
    ck_assert_int_eq(mongo_timeout_pick(0), 0);
    ck_assert_int_eq(mongo_timeout_pick(-5), 0);
    ck_assert_int_eq(mongo_timeout_pick(10), 0);  /* 4 ms: not worth asking */
    ck_assert_int_eq(mongo_timeout_pick(20), 9);  /* under the ladder's first step */
    ck_assert_int_eq(mongo_timeout_pick(100), 25);
    ck_assert_int_eq(mongo_timeout_pick(1000), 400);
    ck_assert_int_eq(mongo_timeout_pick(7500), 3200);
    ck_assert_int_eq(mongo_timeout_pick(9500), 3200);
    ck_assert_int_eq(mongo_timeout_pick(2000000000), 838860800);
    for (int b = 12; b < 100000; b = b * 9 / 8 + 1) {
        int t = mongo_timeout_pick(b);
        ck_assert_int_gt(t, 0);
        ck_assert_int_le(2 * t, b);            /* selection plus one command fit */
        ck_assert_int_ge(4 * t, b * 45 / 100); /* never below a quarter */
        ck_assert(mongo_timeout_fits(t, b));   /* a new client is kept */
    }
    /* A scrape timeout of 10 s then 8 s, and shares that shift, keep it. */
    ck_assert(mongo_timeout_fits(mongo_timeout_pick(9500), 7500));
    ck_assert(mongo_timeout_fits(mongo_timeout_pick(3100), 2400));
    ck_assert(mongo_timeout_fits(mongo_timeout_pick(2400), 3100));
    /* Too long for the budget: a stalled command would end past the deadline. */
    ck_assert(!mongo_timeout_fits(3200, 6000));
    ck_assert(!mongo_timeout_fits(400, 10));
    /* Needlessly short: a scrape timeout raised from 1 s to 60 s remakes it. */
    ck_assert(!mongo_timeout_fits(mongo_timeout_pick(1000), 60000));
    ck_assert(!mongo_timeout_fits(0, 1000));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_shards");
    TCase *tc = tcase_create("uri");
    tcase_add_test(tc, test_credentials_and_tls_follow);
    tcase_add_test(tc, test_shorter_timeouts_kept_and_bare_host);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("timeouts");
    tcase_add_test(tt, test_client_timeouts);
    suite_add_tcase(s, tt);
    return s;
}

int main(void)
{
    mongoc_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    mongoc_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
