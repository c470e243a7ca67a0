/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal collector kind, "example", used only by test_example_kind.c: one
 * gauge, poh_example_value{name}, set to each instance's configured value. It
 * shows what a new kind needs (docs/architecture.md): this header (its conf
 * struct), example.c (schema, metric table, collector, descriptor) and one
 * line in a kinds list. */
#ifndef POH_TEST_EXAMPLE_KIND_H
#define POH_TEST_EXAMPLE_KIND_H

typedef struct poh_example_conf {
    char *name;   /* required; the collector is "example/<name>" */
    double value; /* default 1 */
} poh_example_conf_t;

#endif
