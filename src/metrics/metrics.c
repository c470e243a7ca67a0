/* SPDX-License-Identifier: Apache-2.0 */
/* Metric model: registries, families, series, lock-free updates, exemplars.
 * See metrics_impl.h for the locking scheme. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "metrics/metrics_impl.h"

const double poh_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t poh_default_buckets_len = sizeof poh_default_buckets / sizeof poh_default_buckets[0];

static const char *const type_names[] = {"counter", "gauge", "histogram"};

const char *poh_metric_type_name(poh_metric_type_t t)
{
    return (unsigned)t <= POH_HISTOGRAM ? type_names[t] : "unknown";
}

/* FNV-1a, 64-bit. Keys are short label values and names. */
uint64_t poh_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Mix the FNV state so that the low bits used as a table index are spread. */
static uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- names ---------------------------------------------------------------- */

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool poh_metric_name_valid(const char *s)
{
    if (!s || !*s || !(is_alpha(*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_' || *s == ':'))
            return false;
    return true;
}

bool poh_label_name_valid(const char *s)
{
    if (!s || !*s || !(is_alpha(*s) || *s == '_') || (s[0] == '_' && s[1] == '_'))
        return false;
    for (s++; *s; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_'))
            return false;
    return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* ---- escaping --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Append s escaped for a label value or HELP text. Backslash and newline are
 * always escaped, the double quote when quote is set. Invalid UTF-8 bytes
 * become U+FFFD: a scraper rejects the whole exposition otherwise. */
static void escape_into(poh_strbuf_t *sb, const char *s, bool quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '\\') {
            poh_strbuf_append(sb, "\\\\", 2);
        } else if (c == '\n') {
            poh_strbuf_append(sb, "\\n", 2);
        } else if (c == '"' && quote) {
            poh_strbuf_append(sb, "\\\"", 2);
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                poh_strbuf_append(sb, "\xef\xbf\xbd", 3);
                i++;
            } else {
                poh_strbuf_append(sb, s + i, len);
                i += len;
            }
            continue;
        }
        i++;
    }
}

/* ---- registry ------------------------------------------------------------- */

poh_registry_t *poh_registry_new(void)
{
    poh_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void series_free(poh_series_t *s)
{
    free(atomic_load_explicit(&s->ex, memory_order_relaxed));
    free(s);
}

static void family_free(poh_family_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i]);
    free(f->series);
    for (size_t i = 0; i < f->nretired; i++)
        free(f->retired[i]);
    free(f->map);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    if (f->le_text) {
        for (size_t i = 0; i <= f->nbuckets; i++) {
            free(f->le_text[i]);
            free(f->le_om[i]);
        }
    }
    free(f->le_text);
    free(f->le_om);
    free(f->le_text_len);
    free(f->le_om_len);
    free(f->bounds);
    free(f->name);
    free(f->om_name);
    free(f->help_text);
    free(f->help_om);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void poh_registry_free(poh_registry_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nfamilies; i++)
        family_free(r->families[i]);
    free(r->families);
    for (size_t i = 0; i < r->names_cap; i++)
        free((char *)r->names[i].key);
    free(r->names);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- registry name map: every sample/family name a family reserves ---------- */

static poh_name_slot_t *name_find(poh_registry_t *r, const char *key, uint64_t h)
{
    if (!r->names_cap)
        return NULL;
    size_t mask = r->names_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        poh_name_slot_t *s = &r->names[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

static int name_grow(poh_registry_t *r)
{
    size_t ncap = r->names_cap ? r->names_cap * 2 : 64;
    poh_name_slot_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < r->names_cap; i++) {
        poh_name_slot_t *s = &r->names[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (n[j].key)
            j = (j + 1) & (ncap - 1);
        n[j] = *s;
    }
    free(r->names);
    r->names = n;
    r->names_cap = ncap;
    return 0;
}

/* Takes ownership of key. */
static int name_insert(poh_registry_t *r, char *key, poh_family_t *f)
{
    if ((r->names_used + 1) * 2 > r->names_cap && name_grow(r) < 0) {
        free(key);
        return -ENOMEM;
    }
    uint64_t h = hash_finish(poh_hash_bytes(POH_HASH_SEED, key, strlen(key)));
    size_t mask = r->names_cap - 1;
    size_t i = h & mask;
    while (r->names[i].key)
        i = (i + 1) & mask;
    r->names[i] = (poh_name_slot_t){.hash = h, .key = key, .family = f};
    r->names_used++;
    return 0;
}

static char *str_concat(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    char *s = malloc(an + bn + 1);
    if (!s)
        return NULL;
    memcpy(s, a, an);
    memcpy(s + an, b, bn + 1);
    return s;
}

static char *name_ref_dup(const poh_name_ref_t *r)
{
    size_t sl = strlen(r->suffix);
    char *s = malloc(r->len + sl + 1);
    if (!s)
        return NULL;
    memcpy(s, r->base, r->len);
    memcpy(s + r->len, r->suffix, sl + 1);
    return s;
}

static bool family_shape_equal(const poh_family_t *f, poh_metric_type_t type, size_t nlabels,
                               const char *const *label_names, const double *buckets,
                               size_t nbuckets, uint32_t optional)
{
    if (f->type != type || f->nlabels != nlabels || f->optional != optional)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->label_names[i], label_names[i]) != 0)
            return false;
    if (type == POH_HISTOGRAM) {
        if (f->nbuckets != nbuckets)
            return false;
        for (size_t i = 0; i < nbuckets; i++)
            if (f->bounds[i] != buckets[i])
                return false;
    }
    return true;
}

/* Returns the number of finite bounds to use (a trailing +Inf is dropped), or
 * -EINVAL after logging why. */
static int validate_buckets(const char *name, const double *b, size_t n)
{
    if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0)
        n--;
    if (n == 0 || n > POH_MAX_BUCKETS) {
        POH_ERROR("metrics", "histogram %s: %zu buckets, need 1..%d", name, n, POH_MAX_BUCKETS);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i])) {
            POH_ERROR("metrics", "histogram %s: bucket %zu is not a finite number", name, i);
            return -EINVAL;
        }
        if (i > 0 && !(b[i] > b[i - 1])) {
            POH_ERROR("metrics", "histogram %s: buckets must be strictly increasing (bucket %zu)",
                      name, i);
            return -EINVAL;
        }
    }
    return (int)n;
}

