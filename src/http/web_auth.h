/* SPDX-License-Identifier: Apache-2.0 */
/* Basic authentication against bcrypt hashes (web-config basic_auth_users),
 * checked with libcrypt's crypt_r. As exporter-toolkit: a result is cached
 * (keyed by a SHA-256 of user, hash and password, never the password
 * itself) so a scraper pays bcrypt once; an unknown user costs one bcrypt
 * like a known one; bcrypt runs one at a time, so guessing cannot take
 * every core. */
#ifndef POH_WEB_AUTH_H
#define POH_WEB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "appconfig/app_config.h"

typedef struct poh_web_auth poh_web_auth_t;

/* NULL with users_count 0 (no authentication), or on allocation failure
 * (*oom set). Hashes must have passed poh_web_auth_hash_ok. */
poh_web_auth_t *poh_web_auth_new(const poh_config_kv_t *users, size_t users_count, bool *oom);
void poh_web_auth_free(poh_web_auth_t *a);

/* Is (user, password) one of the users? */
bool poh_web_auth_check(poh_web_auth_t *a, const char *user, const char *password);

/* Is hash a bcrypt hash libcrypt can check ($2a$, $2b$ or $2y$, cost 4-31)? */
bool poh_web_auth_hash_ok(const char *hash);

#endif
