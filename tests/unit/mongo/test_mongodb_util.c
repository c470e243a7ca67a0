/* SPDX-License-Identifier: Apache-2.0 */
/* mongo/mongo_util: URI redaction, time values of documents (BSON Date,
 * epoch ms/s, RFC 3339), replica set members and lag clamping, change stream
 * error classes. Table-driven (traceparent parsing is tested with trace/). */
#include <check.h>
#include <math.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "mongo/mongo_util.h"

/* ------------------------------------------------------------ redaction */

static const struct {
    const char *in, *out;
} redactions[] = {
    {"mongodb://monitor:s3cret@db1,db2,db3/?replicaSet=rs0&tls=true",
     "mongodb://monitor:***@db1,db2,db3/?replicaSet=rs0&tls=true"},
    {"mongodb://monitor@db1/?replicaSet=rs0", "mongodb://monitor@db1/?replicaSet=rs0"},
    {"mongodb://db1:27017/", "mongodb://db1:27017/"},
    {"mongodb+srv://u:p@cluster0.example.net/", "mongodb+srv://u:***@cluster0.example.net/"},
    /* unescaped '@', '/', '?' and ':' in a password: everything up to the last '@' goes */
    {"mongodb://u:pa@ss/w?rd:x@host/db", "mongodb://u:***@host/db"},
    {"mongodb://u:@host", "mongodb://u:***@host"},
    {"mongodb://:secret@host", "mongodb://:***@host"},
    /* an '@' in an option hides too much, never too little */
    {"mongodb://u:pw@h/?appName=a@b", "mongodb://u:***@b"},
    /* credential options, in any case, wherever they stand in the options */
    {"mongodb://h/?tls=true&tlsCertificateKeyFile=/x.pem&tlsCertificateKeyFilePassword=k3y!",
     "mongodb://h/?tls=true&tlsCertificateKeyFile=/x.pem&tlsCertificateKeyFilePassword=***"},
    {"mongodb://u@h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok"
     "&appName=x",
     "mongodb://u@h/?authMechanism=MONGODB-AWS&authMechanismProperties=***&appName=x"},
    {"mongodb://h/?SSLCLIENTCERTIFICATEKEYPASSWORD=pw;replicaSet=rs0",
     "mongodb://h/?SSLCLIENTCERTIFICATEKEYPASSWORD=***;replicaSet=rs0"},
    {"mongodb://a:pw@h/?x=1&someFutureSecret=s&accessToken=t&password=p",
     "mongodb://a:***@h/?x=1&someFutureSecret=***&accessToken=***&password=***"},
    /* an '@' in an option value before the secret one: still hidden */
    {"mongodb://h:27017/?appName=a@b&tlsCertificateKeyFilePassword=k",
     "mongodb://h:***@b&tlsCertificateKeyFilePassword=***"},
    {"mongodb://h/?tlsCertificateKeyFilePassword=", "mongodb://h/?tlsCertificateKeyFilePassword=***"},
    {"mongodb://h/?tlsCertificateKeyFilePassword", "mongodb://h/?tlsCertificateKeyFilePassword"},
    {"not a uri", "not a uri"},
    {"", ""},
};

START_TEST(test_redact_uri)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_mongo_redact_uri(&sb, redactions[_i].in);
    ck_assert_str_eq(sb.data ? sb.data : "", redactions[_i].out);
    poh_strbuf_free(&sb);
}
END_TEST

static const struct {
    const char *in, *secret, *out;
} scrubs[] = {
    {"failed to connect mongodb://a:b@h:1/x now", NULL, "failed to connect mongodb://a:***@h:1/x now"},
    {"two \"mongodb://a:pw1@h\" and mongodb://c:pw2@k", NULL,
     "two \"mongodb://a:***@h\" and mongodb://c:***@k"},
    {"Authentication failed for hunter22", "hunter22", "Authentication failed for ***"},
    {"hunter22hunter22", "hunter22", "******"},
    {"short pw ab stays", "ab", "short pw ab stays"},
    {"nothing here", "zzz", "nothing here"},
    {"bad URI mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:t0k: x", NULL,
     "bad URI mongodb://h/?authMechanismProperties=*** x"},
};

