/* SPDX-License-Identifier: Apache-2.0 */
/* The walk of one section: each key of the mapping to its table entry, its
 * value parsed by type, absent keys from the environment or their default,
 * unknown keys with "did you mean", then the section's validate(). */
#include "config/cfg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void apply_default(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj);

/* Run a scalar parser; on failure report why at mark (NULL: no position)
 * with a prefix such as "invalid value in environment variable X: ". */
static int apply_scalar(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *field, const char *s,
                        const yaml_mark_t *mark, const char *prefix)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = poh_cfg_type_info[e->type].parse(e, s, field, &why);
    poh_cfg_note_rc(ctx, rc);
    if (rc == -EINVAL)
        poh_cfg_error_at(ctx, mark, NULL, "%s%s", prefix, why.data ? why.data : "invalid value");
    poh_strbuf_free(&why);
    return rc;
}

/* The value of entry e at key path already pushed. */
static void apply_value(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, yaml_node_t *v,
                        bool from_file)
{
    void *field = poh_cfg_field_at(obj, e->offset);
    if (poh_cfg_is_null(v) && e->type != POH_CFG_SECTION) {
        if (e->flags & POH_CFG_REQUIRED)
            poh_cfg_error_at(ctx, &v->start_mark, NULL, "a value is required");
        else
            apply_default(ctx, e, obj);
        return;
    }
    if (poh_cfg_type_info[e->type].parse) {
        const char *s = poh_cfg_scalar_of(ctx, v, poh_cfg_type_info[e->type].what);
        if (!s)
            return;
        if (!from_file) {
            apply_scalar(ctx, e, field, s, &v->start_mark, "");
            return;
        }
        char *secret = NULL;
        if (poh_cfg_read_secret_file(ctx, s, &v->start_mark, &secret) == 0) {
            apply_scalar(ctx, e, field, secret, &v->start_mark, "content of the file: ");
            poh_cfg_free_secret(&secret);
        }
        return;
    }
    if (e->type == POH_CFG_SECTION) {
        poh_cfg_apply_section(ctx, e->section, field, v, &v->start_mark, true);
        return;
    }
    yaml_node_type_t want = e->type == POH_CFG_STRING_MAP ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE;
    if (v->type != want) {
        poh_cfg_error_at(ctx, &v->start_mark, NULL, "expected %s, got %s", poh_cfg_type_info[e->type].what,
                 poh_cfg_node_kind(v));
        return;
    }
    bool empty = want == YAML_MAPPING_NODE
                     ? v->data.mapping.pairs.top == v->data.mapping.pairs.start
                     : v->data.sequence.items.top == v->data.sequence.items.start;
    if (empty && (e->flags & (POH_CFG_NONEMPTY | POH_CFG_REQUIRED)))
        poh_cfg_error_at(ctx, &v->start_mark, NULL, "must not be empty");
    else if (e->type == POH_CFG_STRING_MAP)
        poh_cfg_apply_string_map(ctx, e, obj, v);
    else if (e->type == POH_CFG_STRING_LIST)
        poh_cfg_apply_string_list(ctx, e, obj, v);
    else if (e->type == POH_CFG_DOUBLE_LIST)
        poh_cfg_apply_double_list(ctx, e, obj, v);
    else
        poh_cfg_apply_section_list(ctx, e, obj, v);
}

/* Absent key: environment, then built-in default. */
static void apply_default(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj)
{
    void *field = poh_cfg_field_at(obj, e->offset);
    const char *env = e->env ? getenv(e->env) : NULL;
    if (env && *env && poh_cfg_type_info[e->type].parse) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "invalid value in environment variable %s: ", e->env);
        apply_scalar(ctx, e, field, env, NULL, prefix);
        return;
    }
    if (e->type == POH_CFG_SECTION) {
        poh_cfg_apply_section(ctx, e->section, field, NULL, NULL, false);
        return;
    }
    if (!e->def)
        return;
    if (poh_cfg_type_info[e->type].parse) {
        apply_scalar(ctx, e, field, e->def, NULL, "invalid built-in default: ");
        return;
    }
    if (e->type == POH_CFG_STRING_LIST || e->type == POH_CFG_DOUBLE_LIST) {
        poh_strbuf_t why = POH_STRBUF_INIT;
        int rc = poh_cfg_default_list(e, obj, &why);
        poh_cfg_note_rc(ctx, rc);
        if (rc == -EINVAL)
            poh_cfg_error_at(ctx, NULL, NULL, "invalid built-in default: %s", why.data ? why.data : "");
        poh_strbuf_free(&why);
    }
}

/* Index of the entry for key, or -1; *as_file when it is "<secret>_file". */
int poh_cfg_find_entry(const poh_cfg_entry_t *entries, const char *key, size_t klen,
                      bool *as_file)
{
    for (int i = 0; entries[i].name; i++) {
        size_t n = strlen(entries[i].name);
        if (n == klen && memcmp(entries[i].name, key, n) == 0) {
            *as_file = false;
            return i;
        }
        if (entries[i].type == POH_CFG_SECRET && klen == n + 5 &&
            memcmp(entries[i].name, key, n) == 0 && memcmp(key + n, "_file", 5) == 0) {
            *as_file = true;
            return i;
        }
    }
    return -1;
}