static char *escape_dup(const char *s, bool quote, size_t *len)
{
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_strbuf_reserve(&sb, strlen(s));
    escape_into(&sb, s, quote);
    if (sb.failed) {
        poh_strbuf_free(&sb);
        return NULL;
    }
    *len = sb.len;
    return poh_strbuf_steal(&sb);
}

static int family_init_buckets(poh_family_t *f, const double *b, size_t n)
{
    f->nbuckets = n;
    f->bounds = malloc(n * sizeof *f->bounds);
    f->le_text = calloc(n + 1, sizeof *f->le_text);
    f->le_om = calloc(n + 1, sizeof *f->le_om);
    f->le_text_len = calloc(n + 1, 1);
    f->le_om_len = calloc(n + 1, 1);
    if (!f->bounds || !f->le_text || !f->le_om || !f->le_text_len || !f->le_om_len)
        return -ENOMEM;
    memcpy(f->bounds, b, n * sizeof *b);
    f->negative_bounds = b[0] < 0;
    for (size_t i = 0; i <= n; i++) {
        double v = i < n ? b[i] : INFINITY;
        for (int canonical = 0; canonical <= 1; canonical++) {
            char num[POH_NUM_MAX];
            size_t nl = poh_format_le(num, v, canonical);
            char *frag = malloc(nl + 6);
            if (!frag)
                return -ENOMEM;
            memcpy(frag, "le=\"", 4);
            memcpy(frag + 4, num, nl);
            memcpy(frag + 4 + nl, "\"", 2);
            if (canonical) {
                f->le_om[i] = frag;
                f->le_om_len[i] = (uint8_t)(nl + 5);
            } else {
                f->le_text[i] = frag;
                f->le_text_len[i] = (uint8_t)(nl + 5);
            }
            if (nl + 5 > f->le_max_len)
                f->le_max_len = nl + 5;
        }
    }
    return 0;
}

