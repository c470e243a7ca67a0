/* SPDX-License-Identifier: Apache-2.0 */
#include "grpc/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *poh_grpc_read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(POH_GRPC_MAX_PEM_BYTES + 1);
    size_t n = buf ? fread(buf, 1, POH_GRPC_MAX_PEM_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f) || n == 0 || n > POH_GRPC_MAX_PEM_BYTES;
    fclose(f);
    if (bad) {
        free(buf);
        errno = buf ? EINVAL : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

void poh_grpc_pems_free(poh_grpc_pems_t *p)
{
    free(p->ca);
    free(p->cert);
    if (p->key) {
        explicit_bzero(p->key, strlen(p->key));
        free(p->key);
    }
    p->ca = p->cert = p->key = NULL;
}

static grpc_channel_credentials *skip_verify_creds(const poh_grpc_pems_t *p)
{
    grpc_tls_credentials_options *opts = grpc_tls_credentials_options_create();
    grpc_tls_identity_pairs *pairs = NULL;
    if (p->cert) {
        pairs = grpc_tls_identity_pairs_create();
        grpc_tls_identity_pairs_add_pair(pairs, p->key, p->cert);
    }
    /* gRPC asserts that a provider has something to provide. */
    grpc_tls_certificate_provider *provider = NULL;
    if (p->ca || pairs) {
        provider = grpc_tls_certificate_provider_static_data_create(p->ca, pairs);
        grpc_tls_credentials_options_set_certificate_provider(opts, provider);
    }
    if (p->ca)
        grpc_tls_credentials_options_watch_root_certs(opts);
    if (pairs)
        grpc_tls_credentials_options_watch_identity_key_cert_pairs(opts);
    grpc_tls_credentials_options_set_verify_server_cert(opts, 0);
    grpc_tls_certificate_verifier *verifier = grpc_tls_certificate_verifier_no_op_create();
    grpc_tls_credentials_options_set_certificate_verifier(opts, verifier);
    grpc_tls_credentials_options_set_check_call_host(opts, 0);
    grpc_channel_credentials *creds = grpc_tls_credentials_create(opts); /* owns opts */
    grpc_tls_certificate_verifier_release(verifier);
    if (provider)
        grpc_tls_certificate_provider_release(provider);
    return creds;
}

static bool read_one(const char *key, const char *path, char **out, poh_grpc_tls_failure_t *why)
{
    if (!path || !*path || (*out = poh_grpc_read_pem(path)))
        return true;
    *why = (poh_grpc_tls_failure_t){POH_GRPC_TLS_UNREADABLE, key, path, errno};
    return false;
}

grpc_channel_credentials *poh_grpc_tls_creds(const poh_grpc_tls_t *tls,
                                             poh_grpc_tls_failure_t *why)
{
    poh_grpc_pems_t pems = {NULL, NULL, NULL};
    grpc_channel_credentials *creds = NULL;
    if (!read_one("ca_file", tls->ca_file, &pems.ca, why) ||
        !read_one("cert_file", tls->cert_file, &pems.cert, why) ||
        !read_one("key_file", tls->key_file, &pems.key, why))
        goto out;
    if (poh_grpc_tls_problem(tls, NULL)) {
        *why = (poh_grpc_tls_failure_t){.kind = POH_GRPC_TLS_UNPAIRED};
        goto out;
    }
    creds = poh_grpc_tls_credentials(&pems, tls->insecure_skip_verify);
    if (!creds)
        *why = (poh_grpc_tls_failure_t){.kind = POH_GRPC_TLS_REJECTED};
out:
    poh_grpc_pems_free(&pems);
    return creds;
}

grpc_channel_credentials *poh_grpc_tls_credentials(const poh_grpc_pems_t *p, bool skip_verify)
{
    if (skip_verify)
        return skip_verify_creds(p);
    grpc_ssl_pem_key_cert_pair pair = {p->key, p->cert};
    return grpc_ssl_credentials_create_ex(p->ca, p->cert ? &pair : NULL, NULL, NULL);
}