START_TEST(test_scrub)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_strbuf_puts(&sb, "prefix|");
    poh_mongo_scrub(&sb, scrubs[_i].in, scrubs[_i].secret);
    ck_assert_ptr_nonnull(sb.data);
    ck_assert_str_eq(sb.data + 7, scrubs[_i].out);
    ck_assert(strncmp(sb.data, "prefix|", 7) == 0);
    poh_strbuf_free(&sb);
}
END_TEST

/* ----------------------------------------------------------------- time */

static const struct {
    const char *s;
    int rc;
    double ms;
} rfc3339[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"2026-11-25T15:42:15.123Z", 0, 1795621335123.0},
    {"2026-11-25t15:42:15.123z", 0, 1795621335123.0},
    {"2026-11-25 15:42:15.123Z", 0, 1795621335123.0},
    {"2026-11-25T16:42:15.123+01:00", 0, 1795621335123.0},
    {"2026-11-25T10:12:15.123-05:30", 0, 1795621335123.0},
    {"2026-11-25T15:42:15Z", 0, 1795621335000.0},
    {"2026-11-25T15:42:15.5Z", 0, 1795621335500.0},
    {"2024-02-29T00:00:00Z", 0, 1709164800000.0},
    {"2000-03-01T00:00:00Z", 0, 951868800000.0},
    {"1969-12-31T23:59:59Z", 0, -1000.0},
    {"2023-02-29T00:00:00Z", -EINVAL, 0},
    {"2026-13-01T00:00:00Z", -EINVAL, 0},
    {"2026-11-25T24:00:00Z", -EINVAL, 0},
    {"2026-11-25T15:42:15", -EINVAL, 0},
    {"2026-11-25T15:42:15.Z", -EINVAL, 0},
    {"2026-11-25T15:42:15Zjunk", -EINVAL, 0},
    {"2026-11-25T15:42:15+0100", -EINVAL, 0},
    {"2026-11-25T15:42:15+24:00", -EINVAL, 0},
    {"2026-11-25", -EINVAL, 0},
    {"yesterday", -EINVAL, 0},
    {"", -EINVAL, 0},
};

START_TEST(test_rfc3339)
{
    double ms = -42;
    int rc = poh_parse_rfc3339(rfc3339[_i].s, strlen(rfc3339[_i].s), &ms);
    ck_assert_msg(rc == rfc3339[_i].rc, "%s: rc %d", rfc3339[_i].s, rc);
    if (rc == 0)
        ck_assert_msg(fabs(ms - rfc3339[_i].ms) < 1e-6, "%s: %.3f", rfc3339[_i].s, ms);
}
END_TEST

/* One field of doc read with a unit: the expected return and value. */
typedef struct {
    const char *key;
    poh_epoch_unit_t unit;
    int rc;
    double ms;
} time_case_t;

static void check_time_cases(const bson_t *doc, const time_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        ck_assert(bson_iter_init_find(&it, doc, cases[i].key));
        double ms = -1;
        int rc = poh_mongo_time_value(&it, cases[i].unit, &ms);
        ck_assert_msg(rc == cases[i].rc, "%s/%d: rc %d", cases[i].key, (int)cases[i].unit, rc);
        if (rc == 0) {
            ck_assert_msg(fabs(ms - cases[i].ms) < 1e-3, "%s: %.3f", cases[i].key, ms);
            ck_assert(ms >= POH_MONGO_TIME_MIN_MS && ms <= POH_MONGO_TIME_MAX_MS);
        }
    }
}

