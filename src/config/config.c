/* SPDX-License-Identifier: Apache-2.0 */
/* Table-driven YAML → struct engine (nginx style: key → type → offsetof).
 *
 * The engine knows only the tables it is given: each section's C struct and
 * its poh_cfg_entry_t table live with the code they configure (e.g.
 * grpc/grpc_conf.h + grpc/grpc_schema.c), and the application's root table
 * (appconfig/app_schema.c) hooks each in with one entry. A table has one
 * entry per key {key, POH_CFG_<type>, offsetof(field), offsetof(count) for
 * lists/maps, flags, default text, env var, bounds, choices, nested section,
 * unique key, check}, ended by {NULL}, wrapped in a poh_cfg_section_t
 * {sizeof(struct), table, validate, release}. Lists are (pointer, size_t
 * count) pairs; maps are (poh_config_kv_t *, size_t count); nested sections
 * are embedded structs. Cross-key rules ("to" xor "to_field") go in
 * validate(), reported with poh_cfg_error(ctx, "to_field", "...").
 * Parsing, defaults, environment, errors with file:line:col, "did you mean",
 * secrets from *_file keys and freeing all come from the tables.
 * poh_cfg_schema_check() (run by the tests) catches table mistakes.
 * docs/architecture.md tells how to add a collector kind.
 *
 * Parsing uses libyaml's document API (aliases resolve to shared nodes; a
 * visit budget bounds alias expansion). Values are only read where the
 * schema asks, so traversal depth is bounded by the schema, not the input. */
#include "config/schema.h"
#include "core/file.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_INPUT_BYTES POH_CFG_MAX_INPUT_BYTES
#define MAX_SECRET_BYTES (64u << 10)
#define MAX_VISITS 1000000u          /* bounds alias expansion ("billion laughs") */
#define MAX_MAP_ENTRIES 1000u
#define MAX_SHOWN 64                 /* bytes of a key or value quoted in messages */

struct poh_cfg_ctx {
    const char *name;
    const char *base_dir;
    const char *text;
    size_t len;
    yaml_document_t *doc;
    poh_strbuf_t *errors;
    poh_strbuf_t path;
    size_t nerrors;
    size_t visits;
    bool stop;                 /* error cap, visit budget or out of memory */
    bool oom;
    yaml_node_t *vmap;         /* mapping of the section being validated */
    yaml_mark_t vmark;
};

/* ---------------------------------------------------------------- errors */

/* Append s quoted, non-printable bytes as \xNN, cut at MAX_SHOWN bytes. */
static void put_quoted(poh_strbuf_t *sb, const char *s, size_t n)
{
    poh_strbuf_putc(sb, '"');
    for (size_t i = 0; i < n && i < MAX_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            poh_strbuf_printf(sb, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            poh_strbuf_printf(sb, "\\x%02x", c);
        else
            poh_strbuf_putc(sb, (char)c);
    }
    if (n > MAX_SHOWN)
        poh_strbuf_puts(sb, "...");
    poh_strbuf_putc(sb, '"');
}

/* Path component: printable keys as they are, anything odd quoted. */
static void put_key(poh_strbuf_t *sb, const char *s, size_t n)
{
    bool plain = n > 0 && n <= MAX_SHOWN;
    for (size_t i = 0; plain && i < n; i++)
        plain = isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-';
    if (plain)
        poh_strbuf_append(sb, s, n);
    else
        put_quoted(sb, s, n);
}

static bool count_error(poh_cfg_ctx_t *ctx)
{
    if (ctx->stop)
        return false;
    if (ctx->nerrors == POH_CFG_MAX_ERRORS) {
        poh_strbuf_printf(ctx->errors, "%s: too many errors, stopping after %d\n", ctx->name,
                          POH_CFG_MAX_ERRORS);
        ctx->stop = true;
        return false;
    }
    ctx->nerrors++;
    return true;
}

/* "<file>:<line>:<col>: <path>[.<key>]: <message>\n"; mark NULL drops line:col. */
__attribute__((format(printf, 4, 0))) static void verror(poh_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key, const char *fmt,
                   va_list ap)
{
    if (!count_error(ctx))
        return;
    poh_strbuf_t *e = ctx->errors;
    if (mark)
        poh_strbuf_printf(e, "%s:%zu:%zu: ", ctx->name, mark->line + 1, mark->column + 1);
    else
        poh_strbuf_printf(e, "%s: ", ctx->name);
    if (ctx->path.len)
        poh_strbuf_append(e, ctx->path.data, ctx->path.len);
    if (key) {
        if (ctx->path.len)
            poh_strbuf_putc(e, '.');
        put_key(e, key, strlen(key));
    }
    if (!ctx->path.len && !key)
        poh_strbuf_puts(e, "(root)");
    poh_strbuf_puts(e, ": ");
    poh_strbuf_vprintf(e, fmt, ap);
    poh_strbuf_putc(e, '\n');
}

__attribute__((format(printf, 4, 5))) static void
error_at(poh_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(ctx, mark, key, fmt, ap);
    va_end(ap);
}

void poh_cfg_error(poh_cfg_ctx_t *ctx, const char *key, const char *fmt, ...)
{
    const yaml_mark_t *mark = &ctx->vmark;
    if (key && ctx->vmap && ctx->vmap->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = ctx->vmap->data.mapping.pairs.start;
             p < ctx->vmap->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
            yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
            if (k && v && k->type == YAML_SCALAR_NODE &&
                strcmp((const char *)k->data.scalar.value, key) == 0) {
                mark = &v->start_mark;
                break;
            }
        }
    }
    va_list ap;
    va_start(ap, fmt);
    verror(ctx, mark, key, fmt, ap);
    va_end(ap);
}

