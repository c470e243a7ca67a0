/* SPDX-License-Identifier: Apache-2.0 */
#include "bsonutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILTER_DEPTH 20

/* Arrays must be keyed "0", "1", ... in order: libbson refuses to copy others. */
static bool bson_ok(const bson_t *b, int max_depth, bool is_array)
{
    bson_iter_t it;
    uint32_t index = 0;
    if (max_depth <= 0 || !bson_iter_init(&it, b))
        return false;
    while (bson_iter_next(&it)) {
        if (is_array) {
            char kb[16];
            const char *key;
            bson_uint32_to_string(index++, &key, kb, sizeof kb);
            if (strcmp(key, bson_iter_key(&it)) != 0)
                return false;
        }
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t child;
            bool arr = BSON_ITER_HOLDS_ARRAY(&it);
            if (arr)
                bson_iter_array(&it, &len, &data);
            else
                bson_iter_document(&it, &len, &data);
            if (!data || !bson_init_static(&child, data, len) || !bson_ok(&child, max_depth - 1, arr))
                return false;
        } else if (BSON_ITER_HOLDS_CODEWSCOPE(&it)) {
            uint32_t len, slen;
            const uint8_t *scope;
            bson_t child;
            bson_iter_codewscope(&it, &slen, &len, &scope);
            if (!scope || !bson_init_static(&child, scope, len) || !bson_ok(&child, max_depth - 1, false))
                return false;
        }
    }
    return it.err_off == 0;
}

bool sim_bson_ok(const bson_t *b, int max_depth)
{
    return bson_ok(b, max_depth, false);
}

static int type_class(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_MINKEY: return 0;
    case BSON_TYPE_EOD:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: return 1;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: return 2;
    case BSON_TYPE_SYMBOL:
    case BSON_TYPE_UTF8: return 3;
    case BSON_TYPE_DOCUMENT: return 4;
    case BSON_TYPE_ARRAY: return 5;
    case BSON_TYPE_BINARY: return 6;
    case BSON_TYPE_OID: return 7;
    case BSON_TYPE_BOOL: return 8;
    case BSON_TYPE_DATE_TIME: return 9;
    case BSON_TYPE_TIMESTAMP: return 10;
    case BSON_TYPE_REGEX: return 11;
    case BSON_TYPE_DBPOINTER: return 12;
    case BSON_TYPE_CODE: return 13;
    case BSON_TYPE_CODEWSCOPE: return 14;
    case BSON_TYPE_MAXKEY: return 15;
    default: return 16;
    }
}

static double num_as_double(const bson_value_t *v)
{
    switch (v->value_type) {
    case BSON_TYPE_INT32: return v->value.v_int32;
    case BSON_TYPE_INT64: return (double)v->value.v_int64;
    case BSON_TYPE_DOUBLE: return v->value.v_double;
    case BSON_TYPE_DECIMAL128: {
        char s[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&v->value.v_decimal128, s);
        return strtod(s, NULL);
    }
    default: return 0;
    }
}

static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }
static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

static int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return cmp_u64(alen, blen);
}