/* A field of each BSON type, read with each epoch unit. */
START_TEST(test_time_value)
{
    bson_t *doc = BCON_NEW("date", BCON_DATE_TIME(1795621335123), "i64", BCON_INT64(1795621335123),
                           "i32", BCON_INT32(1795621335), "dbl", BCON_DOUBLE(1795621335.5),
                           "str", BCON_UTF8("2026-11-25T15:42:15.123Z"), "ts",
                           BCON_TIMESTAMP(1795621335, 7), "bad", BCON_UTF8("soon"), "nan",
                           BCON_DOUBLE(NAN), "obj", "{", "a", BCON_INT32(1), "}", "null",
                           BCON_NULL, "bool", BCON_BOOL(true));
    static const time_case_t cases[] = {
        {"date", POH_EPOCH_MS, 0, 1795621335123.0},
        {"date", POH_EPOCH_S, 0, 1795621335123.0}, /* a Date is a Date whatever the unit */
        {"i64", POH_EPOCH_MS, 0, 1795621335123.0},
        {"i32", POH_EPOCH_S, 0, 1795621335000.0},
        {"dbl", POH_EPOCH_S, 0, 1795621335500.0},
        {"dbl", POH_EPOCH_MS, 0, 1795621335.5},
        {"str", POH_EPOCH_S, 0, 1795621335123.0},
        {"ts", POH_EPOCH_MS, 0, 1795621335000.0},
        {"bad", POH_EPOCH_MS, -EINVAL, 0},
        {"nan", POH_EPOCH_MS, -EINVAL, 0},
        {"obj", POH_EPOCH_MS, -EINVAL, 0},
        {"null", POH_EPOCH_MS, -EINVAL, 0},
        {"bool", POH_EPOCH_MS, -EINVAL, 0},
    };
    check_time_cases(doc, cases, sizeof cases / sizeof *cases);
    bson_destroy(doc);
}
END_TEST

/* Numbers and Dates far outside any real time are refused in their own
 * type and unit, before any conversion (no int64 overflow, no cast of a
 * huge double); the ends of the range and RFC 3339's extremes pass. */
START_TEST(test_time_value_range)
{
    static const time_case_t cases[] = {
        {"dmin", POH_EPOCH_MS, 0, (double)POH_MONGO_TIME_MIN_MS},
        {"dmax", POH_EPOCH_MS, 0, (double)POH_MONGO_TIME_MAX_MS},
        {"dbelow", POH_EPOCH_MS, -ERANGE, 0},
        {"dabove", POH_EPOCH_MS, -ERANGE, 0},
        {"dhuge", POH_EPOCH_MS, -ERANGE, 0},
        {"dtiny", POH_EPOCH_MS, -ERANGE, 0},
        {"i64max", POH_EPOCH_S, -ERANGE, 0}, /* INT64_MAX s: overflows as ms */
        {"i64max", POH_EPOCH_MS, -ERANGE, 0},
        {"i64min", POH_EPOCH_S, -ERANGE, 0},
        {"i64min", POH_EPOCH_MS, -ERANGE, 0},
        {"i64s", POH_EPOCH_S, 0, (double)POH_MONGO_TIME_MAX_MS},
        {"i64s1", POH_EPOCH_S, -ERANGE, 0},
        {"i32max", POH_EPOCH_S, 0, 2147483647000.0},
        {"i32min", POH_EPOCH_MS, 0, -2147483648.0},
        {"dblneg", POH_EPOCH_MS, -ERANGE, 0}, /* -1.7e308 */
        {"dblpos", POH_EPOCH_MS, -ERANGE, 0}, /* 1.7e308 */
        {"dblpos", POH_EPOCH_S, -ERANGE, 0},
        {"dblinf", POH_EPOCH_MS, -EINVAL, 0},
        {"dbledge", POH_EPOCH_S, 0, (double)POH_MONGO_TIME_MAX_MS},
        {"dblover", POH_EPOCH_S, -ERANGE, 0},
        {"rfcmin", POH_EPOCH_MS, 0, -62167305540000.0},
        {"rfcmax", POH_EPOCH_MS, 0, 253402387140999.0},
    };
    bson_t *doc = BCON_NEW(
        "dmin", BCON_DATE_TIME(POH_MONGO_TIME_MIN_MS), "dmax", BCON_DATE_TIME(POH_MONGO_TIME_MAX_MS),
        "dbelow", BCON_DATE_TIME(POH_MONGO_TIME_MIN_MS - 1), "dabove",
        BCON_DATE_TIME(POH_MONGO_TIME_MAX_MS + 1), "dhuge", BCON_DATE_TIME(INT64_MAX), "dtiny",
        BCON_DATE_TIME(INT64_MIN), "i64max", BCON_INT64(INT64_MAX), "i64min",
        BCON_INT64(INT64_MIN), "i64s", BCON_INT64(POH_MONGO_TIME_MAX_MS / 1000), "i64s1",
        BCON_INT64(POH_MONGO_TIME_MAX_MS / 1000 + 1), "i32max", BCON_INT32(INT32_MAX), "i32min",
        BCON_INT32(INT32_MIN), "dblneg", BCON_DOUBLE(-1.7e308), "dblpos", BCON_DOUBLE(1.7e308),
        "dblinf", BCON_DOUBLE(INFINITY), "dbledge", BCON_DOUBLE(POH_MONGO_TIME_MAX_MS / 1000.0),
        "dblover", BCON_DOUBLE(POH_MONGO_TIME_MAX_MS / 1000.0 + 0.5), "rfcmin",
        BCON_UTF8("0000-01-01T00:00:00+23:59"), "rfcmax",
        BCON_UTF8("9999-12-31T23:59:60.999-23:59"));
    check_time_cases(doc, cases, sizeof cases / sizeof *cases);
    bson_destroy(doc);
}
END_TEST

