/* SPDX-License-Identifier: Apache-2.0 */
/* Lists, string maps and lists of sections, and list defaults ("a, b, c"). */
#include "config/cfg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The zeroed array of a list field, sized for the sequence's items (their
 * count in *n); NULL when the sequence is empty or memory ran out (noted). */
static void *list_alloc(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                        const yaml_node_t *seq, size_t elem, size_t *n)
{
    *n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (*n == 0)
        return NULL;
    void **arr = poh_cfg_field_at(obj, e->offset);
    if (!(*arr = calloc(*n, elem)))
        poh_cfg_note_rc(ctx, -ENOMEM);
    return *arr;
}

typedef void (*item_fn)(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                        yaml_node_t *it);

/* Call fn on each item of the sequence, in order, with the item's index
 * pushed on the key path; stops at the error cap or a node seen before. */
static void each_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, yaml_node_t *seq,
                      item_fn fn)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    for (size_t i = 0; i < n && !ctx->stop; i++) {
        yaml_node_t *it = poh_cfg_node(ctx, seq->data.sequence.items.start[i]);
        if (!it || !poh_cfg_visit(ctx, it))
            break;
        size_t old = poh_cfg_path_push_index(ctx, i);
        fn(ctx, e, obj, i, it);
        poh_cfg_path_pop(ctx, old);
    }
}

static void string_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                        yaml_node_t *it)
{
    (void)i;
    char **items = *(char ***)poh_cfg_field_at(obj, e->offset);
    size_t *count = poh_cfg_field_at(obj, e->count_offset);
    const char *s = poh_cfg_scalar_of(ctx, it, "a string");
    if (!s)
        return;
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = poh_cfg_string_checks(e, s, &why);
    if (rc == 0 && !(items[*count] = strdup(s)))
        rc = -ENOMEM;
    else if (rc == 0)
        (*count)++;
    poh_cfg_note_rc(ctx, rc);
    if (rc == -EINVAL)
        poh_cfg_error_at(ctx, &it->start_mark, NULL, "%s", why.data ? why.data : "invalid");
    poh_strbuf_free(&why);
}

void poh_cfg_apply_string_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                              yaml_node_t *seq)
{
    size_t n;
    if (list_alloc(ctx, e, obj, seq, sizeof(char *), &n))
        each_item(ctx, e, obj, seq, string_item);
}

static void double_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                        yaml_node_t *it)
{
    (void)i;
    double *items = *(double **)poh_cfg_field_at(obj, e->offset);
    size_t *count = poh_cfg_field_at(obj, e->count_offset);
    const char *s = poh_cfg_scalar_of(ctx, it, "a number");
    if (!s)
        return;
    double v;
    poh_strbuf_t why = POH_STRBUF_INIT;
    if (poh_cfg_sc_double(e, s, &v, &why) < 0)
        poh_cfg_error_at(ctx, &it->start_mark, NULL, "%s", why.data ? why.data : "invalid");
    else if ((e->flags & POH_CFG_INCREASING) && *count && v <= items[*count - 1])
        poh_cfg_error_at(ctx, &it->start_mark, NULL, "values must be strictly increasing (%g after %g)",
                 v, items[*count - 1]);
    else
        items[(*count)++] = v;
    poh_strbuf_free(&why);
}

void poh_cfg_apply_double_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                              yaml_node_t *seq)
{
    size_t n;
    if (list_alloc(ctx, e, obj, seq, sizeof(double), &n))
        each_item(ctx, e, obj, seq, double_item);
}

static bool ends_with_file(const char *k, size_t n)
{
    return n > 5 && memcmp(k + n - 5, "_file", 5) == 0;
}

void poh_cfg_apply_string_map(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                             yaml_node_t *map)
{
    poh_config_kv_t **items = poh_cfg_field_at(obj, e->offset);
    size_t *count = poh_cfg_field_at(obj, e->count_offset);
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    size_t n = (size_t)(map->data.mapping.pairs.top - pairs);
    if (n == 0)
        return;
    if (n > POH_CFG_MAX_MAP_ENTRIES) {
        poh_cfg_error_at(ctx, &map->start_mark, NULL, "too many entries (%zu, at most %u)", n,
                 POH_CFG_MAX_MAP_ENTRIES);
        return;
    }
    *items = calloc(n, sizeof **items);
    if (!*items) {
        poh_cfg_note_rc(ctx, -ENOMEM);
        return;
    }
    bool files = e->flags & POH_CFG_FILE_VALUES;
    for (size_t i = 0; i < n && !ctx->stop; i++) {
        yaml_node_t *k = poh_cfg_node(ctx, pairs[i].key), *v = poh_cfg_node(ctx, pairs[i].value);
        if (!k || !v || !poh_cfg_visit(ctx, v))
            break;
        if (k->type != YAML_SCALAR_NODE) {
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "keys must be strings, got %s", poh_cfg_node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        size_t klen = k->data.scalar.length;
        bool from_file = files && ends_with_file(key, klen);
        size_t name_len = from_file ? klen - 5 : klen;
        size_t old = poh_cfg_path_push_key(ctx, key, klen);
        const char *dup = NULL;
        size_t dup_line = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            yaml_node_t *kj = poh_cfg_node(ctx, pairs[j].key);
            if (!kj || kj->type != YAML_SCALAR_NODE)
                continue;
            const char *o = (const char *)kj->data.scalar.value;
            size_t olen = kj->data.scalar.length;
            if (files && ends_with_file(o, olen))
                olen -= 5;
            if (olen == name_len && memcmp(o, key, name_len) == 0) {
                dup = (const char *)kj->data.scalar.value;
                dup_line = kj->start_mark.line + 1;
            }
        }
        const char *s = NULL;
        if (dup && strcmp(dup, key) == 0)
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "duplicate key (first defined at line %zu)",
                     dup_line);
        else if (dup)
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "conflicts with \"%s\" at line %zu", dup,
                     dup_line);
        else if (memchr(key, '\0', klen))
            poh_cfg_error_at(ctx, &k->start_mark, NULL, "key contains a NUL byte");
        else
            s = poh_cfg_scalar_of(ctx, v, "a string");
        if (s) {
            poh_config_kv_t *kv = &(*items)[*count];
            kv->key = strndup(key, name_len);
            int rc = kv->key ? 0 : -ENOMEM;
            if (rc == 0 && from_file)
                rc = poh_cfg_read_secret_file(ctx, s, &v->start_mark, &kv->value);
            else if (rc == 0 && !(kv->value = strdup(s)))
                rc = -ENOMEM;
            poh_cfg_note_rc(ctx, rc);
            if (rc == 0) {
                (*count)++;
            } else {
                free(kv->key);
                kv->key = NULL;
            }
        }
        poh_cfg_path_pop(ctx, old);
    }
}

