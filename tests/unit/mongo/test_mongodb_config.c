/* SPDX-License-Identifier: Apache-2.0 */
/* mongo/mongo_schema.c: the `mongodb` section. A full example parses into
 * the typed structs with the documented defaults; every rule has a row in
 * the error table with its exact message and position; passwords never
 * appear in messages. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appconfig/app_config.h"
#include "config/schema.h"

static const char full[] =
    "state_dir: /tmp/poh\n"
    "mongodb:\n"
    "  - name: main\n"
    "    uri: mongodb://monitor@db1,db2,db3/?replicaSet=rs0&tls=true\n"
    "    password: hunter22\n"
    "    change_streams:\n"
    "      - name: tx\n"
    "        database: dag\n"
    "        collection: transactions\n"
    "        operations: [insert, update]\n"
    "        latencies:\n"
    "          - {name: storage,  from_field: created_at, to: commit}\n"
    "          - {name: approval, from_field: created_at, to_field: approved_at, epoch_unit: s,\n"
    "             max: 7d, clock_skew: 250ms}\n"
    "        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]\n"
    "      - name: blocks\n"
    "        database: dag\n"
    "        collection: blocks\n"
    "        traceparent_field: \"\"\n"
    "        latencies:\n"
    "          - {name: block, from_field: ts, to: commit, on: [insert, replace]}\n"
    "  - name: archive\n"
    "    uri: mongodb://archive:27017/\n";

START_TEST(test_full)
{
    poh_config_t *cfg = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_config_load_string("t.yml", full, sizeof full - 1, &cfg, &err);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    ck_assert_uint_eq(cfg->mongodb_count, 2);
    const poh_config_mongodb_t *m = &cfg->mongodb[0];
    ck_assert_str_eq(m->name, "main");
    ck_assert_str_eq(m->password, "hunter22");
    ck_assert_uint_eq(m->change_streams_count, 2);
    const poh_config_mongo_stream_t *s = &m->change_streams[0];
    ck_assert_str_eq(s->database, "dag");
    ck_assert_uint_eq(s->operations_count, 2);
    ck_assert_uint_eq(s->latencies_count, 2);
    ck_assert_str_eq(s->latencies[0].to, "commit");
    ck_assert_ptr_null(s->latencies[0].to_field);
    ck_assert_str_eq(s->latencies[0].epoch_unit, "ms");
    ck_assert_uint_eq(s->latencies[0].on_count, 0);
    ck_assert_ptr_null(s->latencies[1].to);
    ck_assert_str_eq(s->latencies[1].to_field, "approved_at");
    ck_assert_str_eq(s->latencies[1].epoch_unit, "s");
    /* the plausible window: a day and a second by default */
    ck_assert(s->latencies[0].max == 86400 && s->latencies[0].clock_skew == 1);
    ck_assert(s->latencies[1].max == 7 * 86400 && s->latencies[1].clock_skew == 0.25);
    ck_assert_uint_eq(s->buckets_count, 11);
    ck_assert_str_eq(s->traceparent_field, "traceparent");
    const poh_config_mongo_stream_t *b = &m->change_streams[1];
    ck_assert_uint_eq(b->operations_count, 0); /* all */
    ck_assert_uint_eq(b->buckets_count, 11);   /* the default */
    ck_assert(b->buckets[0] == 0.005 && b->buckets[10] == 10);
    ck_assert_str_eq(b->traceparent_field, "");
    ck_assert_uint_eq(b->latencies[0].on_count, 2);
    ck_assert_ptr_null(cfg->mongodb[1].password);
    ck_assert_uint_eq(cfg->mongodb[1].change_streams_count, 0);
    poh_config_free(cfg);
    poh_strbuf_free(&err);
}
END_TEST

