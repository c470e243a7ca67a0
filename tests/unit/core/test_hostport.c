/* SPDX-License-Identifier: Apache-2.0 */
/* core/hostport: the one host:port rule under each caller's flags. */
#include <check.h>
#include <string.h>

#include "core/hostport.h"

#define LISTEN (POH_HOSTPORT_EMPTY_HOST | POH_HOSTPORT_PORT_ZERO)
#define OTLP (POH_HOSTPORT_PORT_OPTIONAL | POH_HOSTPORT_URL)

static const struct {
    const char *in;
    unsigned flags;
    poh_hostport_problem_t want;
    const char *host, *port;
    bool bracketed;
} cases[] = {
    /* accepted */
    {"a:1", 0, POH_HOSTPORT_OK, "a", "1", false},
    {"host-1.example_org:65535", 0, POH_HOSTPORT_OK, "host-1.example_org", "65535", false},
    {"127.0.0.1:8000", 0, POH_HOSTPORT_OK, "127.0.0.1", "8000", false},
    {"[::1]:9100", 0, POH_HOSTPORT_OK, "::1", "9100", true},
    {"[::ffff:10.0.0.1]:1", 0, POH_HOSTPORT_OK, "::ffff:10.0.0.1", "1", true},
    {"a:00080", 0, POH_HOSTPORT_OK, "a", "00080", false},
    {":8000", LISTEN, POH_HOSTPORT_OK, "", "8000", false},
    {"localhost:0", LISTEN, POH_HOSTPORT_OK, "localhost", "0", false},
    {"collector", OTLP, POH_HOSTPORT_OK, "collector", "", false},
    {"[::1]", OTLP, POH_HOSTPORT_OK, "::1", "", true},
    {"HTTPS://u:p@Otel.example:4317/v1/traces?x#y", OTLP, POH_HOSTPORT_OK, "Otel.example", "4317",
     false},
    {"http://[::1]", OTLP, POH_HOSTPORT_OK, "::1", "", true},
    /* refused */
    {"", 0, POH_HOSTPORT_NO_PORT, NULL, NULL, false},
    {NULL, 0, POH_HOSTPORT_NO_PORT, NULL, NULL, false},
    {"a", 0, POH_HOSTPORT_NO_PORT, NULL, NULL, false},
    {"", OTLP, POH_HOSTPORT_NO_HOST, NULL, NULL, false},
    {":1", 0, POH_HOSTPORT_NO_HOST, NULL, NULL, false},
    {":1", OTLP, POH_HOSTPORT_NO_HOST, NULL, NULL, false},
    {"http://", OTLP, POH_HOSTPORT_NO_HOST, NULL, NULL, false},
    {"grpc://a:1", OTLP, POH_HOSTPORT_BAD_SCHEME, NULL, NULL, false},
    {"[::1:80", 0, POH_HOSTPORT_NO_CLOSE_BRACKET, NULL, NULL, false},
    {"[]:80", 0, POH_HOSTPORT_BAD_IPV6, NULL, NULL, false},
    {"[zz]:1", 0, POH_HOSTPORT_BAD_IPV6, NULL, NULL, false},
    {"[1.2.3.4]:80", 0, POH_HOSTPORT_BAD_IPV6, NULL, NULL, false},
    {"[fe80::1%eth0]:80", 0, POH_HOSTPORT_BAD_IPV6, NULL, NULL, false},
    {"[::1]", 0, POH_HOSTPORT_AFTER_BRACKET, NULL, NULL, false},
    {"[::1]9100", 0, POH_HOSTPORT_AFTER_BRACKET, NULL, NULL, false},
    {"[::1]x", OTLP, POH_HOSTPORT_AFTER_BRACKET, NULL, NULL, false},
    {"::1:80", 0, POH_HOSTPORT_UNBRACKETED_IPV6, NULL, NULL, false},
    {"::1", OTLP, POH_HOSTPORT_UNBRACKETED_IPV6, NULL, NULL, false},
    {"a b:1", 0, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},
    {"a/b:1", 0, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},
    {"u@a:1", 0, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},
    {"a*b:1", 0, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},
    {"\xc3\xa9:1", 0, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},
    {"u@a:1", OTLP, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false}, /* userinfo only after a scheme */
    {"a/v1", OTLP, POH_HOSTPORT_BAD_CHAR, NULL, NULL, false},  /* a path only after a scheme */
    {"1.2.3:1", 0, POH_HOSTPORT_BAD_IPV4, NULL, NULL, false},
    {"1:1", 0, POH_HOSTPORT_BAD_IPV4, NULL, NULL, false},
    {"256.0.0.1:1", 0, POH_HOSTPORT_BAD_IPV4, NULL, NULL, false},
    {"a:", 0, POH_HOSTPORT_BAD_PORT, NULL, NULL, false},
    {"a:-1", 0, POH_HOSTPORT_BAD_PORT, NULL, NULL, false},
    {"a:1x", 0, POH_HOSTPORT_BAD_PORT, NULL, NULL, false},
    {"a:123456", 0, POH_HOSTPORT_BAD_PORT, NULL, NULL, false},
    {"a:1/v1", OTLP, POH_HOSTPORT_BAD_PORT, NULL, NULL, false},
    {"a:0", 0, POH_HOSTPORT_PORT_RANGE, NULL, NULL, false},
    {"a:65536", LISTEN, POH_HOSTPORT_PORT_RANGE, NULL, NULL, false},
};