/* The string value of key `key` in every item, compared pairwise via sort. */
typedef struct {
    const char *s;
    size_t idx;
} uniq_t;

static int uniq_cmp(const void *a, const void *b)
{
    const uniq_t *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static yaml_node_t *map_value(poh_cfg_ctx_t *ctx, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = poh_cfg_node(ctx, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return poh_cfg_node(ctx, p->value);
    }
    return NULL;
}

static void check_unique(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, char *arr, size_t n,
                         yaml_node_t *seq)
{
    const poh_cfg_entry_t *ke = e->section->entries;
    while (ke->name && strcmp(ke->name, e->unique))
        ke++;
    if (!ke->name || n < 2)
        return;
    uniq_t *u = calloc(n, sizeof *u);
    if (!u) {
        poh_cfg_note_rc(ctx, -ENOMEM);
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = *(char **)(arr + i * e->section->size + ke->offset);
        if (s)
            u[m++] = (uniq_t){s, i};
    }
    qsort(u, m, sizeof *u, uniq_cmp);
    for (size_t i = 1, first = 0; i < m && !ctx->stop; i++) {
        if (strcmp(u[i].s, u[i - 1].s)) {
            first = i;
            continue;
        }
        yaml_node_t *item = poh_cfg_node(ctx, seq->data.sequence.items.start[u[i].idx]);
        yaml_node_t *v = map_value(ctx, item, e->unique);
        size_t old = poh_cfg_path_push_index(ctx, u[i].idx);
        poh_strbuf_t q = POH_STRBUF_INIT;
        poh_cfg_put_quoted(&q, u[i].s, strlen(u[i].s));
        poh_cfg_error_at(ctx, v ? &v->start_mark : &item->start_mark, e->unique,
                 "duplicate value %s (already used by item %zu)", q.data ? q.data : "",
                 u[first].idx);
        poh_strbuf_free(&q);
        poh_cfg_path_pop(ctx, old);
    }
    free(u);
}

static void section_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                         yaml_node_t *it)
{
    char *arr = *(void **)poh_cfg_field_at(obj, e->offset);
    poh_cfg_apply_section(ctx, e->section, arr + i * e->section->size, it, &it->start_mark, true);
}

void poh_cfg_apply_section_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                               yaml_node_t *seq)
{
    size_t n;
    void *arr = list_alloc(ctx, e, obj, seq, e->section->size, &n);
    if (!arr)
        return;
    /* Items are zeroed now, so releasing all n is safe whatever happens next. */
    *(size_t *)poh_cfg_field_at(obj, e->count_offset) = n;
    each_item(ctx, e, obj, seq, section_item);
    if (e->unique && !ctx->stop)
        check_unique(ctx, e, arr, n, seq);
}
/* Parse "a, b, c" (a list default) into a list field. */
int poh_cfg_default_list(const poh_cfg_entry_t *e, void *obj, poh_strbuf_t *why)
{
    size_t *count = poh_cfg_field_at(obj, e->count_offset);
    size_t n = 1;
    for (const char *p = e->def; *p; p++)
        n += *p == ',';
    bool strings = e->type == POH_CFG_STRING_LIST;
    void *arr = calloc(n, strings ? sizeof(char *) : sizeof(double));
    if (!arr)
        return -ENOMEM;
    *(void **)poh_cfg_field_at(obj, e->offset) = arr;
    const char *p = e->def;
    for (size_t i = 0; i < n; i++) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ')
            len--;
        char *item = strndup(p, len);
        if (!item)
            return -ENOMEM;
        int rc = 0;
        if (strings)
            ((char **)arr)[i] = item;
        else if ((rc = poh_cfg_sc_double(e, item, &((double *)arr)[i], why)) < 0)
            free(item);
        if (rc < 0)
            return rc;
        if (!strings)
            free(item);
        *count = i + 1;
        p += strcspn(p, ",");
        p += *p == ',';
    }
    return 0;
}