static const struct {
    const char *yaml;
    const char *errors; /* every line, exactly */
} bad[] = {
    {"mongodb:\n  - name: a\n",
     "t.yml:2:5: mongodb[0].uri: missing required key\n"},
    {"mongodb:\n  - uri: mongodb://h/\n",
     "t.yml:2:5: mongodb[0].name: missing required key\n"},
    {"mongodb:\n  - {name: a, uri: \"http://h\"}\n",
     "t.yml:2:20: mongodb[0].uri: must start with mongodb:// or mongodb+srv://\n"},
    {"mongodb:\n  - {name: a, uri: \"mongodb://u:hunter22@\"}\n",
     "t.yml:2:20: mongodb[0].uri: not a valid MongoDB URI: Invalid host string in URI\n"},
    {"mongodb:\n  - {name: a, uri: \"mongodb://u:hunter22@h/?replicaSet=\"}\n",
     "t.yml:2:20: mongodb[0].uri: not a valid MongoDB URI: Value for URI option \"replicaset\" "
     "cannot be empty string\n"},
    {"mongodb:\n  - {name: \"a/b\", uri: \"mongodb://h\"}\n",
     "t.yml:2:12: mongodb[0].name: must be 1 to 64 of A-Z a-z 0-9 _ . - (not starting with "
     "\".\")\n"},
    {"mongodb:\n  - {name: a, uri: \"mongodb://h\"}\n  - {name: a, uri: \"mongodb://k\"}\n",
     "t.yml:3:12: mongodb[1].name: duplicate value \"a\" (already used by item 0)\n"},
    {"mongodb:\n  - {name: a, uri: \"mongodb://h\", pasword: x}\n",
     "t.yml:2:35: mongodb[0].pasword: unknown key (did you mean \"password\"?)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - {name: s, database: d}\n",
     "t.yml:5:9: mongodb[0].change_streams[0].collection: missing required key\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - {name: s, database: d, collection: c, operations: [insert, upsert]}\n",
     "t.yml:5:68: mongodb[0].change_streams[0].operations[1]: unknown operation (insert, update, "
     "replace, delete, drop, rename, dropDatabase, invalidate)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - {name: s, database: d, collection: c, buckets: [1, 0.5]}\n",
     "t.yml:5:60: mongodb[0].change_streams[0].buckets[1]: values must be strictly increasing "
     "(0.5 after 1)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: commit, to_field: g}\n",
     "t.yml:9:60: mongodb[0].change_streams[0].latencies[0].to_field: give exactly one of \"to: "
     "commit\" and \"to_field\"\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f}\n",
     "t.yml:9:13: mongodb[0].change_streams[0].latencies[0]: give exactly one of \"to: commit\" "
     "and \"to_field\"\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to_field: g, on: [update]}\n",
     "t.yml:9:55: mongodb[0].change_streams[0].latencies[0].on: \"on\" applies to \"to: commit\" "
     "latencies only\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: now}\n",
     "t.yml:9:42: mongodb[0].change_streams[0].latencies[0].to: invalid value \"now\" (expected "
     "one of: commit)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x-y, from_field: f, to: commit}\n",
     "t.yml:9:20: mongodb[0].change_streams[0].latencies[0].name: must be letters, digits and _ "
     "(it names poh_<name>_latency_seconds)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: commit, epoch_unit: us}\n",
     "t.yml:9:62: mongodb[0].change_streams[0].latencies[0].epoch_unit: invalid value \"us\" "
     "(expected one of: ms, s) (did you mean \"ms\"?)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: commit, max: 0s}\n",
     "t.yml:9:55: mongodb[0].change_streams[0].latencies[0].max: 0s is out of range (0.001s to "
     "315360000s)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: commit, clock_skew: 2d}\n",
     "t.yml:9:62: mongodb[0].change_streams[0].latencies[0].clock_skew: 172800s is out of range "
     "(0s to 86400s)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        latencies:\n"
     "          - {name: x, from_field: f, to: commit, max: -1s}\n",
     "t.yml:9:55: mongodb[0].change_streams[0].latencies[0].max: invalid duration \"-1s\" "
     "(expected a number and a unit such as 500ms, 2s, 1m30s or 1h)\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        operations: [delete]\n"
     "        latencies:\n          - {name: x, from_field: f, to: commit}\n",
     "t.yml:8:21: mongodb[0].change_streams[0].operations: latency \"x\" is observed on insert, "
     "which is not processed\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - name: s\n        database: d\n        collection: c\n        operations: [delete]\n"
     "        latencies:\n          - {name: x, from_field: f, to_field: g}\n",
     "t.yml:8:21: mongodb[0].change_streams[0].operations: latency \"x\" uses to_field, so insert "
     "or update must be processed\n"},
    {"mongodb:\n  - name: a\n    uri: mongodb://h\n    change_streams:\n"
     "      - {name: s, database: d, collection: c, buckets: [1, 2],\n"
     "         latencies: [{name: x, from_field: f, to: commit}]}\n"
     "      - {name: t, database: d, collection: c,\n"
     "         latencies: [{name: x, from_field: f, to: commit}]}\n",
     "t.yml:5:7: mongodb[0].change_streams: streams \"s\" and \"t\" both export latency \"x\" and "
     "so need the same buckets\n"},
};

