/* SPDX-License-Identifier: Apache-2.0 */
/* The product's collector kinds, from the one list in appconfig/kinds.h. */
#include "collectors/collector.h"

#include <errno.h>

#define KIND_REF(k, tag) POH_COLLECTOR_KIND_REF(poh_config_t, k)

const poh_collector_kind_ref_t poh_collector_kinds[] = {
    POH_COLLECTOR_KINDS(KIND_REF){NULL, 0, 0},
};

int poh_collector_kinds_print_metrics(FILE *out)
{
    for (const poh_collector_kind_ref_t *k = poh_collector_kinds; k->kind; k++) {
        for (const poh_collector_metrics_t *m = k->kind->metrics; m && m->endpoint; m++) {
            for (const poh_family_desc_t *d = m->families; d->name; d++) {
                fprintf(out, "%s\t%s\t%s\t%s\t", k->kind->name, m->endpoint, d->name,
                        poh_metric_type_name(d->type));
                /* An optional label (left out when empty) is marked "?". */
                for (size_t i = 0; i < d->nlabels; i++)
                    fprintf(out, "%s%s%s", i ? "," : "", d->labels[i],
                            d->optional >> i & 1u ? "?" : "");
                fprintf(out, "\t%s\n", d->help);
            }
        }
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
