/* SPDX-License-Identifier: Apache-2.0 */
/* http helpers: Accept-Encoding negotiation, the scrape-timeout header and
 * gzip output. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/http.h"

static const struct {
    const char *header;
    bool gzip;
} ae_cases[] = {
    {NULL, false},
    {"", false},
    {"gzip", true},
    {"GZIP", true},
    {"deflate, gzip;q=1.0, *;q=0.5", true},
    {"gzip;q=0", false},
    {"gzip; q=0.0, identity", false},
    {"br;q=1.0, gzip;q=0.8", true},
    {"*", true},
    {"*;q=0", false},
    {"identity", false},
    {"x-gzip", true},
    {"gzipped", false},
    {"br, *;q=0.1", true},
    {"gzip;q=0, *;q=1", false},
    {"gzip;q=abc", false},
};

START_TEST(test_accept_encoding)
{
    ck_assert_msg(poh_http_accepts_gzip(ae_cases[_i].header) == ae_cases[_i].gzip,
                  "Accept-Encoding: %s", ae_cases[_i].header ? ae_cases[_i].header : "(none)");
}
END_TEST

/* "gzip;" at the end of the header: the parser must stop at its end. It
 * used to step over the terminating NUL; what follows here in memory
 * (";q=0") then turned gzip off, and ASan reported the read. */
START_TEST(test_accept_encoding_ends_after_semicolon)
{
    static const char hdr[] = "gzip;\0;q=0, x";
    ck_assert(poh_http_accepts_gzip(hdr));
    static const char hdr2[] = "gzip;  \0;q=0";
    ck_assert(poh_http_accepts_gzip(hdr2));
    static const char hdr3[] = "*;\0;q=0";
    ck_assert(poh_http_accepts_gzip(hdr3));
    ck_assert(!poh_http_accepts_gzip("gzip;q=nan"));
}
END_TEST

/* X-Prometheus-Scrape-Timeout-Seconds: a positive number up to a day, the
 * whole value; anything else is "no header" (0). */
static const struct {
    const char *value;
    double seconds;
} timeout_cases[] = {
    {NULL, 0},      {"", 0},         {"10", 10},    {"9.5", 9.5},  {"0.25", 0.25},
    {"86400", 86400}, {"86400.5", 0}, {"0", 0},     {"-1", 0},     {"nan", 0},
    {"inf", 0},     {"1e400", 0},    {"10s", 0},    {"10 ", 0},    {"1e-3", 0.001},
};

START_TEST(test_scrape_timeout_header)
{
    ck_assert_msg(poh_http_parse_scrape_timeout(timeout_cases[_i].value) ==
                      timeout_cases[_i].seconds,
                  "X-Prometheus-Scrape-Timeout-Seconds: %s",
                  timeout_cases[_i].value ? timeout_cases[_i].value : "(none)");
}
END_TEST

/* z is one gzip member whose inflated bytes are exactly in's. */
static void assert_inflates_to(const poh_strbuf_t *z, const poh_strbuf_t *in)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, 15 + 16), Z_OK);
    char *out = malloc(in->len + 1);
    zs.next_in = (Bytef *)z->data;
    zs.avail_in = (uInt)z->len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)in->len + 1;
    ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(zs.total_out, in->len);
    ck_assert(memcmp(out, in->data, in->len) == 0);
    inflateEnd(&zs);
    free(out);
}

START_TEST(test_gzip_round_trip)
{
    poh_strbuf_t in = POH_STRBUF_INIT, z = POH_STRBUF_INIT;
    for (int i = 0; i < 5000; i++)
        poh_strbuf_printf(&in, "poh_requests_total{group=\"poh\",target=\"t%d\"} %d\n", i, i);
    ck_assert_int_eq(poh_gzip(in.data, in.len, &z), 0);
    ck_assert_uint_gt(z.len, 18);
    ck_assert_uint_lt(z.len, in.len / 4);
    ck_assert_int_eq((unsigned char)z.data[0], 0x1f);
    ck_assert_int_eq((unsigned char)z.data[1], 0x8b);

    assert_inflates_to(&z, &in);

    poh_strbuf_t e = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_gzip("", 0, &e), 0);
    ck_assert_uint_gt(e.len, 0);
    poh_strbuf_free(&e);
    poh_strbuf_free(&in);
    poh_strbuf_free(&z);
}
END_TEST

/* The same text fed in pieces of every size through poh_gzip_take
 * inflates back to itself, and the chunk is emptied each time. */
START_TEST(test_gzip_stream_pieces)
{
    poh_strbuf_t in = POH_STRBUF_INIT, z = POH_STRBUF_INIT, chunk = POH_STRBUF_INIT;
    for (int i = 0; i < 20000; i++)
        poh_strbuf_printf(&in, "poh_requests_total{group=\"poh\",target=\"t%d\"} %d\n", i, i * 7);
    poh_gzip_stream_t g;
    ck_assert_int_eq(poh_gzip_begin(&g, &z), 0);
    size_t off = 0, piece = 1;
    while (off < in.len) {
        size_t k = in.len - off < piece ? in.len - off : piece;
        poh_strbuf_append(&chunk, in.data + off, k);
        ck_assert_int_eq(poh_gzip_take(&g, &chunk), 0);
        ck_assert_uint_eq(chunk.len, 0);
        off += k;
        piece = piece * 3 + 1; /* 1, 4, 13, ... up to more than the room deflate gets */
        if (piece > (200u << 10))
            piece = 1;
    }
    ck_assert_int_eq(poh_gzip_end(&g), 0);
    ck_assert_uint_lt(z.len, in.len / 4);

    assert_inflates_to(&z, &in);
    poh_strbuf_free(&chunk);
    poh_strbuf_free(&in);
    poh_strbuf_free(&z);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_add_loop_test(tc, test_accept_encoding, 0,
                        (int)(sizeof ae_cases / sizeof ae_cases[0]));
    tcase_add_test(tc, test_accept_encoding_ends_after_semicolon);
    tcase_add_loop_test(tc, test_scrape_timeout_header, 0,
                        (int)(sizeof timeout_cases / sizeof timeout_cases[0]));
    tcase_add_test(tc, test_gzip_round_trip);
    tcase_add_test(tc, test_gzip_stream_pieces);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