START_TEST(test_errors)
{
    poh_config_t *cfg = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_config_load_string("t.yml", bad[_i].yaml, strlen(bad[_i].yaml), &cfg, &err);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err.data ? err.data : "", bad[_i].errors);
    ck_assert_ptr_null(strstr(err.data, "hunter22"));
    poh_strbuf_free(&err);
}
END_TEST

/* password_file is read like every secret; the shipped example is valid. */
START_TEST(test_password_file_and_shipped)
{
    char path[] = "/tmp/poh-mongo-pass-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char yaml[256];
    snprintf(yaml, sizeof yaml,
             "mongodb:\n  - {name: a, uri: \"mongodb://u@h\", password_file: %s}\n", path);
    poh_config_t *cfg = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc = poh_config_load_string("t.yml", yaml, strlen(yaml), &cfg, &err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    ck_assert_str_eq(cfg->mongodb[0].password, "s3cret");
    poh_config_free(cfg);

    rc = poh_config_load_file(POH_SOURCE_DIR "/etc/poh_exporter.yml", &cfg, &err);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    ck_assert_uint_eq(cfg->mongodb_count, 0); /* the packaged default connects nowhere */
    poh_config_free(cfg);

    /* The commented example in the shipped file, uncommented, is valid too. */
    FILE *f = fopen(POH_SOURCE_DIR "/etc/poh_exporter.yml", "r");
    ck_assert_ptr_nonnull(f);
    poh_strbuf_t ex = POH_STRBUF_INIT;
    char line[512];
    bool on = false;
    while (fgets(line, sizeof line, f)) {
        on |= strcmp(line, "#mongodb:\n") == 0;
        if (on && line[0] != '#')
            break;
        if (on)
            poh_strbuf_puts(&ex, line + 1);
    }
    fclose(f);
    ck_assert_msg(ex.len > 100, "no commented mongodb example in etc/poh_exporter.yml");
    char *pf = strstr(ex.data, "/etc/poh_exporter/mongo.pass");
    ck_assert_ptr_nonnull(pf);
    memcpy(path + sizeof path - 7, "XXXXXX", 6);
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "pw\n", 3), 3);
    close(fd);
    poh_strbuf_t fixed = POH_STRBUF_INIT;
    poh_strbuf_append(&fixed, ex.data, (size_t)(pf - ex.data));
    poh_strbuf_printf(&fixed, "%s%s", path, pf + strlen("/etc/poh_exporter/mongo.pass"));
    rc = poh_config_load_string("example", fixed.data, fixed.len, &cfg, &err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    ck_assert_uint_eq(cfg->mongodb_count, 1);
    ck_assert_uint_eq(cfg->mongodb[0].change_streams[0].latencies_count, 2);
    poh_config_free(cfg);
    poh_strbuf_free(&ex);
    poh_strbuf_free(&fixed);
    poh_strbuf_free(&err);

    poh_strbuf_t why = POH_STRBUF_INIT;
    ck_assert_msg(poh_cfg_schema_check(&poh_cfg_root_section, &why) == 0, "%s",
                  why.data ? why.data : "");
    poh_strbuf_free(&why);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mongodb_config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_full);
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof bad / sizeof *bad));
    tcase_add_test(tc, test_password_file_and_shipped);
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