static size_t path_push_key(poh_cfg_ctx_t *ctx, const char *key, size_t n)
{
    size_t old = ctx->path.len;
    if (old)
        poh_strbuf_putc(&ctx->path, '.');
    put_key(&ctx->path, key, n);
    return old;
}

static size_t path_push_index(poh_cfg_ctx_t *ctx, size_t i)
{
    size_t old = ctx->path.len;
    poh_strbuf_printf(&ctx->path, "[%zu]", i);
    return old;
}

static void path_pop(poh_cfg_ctx_t *ctx, size_t old)
{
    if (ctx->path.len > old) {
        ctx->path.len = old;
        ctx->path.data[old] = '\0';
    }
}

/* ------------------------------------------------------- edit distance */

static int fold(int c)
{
    return tolower((unsigned char)c);
}

size_t poh_cfg_edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n > MAXLEN || m > MAXLEN)
        return SIZE_MAX;
    /* Three rows suffice: transpositions look two rows back. */
    size_t rows[3][MAXLEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = fold(a[i - 1]) != fold(b[j - 1]);
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

/* Nearest candidate within a distance that still looks like a typo. */
static const char *suggest(const char *word, const char *const *cands, size_t n)
{
    size_t len = strlen(word);
    size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = poh_cfg_edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    return bestd <= limit ? best : NULL;
}

/* ------------------------------------------------------- scalar parsing */

static void why_value(poh_strbuf_t *why, const char *what, const char *s)
{
    poh_strbuf_printf(why, "expected %s, got ", what);
    put_quoted(why, s, strlen(s));
}

static int parse_u64(const char *s, size_t maxdigits, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; isdigit((unsigned char)s[n]); n++) {
        if (n == maxdigits)
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (n == 0)
        return -EINVAL;
    *out = v;
    *end = s + n;
    return 0;
}

static int parse_duration(const char *s, double *seconds)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"w", 604800000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},     {"s", 1000},     {"ms", 1}};
    const size_t nunits = sizeof units / sizeof units[0];
    uint64_t total = 0;
    size_t next = 0;
    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        uint64_t v;
        if (parse_u64(s, 12, &v, &s) < 0)
            return -EINVAL;
        size_t ulen = 0;
        while (isalpha((unsigned char)s[ulen]))
            ulen++;
        size_t u = next;
        while (u < nunits && (strlen(units[u].unit) != ulen || memcmp(units[u].unit, s, ulen)))
            u++;
        if (u == nunits || (v && v > (UINT64_MAX - total) / units[u].ms))
            return -EINVAL;
        total += v * units[u].ms;
        next = u + 1;
        s += ulen;
    }
    *seconds = (double)total / 1000.0;
    return 0;
}

int poh_parse_duration(const char *s, double *seconds)
{
    double v;
    if (parse_duration(s, &v) < 0)
        return -EINVAL;
    *seconds = v;
    return 0;
}

static int parse_address(const char *s, char *host, size_t hostlen, unsigned *port,
                         poh_strbuf_t *why)
{
    const char *h = s, *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            poh_strbuf_puts(why, "missing \"]\" after IPv6 address");
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        char v6[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (hl == 0 || hl >= sizeof v6 || (memcpy(v6, h, hl), v6[hl] = '\0',
                                           inet_pton(AF_INET6, v6, &a) != 1)) {
            poh_strbuf_puts(why, "invalid IPv6 address in brackets");
            return -EINVAL;
        }
        colon = close + 1;
        if (*colon != ':') {
            poh_strbuf_puts(why, "expected \":port\" after \"]\"");
            return -EINVAL;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            poh_strbuf_puts(why, "missing port (expected host:port, [ipv6]:port or :port)");
            return -EINVAL;
        }
        hl = (size_t)(colon - s);
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == ':') {
                poh_strbuf_puts(why, "IPv6 addresses must be in brackets, as in [::1]:9100");
                return -EINVAL;
            }
            if (!isalnum(c) && c != '.' && c != '-' && c != '_') {
                poh_strbuf_puts(why, "invalid character in host name");
                return -EINVAL;
            }
        }
        if (hl > 253) {
            poh_strbuf_puts(why, "host name too long");
            return -EINVAL;
        }
    }
    uint64_t p;
    const char *end;
    if (parse_u64(colon + 1, 5, &p, &end) < 0 || *end) {
        poh_strbuf_puts(why, "port must be a number from 0 to 65535");
        return -EINVAL;
    }
    if (p > 65535) {
        poh_strbuf_printf(why, "port %llu out of range (0-65535)", (unsigned long long)p);
        return -EINVAL;
    }
    if (host) {
        if (hl >= hostlen) {
            poh_strbuf_puts(why, "host name too long");
            return -EINVAL;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port)
        *port = (unsigned)p;
    return 0;
}

