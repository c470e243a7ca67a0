/* SPDX-License-Identifier: Apache-2.0 */
/* The collector kinds, listed once: one line X(key, conf struct tag) each.
 * For a kind k with conf struct `struct tag` this line gives
 *   - the YAML key "k": a list of instances, each a mapping with a unique
 *     "name", described by the schema section poh_cfg_<k>_section (defined
 *     beside the kind's code);
 *   - the fields `struct tag *k; size_t k_count;` of poh_config_t;
 *   - the entry of the root schema (appconfig/app_schema.c);
 *   - the collector kind descriptor poh_<k>_kind in the list of kinds the
 *     collector framework builds collectors from (collectors/kinds.c).
 * docs/architecture.md tells how to add a kind. */
#ifndef POH_APPCONFIG_KINDS_H
#define POH_APPCONFIG_KINDS_H

#include <stddef.h>

#include "config/schema.h"

#define POH_COLLECTOR_KINDS(X)                                                                     \
    X(grpc, poh_config_grpc_group)                                                                 \
    X(mongodb, poh_config_mongodb)

/* The fields of kind k in a configuration root. */
#define POH_CONFIG_KIND_FIELDS(k, tag)                                                             \
    struct tag *k;                                                                                 \
    size_t k##_count;

#define POH_CONFIG_KIND_SECTION_DECL(k, tag) extern const poh_cfg_section_t poh_cfg_##k##_section;

/* The root schema entry of kind k in a configuration root of type root_t. */
#define POH_CONFIG_KIND_ENTRY(root_t, k)                                                           \
    {.name = #k, .type = POH_CFG_SECTION_LIST, .offset = offsetof(root_t, k),                      \
     .count_offset = offsetof(root_t, k##_count), .section = &poh_cfg_##k##_section,              \
     .unique = "name"},

POH_COLLECTOR_KINDS(POH_CONFIG_KIND_SECTION_DECL)

#endif