static poh_family_t *family_new(poh_registry_t *r, poh_metric_type_t type, const char *name,
                                const char *help, size_t nlabels, const char *const *label_names,
                                const double *buckets, size_t nbuckets)
{
    poh_family_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->reg = r;
    f->type = type;
    f->name_len = strlen(name);
    f->name = str_concat(name, f->name_len, "");
    f->om_name_len = type == POH_COUNTER ? f->name_len - 6 : f->name_len;
    f->om_name = str_concat(name, f->om_name_len, "");
    f->help_text = escape_dup(help ? help : "", false, &f->help_text_len);
    f->help_om = escape_dup(help ? help : "", true, &f->help_om_len);
    f->label_names = calloc(nlabels ? nlabels : 1, sizeof *f->label_names);
    if (!f->name || !f->om_name || !f->help_text || !f->help_om || !f->label_names)
        goto err;
    for (size_t i = 0; i < nlabels; i++) {
        f->label_names[i] = str_concat(label_names[i], strlen(label_names[i]), "");
        if (!f->label_names[i])
            goto err;
        f->nlabels = i + 1;
    }
    if (type == POH_HISTOGRAM && family_init_buckets(f, buckets, nbuckets) < 0)
        goto err;
    return f;
err:
    family_free(f);
    return NULL;
}

/* The arguments of poh_registry_family() make a valid family (logged if
 * not). */
static bool family_args_valid(poh_metric_type_t type, const char *name, size_t name_len,
                              size_t nlabels, const char *const *label_names)
{
    if ((unsigned)type > POH_HISTOGRAM) {
        POH_ERROR("metrics", "%s: unknown metric type %d", name, (int)type);
        return false;
    }
    if (!poh_metric_name_valid(name)) {
        POH_ERROR("metrics", "invalid metric name \"%s\"", name);
        return false;
    }
    if (type == POH_COUNTER && (!ends_with(name, name_len, "_total") || name_len == 6)) {
        POH_ERROR("metrics", "counter %s: name must be <base>_total", name);
        return false;
    }
    if (nlabels > POH_MAX_LABELS) {
        POH_ERROR("metrics", "%s: %zu labels, at most %d", name, nlabels, POH_MAX_LABELS);
        return false;
    }
    if (nlabels && !label_names) {
        POH_ERROR("metrics", "%s: %zu labels but no label names", name, nlabels);
        return false;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!poh_label_name_valid(label_names[i])) {
            POH_ERROR("metrics", "%s: invalid label name \"%s\"", name,
                      label_names[i] ? label_names[i] : "(null)");
            return false;
        }
        if (type == POH_HISTOGRAM && strcmp(label_names[i], "le") == 0) {
            POH_ERROR("metrics", "histogram %s: label name \"le\" is reserved", name);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(label_names[i], label_names[j]) == 0) {
                POH_ERROR("metrics", "%s: duplicate label name \"%s\"", name, label_names[i]);
                return false;
            }
        }
    }
    return true;
}

/* A histogram's buckets (the default when none, checked and deduplicated),
 * none for other types. False (logged) when they are not valid. */
static bool family_buckets(poh_metric_type_t type, const char *name, const double **buckets,
                           size_t *nbuckets)
{
    if (type == POH_HISTOGRAM) {
        if (!*buckets || *nbuckets == 0) {
            *buckets = poh_default_buckets;
            *nbuckets = poh_default_buckets_len;
        }
        int nb = validate_buckets(name, *buckets, *nbuckets);
        if (nb < 0)
            return false;
        *nbuckets = (size_t)nb;
    } else {
        *buckets = NULL;
        *nbuckets = 0;
    }
    return true;
}

/* Under r->mu: is one of the names a family reserves (reserved[0] its own)
 * taken? Then *found is the same family registered again, or NULL for a
 * clash (logged), and the answer is true. */
