/* SPDX-License-Identifier: Apache-2.0 */
/* The product's collector kinds, from the one list in appconfig/kinds.h. */
#include "collectors/collector.h"
#include "collectors/self.h"

#include <errno.h>

#define KIND_REF(k, tag) POH_COLLECTOR_KIND_REF(poh_config_t, k)

const poh_collector_kind_ref_t poh_collector_kinds[] = {
    POH_COLLECTOR_KINDS(KIND_REF){NULL, 0, 0},
};

static void print_table(FILE *out, const char *kind, const char *endpoint,
                        const poh_family_desc_t *d)
{
    for (; d->name; d++) {
        fprintf(out, "%s\t%s\t%s\t%s\t", kind, endpoint, d->name, poh_metric_type_name(d->type));
        /* An optional label (left out when empty) is marked "?". */
        for (size_t i = 0; i < d->nlabels; i++)
            fprintf(out, "%s%s%s", i ? "," : "", d->labels[i], d->optional >> i & 1u ? "?" : "");
        fprintf(out, "\t%s\n", d->help);
    }
}

static const poh_family_desc_t *clash_in(const poh_family_desc_t *d, poh_metric_type_t type,
                                         const char *name)
{
    for (; d && d->name; d++)
        if (poh_family_names_clash(d->type, d->name, type, name))
            return d;
    return NULL;
}

const poh_family_desc_t *poh_collector_fixed_clash(poh_metric_type_t type, const char *name,
                                                   const char **kind)
{
    const poh_family_desc_t *d = NULL;
    for (const poh_collector_kind_ref_t *k = poh_collector_kinds; k->kind && !d; k++)
        for (const poh_collector_metrics_t *m = k->kind->metrics; m && m->endpoint && !d; m++)
            if ((d = clash_in(m->families, type, name)))
                *kind = k->kind->name;
    if (!d && ((d = clash_in(poh_self_metrics, type, name)) ||
               (d = clash_in(poh_self_web_metrics, type, name))))
        *kind = "self";
    return d;
}

int poh_collector_kinds_print_metrics(FILE *out)
{
    for (const poh_collector_kind_ref_t *k = poh_collector_kinds; k->kind; k++)
        for (const poh_collector_metrics_t *m = k->kind->metrics; m && m->endpoint; m++)
            print_table(out, k->kind->name, m->endpoint, m->families);
    /* The self collector's always-present families (those of a web config
     * file need one, which the reference test does not run with). */
    print_table(out, "self", "/metrics", poh_self_metrics);
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