int poh_parse_listen_address(const char *s, char *host, size_t hostlen, unsigned *port)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = s ? parse_address(s, host, hostlen, port, &why) : -EINVAL;
    poh_strbuf_free(&why);
    return rc < 0 ? -EINVAL : 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } sfx[] = {{"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}};
    uint64_t v;
    const char *end;
    if (parse_u64(s, 19, &v, &end) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        if (strcmp(end, sfx[i].suffix) == 0) {
            if (v > UINT64_MAX / sfx[i].mult)
                return -EINVAL;
            *out = v * sfx[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

static void *field_at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static int check_bounds(const poh_cfg_entry_t *e, double v, const char *unit, poh_strbuf_t *why)
{
    if (e->min < e->max && (v < e->min || v > e->max)) {
        poh_strbuf_printf(why, "%.15g%s is out of range (%.15g%s to %.15g%s)", v, unit, e->min, unit,
                          e->max, unit);
        return -EINVAL;
    }
    return 0;
}

static int set_string(char **dst, const char *s)
{
    char *d = strdup(s);
    if (!d)
        return -ENOMEM;
    free(*dst);
    *dst = d;
    return 0;
}

static void free_secret(char **p)
{
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static int string_checks(const poh_cfg_entry_t *e, const char *s, poh_strbuf_t *why)
{
    if ((e->flags & POH_CFG_NONEMPTY) && !*s) {
        poh_strbuf_puts(why, "must not be empty");
        return -EINVAL;
    }
    return e->check ? e->check(s, why) : 0;
}

typedef int (*scalar_fn)(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why);

static int sc_string(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    int rc = string_checks(e, s, why);
    return rc < 0 ? rc : set_string(field, s);
}

static int sc_secret(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    if ((e->flags & POH_CFG_NONEMPTY) && !*s) {
        poh_strbuf_puts(why, "must not be empty");
        return -EINVAL;
    }
    if (e->check && e->check(s, why) < 0)
        return -EINVAL;
    char *d = strdup(s);
    if (!d)
        return -ENOMEM;
    free_secret(field);
    *(char **)field = d;
    return 0;
}

static int sc_bool(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    (void)e;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *(bool *)field = s[0] == 't';
        return 0;
    }
    why_value(why, "true or false", s);
    return -EINVAL;
}

static int sc_uint(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    uint64_t v;
    const char *end;
    if (parse_u64(s, 20, &v, &end) < 0 || *end || v > UINT_MAX) {
        why_value(why, "an unsigned integer", s);
        return -EINVAL;
    }
    if (check_bounds(e, (double)v, "", why) < 0)
        return -EINVAL;
    *(unsigned *)field = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

static int sc_double(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    double v;
    if (parse_double(s, &v) < 0) {
        why_value(why, "a number", s);
        return -EINVAL;
    }
    if (check_bounds(e, v, "", why) < 0)
        return -EINVAL;
    *(double *)field = v;
    return 0;
}

static int sc_duration(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    double v;
    if (parse_duration(s, &v) < 0) {
        poh_strbuf_puts(why, "invalid duration ");
        put_quoted(why, s, strlen(s));
        poh_strbuf_puts(why, " (expected a number and a unit such as 500ms, 2s, 1m30s or 1h)");
        return -EINVAL;
    }
    if (check_bounds(e, v, "s", why) < 0)
        return -EINVAL;
    *(double *)field = v;
    return 0;
}

static int sc_size(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    uint64_t v;
    if (parse_size(s, &v) < 0 || v > SIZE_MAX) {
        poh_strbuf_puts(why, "invalid size ");
        put_quoted(why, s, strlen(s));
        poh_strbuf_puts(why, " (expected bytes such as 16384, 512B, 16KiB, 1MiB or 1GiB)");
        return -EINVAL;
    }
    if (check_bounds(e, (double)v, " bytes", why) < 0)
        return -EINVAL;
    *(size_t *)field = (size_t)v;
    return 0;
}

static int sc_address(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    poh_strbuf_t reason = POH_STRBUF_INIT;
    int rc = parse_address(s, NULL, 0, NULL, &reason);
    if (rc < 0) {
        poh_strbuf_puts(why, "invalid address ");
        put_quoted(why, s, strlen(s));
        poh_strbuf_printf(why, ": %s", reason.data ? reason.data : "");
    }
    poh_strbuf_free(&reason);
    if (rc < 0 || (e->check && e->check(s, why) < 0))
        return -EINVAL;
    return set_string(field, s);
}

static int sc_enum(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why)
{
    size_t n = 0;
    while (e->choices[n])
        n++;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, e->choices[i]) == 0)
            return set_string(field, e->choices[i]);
    poh_strbuf_puts(why, "invalid value ");
    put_quoted(why, s, strlen(s));
    poh_strbuf_puts(why, " (expected one of:");
    for (size_t i = 0; i < n; i++)
        poh_strbuf_printf(why, "%s %s", i ? "," : "", e->choices[i]);
    poh_strbuf_putc(why, ')');
    const char *near = suggest(s, e->choices, n);
    if (near)
        poh_strbuf_printf(why, " (did you mean \"%s\"?)", near);
    return -EINVAL;
}

/* Indexed by type; NULL for non-scalar types. */
static const struct {
    const char *what;   /* "expected <what>" */
    scalar_fn parse;
} type_info[POH_CFG_TYPE_COUNT] = {
    [POH_CFG_STRING] = {"a string", sc_string},
    [POH_CFG_BOOL] = {"true or false", sc_bool},
    [POH_CFG_UINT] = {"an unsigned integer", sc_uint},
    [POH_CFG_DOUBLE] = {"a number", sc_double},
    [POH_CFG_DURATION] = {"a duration", sc_duration},
    [POH_CFG_SIZE] = {"a size", sc_size},
    [POH_CFG_ADDRESS] = {"an address", sc_address},
    [POH_CFG_ENUM] = {"a string", sc_enum},
    [POH_CFG_SECRET] = {"a string", sc_secret},
    [POH_CFG_STRING_LIST] = {"a list", NULL},
    [POH_CFG_DOUBLE_LIST] = {"a list", NULL},
    [POH_CFG_STRING_MAP] = {"a mapping", NULL},
    [POH_CFG_SECTION] = {"a mapping", NULL},
    [POH_CFG_SECTION_LIST] = {"a list", NULL},
};

/* -------------------------------------------------------------- nodes */

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a scalar";
    }
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static yaml_node_t *node(poh_cfg_ctx_t *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

/* Count a visited node; false once the budget is spent (alias bombs). */
static bool visit(poh_cfg_ctx_t *ctx, const yaml_node_t *n)
{
    if (ctx->stop)
        return false;
    if (++ctx->visits > MAX_VISITS) {
        error_at(ctx, &n->start_mark, NULL, "document too complex (more than %u nodes after "
                 "resolving aliases)", MAX_VISITS);
        ctx->stop = true;
        return false;
    }
    return true;
}

/* A non-null scalar without NUL bytes, else an error naming what was expected. */
static const char *scalar_of(poh_cfg_ctx_t *ctx, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        error_at(ctx, &n->start_mark, NULL, "expected %s, got %s", what, node_kind(n));
        return NULL;
    }
    if (is_null(n)) {
        error_at(ctx, &n->start_mark, NULL, "expected %s, got null", what);
        return NULL;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
        error_at(ctx, &n->start_mark, NULL, "value contains a NUL byte");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static void note_rc(poh_cfg_ctx_t *ctx, int rc)
{
    if (rc == -ENOMEM) {
        ctx->oom = true;
        ctx->stop = true;
    }
}

/* Run a scalar parser; on failure report why at mark (NULL: no position)
 * with a prefix such as "invalid value in environment variable X: ". */
static int apply_scalar(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *field, const char *s,
                        const yaml_mark_t *mark, const char *prefix)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = type_info[e->type].parse(e, s, field, &why);
    note_rc(ctx, rc);
    if (rc == -EINVAL)
        error_at(ctx, mark, NULL, "%s%s", prefix, why.data ? why.data : "invalid value");
    poh_strbuf_free(&why);
    return rc;
}

/* --------------------------------------------------------------- files */

/* Read a secret file into *out (one trailing newline stripped). Errors name
 * the path, never the content. */
static int read_secret_file(poh_cfg_ctx_t *ctx, const char *path, const yaml_mark_t *mark,
                            char **out)
{
    poh_strbuf_t full = POH_STRBUF_INIT;
    char *buf = NULL;
    int fd = -1, rc = -EINVAL;
    if (path[0] != '/' && ctx->base_dir)
        poh_strbuf_printf(&full, "%s/", ctx->base_dir);
    poh_strbuf_puts(&full, path);
    if (full.failed) {
        rc = -ENOMEM;
        goto err;
    }
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; S_ISREG rejects it. */
    fd = open(full.data, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full.data, strerror(errno));
        goto err;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_SECRET_BYTES) {
        error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full.data,
                 S_ISREG(st.st_mode) ? "file larger than 64 KiB" : "not a regular file");
        goto err;
    }
    buf = malloc(MAX_SECRET_BYTES + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto err;
    }
    size_t n = 0;
    while (n <= MAX_SECRET_BYTES) {
        ssize_t r = read(fd, buf + n, MAX_SECRET_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full.data, strerror(errno));
            goto err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > MAX_SECRET_BYTES) {
        error_at(ctx, mark, NULL, "cannot read \"%s\": file larger than 64 KiB", full.data);
        goto err;
    }
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    if (memchr(buf, '\0', n)) {
        error_at(ctx, mark, NULL, "file \"%s\" contains a NUL byte", full.data);
        goto err;
    }
    if (n == 0) {
        error_at(ctx, mark, NULL, "file \"%s\" is empty", full.data);
        goto err;
    }
    /* A fresh copy, so no unwiped block holding the secret reaches free(). */
    char *s = malloc(n + 1);
    if (!s) {
        rc = -ENOMEM;
        goto err;
    }
    memcpy(s, buf, n);
    s[n] = '\0';
    explicit_bzero(buf, MAX_SECRET_BYTES + 1);
    free(buf);
    close(fd);
    poh_strbuf_free(&full);
    *out = s;
    return 0;
err:
    if (buf) {
        explicit_bzero(buf, MAX_SECRET_BYTES + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    poh_strbuf_free(&full);
    note_rc(ctx, rc);
    return rc;
}

/* --------------------------------------------------------------- values */

static void apply_section(poh_cfg_ctx_t *ctx, const poh_cfg_section_t *sec, void *obj,
                          yaml_node_t *map, const yaml_mark_t *mark, bool present);

/* The zeroed array of a list field, sized for the sequence's items (their
 * count in *n); NULL when the sequence is empty or memory ran out (noted). */
static void *list_alloc(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                        const yaml_node_t *seq, size_t elem, size_t *n)
{
    *n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (*n == 0)
        return NULL;
    void **arr = field_at(obj, e->offset);
    if (!(*arr = calloc(*n, elem)))
        note_rc(ctx, -ENOMEM);
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
        yaml_node_t *it = node(ctx, seq->data.sequence.items.start[i]);
        if (!it || !visit(ctx, it))
            break;
        size_t old = path_push_index(ctx, i);
        fn(ctx, e, obj, i, it);
        path_pop(ctx, old);
    }
}

static void string_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                        yaml_node_t *it)
{
    (void)i;
    char **items = *(char ***)field_at(obj, e->offset);
    size_t *count = field_at(obj, e->count_offset);
    const char *s = scalar_of(ctx, it, "a string");
    if (!s)
        return;
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = string_checks(e, s, &why);
    if (rc == 0 && !(items[*count] = strdup(s)))
        rc = -ENOMEM;
    else if (rc == 0)
        (*count)++;
    note_rc(ctx, rc);
    if (rc == -EINVAL)
        error_at(ctx, &it->start_mark, NULL, "%s", why.data ? why.data : "invalid");
    poh_strbuf_free(&why);
}

static void apply_string_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
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
    double *items = *(double **)field_at(obj, e->offset);
    size_t *count = field_at(obj, e->count_offset);
    const char *s = scalar_of(ctx, it, "a number");
    if (!s)
        return;
    double v;
    poh_strbuf_t why = POH_STRBUF_INIT;
    if (sc_double(e, s, &v, &why) < 0)
        error_at(ctx, &it->start_mark, NULL, "%s", why.data ? why.data : "invalid");
    else if ((e->flags & POH_CFG_INCREASING) && *count && v <= items[*count - 1])
        error_at(ctx, &it->start_mark, NULL, "values must be strictly increasing (%g after %g)",
                 v, items[*count - 1]);
    else
        items[(*count)++] = v;
    poh_strbuf_free(&why);
}

static void apply_double_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
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

static void apply_string_map(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                             yaml_node_t *map)
{
    poh_config_kv_t **items = field_at(obj, e->offset);
    size_t *count = field_at(obj, e->count_offset);
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    size_t n = (size_t)(map->data.mapping.pairs.top - pairs);
    if (n == 0)
        return;
    if (n > MAX_MAP_ENTRIES) {
        error_at(ctx, &map->start_mark, NULL, "too many entries (%zu, at most %u)", n,
                 MAX_MAP_ENTRIES);
        return;
    }
    *items = calloc(n, sizeof **items);
    if (!*items) {
        note_rc(ctx, -ENOMEM);
        return;
    }
    bool files = e->flags & POH_CFG_FILE_VALUES;
    for (size_t i = 0; i < n && !ctx->stop; i++) {
        yaml_node_t *k = node(ctx, pairs[i].key), *v = node(ctx, pairs[i].value);
        if (!k || !v || !visit(ctx, v))
            break;
        if (k->type != YAML_SCALAR_NODE) {
            error_at(ctx, &k->start_mark, NULL, "keys must be strings, got %s", node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        size_t klen = k->data.scalar.length;
        bool from_file = files && ends_with_file(key, klen);
        size_t name_len = from_file ? klen - 5 : klen;
        size_t old = path_push_key(ctx, key, klen);
        const char *dup = NULL;
        size_t dup_line = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            yaml_node_t *kj = node(ctx, pairs[j].key);
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
            error_at(ctx, &k->start_mark, NULL, "duplicate key (first defined at line %zu)",
                     dup_line);
        else if (dup)
            error_at(ctx, &k->start_mark, NULL, "conflicts with \"%s\" at line %zu", dup,
                     dup_line);
        else if (memchr(key, '\0', klen))
            error_at(ctx, &k->start_mark, NULL, "key contains a NUL byte");
        else
            s = scalar_of(ctx, v, "a string");
        if (s) {
            poh_config_kv_t *kv = &(*items)[*count];
            kv->key = strndup(key, name_len);
            int rc = kv->key ? 0 : -ENOMEM;
            if (rc == 0 && from_file)
                rc = read_secret_file(ctx, s, &v->start_mark, &kv->value);
            else if (rc == 0 && !(kv->value = strdup(s)))
                rc = -ENOMEM;
            note_rc(ctx, rc);
            if (rc == 0) {
                (*count)++;
            } else {
                free(kv->key);
                kv->key = NULL;
            }
        }
        path_pop(ctx, old);
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
        yaml_node_t *k = node(ctx, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return node(ctx, p->value);
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
        note_rc(ctx, -ENOMEM);
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
        yaml_node_t *item = node(ctx, seq->data.sequence.items.start[u[i].idx]);
        yaml_node_t *v = map_value(ctx, item, e->unique);
        size_t old = path_push_index(ctx, u[i].idx);
        poh_strbuf_t q = POH_STRBUF_INIT;
        put_quoted(&q, u[i].s, strlen(u[i].s));
        error_at(ctx, v ? &v->start_mark : &item->start_mark, e->unique,
                 "duplicate value %s (already used by item %zu)", q.data ? q.data : "",
                 u[first].idx);
        poh_strbuf_free(&q);
        path_pop(ctx, old);
    }
    free(u);
}

static void section_item(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, size_t i,
                         yaml_node_t *it)
{
    char *arr = *(void **)field_at(obj, e->offset);
    apply_section(ctx, e->section, arr + i * e->section->size, it, &it->start_mark, true);
}

static void apply_section_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                               yaml_node_t *seq)
{
    size_t n;
    void *arr = list_alloc(ctx, e, obj, seq, e->section->size, &n);
    if (!arr)
        return;
    /* Items are zeroed now, so releasing all n is safe whatever happens next. */
    *(size_t *)field_at(obj, e->count_offset) = n;
    each_item(ctx, e, obj, seq, section_item);
    if (e->unique && !ctx->stop)
        check_unique(ctx, e, arr, n, seq);
}

static void apply_default(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj);

/* The value of entry e at key path already pushed. */
static void apply_value(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj, yaml_node_t *v,
                        bool from_file)
{
    void *field = field_at(obj, e->offset);
    if (is_null(v) && e->type != POH_CFG_SECTION) {
        if (e->flags & POH_CFG_REQUIRED)
            error_at(ctx, &v->start_mark, NULL, "a value is required");
        else
            apply_default(ctx, e, obj);
        return;
    }
    if (type_info[e->type].parse) {
        const char *s = scalar_of(ctx, v, type_info[e->type].what);
        if (!s)
            return;
        if (!from_file) {
            apply_scalar(ctx, e, field, s, &v->start_mark, "");
            return;
        }
        char *secret = NULL;
        if (read_secret_file(ctx, s, &v->start_mark, &secret) == 0) {
            apply_scalar(ctx, e, field, secret, &v->start_mark, "content of the file: ");
            free_secret(&secret);
        }
        return;
    }
    if (e->type == POH_CFG_SECTION) {
        apply_section(ctx, e->section, field, v, &v->start_mark, true);
        return;
    }
    yaml_node_type_t want = e->type == POH_CFG_STRING_MAP ? YAML_MAPPING_NODE : YAML_SEQUENCE_NODE;
    if (v->type != want) {
        error_at(ctx, &v->start_mark, NULL, "expected %s, got %s", type_info[e->type].what,
                 node_kind(v));
        return;
    }
    bool empty = want == YAML_MAPPING_NODE
                     ? v->data.mapping.pairs.top == v->data.mapping.pairs.start
                     : v->data.sequence.items.top == v->data.sequence.items.start;
    if (empty && (e->flags & (POH_CFG_NONEMPTY | POH_CFG_REQUIRED)))
        error_at(ctx, &v->start_mark, NULL, "must not be empty");
    else if (e->type == POH_CFG_STRING_MAP)
        apply_string_map(ctx, e, obj, v);
    else if (e->type == POH_CFG_STRING_LIST)
        apply_string_list(ctx, e, obj, v);
    else if (e->type == POH_CFG_DOUBLE_LIST)
        apply_double_list(ctx, e, obj, v);
    else
        apply_section_list(ctx, e, obj, v);
}

/* Parse "a, b, c" (a list default) into a list field. */
static int default_list(const poh_cfg_entry_t *e, void *obj, poh_strbuf_t *why)
{
    size_t *count = field_at(obj, e->count_offset);
    size_t n = 1;
    for (const char *p = e->def; *p; p++)
        n += *p == ',';
    bool strings = e->type == POH_CFG_STRING_LIST;
    void *arr = calloc(n, strings ? sizeof(char *) : sizeof(double));
    if (!arr)
        return -ENOMEM;
    *(void **)field_at(obj, e->offset) = arr;
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
        else if ((rc = sc_double(e, item, &((double *)arr)[i], why)) < 0)
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

/* Absent key: environment, then built-in default. */
static void apply_default(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj)
{
    void *field = field_at(obj, e->offset);
    const char *env = e->env ? getenv(e->env) : NULL;
    if (env && *env && type_info[e->type].parse) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "invalid value in environment variable %s: ", e->env);
        apply_scalar(ctx, e, field, env, NULL, prefix);
        return;
    }
    if (e->type == POH_CFG_SECTION) {
        apply_section(ctx, e->section, field, NULL, NULL, false);
        return;
    }
    if (!e->def)
        return;
    if (type_info[e->type].parse) {
        apply_scalar(ctx, e, field, e->def, NULL, "invalid built-in default: ");
        return;
    }
    if (e->type == POH_CFG_STRING_LIST || e->type == POH_CFG_DOUBLE_LIST) {
        poh_strbuf_t why = POH_STRBUF_INIT;
        int rc = default_list(e, obj, &why);
        note_rc(ctx, rc);
        if (rc == -EINVAL)
            error_at(ctx, NULL, NULL, "invalid built-in default: %s", why.data ? why.data : "");
        poh_strbuf_free(&why);
    }
}

/* Index of the entry for key, or -1; *as_file when it is "<secret>_file". */
static int find_entry(const poh_cfg_entry_t *entries, const char *key, size_t klen,
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
        near = suggest(key, cands, m);
    size_t old = path_push_key(ctx, key, k->data.scalar.length);
    if (!ok)
        note_rc(ctx, -ENOMEM);
    else if (strcmp(key, "<<") == 0)
        error_at(ctx, &k->start_mark, NULL,
                 "YAML merge keys are not supported (repeat the keys instead)");
    else if (near)
        error_at(ctx, &k->start_mark, NULL, "unknown key (did you mean \"%s\"?)", near);
    else
        error_at(ctx, &k->start_mark, NULL, "unknown key");
    path_pop(ctx, old);
    for (size_t i = 0; i < f; i++)
        free(files[i]);
    free(files);
    free(cands);
}

/* Fill obj from mapping `map` (NULL: the section is absent; a null node:
 * present but empty). Absent sections get defaults only: their required keys
 * are not demanded and validate() does not run. */
static void apply_section(poh_cfg_ctx_t *ctx, const poh_cfg_section_t *sec, void *obj,
                          yaml_node_t *map, const yaml_mark_t *mark, bool present)
{
    const poh_cfg_entry_t *entries = sec->entries;
    size_t n = 0, errors_before = ctx->nerrors;
    while (entries[n].name)
        n++;
    if (map && !is_null(map) && map->type != YAML_MAPPING_NODE) {
        error_at(ctx, &map->start_mark, NULL, "expected a mapping, got %s", node_kind(map));
        present = false;
        map = NULL;
    }
    if (map && is_null(map))
        map = NULL;
    yaml_node_t **seen = calloc(n ? n : 1, sizeof *seen);
    bool *seen_file = calloc(n ? n : 1, sizeof *seen_file);
    if (!seen || !seen_file) {
        note_rc(ctx, -ENOMEM);
        goto out;
    }
    for (yaml_node_pair_t *p = map ? map->data.mapping.pairs.start : NULL;
         p && p < map->data.mapping.pairs.top && !ctx->stop; p++) {
        yaml_node_t *k = node(ctx, p->key), *v = node(ctx, p->value);
        if (!k || !v || !visit(ctx, v))
            break;
        if (k->type != YAML_SCALAR_NODE) {
            error_at(ctx, &k->start_mark, NULL, "keys must be strings, got %s", node_kind(k));
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool as_file = false;
        int i = find_entry(entries, key, k->data.scalar.length, &as_file);
        if (i < 0) {
            unknown_key(ctx, entries, k);
            continue;
        }
        size_t old = path_push_key(ctx, key, k->data.scalar.length);
        if (seen[i] && seen_file[i] == as_file)
            error_at(ctx, &k->start_mark, NULL, "duplicate key (first defined at line %zu)",
                     seen[i]->start_mark.line + 1);
        else if (seen[i])
            error_at(ctx, &k->start_mark, NULL, "conflicts with \"%s\" at line %zu",
                     (const char *)seen[i]->data.scalar.value, seen[i]->start_mark.line + 1);
        else {
            seen[i] = k;
            seen_file[i] = as_file;
            apply_value(ctx, &entries[i], obj, v, as_file);
        }
        path_pop(ctx, old);
    }
    for (size_t i = 0; i < n && !ctx->stop; i++) {
        if (seen[i])
            continue;
        const poh_cfg_entry_t *e = &entries[i];
        size_t old = path_push_key(ctx, e->name, strlen(e->name));
        if ((e->flags & POH_CFG_REQUIRED) && present)
            error_at(ctx, mark, NULL, e->type == POH_CFG_SECRET
                                          ? "missing required key (or its _file form)"
                                          : "missing required key");
        else if (!(e->flags & POH_CFG_REQUIRED))
            apply_default(ctx, e, obj);
        path_pop(ctx, old);
    }
    if (sec->validate && present && !ctx->stop && ctx->nerrors == errors_before) {
        yaml_node_t *saved_map = ctx->vmap;
        yaml_mark_t saved_mark = ctx->vmark;
        ctx->vmap = map;
        ctx->vmark = *mark;
        note_rc(ctx, sec->validate(ctx, obj));
        ctx->vmap = saved_map;
        ctx->vmark = saved_mark;
    }
out:
    free(seen);
    free(seen_file);
}

/* ------------------------------------------------------------- release */

void poh_cfg_release(const poh_cfg_section_t *sec, void *obj)
{
    if (!obj)
        return;
    if (sec->release)
        sec->release(obj);
    for (const poh_cfg_entry_t *e = sec->entries; e->name; e++) {
        void *field = field_at(obj, e->offset);
        size_t *count = e->count_offset ? field_at(obj, e->count_offset) : NULL;
        switch (e->type) {
        case POH_CFG_STRING:
        case POH_CFG_ADDRESS:
        case POH_CFG_ENUM:
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        case POH_CFG_SECRET:
            free_secret(field);
            break;
        case POH_CFG_STRING_LIST:
            for (size_t i = 0; i < *count; i++)
                free((*(char ***)field)[i]);
            free(*(char ***)field);
            *(char ***)field = NULL;
            *count = 0;
            break;
        case POH_CFG_DOUBLE_LIST:
            free(*(double **)field);
            *(double **)field = NULL;
            *count = 0;
            break;
        case POH_CFG_STRING_MAP: {
            poh_config_kv_t *kv = *(poh_config_kv_t **)field;
            for (size_t i = 0; i < *count; i++) {
                free(kv[i].key);
                free_secret(&kv[i].value);
            }
            free(kv);
            *(poh_config_kv_t **)field = NULL;
            *count = 0;
            break;
        }
        case POH_CFG_SECTION:
            poh_cfg_release(e->section, field);
            break;
        case POH_CFG_SECTION_LIST: {
            char *arr = *(char **)field;
            for (size_t i = 0; i < *count; i++)
                poh_cfg_release(e->section, arr + i * e->section->size);
            free(arr);
            *(char **)field = NULL;
            *count = 0;
            break;
        }
        default:
            break;
        }
    }
}

/* --------------------------------------------------------------- parse */

static void offset_to_mark(const char *text, size_t len, size_t off, yaml_mark_t *m)
{
    m->line = m->column = 0;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            m->line++;
            m->column = 0;
        } else {
            m->column++;
        }
    }
}

static void syntax_error(poh_cfg_ctx_t *ctx, yaml_parser_t *p)
{
    yaml_mark_t mark = p->problem_mark;
    if (p->error == YAML_MEMORY_ERROR) {
        note_rc(ctx, -ENOMEM);
        return;
    }
    if (p->error == YAML_READER_ERROR)
        offset_to_mark(ctx->text, ctx->len, p->problem_offset, &mark);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        error_at(ctx, &mark, NULL, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                 p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    else
        error_at(ctx, &mark, NULL, "YAML syntax error: %s", problem);
}

int poh_cfg_parse(const poh_cfg_section_t *root, void *obj, const char *name, const char *yaml,
                  size_t len, const char *base_dir, poh_strbuf_t *errors)
{
    poh_cfg_ctx_t ctx = {.name = name, .base_dir = base_dir, .text = yaml, .len = len,
                         .errors = errors, .path = POH_STRBUF_INIT};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    if (len > MAX_INPUT_BYTES) {
        poh_strbuf_printf(errors, "%s: file too large (%zu bytes, at most %u)\n", name, len,
                          MAX_INPUT_BYTES);
        ctx.nerrors++;
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&ctx, &parser);
        goto out;
    }
    have_doc = true;
    ctx.doc = &doc;
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    yaml_mark_t start = {0, 0, 0};
    apply_section(&ctx, root, obj, top, top ? &top->start_mark : &start, true);
    if (ctx.stop)
        goto out;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(&ctx, &parser);
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second)
        error_at(&ctx, &second->start_mark, NULL,
                 "more than one YAML document (remove the \"---\" separator)");
    yaml_document_delete(&extra);
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    bool oom = ctx.oom || errors->failed || ctx.path.failed;
    poh_strbuf_free(&ctx.path);
    if (oom)
        return -ENOMEM;
    return ctx.nerrors ? -EINVAL : 0;
}

/* --------------------------------------------------------- self-check */

struct scratch_list {
    void *items;
    size_t count;
};

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
        if (!*e->name || find_entry(sec->entries, e->name, strlen(e->name), &file_form) !=
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
        if (e->def && type_info[e->type].parse) {
            union {
                char *s;
                double d;
                unsigned u;
                size_t z;
                bool b;
            } scratch = {0};
            poh_strbuf_t reason = POH_STRBUF_INIT;
            if (type_info[e->type].parse(e, e->def, &scratch, &reason) < 0)
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
            if (default_list(&tmp, &list, &reason) < 0)
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

/* --------------------------------------------------- shared value checks */

int poh_cfg_check_http_path(const char *value, poh_strbuf_t *why)
{
    if (value[0] != '/') {
        poh_strbuf_puts(why, "must start with \"/\"");
        return -EINVAL;
    }
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == '?' || *p == '#' || *p == 0x7f) {
            poh_strbuf_puts(why, "must be a plain URL path (no spaces, \"?\" or \"#\")");
            return -EINVAL;
        }
    }
    return 0;
}