static bool family_taken(poh_registry_t *r, poh_metric_type_t type, const char *name,
                         size_t nlabels, const char *const *label_names, const double *buckets,
                         size_t nbuckets, uint32_t optional, char *const *reserved, size_t nres,
                         poh_family_t **found)
{
    *found = NULL;
    for (size_t i = 0; i < nres; i++) {
        if (!reserved[i])
            return true;
        uint64_t h = hash_finish(poh_hash_bytes(POH_HASH_SEED, reserved[i], strlen(reserved[i])));
        poh_name_slot_t *slot = name_find(r, reserved[i], h);
        if (!slot)
            continue;
        poh_family_t *old = slot->family;
        if (i == 0 && strcmp(old->name, name) == 0 &&
            family_shape_equal(old, type, nlabels, label_names, buckets, nbuckets, optional)) {
            *found = old;
        } else if (strcmp(old->name, name) == 0 && old->type != type) {
            POH_ERROR("metrics", "%s %s: already registered as a %s", type_names[type], name,
                      type_names[old->type]);
        } else if (strcmp(old->name, name) == 0) {
            POH_ERROR("metrics", "%s %s: already registered with other labels or buckets",
                      type_names[type], name);
        } else {
            POH_ERROR("metrics", "%s %s: name \"%s\" clashes with %s %s", type_names[type], name,
                      reserved[i], type_names[old->type], old->name);
        }
        return true;
    }
    return false;
}

static poh_family_t *registry_family(poh_registry_t *r, poh_metric_type_t type,
                                     const char *name, const char *help, size_t nlabels,
                                     const char *const *label_names, const double *buckets,
                                     size_t nbuckets, uint32_t optional);

bool poh_family_names_clash(poh_metric_type_t ta, const char *a, poh_metric_type_t tb,
                            const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((ta == POH_COUNTER && la < 6) || (tb == POH_COUNTER && lb < 6))
        return strcmp(a, b) == 0;
    poh_name_ref_t ra[5], rb[5];
    size_t na = poh_name_refs(ta, a, la, true, ra), nb = poh_name_refs(tb, b, lb, true, rb);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (poh_name_ref_equal(&ra[i], &rb[j]))
                return true;
    return false;
}

poh_family_t *poh_registry_family_desc(poh_registry_t *r, const poh_family_desc_t *d)
{
    return registry_family(r, d->type, d->name, d->help, d->nlabels, d->labels, NULL, 0,
                           d->optional);
}

poh_family_t *poh_registry_family(poh_registry_t *r, poh_metric_type_t type, const char *name,
                                  const char *help, size_t nlabels,
                                  const char *const *label_names, const double *buckets,
                                  size_t nbuckets)
{
    return registry_family(r, type, name, help, nlabels, label_names, buckets, nbuckets, 0);
}

static poh_family_t *registry_family(poh_registry_t *r, poh_metric_type_t type,
                                     const char *name, const char *help, size_t nlabels,
                                     const char *const *label_names, const double *buckets,
                                     size_t nbuckets, uint32_t optional)
{
    if (!r || !name)
        return NULL;
    size_t name_len = strlen(name);
    if (!family_args_valid(type, name, name_len, nlabels, label_names) ||
        !family_buckets(type, name, &buckets, &nbuckets))
        return NULL;
    optional &= (1u << nlabels) - 1u; /* nlabels <= POH_MAX_LABELS */

    /* Two families of one registry may not share a name in either format. */
    poh_name_ref_t refs[5];
    char *reserved[5] = {NULL};
    size_t nres = poh_name_refs(type, name, name_len, true, refs);
    for (size_t i = 0; i < nres; i++)
        reserved[i] = name_ref_dup(&refs[i]);
    poh_family_t *f = NULL;

    pthread_mutex_lock(&r->mu);
    if (family_taken(r, type, name, nlabels, label_names, buckets, nbuckets, optional, reserved,
                     nres, &f))
        goto unlock;
    if (r->nfamilies == r->families_cap) {
        size_t ncap = r->families_cap ? r->families_cap * 2 : 16;
        poh_family_t **n = realloc(r->families, ncap * sizeof *n);
        if (!n)
            goto unlock;
        r->families = n;
        r->families_cap = ncap;
    }
    f = family_new(r, type, name, help, nlabels, label_names, buckets, nbuckets);
    if (!f)
        goto unlock;
    f->optional = optional;
    for (size_t i = 0; i < nres; i++) {
        char *key = reserved[i];
        reserved[i] = NULL;
        /* On failure the family is still usable; only clash detection for
         * its later names is weakened. */
        name_insert(r, key, f);
    }
    r->families[r->nfamilies++] = f;
unlock:
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < nres; i++)
        free(reserved[i]);
    return f;
}

