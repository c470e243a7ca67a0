/* SPDX-License-Identifier: Apache-2.0 */
/* core/netmatch: the /probe allow-list patterns (CIDRs, host-name globs). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/netmatch.h"

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return ss;
}

static const struct {
    const char *pattern, *ip;
    bool match;
} addr_cases[] = {
    {"10.0.0.0/8", "10.255.1.2", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.1.2.3/8", "10.9.9.9", true},       /* host bits of the pattern ignored */
    {"192.168.1.0/25", "192.168.1.127", true},
    {"192.168.1.0/25", "192.168.1.128", false},
    {"127.0.0.1", "127.0.0.1", true},         /* bare address: /32 */
    {"127.0.0.1", "127.0.0.2", false},
    {"0.0.0.0/0", "8.8.8.8", true},
    {"0.0.0.0/0", "::1", false},              /* families never mix */
    {"127.0.0.0/8", "::ffff:127.0.0.1", true}, /* an IPv4-mapped address is IPv4 */
    {"fd00::/8", "fd12:3456::1", true},
    {"fd00::/8", "fe80::1", false},
    {"::1", "::1", true},
    {"2001:db8::/33", "2001:db8:7fff::1", true},
    {"2001:db8::/33", "2001:db8:8000::1", false},
    {"*.internal", "10.0.0.1", false},        /* globs never match addresses */
};

START_TEST(test_addr)
{
    poh_netpattern_t p;
    const char *why = NULL;
    ck_assert_int_eq(poh_netpattern_parse(addr_cases[_i].pattern, &p, &why), 0);
    struct sockaddr_storage ss = addr(addr_cases[_i].ip);
    ck_assert_msg(poh_netpattern_match_addr(&p, (struct sockaddr *)&ss) == addr_cases[_i].match,
                  "%s vs %s", addr_cases[_i].pattern, addr_cases[_i].ip);
}
END_TEST

START_TEST(test_host)
{
    poh_netpattern_t p;
    const char *why;
    ck_assert_int_eq(poh_netpattern_parse("poh-*.Internal", &p, &why), 0);
    ck_assert(!p.cidr);
    ck_assert(poh_netpattern_match_host(&p, "poh-1.internal"));
    ck_assert(poh_netpattern_match_host(&p, "POH-east-7.INTERNAL"));
    ck_assert(!poh_netpattern_match_host(&p, "poh-1.internal.evil.example"));
    ck_assert(!poh_netpattern_match_host(&p, "xpoh-1.internal"));
    ck_assert_int_eq(poh_netpattern_parse("node-?", &p, &why), 0);
    ck_assert(poh_netpattern_match_host(&p, "node-a"));
    ck_assert(!poh_netpattern_match_host(&p, "node-ab"));
    ck_assert_int_eq(poh_netpattern_parse("*", &p, &why), 0);
    ck_assert(!poh_netpattern_match_host(&p, "[::1]"));
    ck_assert(!poh_netpattern_match_host(&p, NULL));
    /* a CIDR never matches a name */
    ck_assert_int_eq(poh_netpattern_parse("10.0.0.0/8", &p, &why), 0);
    ck_assert(!poh_netpattern_match_host(&p, "10.0.0.1"));
}
END_TEST

START_TEST(test_errors)
{
    static const char *const bad[] = {"10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                                      "host/8", "", "a b", "http://x", "x;y", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        poh_netpattern_t p;
        const char *why = NULL;
        ck_assert_msg(poh_netpattern_parse(bad[i], &p, &why) < 0, "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netmatch");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_addr, 0, sizeof addr_cases / sizeof addr_cases[0]);
    tcase_add_test(tc, test_host);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