int sim_value_cmp(const bson_value_t *a, const bson_value_t *b)
{
    int ca = type_class(a->value_type), cb = type_class(b->value_type);
    if (ca != cb)
        return ca < cb ? -1 : 1;
    switch (ca) {
    case 2: {
        bool ai = a->value_type == BSON_TYPE_INT32 || a->value_type == BSON_TYPE_INT64;
        bool bi = b->value_type == BSON_TYPE_INT32 || b->value_type == BSON_TYPE_INT64;
        if (ai && bi) {
            int64_t x = a->value_type == BSON_TYPE_INT32 ? a->value.v_int32 : a->value.v_int64;
            int64_t y = b->value_type == BSON_TYPE_INT32 ? b->value.v_int32 : b->value.v_int64;
            return cmp_i64(x, y);
        }
        double x = num_as_double(a), y = num_as_double(b);
        return x < y ? -1 : x > y;
    }
    case 3: {
        const char *as = a->value_type == BSON_TYPE_UTF8 ? a->value.v_utf8.str : a->value.v_symbol.symbol;
        size_t al = a->value_type == BSON_TYPE_UTF8 ? a->value.v_utf8.len : a->value.v_symbol.len;
        const char *bs = b->value_type == BSON_TYPE_UTF8 ? b->value.v_utf8.str : b->value.v_symbol.symbol;
        size_t bl = b->value_type == BSON_TYPE_UTF8 ? b->value.v_utf8.len : b->value.v_symbol.len;
        return cmp_bytes(as, al, bs, bl);
    }
    case 4:
    case 5:
        return cmp_bytes(a->value.v_doc.data, a->value.v_doc.data_len, b->value.v_doc.data,
                         b->value.v_doc.data_len);
    case 6:
        if (a->value.v_binary.data_len != b->value.v_binary.data_len)
            return cmp_u64(a->value.v_binary.data_len, b->value.v_binary.data_len);
        if (a->value.v_binary.subtype != b->value.v_binary.subtype)
            return a->value.v_binary.subtype < b->value.v_binary.subtype ? -1 : 1;
        return cmp_bytes(a->value.v_binary.data, a->value.v_binary.data_len, b->value.v_binary.data,
                         b->value.v_binary.data_len);
    case 7: return cmp_bytes(a->value.v_oid.bytes, 12, b->value.v_oid.bytes, 12);
    case 8: return cmp_i64(a->value.v_bool, b->value.v_bool);
    case 9: return cmp_i64(a->value.v_datetime, b->value.v_datetime);
    case 10:
        if (a->value.v_timestamp.timestamp != b->value.v_timestamp.timestamp)
            return cmp_u64(a->value.v_timestamp.timestamp, b->value.v_timestamp.timestamp);
        return cmp_u64(a->value.v_timestamp.increment, b->value.v_timestamp.increment);
    case 11: {
        int c = strcmp(a->value.v_regex.regex, b->value.v_regex.regex);
        if (c)
            return c < 0 ? -1 : 1;
        c = strcmp(a->value.v_regex.options, b->value.v_regex.options);
        return c < 0 ? -1 : c > 0;
    }
    case 13:
        return cmp_bytes(a->value.v_code.code, a->value.v_code.code_len, b->value.v_code.code,
                         b->value.v_code.code_len);
    default: return 0;
    }
}

/* ---- matcher ------------------------------------------------------------ */

static const char *const field_ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"};

static bool is_operator_doc(const bson_iter_t *it)
{
    bson_iter_t sub;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub) || !bson_iter_next(&sub))
        return false;
    return bson_iter_key(&sub)[0] == '$';
}

static bool check_filter(const bson_t *filter, int depth, char *err, size_t errlen);

static bool check_logical(bson_iter_t *it, int depth, char *err, size_t errlen)
{
    bson_iter_t arr;
    const char *op = bson_iter_key(it);
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &arr)) {
        snprintf(err, errlen, "%s must be an array", op);
        return false;
    }
    int n = 0;
    while (bson_iter_next(&arr)) {
        uint32_t len;
        const uint8_t *data;
        bson_t sub;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
            snprintf(err, errlen, "%s entries must be objects", op);
            return false;
        }
        bson_iter_document(&arr, &len, &data);
        if (!bson_init_static(&sub, data, len) || !check_filter(&sub, depth + 1, err, errlen))
            return false;
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s must be a nonempty array", op);
        return false;
    }
    return true;
}

static bool check_filter(const bson_t *filter, int depth, char *err, size_t errlen)
{
    bson_iter_t it;
    if (depth > MAX_FILTER_DEPTH) {
        snprintf(err, errlen, "filter nested deeper than %d levels", MAX_FILTER_DEPTH);
        return false;
    }
    if (!bson_iter_init(&it, filter)) {
        snprintf(err, errlen, "invalid filter document");
        return false;
    }
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (key[0] == '$') {
            if (strcmp(key, "$and") && strcmp(key, "$or") && strcmp(key, "$nor")) {
                snprintf(err, errlen, "unknown top level operator: %.64s (the simulator supports $and, $or, $nor)",
                         key);
                return false;
            }
            if (!check_logical(&it, depth, err, errlen))
                return false;
            continue;
        }
        if (!is_operator_doc(&it))
            continue;
        bson_iter_t ops;
        bson_iter_recurse(&it, &ops);
        while (bson_iter_next(&ops)) {
            const char *op = bson_iter_key(&ops);
            size_t i;
            for (i = 0; i < sizeof field_ops / sizeof field_ops[0]; i++)
                if (strcmp(op, field_ops[i]) == 0)
                    break;
            if (i == sizeof field_ops / sizeof field_ops[0]) {
                snprintf(err, errlen, "unknown operator: %.64s (the simulator supports $eq $ne $gt $gte $lt $lte $in $nin $exists)",
                         op);
                return false;
            }
            if ((!strcmp(op, "$in") || !strcmp(op, "$nin")) && !BSON_ITER_HOLDS_ARRAY(&ops)) {
                snprintf(err, errlen, "%s needs an array", op);
                return false;
            }
        }
    }
    return true;
}