/* ----------------------------------------------------------- replica set */

static bson_t *status_doc(void)
{
    /* primary at 1000 s; a secondary 7 s behind; one ahead (clock skew,
     * clamped to 0); one unhealthy; one with a zero optime; one pv0 optime
     * (a bare Timestamp) 3 s behind; one with only optimeDate, 2.5 s behind. */
    return BCON_NEW(
        "set", "rs0", "members", "[",
        "{", "name", "db1:27017", "state", BCON_INT32(1), "stateStr", "PRIMARY", "health",
        BCON_DOUBLE(1), "optime", "{", "ts", BCON_TIMESTAMP(1000, 5), "t", BCON_INT64(3), "}",
        "optimeDate", BCON_DATE_TIME(1000000), "}",
        "{", "name", "db2:27017", "state", BCON_INT32(2), "stateStr", "SECONDARY", "health",
        BCON_DOUBLE(1), "optime", "{", "ts", BCON_TIMESTAMP(993, 1), "t", BCON_INT64(3), "}", "}",
        "{", "name", "db3:27017", "state", BCON_INT32(2), "stateStr", "SECONDARY", "health",
        BCON_INT32(1), "optime", "{", "ts", BCON_TIMESTAMP(1004, 1), "t", BCON_INT64(3), "}", "}",
        "{", "name", "db4:27017", "state", BCON_INT32(8), "stateStr", "(not reachable/healthy)",
        "health", BCON_DOUBLE(0), "optime", "{", "ts", BCON_TIMESTAMP(900, 1), "t", BCON_INT64(3),
        "}", "}",
        "{", "name", "db5:27017", "state", BCON_INT32(5), "stateStr", "STARTUP2", "health",
        BCON_DOUBLE(1), "optime", "{", "ts", BCON_TIMESTAMP(0, 0), "t", BCON_INT64(-1), "}",
        "optimeDate", BCON_DATE_TIME(0), "}",
        "{", "name", "db6:27017", "state", BCON_INT32(2), "health", BCON_DOUBLE(1), "optime",
        BCON_TIMESTAMP(997, 0), "}",
        "{", "name", "db7:27017", "state", BCON_INT32(2), "health", BCON_DOUBLE(1), "optimeDate",
        BCON_DATE_TIME(997500), "}",
        "{", "state", BCON_INT32(2), "}", /* no name: left out */
        "]", "ok", BCON_DOUBLE(1));
}

