/* SPDX-License-Identifier: Apache-2.0 */
/* The example kind (example.h): its schema, metric table, collector and
 * descriptor. */
#include "example.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/collector.h"

static const poh_cfg_entry_t example_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = offsetof(poh_example_conf_t, name),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "value", .type = POH_CFG_DOUBLE, .offset = offsetof(poh_example_conf_t, value),
     .def = "1"},
    {NULL},
};

const poh_cfg_section_t poh_cfg_example_section = {sizeof(poh_example_conf_t), example_entries};

static const char *const l_name[] = {"name"};

static const poh_family_desc_t example_metrics[] = {
    {"poh_example_value", POH_GAUGE, "The value the example instance was configured with.", 1,
     l_name},
    {NULL},
};

typedef struct example {
    char *name;
    double value;
} example_t;

static int example_collect(void *state, poh_scrape_t *sc)
{
    const example_t *e = state;
    poh_family_t *f = poh_registry_family_desc(sc->out, &example_metrics[0]);
    const char *lv[] = {e->name};
    poh_series_t *s = poh_family_series(f, lv);
    if (!s)
        return -ENOMEM;
    poh_gauge_set(s, e->value);
    return 0;
}

static void example_destroy(void *state)
{
    example_t *e = state;
    if (e)
        free(e->name);
    free(e);
}

static const poh_collector_ops_t example_ops = {
    .kind = "example",
    .collect = example_collect,
    .destroy = example_destroy,
    .bounded = true,
};

static int example_create(const poh_config_t *cfg, const void *confs, size_t n,
                          const poh_collector_env_t *env, poh_collector_list_t *list)
{
    (void)cfg;
    (void)env;
    for (size_t i = 0; i < n; i++) {
        const poh_example_conf_t *c = (const poh_example_conf_t *)confs + i;
        example_t *e = calloc(1, sizeof *e);
        if (!e || !(e->name = strdup(c->name))) {
            free(e);
            return -ENOMEM;
        }
        e->value = c->value;
        char name[96];
        snprintf(name, sizeof name, "example/%s", c->name);
        int rc = poh_collector_list_push(list, &example_ops, e, name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const poh_collector_kind_t poh_example_kind = {
    .name = "example",
    .section = &poh_cfg_example_section,
    .conf_size = sizeof(poh_example_conf_t),
    .create = example_create,
    .ops = &example_ops,
    .metrics = (const poh_collector_metrics_t[]){{"/metrics", example_metrics}, {NULL, NULL}},
};
