/* SPDX-License-Identifier: Apache-2.0 */
/* poh_cfg_schema_check(): catches mistakes in schema tables (offsets,
 * sections, choices, defaults that do not parse) before they reach a user. */
#include "config/cfg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scratch_list {
    void *items;
    size_t count;
};

/* The default of e must parse as a value of its type. */
static void check_default(const poh_cfg_entry_t *e, const char *at, poh_strbuf_t *why)
{
    if (e->def && poh_cfg_type_info[e->type].parse) {
        union {
            char *s;
            double d;
            unsigned u;
            size_t z;
            bool b;
        } scratch = {0};
        poh_strbuf_t reason = POH_STRBUF_INIT;
        if (poh_cfg_type_info[e->type].parse(e, e->def, &scratch, &reason) < 0)
            poh_strbuf_printf(why, "%s: bad default: %s\n", at,
                              reason.data ? reason.data : "out of memory");
        else if (e->type == POH_CFG_STRING || e->type == POH_CFG_ADDRESS ||
                 e->type == POH_CFG_ENUM || e->type == POH_CFG_SECRET)
            free(scratch.s);
        poh_strbuf_free(&reason);
    } else if (e->def && (e->type == POH_CFG_STRING_LIST || e->type == POH_CFG_DOUBLE_LIST)) {
        struct scratch_list list = {NULL, 0};
        poh_cfg_entry_t tmp = *e;
        tmp.offset = offsetof(struct scratch_list, items);
        tmp.count_offset = offsetof(struct scratch_list, count);
        poh_strbuf_t reason = POH_STRBUF_INIT;
        if (poh_cfg_default_list(&tmp, &list, &reason) < 0)
            poh_strbuf_printf(why, "%s: bad default: %s\n", at,
                              reason.data ? reason.data : "out of memory");
        if (e->type == POH_CFG_STRING_LIST)
            for (size_t i = 0; i < list.count; i++)
                free(((char **)list.items)[i]);
        free(list.items);
        poh_strbuf_free(&reason);
    } else if (e->def) {
        poh_strbuf_printf(why, "%s: this type takes no default\n", at);
    }
}

static void schema_check(const poh_cfg_section_t *sec, const char *where, int depth,
                         poh_strbuf_t *why)
{
    if (depth > 16) {
        poh_strbuf_printf(why, "%s: sections nested too deep (a cycle?)\n", where);
        return;
    }
    for (const poh_cfg_entry_t *e = sec->entries; e->name; e++) {
        char at[256];
        if (snprintf(at, sizeof at, "%s%s%s", where, *where ? "." : "", e->name) >= (int)sizeof at)
            memcpy(at + sizeof at - 4, "...", 4); /* a path this long is itself the bug */
        bool file_form = false;
        if (!*e->name || poh_cfg_find_entry(sec->entries, e->name, strlen(e->name), &file_form) !=
                             (int)(e - sec->entries))
            poh_strbuf_printf(why, "%s: empty or duplicate key name\n", at);
        if ((unsigned)e->type >= POH_CFG_TYPE_COUNT) {
            poh_strbuf_printf(why, "%s: unknown type\n", at);
            continue;
        }
        bool counted = e->type == POH_CFG_STRING_LIST || e->type == POH_CFG_DOUBLE_LIST ||
                       e->type == POH_CFG_STRING_MAP || e->type == POH_CFG_SECTION_LIST;
        if (e->offset >= sec->size ||
            (counted && (e->count_offset == e->offset ||
                         e->count_offset + sizeof(size_t) > sec->size)))
            poh_strbuf_printf(why, "%s: offset or count_offset outside the struct\n", at);
        if ((e->type == POH_CFG_SECTION || e->type == POH_CFG_SECTION_LIST) != !!e->section)
            poh_strbuf_printf(why, "%s: .section must be set exactly for sections\n", at);
        if ((e->type == POH_CFG_ENUM) != !!e->choices)
            poh_strbuf_printf(why, "%s: .choices must be set exactly for enums\n", at);
        if ((e->flags & POH_CFG_REQUIRED) && (e->def || e->env))
            poh_strbuf_printf(why, "%s: a required key cannot have a default\n", at);
        if ((e->flags & POH_CFG_INCREASING) && e->type != POH_CFG_DOUBLE_LIST)
            poh_strbuf_printf(why, "%s: INCREASING is for double lists\n", at);
        if ((e->flags & POH_CFG_FILE_VALUES) && e->type != POH_CFG_STRING_MAP)
            poh_strbuf_printf(why, "%s: FILE_VALUES is for string maps\n", at);
        if (e->unique) {
            const poh_cfg_entry_t *k = e->section ? e->section->entries : NULL;
            while (k && k->name && strcmp(k->name, e->unique))
                k++;
            if (e->type != POH_CFG_SECTION_LIST || !k || !k->name ||
                (k->type != POH_CFG_STRING && k->type != POH_CFG_ENUM &&
                 k->type != POH_CFG_ADDRESS))
                poh_strbuf_printf(why, "%s: .unique must name a string key of the items\n", at);
        }
        check_default(e, at, why);
        if (e->section)
            schema_check(e->section, at, depth + 1, why);
    }
}

int poh_cfg_schema_check(const poh_cfg_section_t *root, poh_strbuf_t *why)
{
    size_t before = why->len;
    schema_check(root, "", 0, why);
    return why->len == before ? 0 : -EINVAL;
}