bool sim_filter_check(const bson_t *filter, char *err, size_t errlen)
{
    return check_filter(filter, 0, err, errlen);
}

typedef bool (*value_pred_fn)(const bson_value_t *v, const bson_value_t *arg, int op);

enum { OP_EQ, OP_GT, OP_GTE, OP_LT, OP_LTE };

static bool pred_cmp(const bson_value_t *v, const bson_value_t *arg, int op)
{
    if (op == OP_EQ)
        return sim_value_cmp(v, arg) == 0;
    /* Range comparisons only match within the same type class (type bracketing). */
    if (type_class(v->value_type) != type_class(arg->value_type))
        return false;
    int c = sim_value_cmp(v, arg);
    switch (op) {
    case OP_GT: return c > 0;
    case OP_GTE: return c >= 0;
    case OP_LT: return c < 0;
    default: return c <= 0;
    }
}

/* A field holding an array matches if the array itself or any element does. */
static bool field_any(const bson_iter_t *field, const bson_value_t *arg, int op)
{
    const bson_value_t *v = bson_iter_value((bson_iter_t *)field);
    if (pred_cmp(v, arg, op))
        return true;
    if (BSON_ITER_HOLDS_ARRAY(field)) {
        bson_iter_t el;
        if (bson_iter_recurse(field, &el))
            while (bson_iter_next(&el))
                if (pred_cmp(bson_iter_value(&el), arg, op))
                    return true;
    }
    return false;
}

static bool field_eq(bool present, const bson_iter_t *field, const bson_value_t *arg)
{
    if (!present)
        return arg->value_type == BSON_TYPE_NULL;
    return field_any(field, arg, OP_EQ);
}

static bool field_in(bool present, const bson_iter_t *field, bson_iter_t *list)
{
    bson_iter_t el;
    if (!bson_iter_recurse(list, &el))
        return false;
    while (bson_iter_next(&el))
        if (field_eq(present, field, bson_iter_value(&el)))
            return true;
    return false;
}

static bool match_ops(bool present, const bson_iter_t *field, bson_iter_t *cond)
{
    bson_iter_t ops;
    bson_iter_recurse(cond, &ops);
    while (bson_iter_next(&ops)) {
        const char *op = bson_iter_key(&ops);
        const bson_value_t *arg = bson_iter_value(&ops);
        bool ok;
        if (!strcmp(op, "$eq"))
            ok = field_eq(present, field, arg);
        else if (!strcmp(op, "$ne"))
            ok = !field_eq(present, field, arg);
        else if (!strcmp(op, "$in"))
            ok = field_in(present, field, &ops);
        else if (!strcmp(op, "$nin"))
            ok = !field_in(present, field, &ops);
        else if (!strcmp(op, "$exists"))
            ok = bson_iter_as_bool(&ops) == present;
        else {
            int o = !strcmp(op, "$gt") ? OP_GT : !strcmp(op, "$gte") ? OP_GTE : !strcmp(op, "$lt") ? OP_LT : OP_LTE;
            ok = present && field_any(field, arg, o);
        }
        if (!ok)
            return false;
    }
    return true;
}

bool sim_match(const bson_t *doc, const bson_t *filter)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, filter))
        return false;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (key[0] == '$') {
            bson_iter_t arr;
            bool is_and = !strcmp(key, "$and"), is_or = !strcmp(key, "$or");
            bool any = false, all = true;
            bson_iter_recurse(&it, &arr);
            while (bson_iter_next(&arr)) {
                uint32_t len;
                const uint8_t *data;
                bson_t sub;
                bson_iter_document(&arr, &len, &data);
                bool m = bson_init_static(&sub, data, len) && sim_match(doc, &sub);
                any |= m;
                all &= m;
            }
            if ((is_and && !all) || (is_or && !any) || (!is_and && !is_or && any))
                return false;
            continue;
        }
        bson_iter_t root, field;
        bool present = bson_iter_init(&root, doc) && bson_iter_find_descendant(&root, key, &field);
        bool ok = is_operator_doc(&it) ? match_ops(present, &field, &it)
                                       : field_eq(present, &field, bson_iter_value(&it));
        if (!ok)
            return false;
    }
    return true;
}

