/* SPDX-License-Identifier: Apache-2.0 */
/* A new collector kind is its own files plus one line (issue 13): the example
 * kind (test_example_kind/example.h, example.c) joins a kinds list with the
 * one line TEST_KINDS below, and the product's generic code does the rest -
 * the configuration engine parses its instances (defaults, errors, schema
 * check), the collector framework builds and scrapes its collectors. In the
 * product that line goes in src/appconfig/kinds.h; here a test root extends
 * poh_config_t instead, so the example is never part of the product. Also
 * checks the product's kind descriptors against the root schema. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "appconfig/app_config.h"
#include "collectors/collector.h"
#include "core/clock.h"
#include "series_lookup.h"
#include "test_example_kind/example.h"

/* The one line. */
#define TEST_KINDS(X) X(example, poh_example_conf)

TEST_KINDS(POH_CONFIG_KIND_SECTION_DECL)
TEST_KINDS(POH_COLLECTOR_KIND_DECL)

/* What app_schema.c and collectors/kinds.c do for the product's list. */
typedef struct test_config {
    poh_config_t base; /* the product's root, its kinds included */
    TEST_KINDS(POH_CONFIG_KIND_FIELDS)
} test_config_t;

#define ENTRY(k, tag) POH_CONFIG_KIND_ENTRY(test_config_t, k)
#define REF(k, tag) POH_COLLECTOR_KIND_REF(test_config_t, k)
static const poh_cfg_entry_t test_entries[] = {TEST_KINDS(ENTRY){NULL}};
static const poh_collector_kind_ref_t test_kinds[] = {TEST_KINDS(REF){NULL, 0, 0}};

static poh_cfg_entry_t root_entries[64];
static poh_cfg_section_t test_root = {sizeof(test_config_t), root_entries};

/* The product's root entries followed by the test kinds' entries. */
static void build_root(void)
{
    size_t n = 0;
    for (const poh_cfg_entry_t *e = poh_cfg_root_section.entries; e->name; e++)
        root_entries[n++] = *e;
    for (const poh_cfg_entry_t *e = test_entries; e->name; e++)
        root_entries[n++] = *e;
    ck_assert_uint_lt(n, sizeof root_entries / sizeof root_entries[0]);
    root_entries[n] = (poh_cfg_entry_t){NULL};
}

static int parse(test_config_t *tc, const char *yaml, poh_strbuf_t *errors)
{
    memset(tc, 0, sizeof *tc);
    return poh_cfg_parse(&test_root, tc, "test.yml", yaml, strlen(yaml), NULL, errors);
}

START_TEST(test_schema_of_the_example)
{
    build_root();
    poh_strbuf_t why = POH_STRBUF_INIT;
    ck_assert_msg(poh_cfg_schema_check(&test_root, &why) == 0, "%s", why.data);
    poh_strbuf_free(&why);

    test_config_t tc;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    ck_assert_int_eq(parse(&tc, "example:\n  - name: a\n    value: 42\n  - name: b\n", &errors), 0);
    ck_assert_uint_eq(tc.example_count, 2);
    ck_assert_str_eq(tc.example[0].name, "a");
    ck_assert_double_eq(tc.example[0].value, 42);
    ck_assert_double_eq(tc.example[1].value, 1); /* the schema's default */
    ck_assert_str_eq(tc.base.web.telemetry_path, "/metrics"); /* the product's root is there */
    poh_cfg_release(&test_root, &tc);

    ck_assert_int_eq(parse(&tc, "example:\n  - name: a\n    valeu: 2\n  - name: a\n", &errors),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(errors.data,
                                 "test.yml:3:5: example[0].valeu: unknown key (did you mean "
                                 "\"value\"?)"));
    ck_assert_ptr_nonnull(strstr(errors.data, "example[1].name: duplicate value \"a\""));
    poh_cfg_release(&test_root, &tc);
    poh_strbuf_free(&errors);
}
END_TEST

START_TEST(test_collectors_of_the_example)
{
    build_root();
    test_config_t tc;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    ck_assert_int_eq(parse(&tc, "example:\n  - name: a\n    value: 42\n", &errors), 0);
    poh_registry_t *persist = poh_registry_new(), *self = poh_registry_new();
    poh_collector_env_t env = {.persistent = persist};
    poh_collector_set_t *set = poh_collector_set_create_kinds(&tc.base, &env, test_kinds);
    poh_cfg_release(&test_root, &tc); /* collectors keep copies */
    ck_assert_ptr_nonnull(set);
    ck_assert_uint_eq(poh_collector_set_len(set), 1);
    ck_assert_str_eq(poh_collector_set_get(set, 0)->name, "example/a");

    poh_scrape_output_t out = {0};
    ck_assert_int_eq(poh_collector_set_scrape(set, poh_now_mono() + 5, NULL, self, &out), 0);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_double_eq(series_value(out.regs[0], POH_GAUGE, "poh_example_value", 1,
                                     (const char *const[]){"name"}, (const char *const[]){"a"}),
                        42);
    poh_scrape_output_free(&out);
    poh_collector_set_unref(set);
    poh_registry_free(self);
    poh_registry_free(persist);
    poh_strbuf_free(&errors);
}
END_TEST

/* Each product kind's descriptor agrees with its root schema entry. */
START_TEST(test_product_kinds_match_the_root)
{
    size_t n = 0;
    for (const poh_collector_kind_ref_t *k = poh_collector_kinds; k->kind; k++, n++) {
        const poh_cfg_entry_t *e = poh_cfg_root_section.entries;
        while (e->name && strcmp(e->name, k->kind->name))
            e++;
        ck_assert_msg(e->name != NULL, "kind %s has no root entry", k->kind->name);
        ck_assert_ptr_eq(e->section, k->kind->section);
        ck_assert_uint_eq(e->offset, k->offset);
        ck_assert_uint_eq(e->count_offset, k->count_offset);
        ck_assert_uint_eq(k->kind->conf_size, k->kind->section->size);
        ck_assert_ptr_nonnull(k->kind->create);
        ck_assert_ptr_nonnull(k->kind->ops);
    }
    ck_assert_uint_eq(n, 2); /* grpc, mongodb */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("example_kind");
    TCase *tc = tcase_create("example_kind");
    tcase_add_test(tc, test_schema_of_the_example);
    tcase_add_test(tc, test_collectors_of_the_example);
    tcase_add_test(tc, test_product_kinds_match_the_root);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
