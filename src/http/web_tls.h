/* SPDX-License-Identifier: Apache-2.0 */
/* The listener's TLS, built from a web configuration (web_config.h) with
 * GnuTLS, the library libmicrohttpd itself uses. One poh_web_tls_t is one
 * generation of certificate, key, client CAs, versions, ciphers and client
 * certificate policy; every new connection is handed the current one (its
 * session's credentials and priorities are replaced before the handshake),
 * so a reload changes them for new connections without closing the
 * listener, and a connection keeps the generation it started with. */
#ifndef POH_WEB_TLS_H
#define POH_WEB_TLS_H

#include <stdbool.h>

#include "core/strbuf.h"
#include "http/web_config.h"

typedef struct poh_web_tls poh_web_tls_t;

/* Read the PEM files c names and build a generation. 0, or a negative errno
 * with the reason in err (file names, never key material). */
int poh_web_tls_build(const poh_web_config_t *c, poh_web_tls_t **out, poh_strbuf_t *err);
poh_web_tls_t *poh_web_tls_ref(poh_web_tls_t *t);
void poh_web_tls_unref(poh_web_tls_t *t); /* NULL is fine */

/* Give a new connection's GnuTLS session (gnutls_session_t) this
 * generation; the caller holds a reference for the connection's life. */
int poh_web_tls_session_setup(poh_web_tls_t *t, void *session);

/* The GnuTLS priority string for the TLS settings (versions, cipher
 * suites, curves, server preference). 0 or -EINVAL with the reason in err. */
int poh_web_tls_priorities(const poh_web_tls_config_t *t, poh_strbuf_t *out, poh_strbuf_t *err);

/* Names the file format accepts (Go's crypto/tls names). */
bool poh_web_tls_cipher_known(const char *name);
bool poh_web_tls_curve_known(const char *name);

/* The certificate callback (a gnutls_certificate_retrieve_function2) to
 * start libmicrohttpd's TLS daemon with: it never hands out a certificate,
 * since every session gets a generation's credentials instead. */
void *poh_web_tls_daemon_cert_callback(void);

/* The server certificate's notAfter (Unix seconds), for the expiry gauge. */
double poh_web_tls_not_after(const poh_web_tls_t *t);

#endif
