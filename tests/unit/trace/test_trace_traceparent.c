/* SPDX-License-Identifier: Apache-2.0 */
/* W3C traceparent parsing and formatting, hex and random ids. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static const struct {
    const char *in;
    int rc;
    uint8_t flags;
    const char *why;
} parse_cases[] = {
    {"00-" TID "-" SID "-01", 0, 0x01, "spec example, sampled"},
    {"00-" TID "-" SID "-00", 0, 0x00, "not sampled"},
    {"00-" TID "-" SID "-09", 0, 0x09, "unknown flag bits are kept"},
    {"00-" TID "-" SID "-ff", 0, 0xff, "all flag bits"},
    {"01-" TID "-" SID "-01", 0, 0x01, "future version, exact length"},
    {"cc-" TID "-" SID "-01-what-the-future-holds", 0, 0x01, "future version with more fields"},
    {"ff-" TID "-" SID "-01", -EINVAL, 0, "version ff is forbidden"},
    {"00-" TID "-" SID "-01-", -EINVAL, 0, "version 00 must be exactly 55 chars"},
    {"00-" TID "-" SID "-0", -EINVAL, 0, "short flags"},
    {"01-" TID "-" SID "-01x", -EINVAL, 0, "future version: 56th char must be '-'"},
    {"00-00000000000000000000000000000000-" SID "-01", -EINVAL, 0, "zero trace-id"},
    {"00-" TID "-0000000000000000-01", -EINVAL, 0, "zero parent-id"},
    {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", -EINVAL, 0, "uppercase trace-id"},
    {"00-" TID "-00F067AA0BA902B7-01", -EINVAL, 0, "uppercase parent-id"},
    {"00-" TID "-" SID "-0A", -EINVAL, 0, "uppercase flags"},
    {"0A-" TID "-" SID "-01", -EINVAL, 0, "uppercase version"},
    {"00_" TID "-" SID "-01", -EINVAL, 0, "bad separator 1"},
    {"00-" TID "_" SID "-01", -EINVAL, 0, "bad separator 2"},
    {"00-" TID "-" SID "_01", -EINVAL, 0, "bad separator 3"},
    {"00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01", -EINVAL, 0, "non-hex in trace-id"},
    {"00-" TID "-00f067aa0ba902bz-01", -EINVAL, 0, "non-hex in parent-id"},
    {"00-" TID "-" SID "-0g", -EINVAL, 0, "non-hex flags"},
    {"", -EINVAL, 0, "empty"},
    {"00", -EINVAL, 0, "version only"},
    {" 00-" TID "-" SID "-0", -EINVAL, 0, "leading blank"},
    {"00-" TID "-" SID "-01 ", -EINVAL, 0, "trailing blank"},
    {"00-" TID "0-" SID "-01", -EINVAL, 0, "trace-id too long"},
};

START_TEST(test_parse_table)
{
    const char *in = parse_cases[_i].in;
    poh_span_context_t c;
    memset(&c, 0xab, sizeof c);
    int rc = poh_traceparent_parse(in, strlen(in), &c);
    ck_assert_msg(rc == parse_cases[_i].rc, "%s: '%s' gave %d", parse_cases[_i].why, in, rc);
    if (rc == 0) {
        char hex[33];
        poh_hex_encode(c.trace_id, 16, hex);
        ck_assert_str_eq(hex, TID);
        poh_hex_encode(c.span_id, 8, hex);
        ck_assert_str_eq(hex, SID);
        ck_assert_uint_eq(c.flags, parse_cases[_i].flags);
        ck_assert(c.remote);
    } else {
        ck_assert_uint_eq(c.flags, 0xab); /* untouched on failure */
    }
}
END_TEST

START_TEST(test_parse_uses_len_not_nul)
{
    /* A value embedded in a larger buffer (e.g. a BSON string) is bounded by len. */
    const char buf[] = "00-" TID "-" SID "-01" "trailing";
    poh_span_context_t c;
    ck_assert_int_eq(poh_traceparent_parse(buf, POH_TRACEPARENT_LEN, &c), 0);
    ck_assert_int_eq(poh_traceparent_parse(buf, strlen(buf), &c), -EINVAL);
    ck_assert_int_eq(poh_traceparent_parse(NULL, 55, &c), -EINVAL);
}
END_TEST

START_TEST(test_format_round_trip)
{
    poh_span_context_t c, back;
    char buf[POH_TRACEPARENT_LEN + 1];
    ck_assert_int_eq(poh_traceparent_parse("00-" TID "-" SID "-01", 55, &c), 0);
    ck_assert_int_eq(poh_traceparent_format(&c, buf, sizeof buf), POH_TRACEPARENT_LEN);
    ck_assert_str_eq(buf, "00-" TID "-" SID "-01");
    ck_assert_int_eq(poh_traceparent_format(&c, buf, sizeof buf - 1), -ENOSPC);
    for (int i = 0; i < 1000; i++) {
        poh_trace_random_trace_id(c.trace_id);
        poh_trace_random_span_id(c.span_id);
        c.flags = (uint8_t)i;
        ck_assert_int_eq(poh_traceparent_format(&c, buf, sizeof buf), 55);
        ck_assert_int_eq(poh_traceparent_parse(buf, 55, &back), 0);
        ck_assert_mem_eq(back.trace_id, c.trace_id, 16);
        ck_assert_mem_eq(back.span_id, c.span_id, 8);
        ck_assert_uint_eq(back.flags, c.flags);
    }
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(poh_traceparent_format(&c, buf, sizeof buf), -EINVAL);
    ck_assert_int_eq(poh_traceparent_format(NULL, buf, sizeof buf), -EINVAL);
}
END_TEST

START_TEST(test_hex_encode)
{
    const uint8_t b[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    poh_hex_encode(b, 4, out);
    ck_assert_str_eq(out, "000fa5ff");
}
END_TEST

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

START_TEST(test_random_ids_distinct)
{
    enum { N = 20000 };
    uint8_t(*ids)[16] = malloc(N * 16);
    ck_assert_ptr_nonnull(ids);
    unsigned ones = 0;
    for (int i = 0; i < N; i++) {
        poh_trace_random_trace_id(ids[i]);
        ones += (unsigned)__builtin_popcount(ids[i][15]);
    }
    qsort(ids, N, 16, cmp16);
    for (int i = 1; i < N; i++)
        ck_assert_msg(memcmp(ids[i - 1], ids[i], 16) != 0, "duplicate trace id");
    /* Crude bias check: about half of the low byte's bits are set. */
    ck_assert_uint_gt(ones, N * 8 * 45 / 100);
    ck_assert_uint_lt(ones, N * 8 * 55 / 100);
    free(ids);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_traceparent");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_parse_table, 0, sizeof parse_cases / sizeof parse_cases[0]);
    tcase_add_test(tc, test_parse_uses_len_not_nul);
    tcase_add_test(tc, test_format_round_trip);
    tcase_add_test(tc, test_hex_encode);
    tcase_add_test(tc, test_random_ids_distinct);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
