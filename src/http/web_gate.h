/* SPDX-License-Identifier: Apache-2.0 */
/* The front door: the web configuration in force (web_config.h) and what
 * every connection and request goes through because of it: TLS settings,
 * the request rate limit, basic auth, extra headers. The file and the PEM
 * files it names are watched (polled once a second by the HTTP layer) and
 * re-read when they change, on SIGHUP and on /-/reload; a file that does
 * not load leaves the previous generation in force. A generation is
 * reference-counted: a connection keeps the one it started with. */
#ifndef POH_WEB_GATE_H
#define POH_WEB_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include "appconfig/app_config.h"
#include "core/strbuf.h"
#include "http/web_tls.h"
#include "collectors/self.h"

typedef struct poh_web_gate poh_web_gate_t;
typedef struct poh_web_gen poh_web_gen_t;

/* path NULL: no web config (plain HTTP, no auth). Loads and basic auth
 * failures are reported to self (may be NULL), which makes their series.
 * 0, or -EINVAL with the reasons in err. */
int poh_web_gate_new(const char *path, poh_self_t *self, poh_web_gate_t **out,
                     poh_strbuf_t *err);
void poh_web_gate_free(poh_web_gate_t *g); /* NULL is fine */

/* Validate a web config file fully (PEM files loaded), as at start. */
int poh_web_gate_check_file(const char *path, poh_strbuf_t *err);

/* TLS is decided at start: turning it on or off takes a restart. */
bool poh_web_gate_tls(const poh_web_gate_t *g);

/* Re-read when the file or a file it names changed since the last attempt
 * (cheap when nothing did: a few stat calls). */
void poh_web_gate_poll(poh_web_gate_t *g);
/* Re-read now. 0, or -EINVAL (logged; the previous generation stays). */
int poh_web_gate_reload(poh_web_gate_t *g);

poh_web_gen_t *poh_web_gate_acquire(poh_web_gate_t *g);
void poh_web_gen_release(poh_web_gen_t *gen); /* NULL is fine */
poh_web_tls_t *poh_web_gen_tls(const poh_web_gen_t *gen); /* borrowed */
bool poh_web_gen_needs_auth(const poh_web_gen_t *gen);
/* Headers the file adds to every answer. */
const poh_config_kv_t *poh_web_gen_headers(const poh_web_gen_t *gen, size_t *n);

typedef enum {
    POH_ADMIT_OK,
    POH_ADMIT_RATE_LIMITED, /* 429 */
    POH_ADMIT_UNAUTHORIZED, /* 401 */
} poh_admit_t;

/* May this request be served? user/password: from the Authorization
 * header, NULL when absent. client: the peer address, for the log. */
poh_admit_t poh_web_gen_admit(poh_web_gate_t *g, poh_web_gen_t *gen, const char *user,
                              const char *password, const char *client);

#endif