/* ---- series --------------------------------------------------------------- */

static uint64_t values_hash(const poh_family_t *f, const char *const *values)
{
    uint64_t h = POH_HASH_SEED;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        h = poh_hash_bytes(h, v, strlen(v) + 1);
    }
    return hash_finish(h);
}

static bool values_equal(const poh_series_t *s, const poh_family_t *f, const char *const *values)
{
    const char *k = s->key;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = strlen(v) + 1;
        if (memcmp(k, v, n) != 0)
            return false;
        k += n;
    }
    return true;
}

/* Slot index of the series with these values, or of the empty slot ending
 * the probe. map_cap must be non-zero. */
static size_t map_probe(const poh_family_t *f, uint64_t h, const char *const *values)
{
    size_t mask = f->map_cap - 1;
    size_t i = h & mask;
    while (f->map[i] && !(f->map[i]->hash == h && values_equal(f->map[i], f, values)))
        i = (i + 1) & mask;
    return i;
}

static int map_grow(poh_family_t *f)
{
    size_t ncap = f->map_cap ? f->map_cap * 2 : 16;
    poh_series_t **n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < f->map_cap; i++) {
        poh_series_t *s = f->map[i];
        if (!s)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = s;
    }
    free(f->map);
    f->map = n;
    f->map_cap = ncap;
    return 0;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void map_delete(poh_family_t *f, size_t i)
{
    size_t mask = f->map_cap - 1;
    f->map[i] = NULL;
    f->map_used--;
    for (size_t j = (i + 1) & mask; f->map[j]; j = (j + 1) & mask) {
        size_t home = f->map[j]->hash & mask;
        /* Move j back to the hole i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            f->map[i] = f->map[j];
            f->map[j] = NULL;
            i = j;
        }
    }
}

static int series_array_push(poh_family_t *f, poh_series_t *s)
{
    if (f->nseries == f->series_cap) {
        if (f->nretired == sizeof f->retired / sizeof f->retired[0])
            return -ENOMEM;
        size_t ncap = f->series_cap ? f->series_cap * 2 : 8;
        poh_series_t **n = malloc(ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        if (f->nseries)
            memcpy(n, f->series, f->nseries * sizeof *n);
        if (f->series)
            f->retired[f->nretired++] = f->series;
        f->series = n;
        f->series_cap = ncap;
    }
    f->series[f->nseries++] = s;
    return 0;
}

static poh_series_t *series_new(poh_family_t *f, const char *const *values, uint64_t h)
{
    poh_strbuf_t key = POH_STRBUF_INIT, labels = POH_STRBUF_INIT;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        poh_strbuf_append(&key, v, strlen(v) + 1);
        if (!v[0] && (f->optional >> i & 1u))
            continue; /* an optional label without a value is left out */
        if (labels.len)
            poh_strbuf_putc(&labels, ',');
        poh_strbuf_puts(&labels, f->label_names[i]);
        poh_strbuf_append(&labels, "=\"", 2);
        escape_into(&labels, v, true);
        poh_strbuf_putc(&labels, '"');
    }
    poh_series_t *s = NULL;
    size_t nb = f->type == POH_HISTOGRAM ? f->nbuckets + 1 : 0;
    size_t head = sizeof *s + nb * sizeof s->buckets[0];
    if (key.failed || labels.failed || key.len > UINT32_MAX || labels.len > UINT32_MAX)
        goto out;
    s = calloc(1, head + key.len + labels.len + 1);
    if (!s)
        goto out;
    char *data = (char *)s + head;
    if (key.len)
        memcpy(data, key.data, key.len);
    if (labels.len)
        memcpy(data + key.len, labels.data, labels.len);
    data[key.len + labels.len] = '\0';
    s->family = f;
    s->type = f->type;
    s->hash = h;
    s->key = data;
    s->key_len = (uint32_t)key.len;
    s->labels = data + key.len;
    s->labels_len = (uint32_t)labels.len;
    s->labels_hash = hash_finish(poh_hash_bytes(POH_HASH_SEED, s->labels, s->labels_len));
    atomic_init(&s->value, poh_double_to_bits(0.0));
    atomic_init(&s->ex, NULL);
    atomic_init(&s->removed, false);
    for (size_t i = 0; i < nb; i++)
        atomic_init(&s->buckets[i], 0);
out:
    poh_strbuf_free(&key);
    poh_strbuf_free(&labels);
    return s;
}