START_TEST(test_members_and_lag)
{
    bson_t *doc = status_doc();
    poh_mongo_member_t m[16];
    int n = poh_mongo_members_parse(doc, m, 16);
    ck_assert_int_eq(n, 7);
    static const struct {
        const char *name, *state;
        int health;
        double optime, lag; /* lag NaN = skipped */
    } want[] = {
        {"db1:27017", "PRIMARY", 1, 1000, 0},
        {"db2:27017", "SECONDARY", 1, 993, 7},
        {"db3:27017", "SECONDARY", 1, 1004, 0},
        {"db4:27017", "DOWN", 0, 900, NAN}, /* state 8, not the stateStr */
        {"db5:27017", "STARTUP2", 1, 0, NAN},
        {"db6:27017", "SECONDARY", 1, 997, 3},
        {"db7:27017", "SECONDARY", 1, 997.5, 2.5},
    };
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(m[i].name, want[i].name);
        ck_assert_str_eq(m[i].state_str, want[i].state);
        ck_assert_int_eq(m[i].health, want[i].health);
        ck_assert_msg(m[i].optime == want[i].optime, "%s optime %f", m[i].name, m[i].optime);
        double lag = poh_mongo_replication_lag(m, (size_t)n, (size_t)i);
        if (isnan(want[i].lag))
            ck_assert_msg(isnan(lag), "%s: lag %f, want skipped", m[i].name, lag);
        else
            ck_assert_msg(lag == want[i].lag, "%s: lag %f want %f", m[i].name, lag, want[i].lag);
    }
    /* Without a primary there is nothing to measure against. */
    m[0].state = 2;
    for (int i = 0; i < n; i++)
        ck_assert(isnan(poh_mongo_replication_lag(m, (size_t)n, (size_t)i)));
    /* An unhealthy primary is no reference either. */
    m[0].state = 1;
    m[0].health = 0;
    ck_assert(isnan(poh_mongo_replication_lag(m, (size_t)n, 1)));
    /* cap bounds the output */
    ck_assert_int_eq(poh_mongo_members_parse(doc, m, 2), 2);
    bson_destroy(doc);

    bson_t *bad = BCON_NEW("ok", BCON_DOUBLE(0), "code", BCON_INT32(76));
    ck_assert_int_eq(poh_mongo_members_parse(bad, m, 16), -EINVAL);
    bson_destroy(bad);
}
END_TEST

/* The numeric state wins over stateStr, and is range-checked before any
 * conversion: an absurd code is unknown, and then stateStr is what is left. */
START_TEST(test_member_state_code)
{
    bson_t *doc = BCON_NEW("members", "[",
        "{", "name", "a:1", "state", BCON_DOUBLE(2.01e14), "stateStr", "SECONDARY", "}",
        "{", "name", "b:1", "state", BCON_DOUBLE(-1e300), "}",
        "{", "name", "c:1", "state", BCON_DOUBLE(7.5), "stateStr", "weird", "}",
        "{", "name", "d:1", "state", BCON_INT64(INT64_MAX), "}",
        "{", "name", "e:1", "state", BCON_DOUBLE(8), "stateStr", "(not reachable/healthy)", "}",
        "{", "name", "f:1", "state", BCON_INT32(7), "stateStr", "ARBITER", "}",
        "]");
    poh_mongo_member_t m[8];
    ck_assert_int_eq(poh_mongo_members_parse(doc, m, 8), 6);
    static const struct {
        int state;
        const char *str;
    } want[] = {{-1, "SECONDARY"}, {-1, ""}, {-1, "weird"}, {-1, ""}, {8, "DOWN"}, {7, "ARBITER"}};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(m[i].state, want[i].state);
        ck_assert_str_eq(m[i].state_str, want[i].str);
    }
    bson_destroy(doc);
}
END_TEST

START_TEST(test_lag_clamp)
{
    ck_assert(poh_mongo_lag_clamp(10, 3) == 7);
    ck_assert(poh_mongo_lag_clamp(3, 10) == 0);
    ck_assert(poh_mongo_lag_clamp(5, 5) == 0);
    ck_assert(isnan(poh_mongo_lag_clamp(NAN, 1)));
    ck_assert_str_eq(poh_mongo_state_name(1), "PRIMARY");
    ck_assert_str_eq(poh_mongo_state_name(10), "REMOVED");
    ck_assert_str_eq(poh_mongo_state_name(4), "");
    ck_assert_str_eq(poh_mongo_state_name(-1), "");
    ck_assert_str_eq(poh_mongo_state_name(11), "");
}
END_TEST

/* --------------------------------------------------------------- errors */

