/* SPDX-License-Identifier: Apache-2.0 */
/* core: strbuf growth and formatting, log level/format parsing, clocks. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/header_name.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/strbuf.h"

START_TEST(test_strbuf_grows_and_formats)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(poh_strbuf_printf(&sb, "%d,", i % 10), 0);
    ck_assert_uint_eq(sb.len, 20000);
    ck_assert_uint_eq(strlen(sb.data), 20000);
    ck_assert(strncmp(sb.data, "0,1,2,3,", 8) == 0);
    poh_strbuf_reset(&sb);
    ck_assert_uint_eq(sb.len, 0);
    ck_assert_str_eq(sb.data, "");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(poh_strbuf_printf(&sb, "[%s]", big), 0);
    ck_assert_uint_eq(sb.len, 5001);
    ck_assert_int_eq(sb.data[5000], ']');
    poh_strbuf_putc(&sb, '\0');
    ck_assert_uint_eq(sb.len, 5002);
    char *owned = poh_strbuf_steal(&sb);
    ck_assert_ptr_null(sb.data);
    ck_assert_uint_eq(sb.len, 0);
    free(owned);
    owned = poh_strbuf_steal(&sb); /* empty buffer still gives a string */
    ck_assert_str_eq(owned, "");
    free(owned);
    poh_strbuf_free(&sb);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    poh_log_level_t level;
} level_cases[] = {
    {"debug", 0, POH_LOG_DEBUG}, {"info", 0, POH_LOG_INFO}, {"warn", 0, POH_LOG_WARN},
    {"error", 0, POH_LOG_ERROR}, {"INFO", -EINVAL, 0},     {"", -EINVAL, 0},
    {"warning", -EINVAL, 0},
};

START_TEST(test_log_level_parse)
{
    poh_log_level_t lv = POH_LOG_INFO;
    int rc = poh_log_level_parse(level_cases[_i].in, &lv);
    ck_assert_int_eq(rc, level_cases[_i].rc);
    if (rc == 0)
        ck_assert_int_eq(lv, level_cases[_i].level);
}
END_TEST

START_TEST(test_log_format_parse)
{
    poh_log_format_t f;
    ck_assert_int_eq(poh_log_format_parse("logfmt", &f), 0);
    ck_assert_int_eq(f, POH_LOG_LOGFMT);
    ck_assert_int_eq(poh_log_format_parse("json", &f), 0);
    ck_assert_int_eq(f, POH_LOG_JSON);
    ck_assert_int_eq(poh_log_format_parse("text", &f), -EINVAL);
    poh_log_setup(POH_LOG_WARN, POH_LOG_LOGFMT);
    ck_assert(!poh_log_enabled(POH_LOG_INFO));
    ck_assert(poh_log_enabled(POH_LOG_ERROR));
    poh_log_setup(POH_LOG_INFO, POH_LOG_LOGFMT);
}
END_TEST

START_TEST(test_log_throttle)
{
    poh_log_throttle_t t;
    poh_log_throttle_init(&t, 3600.0);
    unsigned long held = 99;
    ck_assert(poh_log_throttle_pass(&t, &held));
    ck_assert_uint_eq(held, 0);
    for (int i = 0; i < 3; i++)
        ck_assert(!poh_log_throttle_pass(&t, &held));
    t.last -= 7200.0; /* the interval has passed */
    ck_assert(poh_log_throttle_pass(&t, &held));
    ck_assert_uint_eq(held, 3);
    ck_assert(!poh_log_throttle_pass(&t, &held));
    poh_log_throttle_fini(&t);

    static poh_log_throttle_t st = POH_LOG_THROTTLE_INIT(3600.0);
    ck_assert(poh_log_throttle_pass(&st, &held));
    ck_assert(!poh_log_throttle_pass(&st, &held));
}
END_TEST

START_TEST(test_clocks)
{
    double m1 = poh_now_mono(), r = poh_now_real();
    ck_assert(r > 1.7e9);
    struct timespec ts = poh_mono_to_abs_realtime(m1 + 2.0);
    double abs = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    ck_assert(abs - r > 1.9 && abs - r < 2.1);
    ck_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    ck_assert(poh_now_mono() >= m1);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    size_t len;
    const char *bytes;
} hex_cases[] = {
    {"", 0, 0, ""},          {NULL, 0, 0, ""},         {"00", 0, 1, "\x00"},
    {"0aFf", 0, 2, "\x0a\xff"}, {"08c801", 0, 3, "\x08\xc8\x01"},
    {"0", -EINVAL, 0, NULL}, {"zz", -EINVAL, 0, NULL}, {"0g", -EINVAL, 0, NULL},
    {"12 4", -EINVAL, 0, NULL},
};

START_TEST(test_hex_decode)
{
    uint8_t *b = NULL;
    size_t n = 99;
    int rc = poh_hex_decode(hex_cases[_i].in, &b, &n);
    ck_assert_int_eq(rc, hex_cases[_i].rc);
    if (rc == 0) {
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(n, hex_cases[_i].len);
        ck_assert(memcmp(b, hex_cases[_i].bytes, n) == 0);
        free(b);
    }
}
END_TEST

static const struct {
    const char *name;
    poh_header_name_problem_t want;
} header_cases[] = {
    {"authorization", POH_HEADER_NAME_OK},
    {"x-api.key_2", POH_HEADER_NAME_OK},
    {"bin", POH_HEADER_NAME_OK},
    {"grpc", POH_HEADER_NAME_OK},
    {"", POH_HEADER_NAME_EMPTY},
    {NULL, POH_HEADER_NAME_EMPTY},
    {"X-Token", POH_HEADER_NAME_BAD_CHAR},
    {"a b", POH_HEADER_NAME_BAD_CHAR},
    {":path", POH_HEADER_NAME_BAD_CHAR},
    {"k\xc3\xa9", POH_HEADER_NAME_BAD_CHAR},
    {"grpc-status", POH_HEADER_NAME_GRPC_RESERVED},
    {"grpc-x-bin", POH_HEADER_NAME_GRPC_RESERVED},
    {"x-bin", POH_HEADER_NAME_BINARY},
    {"-bin", POH_HEADER_NAME_BINARY},
    {"te", POH_HEADER_NAME_SET_BY_US},
    {"content-type", POH_HEADER_NAME_SET_BY_US},
    {"user-agent", POH_HEADER_NAME_SET_BY_US},
    {"host", POH_HEADER_NAME_SET_BY_US},
    {"connection", POH_HEADER_NAME_SET_BY_US},
    {"traceparent", POH_HEADER_NAME_SET_BY_US},
    {"tea", POH_HEADER_NAME_OK},
};

START_TEST(test_header_name_rule)
{
    ck_assert_int_eq(poh_header_name_check(header_cases[_i].name), header_cases[_i].want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_strbuf_grows_and_formats);
    tcase_add_loop_test(tc, test_log_level_parse, 0,
                        (int)(sizeof level_cases / sizeof level_cases[0]));
    tcase_add_test(tc, test_log_format_parse);
    tcase_add_test(tc, test_clocks);
    tcase_add_test(tc, test_log_throttle);
    tcase_add_loop_test(tc, test_hex_decode, 0, (int)(sizeof hex_cases / sizeof hex_cases[0]));
    tcase_add_loop_test(tc, test_header_name_rule, 0,
                        (int)(sizeof header_cases / sizeof header_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