poh_series_t *poh_family_series(poh_family_t *f, const char *const *label_values)
{
    if (!f)
        return NULL;
    uint64_t h = values_hash(f, label_values);
    poh_series_t *s = NULL;
    pthread_mutex_lock(&f->mu);
    if (f->map_cap) {
        size_t i = map_probe(f, h, label_values);
        if (f->map[i]) {
            s = f->map[i];
            goto unlock;
        }
    }
    if ((f->map_used + 1) * 2 > f->map_cap && map_grow(f) < 0)
        goto unlock;
    s = series_new(f, label_values, h);
    if (!s)
        goto unlock;
    if (series_array_push(f, s) < 0) {
        series_free(s);
        s = NULL;
        goto unlock;
    }
    f->map[map_probe(f, h, label_values)] = s;
    f->map_used++;
unlock:
    pthread_mutex_unlock(&f->mu);
    if (!s)
        POH_ERROR("metrics", "%s: out of memory creating a series", f->name);
    return s;
}

void poh_family_remove_series(poh_family_t *f, const char *const *label_values)
{
    if (!f)
        return;
    uint64_t h = values_hash(f, label_values);
    pthread_mutex_lock(&f->mu);
    if (f->map_cap) {
        size_t i = map_probe(f, h, label_values);
        poh_series_t *s = f->map[i];
        if (s) {
            atomic_store_explicit(&s->removed, true, memory_order_release);
            map_delete(f, i);
        }
    }
    pthread_mutex_unlock(&f->mu);
}

size_t poh_registry_remove_series_if(poh_registry_t *r, poh_series_keep_fn keep, void *ctx)
{
    if (!r)
        return 0;
    size_t removed = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nfamilies; i++) {
        poh_family_t *f = r->families[i];
        const char *values[POH_MAX_LABELS];
        pthread_mutex_lock(&f->mu);
        for (size_t j = 0; j < f->nseries; j++) {
            poh_series_t *s = f->series[j];
            if (atomic_load_explicit(&s->removed, memory_order_acquire))
                continue;
            const char *p = s->key;
            for (size_t k = 0; k < f->nlabels; k++) {
                values[k] = p;
                p += strlen(p) + 1;
            }
            if (keep(f->name, (const char *const *)f->label_names, values, f->nlabels, ctx))
                continue;
            atomic_store_explicit(&s->removed, true, memory_order_release);
            if (f->map_cap) {
                size_t slot = map_probe(f, s->hash, values);
                if (f->map[slot] == s)
                    map_delete(f, slot);
            }
            removed++;
        }
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return removed;
}

poh_series_t *const *poh_family_snapshot(poh_family_t *f, size_t *n)
{
    pthread_mutex_lock(&f->mu);
    poh_series_t *const *arr = f->series;
    *n = f->nseries;
    pthread_mutex_unlock(&f->mu);
    return arr;
}

