/* SPDX-License-Identifier: Apache-2.0 */
/* Error messages of the configuration engine: "<file>:<line>:<col>: <key.path>:
 * <message>", the key path, and "did you mean" suggestions. */
#include "config/cfg_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* Append s quoted, non-printable bytes as \xNN, cut at POH_CFG_MAX_SHOWN bytes. */
void poh_cfg_put_quoted(poh_strbuf_t *sb, const char *s, size_t n)
{
    poh_strbuf_putc(sb, '"');
    for (size_t i = 0; i < n && i < POH_CFG_MAX_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            poh_strbuf_printf(sb, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            poh_strbuf_printf(sb, "\\x%02x", c);
        else
            poh_strbuf_putc(sb, (char)c);
    }
    if (n > POH_CFG_MAX_SHOWN)
        poh_strbuf_puts(sb, "...");
    poh_strbuf_putc(sb, '"');
}

/* Path component: printable keys as they are, anything odd quoted. */
static void put_key(poh_strbuf_t *sb, const char *s, size_t n)
{
    bool plain = n > 0 && n <= POH_CFG_MAX_SHOWN;
    for (size_t i = 0; plain && i < n; i++)
        plain = isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-';
    if (plain)
        poh_strbuf_append(sb, s, n);
    else
        poh_cfg_put_quoted(sb, s, n);
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

void poh_cfg_error_at(poh_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key,
                      const char *fmt, ...)
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

size_t poh_cfg_path_push_key(poh_cfg_ctx_t *ctx, const char *key, size_t n)
{
    size_t old = ctx->path.len;
    if (old)
        poh_strbuf_putc(&ctx->path, '.');
    put_key(&ctx->path, key, n);
    return old;
}

size_t poh_cfg_path_push_index(poh_cfg_ctx_t *ctx, size_t i)
{
    size_t old = ctx->path.len;
    poh_strbuf_printf(&ctx->path, "[%zu]", i);
    return old;
}

void poh_cfg_path_pop(poh_cfg_ctx_t *ctx, size_t old)
{
    if (ctx->path.len > old) {
        ctx->path.len = old;
        ctx->path.data[old] = '\0';
    }
}

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
const char *poh_cfg_suggest(const char *word, const char *const *cands, size_t n)
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
