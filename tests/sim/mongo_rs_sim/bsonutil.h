/* SPDX-License-Identifier: Apache-2.0 */
/* BSON helpers of the MongoDB simulator: structural validation with a depth
 * limit, MongoDB's canonical value order, a small query matcher, sort and
 * top-level projection. Everything here is pure: no locks, no globals. */
#ifndef MONGO_SIM_BSONUTIL_H
#define MONGO_SIM_BSONUTIL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#define SIM_MAX_DEPTH 100
#define SIM_MAX_SORT_KEYS 8

/* True if every element of b (recursively, at most max_depth levels) is well
 * formed and arrays are keyed "0", "1", ... libbson's own validator recurses
 * without a limit. */
bool sim_bson_ok(const bson_t *b, int max_depth);

/* Total order of MongoDB values: <0, 0, >0. Numbers compare by value across
 * int32/int64/double; different type classes order by class. */
int sim_value_cmp(const bson_value_t *a, const bson_value_t *b);

/* Check that filter only uses what sim_match() implements. On failure writes
 * a message into err and returns false. */
bool sim_filter_check(const bson_t *filter, char *err, size_t errlen);
/* Evaluate a filter accepted by sim_filter_check() against doc. */
bool sim_match(const bson_t *doc, const bson_t *filter);
/* If filter is exactly {_id: <literal>}, point *id at that value. */
bool sim_filter_is_id_eq(const bson_t *filter, bson_iter_t *id);

typedef struct sim_sort {
    const char *keys[SIM_MAX_SORT_KEYS]; /* borrowed from the request */
    int dir[SIM_MAX_SORT_KEYS];
    int n;
    int natural; /* 0: no $natural key, else +1 or -1 */
} sim_sort_t;

bool sim_sort_parse(const bson_t *spec, sim_sort_t *s, char *err, size_t errlen);
int sim_sort_cmp(const bson_t *a, const bson_t *b, const sim_sort_t *s);

typedef struct sim_proj {
    const bson_t *spec; /* NULL: whole document */
    bool inclusive;
    bool id; /* include _id */
} sim_proj_t;

bool sim_proj_parse(const bson_t *spec, sim_proj_t *p, char *err, size_t errlen);
/* Append doc, projected, as a sub-document named key of parent. */
void sim_proj_append(bson_t *parent, const char *key, size_t keylen, const bson_t *doc,
                     const sim_proj_t *p);

#endif