START_TEST(test_hostport_cases)
{
    poh_hostport_t hp;
    poh_hostport_problem_t got = poh_hostport_parse(cases[_i].in, cases[_i].flags, &hp);
    ck_assert_msg(got == cases[_i].want, "\"%s\": problem %d, want %d", cases[_i].in, got,
                  cases[_i].want);
    if (got == POH_HOSTPORT_OK) {
        ck_assert_str_eq(hp.host, cases[_i].host);
        ck_assert_str_eq(hp.port, cases[_i].port);
        ck_assert_int_eq(hp.bracketed, cases[_i].bracketed);
    } else {
        ck_assert_str_eq(hp.host, "");
        ck_assert_str_eq(hp.port, "");
    }
}
END_TEST

START_TEST(test_hostport_details)
{
    poh_hostport_t hp;
    ck_assert_int_eq(poh_hostport_parse("https://a", OTLP, &hp), POH_HOSTPORT_OK);
    ck_assert(hp.https && !hp.http);
    ck_assert_int_eq(poh_hostport_parse("Http://a", OTLP, &hp), POH_HOSTPORT_OK);
    ck_assert(hp.http && !hp.https);
    ck_assert_int_eq(poh_hostport_parse("ftp://a", OTLP, &hp), POH_HOSTPORT_BAD_SCHEME);
    ck_assert_int_eq(hp.scheme_len, 3);
    ck_assert_int_eq(poh_hostport_parse("a:65535", 0, &hp), POH_HOSTPORT_OK);
    ck_assert_uint_eq(hp.portno, 65535);
    ck_assert_int_eq(poh_hostport_parse("a:99999", 0, &hp), POH_HOSTPORT_PORT_RANGE);
    ck_assert_uint_eq(hp.portno, 99999);
    /* the longest name fits, one more character does not */
    char name[260];
    memset(name, 'a', 253);
    strcpy(name + 253, ":1");
    ck_assert_int_eq(poh_hostport_parse(name, 0, &hp), POH_HOSTPORT_OK);
    ck_assert_uint_eq(strlen(hp.host), 253);
    memset(name, 'a', 254);
    strcpy(name + 254, ":1");
    ck_assert_int_eq(poh_hostport_parse(name, 0, &hp), POH_HOSTPORT_HOST_TOO_LONG);
    /* the longest IPv6 text fits the buffer */
    const char *v6 = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:1";
    ck_assert_int_eq(poh_hostport_parse(v6, 0, &hp), POH_HOSTPORT_OK);
}
END_TEST

START_TEST(test_hostport_explain)
{
    static const struct {
        const char *in;
        unsigned flags;
        const char *want;
    } ex[] = {
        {"a", LISTEN, "missing port (expected host:port, [ipv6]:port or :port)"},
        {"a", 0, "missing port (expected host:port or [ipv6]:port)"},
        {"a:x", LISTEN, "port must be a number from 0 to 65535"},
        {"a:x", 0, "port must be a number from 1 to 65535"},
        {"a:99999", LISTEN, "port 99999 out of range (0-65535)"},
        {"a:0", 0, "port 0 out of range (1-65535)"},
        {"1.2.3:1", 0, "invalid IPv4 address"},
        {"[::1]9", 0, "expected \":port\" after \"]\""},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        poh_hostport_t hp;
        poh_strbuf_t why = POH_STRBUF_INIT;
        poh_hostport_explain(&why, poh_hostport_parse(ex[i].in, ex[i].flags, &hp), ex[i].flags,
                             &hp);
        ck_assert_str_eq(why.data, ex[i].want);
        poh_strbuf_free(&why);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostport");
    TCase *tc = tcase_create("hostport");
    tcase_add_loop_test(tc, test_hostport_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_hostport_details);
    tcase_add_test(tc, test_hostport_explain);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