static void unknown_key(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *entries, yaml_node_t *k)
{
    const char *key = (const char *)k->data.scalar.value;
    size_t n = 0;
    for (const poh_cfg_entry_t *e = entries; e->name; e++)
        n += e->type == POH_CFG_SECRET ? 2 : 1;
    const char **cands = calloc(n ? n : 1, sizeof *cands);
    char **files = calloc(n ? n : 1, sizeof *files);
    const char *near = NULL;
    bool ok = cands && files;
    size_t m = 0, f = 0;
    for (const poh_cfg_entry_t *e = entries; ok && e->name; e++) {
        cands[m++] = e->name;
        if (e->type == POH_CFG_SECRET) {
            files[f] = malloc(strlen(e->name) + 6);
            ok = files[f] != NULL;
            if (ok) {
                sprintf(files[f], "%s_file", e->name);
                cands[m++] = files[f++];
            }
        }
    }
    if (ok && strlen(key) == k->data.scalar.length)
        near = poh_cfg_suggest(key, cands, m);
    size_t old = poh_cfg_path_push_key(ctx, key, k->data.scalar.length);
    if (!ok)
        poh_cfg_note_rc(ctx, -ENOMEM);
    else if (strcmp(key, "<<") == 0)
        poh_cfg_error_at(ctx, &k->start_mark, NULL,
                 "YAML merge keys are not supported (repeat the keys instead)");
    else if (near)
        poh_cfg_error_at(ctx, &k->start_mark, NULL, "unknown key (did you mean \"%s\"?)", near);
    else
        poh_cfg_error_at(ctx, &k->start_mark, NULL, "unknown key");
    poh_cfg_path_pop(ctx, old);
    for (size_t i = 0; i < f; i++)
        free(files[i]);
    free(files);
    free(cands);
}

/* Fill obj from mapping `map` (NULL: the section is absent; a null node:
 * present but empty). Absent sections get defaults only: their required keys
 * are not demanded and validate() does not run. */
void poh_cfg_apply_section(poh_cfg_ctx_t *ctx, const poh_cfg_section_t *sec, void *obj,
                          yaml_node_t *map, const yaml_mark_t *mark, bool present)
{
    const poh_cfg_entry_t *entries = sec->entries;
    size_t n = 0, errors_before = ctx->nerrors;
    while (entries[n].name)
        n++;
    if (map && !poh_cfg_is_null(map) && map->type != YAML_MAPPING_NODE) {
        poh_cfg_error_at(ctx, &map->start_mark, NULL, "expected a mapping, got %s", poh_cfg_node_kind(map));
        present = false;
        map = NULL;
    }
    if (map && poh_cfg_is_null(map))
        map = NULL;
    yaml_node_t **seen = calloc(n ? n : 1, sizeof *seen);
    bool *seen_file = calloc(n ? n : 1, sizeof *seen_file);
    if (!seen || !seen_file) {
        poh_cfg_note_rc(ctx, -ENOMEM);
        goto out;
    }
    for (yaml_node_pair_t *p = map ? map->data.mapping.pairs.start : NULL;
         p && p < map->data.mapping.pairs.top && !ctx->stop; p++) {
        yaml_node_t *k = poh_cfg_node(ctx, p->key), *v = poh_cfg_node(ctx, p->value);
        if (!k || !v || !poh_cfg_visit(ctx, v))
            break;
        if (k->type != YAML_SCALAR_NODE) {
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "keys must be strings, got %s", poh_cfg_node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool as_file = false;
        int i = poh_cfg_find_entry(entries, key, k->data.scalar.length, &as_file);
        if (i < 0) {
            unknown_key(ctx, entries, k);
            continue;
        }
        size_t old = poh_cfg_path_push_key(ctx, key, k->data.scalar.length);
        if (seen[i] && seen_file[i] == as_file)
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "duplicate key (first defined at line %zu)",
                     seen[i]->start_mark.line + 1);
        else if (seen[i])
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "conflicts with \"%s\" at line %zu",
                     (const char *)seen[i]->data.scalar.value, seen[i]->start_mark.line + 1);
        else {
            seen[i] = k;
            seen_file[i] = as_file;
            apply_value(ctx, &entries[i], obj, v, as_file);
        }
        poh_cfg_path_pop(ctx, old);
    }
    for (size_t i = 0; i < n && !ctx->stop; i++) {
        if (seen[i])
            continue;
        const poh_cfg_entry_t *e = &entries[i];
        size_t old = poh_cfg_path_push_key(ctx, e->name, strlen(e->name));
        if ((e->flags & POH_CFG_REQUIRED) && present)
            poh_cfg_error_at(ctx, mark, NULL, e->type == POH_CFG_SECRET
                                          ? "missing required key (or its _file form)"
                                          : "missing required key");
        else if (!(e->flags & POH_CFG_REQUIRED))
            apply_default(ctx, e, obj);
        poh_cfg_path_pop(ctx, old);
    }
    if (sec->validate && present && !ctx->stop && ctx->nerrors == errors_before) {
        yaml_node_t *saved_map = ctx->vmap;
        yaml_mark_t saved_mark = ctx->vmark;
        ctx->vmap = map;
        ctx->vmark = *mark;
        poh_cfg_note_rc(ctx, sec->validate(ctx, obj));
        ctx->vmap = saved_map;
        ctx->vmark = saved_mark;
    }
out:
    free(seen);
    free(seen_file);
}