void poh_registry_visit(poh_registry_t *r, const char *name, poh_series_visit_fn fn, void *ctx)
{
    if (!r)
        return;
    poh_family_t *f = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nfamilies && !f; i++)
        if (strcmp(r->families[i]->name, name) == 0)
            f = r->families[i];
    pthread_mutex_unlock(&r->mu);
    if (!f)
        return;
    /* A series array outgrown meanwhile is retired, not freed: walking the
     * snapshot after the lock is safe (see metrics_impl.h). */
    pthread_mutex_lock(&f->mu);
    poh_series_t **series = f->series;
    size_t n = f->nseries;
    pthread_mutex_unlock(&f->mu);
    const char *values[POH_MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
        const poh_series_t *s = series[i];
        if (atomic_load_explicit(&s->removed, memory_order_acquire))
            continue;
        const char *p = s->key;
        for (size_t l = 0; l < f->nlabels; l++) {
            values[l] = p;
            p += strlen(p) + 1;
        }
        fn(ctx, s, values, f->nlabels);
    }
}

size_t poh_registry_series_count(poh_registry_t *r)
{
    if (!r)
        return 0;
    size_t total = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nfamilies; i++) {
        poh_family_t *f = r->families[i];
        pthread_mutex_lock(&f->mu);
        for (size_t j = 0; j < f->nseries; j++)
            if (!atomic_load_explicit(&f->series[j]->removed, memory_order_acquire))
                total++;
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return total;
}

/* ---- updates ---------------------------------------------------------------- */

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old,
                                                  poh_double_to_bits(poh_bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void poh_counter_add(poh_series_t *s, double v)
{
    if (!s || s->type != POH_COUNTER || !(v >= 0))
        return;
    atomic_add_double(&s->value, v);
}

void poh_gauge_set(poh_series_t *s, double v)
{
    if (!s || s->type != POH_GAUGE)
        return;
    atomic_store_explicit(&s->value, poh_double_to_bits(v), memory_order_relaxed);
}

void poh_gauge_add(poh_series_t *s, double v)
{
    if (!s || s->type != POH_GAUGE)
        return;
    atomic_add_double(&s->value, v);
}

/* Index of the bucket v falls into: the first bound >= v, nbuckets for +Inf. */
static size_t bucket_index(const poh_family_t *f, double v)
{
    size_t lo = 0, hi = f->nbuckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t histogram_observe_idx(poh_series_t *s, double v)
{
    size_t i = bucket_index(s->family, v);
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
    return i;
}

void poh_histogram_observe(poh_series_t *s, double v)
{
    if (!s || s->type != POH_HISTOGRAM || isnan(v))
        return;
    histogram_observe_idx(s, v);
}

bool poh_histogram_restore(poh_series_t *s, const uint64_t *counts, size_t n, double sum)
{
    if (!s || s->type != POH_HISTOGRAM || n != s->family->nbuckets + 1 || !isfinite(sum))
        return false;
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add_explicit(&s->buckets[i], counts[i], memory_order_relaxed);
    atomic_add_double(&s->value, sum);
    return true;
}

void poh_histogram_cumulative(const poh_series_t *s, uint64_t *cum)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= s->family->nbuckets; i++) {
        total += atomic_load_explicit(&((poh_series_t *)s)->buckets[i], memory_order_relaxed);
        cum[i] = total;
    }
}

size_t poh_histogram_read(const poh_series_t *s, uint64_t *cumulative, size_t cap)
{
    if (!s || s->family->type != POH_HISTOGRAM)
        return 0;
    size_t n = s->family->nbuckets + 1;
    if (cap >= n)
        poh_histogram_cumulative(s, cumulative);
    return n;
}

const double *poh_histogram_bounds(const poh_series_t *s, size_t *n)
{
    *n = s && s->family->type == POH_HISTOGRAM ? s->family->nbuckets : 0;
    return *n ? s->family->bounds : NULL;
}

double poh_series_value(const poh_series_t *s)
{
    if (!s)
        return NAN;
    return poh_bits_to_double(atomic_load_explicit(&((poh_series_t *)s)->value,
                                                   memory_order_relaxed));
}

uint64_t poh_histogram_count(const poh_series_t *s)
{
    if (!s || s->family->type != POH_HISTOGRAM)
        return 0;
    uint64_t cum[POH_MAX_BUCKETS + 1];
    poh_histogram_cumulative(s, cum);
    return cum[s->family->nbuckets];
}

