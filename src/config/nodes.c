/* SPDX-License-Identifier: Apache-2.0 */
/* YAML node helpers of the configuration engine and the visit budget that
 * bounds alias expansion. */
#include "config/cfg_internal.h"

#include <errno.h>
#include <string.h>

const char *poh_cfg_node_kind(const yaml_node_t *n)
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

bool poh_cfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

yaml_node_t *poh_cfg_node(poh_cfg_ctx_t *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

/* Count a visited node; false once the budget is spent (alias bombs). */
bool poh_cfg_visit(poh_cfg_ctx_t *ctx, const yaml_node_t *n)
{
    if (ctx->stop)
        return false;
    if (++ctx->visits > POH_CFG_MAX_VISITS) {
        poh_cfg_error_at(ctx, &n->start_mark, NULL, "document too complex (more than %u nodes after "
                 "resolving aliases)", POH_CFG_MAX_VISITS);
        ctx->stop = true;
        return false;
    }
    return true;
}

/* A non-null scalar without NUL bytes, else an error naming what was expected. */
const char *poh_cfg_scalar_of(poh_cfg_ctx_t *ctx, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        poh_cfg_error_at(ctx, &n->start_mark, NULL, "expected %s, got %s", what, poh_cfg_node_kind(n));
        return NULL;
    }
    if (poh_cfg_is_null(n)) {
        poh_cfg_error_at(ctx, &n->start_mark, NULL, "expected %s, got null", what);
        return NULL;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
        poh_cfg_error_at(ctx, &n->start_mark, NULL, "value contains a NUL byte");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

void poh_cfg_note_rc(poh_cfg_ctx_t *ctx, int rc)
{
    if (rc == -ENOMEM) {
        ctx->oom = true;
        ctx->stop = true;
    }
}
