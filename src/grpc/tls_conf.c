/* SPDX-License-Identifier: Apache-2.0 */
/* The TLS configuration shared by the probe groups and the tracer: its one
 * schema table and the rules between its keys (grpc/tls_conf.h). */
#include "grpc/tls_conf.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static bool nonempty(const char *s)
{
    return s && *s;
}

const char *poh_grpc_tls_problem(const poh_grpc_tls_t *t, const char **key)
{
    if (nonempty(t->cert_file) != nonempty(t->key_file)) {
        if (key)
            *key = nonempty(t->cert_file) ? "cert_file" : "key_file";
        return POH_GRPC_TLS_UNPAIRED_WHY;
    }
    return NULL;
}

bool poh_grpc_tls_has_settings(const poh_grpc_tls_t *t)
{
    return nonempty(t->ca_file) || nonempty(t->cert_file) || nonempty(t->key_file) ||
           nonempty(t->server_name) || t->insecure_skip_verify;
}

static int validate_tls(poh_cfg_ctx_t *ctx, void *obj)
{
    poh_grpc_tls_t *t = obj;
    const char *key = NULL;
    const char *why = poh_grpc_tls_problem(t, &key);
    if (why) {
        poh_cfg_error(ctx, key, "%s", why);
        return -EINVAL;
    }
    if (poh_grpc_tls_has_settings(t))
        t->enabled = true;
    return 0;
}

/* `enabled` first: the tracing section is this table without it. */
#define TLS(f) offsetof(poh_grpc_tls_t, f)
static const poh_cfg_entry_t tls_entries[] = {
    {.name = "enabled", .type = POH_CFG_BOOL, .offset = TLS(enabled), .def = "false"},
    {.name = "ca_file", .type = POH_CFG_STRING, .offset = TLS(ca_file), .flags = POH_CFG_NONEMPTY},
    {.name = "cert_file", .type = POH_CFG_STRING, .offset = TLS(cert_file),
     .flags = POH_CFG_NONEMPTY},
    {.name = "key_file", .type = POH_CFG_STRING, .offset = TLS(key_file),
     .flags = POH_CFG_NONEMPTY},
    {.name = "server_name", .type = POH_CFG_STRING, .offset = TLS(server_name),
     .flags = POH_CFG_NONEMPTY},
    {.name = "insecure_skip_verify", .type = POH_CFG_BOOL, .offset = TLS(insecure_skip_verify),
     .def = "false"},
    {NULL},
};
#undef TLS

const poh_cfg_section_t poh_grpc_tls_section = {sizeof(poh_grpc_tls_t), tls_entries,
                                                validate_tls, NULL};
const poh_cfg_section_t poh_grpc_tls_implied_section = {sizeof(poh_grpc_tls_t), tls_entries + 1,
                                                        validate_tls, NULL};

static char *dup_into(char **dst, const char *s, bool *failed)
{
    *dst = NULL;
    if (nonempty(s) && !(*dst = strdup(s)))
        *failed = true;
    return *dst;
}

int poh_grpc_tls_copy(poh_grpc_tls_t *dst, const poh_grpc_tls_t *src)
{
    bool failed = false;
    *dst = *src;
    dup_into(&dst->ca_file, src->ca_file, &failed);
    dup_into(&dst->cert_file, src->cert_file, &failed);
    dup_into(&dst->key_file, src->key_file, &failed);
    dup_into(&dst->server_name, src->server_name, &failed);
    if (failed) {
        poh_grpc_tls_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

void poh_grpc_tls_clear(poh_grpc_tls_t *t)
{
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
    free(t->server_name);
    memset(t, 0, sizeof *t);
}
