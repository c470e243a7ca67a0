/* SPDX-License-Identifier: Apache-2.0 */
/* The product's collector kinds, from the one list in appconfig/kinds.h. */
#include "collectors/collector.h"

#define KIND_REF(k, tag) POH_COLLECTOR_KIND_REF(poh_config_t, k)

const poh_collector_kind_ref_t poh_collector_kinds[] = {
    POH_COLLECTOR_KINDS(KIND_REF){NULL, 0, 0},
};