START_TEST(test_error_kind)
{
    static const struct {
        uint32_t domain, code;
        const char *label;
        poh_mongo_err_kind_t want;
    } cases[] = {
        {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET, NULL, POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE, NULL,
         POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 286, NULL, POH_MONGO_ERR_HISTORY_LOST},
        {MONGOC_ERROR_QUERY, 286, NULL, POH_MONGO_ERR_HISTORY_LOST},
        {MONGOC_ERROR_SERVER, 280, NULL, POH_MONGO_ERR_HISTORY_LOST},
        /* history loss wins over a label */
        {MONGOC_ERROR_SERVER, 286, "ResumableChangeStreamError", POH_MONGO_ERR_HISTORY_LOST},
        {MONGOC_ERROR_SERVER, 91, "ResumableChangeStreamError", POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 91, NULL, POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 10107, NULL, POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 11602, NULL, POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 43, NULL, POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 12345, "ResumableChangeStreamError", POH_MONGO_ERR_RESUMABLE},
        {MONGOC_ERROR_SERVER, 13, NULL, POH_MONGO_ERR_OTHER},
        {MONGOC_ERROR_SERVER, 26, "TransientTransactionError", POH_MONGO_ERR_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bson_error_t e = {.domain = cases[i].domain, .code = cases[i].code};
        bson_t *reply = cases[i].label ? BCON_NEW("ok", BCON_DOUBLE(0), "errorLabels", "[",
                                                  BCON_UTF8(cases[i].label), "]")
                                       : NULL;
        ck_assert_msg(poh_mongo_error_kind(&e, reply) == cases[i].want, "case %zu", i);
        if (reply)
            bson_destroy(reply);
    }
}
END_TEST

START_TEST(test_names)
{
    ck_assert(poh_mongo_name_valid("main"));
    ck_assert(poh_mongo_name_valid("rs-0.eu_west"));
    ck_assert(!poh_mongo_name_valid(""));
    ck_assert(!poh_mongo_name_valid(".hidden"));
    ck_assert(!poh_mongo_name_valid("a/b"));
    ck_assert(!poh_mongo_name_valid("a@b"));
    ck_assert(!poh_mongo_name_valid("a b"));
    ck_assert(poh_mongo_name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
    ck_assert(!poh_mongo_name_valid("01234567890123456789012345678901234567890123456789012345678901234"));
}
END_TEST

/* The cluster time of resume tokens: a mongod 7.0 token from the corpus, the
 * simulator's, and tokens that are not of that form. */
START_TEST(test_token_time)
{
    static const struct {
        const char *data;
        uint64_t want;
    } cases[] = {
        {"8265A1B2C3000000012B022C0100296E5A1004", (uint64_t)0x65A1B2C3 << 32 | 1},
        {"826B145E3800000005", (uint64_t)0x6B145E38 << 32 | 5},
        {"826b145e38000000050100", (uint64_t)0x6B145E38 << 32 | 5},
        {"826B145E380000000", 0},   /* too short */
        {"836B145E3800000005", 0},  /* not a Timestamp */
        {"826B145E38000G0005", 0},  /* not hex */
        {"", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        bson_t *tok = BCON_NEW("_data", BCON_UTF8(cases[k].data));
        ck_assert_msg(poh_mongo_token_time(tok) == cases[k].want, "%s", cases[k].data);
        bson_destroy(tok);
    }
    bson_t *bin = BCON_NEW("_data", BCON_INT32(5));
    ck_assert(poh_mongo_token_time(bin) == 0);
    ck_assert(poh_mongo_token_time(NULL) == 0);
    bson_destroy(bin);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_util");
    TCase *tc = tcase_create("util");
    tcase_add_loop_test(tc, test_redact_uri, 0, (int)(sizeof redactions / sizeof *redactions));
    tcase_add_loop_test(tc, test_scrub, 0, (int)(sizeof scrubs / sizeof *scrubs));
    tcase_add_loop_test(tc, test_rfc3339, 0, (int)(sizeof rfc3339 / sizeof *rfc3339));
    tcase_add_test(tc, test_time_value);
    tcase_add_test(tc, test_time_value_range);
    tcase_add_test(tc, test_members_and_lag);
    tcase_add_test(tc, test_member_state_code);
    tcase_add_test(tc, test_lag_clamp);
    tcase_add_test(tc, test_error_kind);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_token_time);
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