bool sim_filter_is_id_eq(const bson_t *filter, bson_iter_t *id)
{
    bson_iter_t it;
    if (bson_count_keys(filter) != 1 || !bson_iter_init_find(&it, filter, "_id") || is_operator_doc(&it))
        return false;
    *id = it;
    return true;
}

/* ---- sort and projection --------------------------------------------------- */

bool sim_sort_parse(const bson_t *spec, sim_sort_t *s, char *err, size_t errlen)
{
    bson_iter_t it;
    memset(s, 0, sizeof *s);
    if (!spec)
        return true;
    if (!bson_iter_init(&it, spec)) {
        snprintf(err, errlen, "invalid sort document");
        return false;
    }
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!BSON_ITER_HOLDS_NUMBER(&it) || (bson_iter_as_int64(&it) != 1 && bson_iter_as_int64(&it) != -1)) {
            snprintf(err, errlen, "sort key ordering must be 1 (for ascending) or -1 (for descending)");
            return false;
        }
        int dir = (int)bson_iter_as_int64(&it);
        if (!strcmp(key, "$natural")) {
            s->natural = dir;
            continue;
        }
        if (key[0] == '$' || s->n == SIM_MAX_SORT_KEYS) {
            snprintf(err, errlen, "unsupported sort key %.64s (at most %d plain fields)", key, SIM_MAX_SORT_KEYS);
            return false;
        }
        s->keys[s->n] = key;
        s->dir[s->n++] = dir;
    }
    if (s->natural && s->n) {
        snprintf(err, errlen, "$natural cannot be combined with other sort keys");
        return false;
    }
    return true;
}

int sim_sort_cmp(const bson_t *a, const bson_t *b, const sim_sort_t *s)
{
    static const bson_value_t missing = {.value_type = BSON_TYPE_NULL};
    for (int k = 0; k < s->n; k++) {
        bson_iter_t ra, rb, fa, fb;
        const bson_value_t *va = &missing, *vb = &missing;
        if (bson_iter_init(&ra, a) && bson_iter_find_descendant(&ra, s->keys[k], &fa))
            va = bson_iter_value(&fa);
        if (bson_iter_init(&rb, b) && bson_iter_find_descendant(&rb, s->keys[k], &fb))
            vb = bson_iter_value(&fb);
        int c = sim_value_cmp(va, vb);
        if (c)
            return c * s->dir[k];
    }
    return 0;
}

bool sim_proj_parse(const bson_t *spec, sim_proj_t *p, char *err, size_t errlen)
{
    bson_iter_t it;
    int incl = -1;
    p->spec = NULL;
    p->inclusive = false;
    p->id = true;
    if (!spec || bson_empty(spec))
        return true;
    if (!bson_iter_init(&it, spec)) {
        snprintf(err, errlen, "invalid projection document");
        return false;
    }
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strchr(key, '.') || key[0] == '$' ||
            !(BSON_ITER_HOLDS_NUMBER(&it) || BSON_ITER_HOLDS_BOOL(&it))) {
            snprintf(err, errlen, "unsupported projection of %.64s: the simulator projects top-level fields with 0/1",
                     key);
            return false;
        }
        bool on = bson_iter_as_bool(&it);
        if (!strcmp(key, "_id")) {
            p->id = on;
            continue;
        }
        if (incl >= 0 && incl != (int)on) {
            snprintf(err, errlen, "cannot mix inclusion and exclusion in a projection");
            return false;
        }
        incl = on;
    }
    p->spec = spec;
    p->inclusive = incl != 0; /* only _id given: {_id: 0} excludes, {_id: 1} includes */
    if (incl < 0)
        p->inclusive = p->id;
    return true;
}

void sim_proj_append(bson_t *parent, const char *key, size_t keylen, const bson_t *doc, const sim_proj_t *p)
{
    if (!p || !p->spec) {
        bson_append_document(parent, key, (int)keylen, doc);
        return;
    }
    bson_t child;
    bson_iter_t it;
    bson_append_document_begin(parent, key, (int)keylen, &child);
    if (bson_iter_init(&it, doc)) {
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            bool keep;
            if (!strcmp(k, "_id")) {
                keep = p->id;
            } else {
                bson_iter_t f;
                bool listed = bson_iter_init_find(&f, p->spec, k) && bson_iter_as_bool(&f) == p->inclusive;
                keep = p->inclusive ? listed : !listed;
            }
            if (keep)
                bson_append_iter(&child, NULL, 0, &it);
        }
    }
    bson_append_document_end(parent, &child);
}