/* ---- exemplars ------------------------------------------------------------- */

static bool hex_id_ok(const char *id, size_t max, size_t *len)
{
    *len = 0;
    if (!id)
        return true;
    size_t n = strlen(id);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    *len = n;
    return true;
}

/* The combined length of an exemplar's label names and values is capped at
 * 128 characters by OpenMetrics; hex ids at their maximum length fit. */
_Static_assert(sizeof "trace_id" - 1 + POH_TRACE_ID_MAX + sizeof "span_id" - 1 + POH_SPAN_ID_MAX <=
                   128,
               "exemplar label set exceeds the OpenMetrics limit");

static poh_exemplars_t *exemplars_get(poh_series_t *s)
{
    poh_exemplars_t *e = atomic_load_explicit(&s->ex, memory_order_acquire);
    if (e)
        return e;
    size_t n = s->family->type == POH_HISTOGRAM ? s->family->nbuckets + 1 : 1;
    e = calloc(1, sizeof *e + n * sizeof e->e[0]);
    if (!e)
        return NULL;
    atomic_flag_clear(&e->lock);
    poh_exemplars_t *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&s->ex, &expected, e, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(e);
        return expected;
    }
    return e;
}

static void spin_lock(atomic_flag *l)
{
    for (unsigned n = 0; atomic_flag_test_and_set_explicit(l, memory_order_acquire); n++)
        if (n >= 64)
            sched_yield();
}

static void spin_unlock(atomic_flag *l) { atomic_flag_clear_explicit(l, memory_order_release); }

static void exemplar_store(poh_series_t *s, size_t slot, double v, const char *trace_id,
                           size_t tlen, const char *span_id, size_t slen, double ts)
{
    poh_exemplars_t *e = exemplars_get(s);
    if (!e)
        return;
    spin_lock(&e->lock);
    poh_exemplar_t *x = &e->e[slot];
    x->value = v;
    x->ts = isfinite(ts) && ts > 0 && ts < 1e13 ? ts : 0;
    x->trace_len = (uint8_t)tlen;
    x->span_len = (uint8_t)slen;
    if (tlen)
        memcpy(x->trace_id, trace_id, tlen);
    if (slen)
        memcpy(x->span_id, span_id, slen);
    x->set = true;
    spin_unlock(&e->lock);
}

void poh_counter_add_exemplar(poh_series_t *s, double v, const char *trace_id,
                              const char *span_id, double ts)
{
    if (!s || s->type != POH_COUNTER || !(v >= 0))
        return;
    atomic_add_double(&s->value, v);
    size_t tlen, slen;
    if (!hex_id_ok(trace_id, POH_TRACE_ID_MAX, &tlen) ||
        !hex_id_ok(span_id, POH_SPAN_ID_MAX, &slen) || tlen + slen == 0)
        return;
    exemplar_store(s, 0, v, trace_id, tlen, span_id, slen, ts);
}

void poh_histogram_observe_exemplar(poh_series_t *s, double v, const char *trace_id,
                                    const char *span_id, double ts)
{
    if (!s || s->type != POH_HISTOGRAM || isnan(v))
        return;
    size_t slot = histogram_observe_idx(s, v);
    size_t tlen, slen;
    if (!hex_id_ok(trace_id, POH_TRACE_ID_MAX, &tlen) ||
        !hex_id_ok(span_id, POH_SPAN_ID_MAX, &slen) || tlen + slen == 0)
        return;
    exemplar_store(s, slot, v, trace_id, tlen, span_id, slen, ts);
}

bool poh_series_exemplars(const poh_series_t *s, poh_exemplar_t *out, size_t n)
{
    poh_exemplars_t *e = atomic_load_explicit(&((poh_series_t *)s)->ex, memory_order_acquire);
    if (!e)
        return false;
    spin_lock(&e->lock);
    memcpy(out, e->e, n * sizeof *out);
    spin_unlock(&e->lock);
    return true;
}
