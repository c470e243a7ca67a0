/* SPDX-License-Identifier: Apache-2.0 */
/* Basic authentication with bcrypt hashes (see web_auth.h). */
#include "http/web_auth.h"

#include <crypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 256
#define KEY_BYTES 32

typedef struct entry {
    uint8_t key[KEY_BYTES];
    bool used, ok;
} entry_t;

struct poh_web_auth {
    poh_config_kv_t *users;
    size_t n;
    const char *dummy;         /* the costliest user's hash: what an unknown user is checked against */
    pthread_mutex_t cache_mu;
    entry_t cache[CACHE_SLOTS];
    unsigned next;             /* the slot replaced next when the cache is full */
    pthread_mutex_t bcrypt_mu; /* one bcrypt at a time */
    struct crypt_data *cd;     /* under bcrypt_mu */
};

bool poh_web_auth_hash_ok(const char *hash)
{
    if (strlen(hash) != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' ||
        (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[4] < '0' || hash[4] > '3' ||
        hash[5] < '0' || hash[5] > '9' || hash[6] != '$')
        return false;
    int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    return cost >= 4 && cost <= 31 && crypt_checksalt(hash) == CRYPT_SALT_OK;
}

static int cost_of(const char *hash)
{
    return (hash[4] - '0') * 10 + (hash[5] - '0');
}

poh_web_auth_t *poh_web_auth_new(const poh_config_kv_t *users, size_t users_count, bool *oom)
{
    *oom = false;
    if (users_count == 0)
        return NULL;
    poh_web_auth_t *a = calloc(1, sizeof *a);
    if (!a) {
        *oom = true;
        return NULL;
    }
    pthread_mutex_init(&a->cache_mu, NULL);
    pthread_mutex_init(&a->bcrypt_mu, NULL);
    if (!(a->users = calloc(users_count, sizeof *a->users)) || !(a->cd = calloc(1, sizeof *a->cd)))
        goto oom;
    for (size_t i = 0; i < users_count; i++) {
        a->users[i].key = strdup(users[i].key);
        a->users[i].value = strdup(users[i].value);
        a->n++;
        if (!a->users[i].key || !a->users[i].value)
            goto oom;
        if (!a->dummy || cost_of(users[i].value) > cost_of(a->dummy))
            a->dummy = a->users[i].value;
    }
    return a;
oom:
    *oom = true;
    poh_web_auth_free(a);
    return NULL;
}

void poh_web_auth_free(poh_web_auth_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->users[i].key);
        free(a->users[i].value);
    }
    free(a->users);
    if (a->cd)
        explicit_bzero(a->cd, sizeof *a->cd);
    free(a->cd);
    explicit_bzero(a->cache, sizeof a->cache);
    pthread_mutex_destroy(&a->cache_mu);
    pthread_mutex_destroy(&a->bcrypt_mu);
    free(a);
}

static bool same_string(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* SHA-256 of user, hash and password, each length-prefixed. */
static int cache_key(const char *user, const char *hash, const char *password,
                     uint8_t key[KEY_BYTES])
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return -1;
    const char *parts[] = {user, hash, password};
    for (size_t i = 0; i < 3; i++) {
        uint32_t len = (uint32_t)strlen(parts[i]);
        gnutls_hash(h, &len, sizeof len);
        gnutls_hash(h, parts[i], len);
    }
    gnutls_hash_deinit(h, key);
    return 0;
}

bool poh_web_auth_check(poh_web_auth_t *a, const char *user, const char *password)
{
    const char *hash = NULL;
    for (size_t i = 0; i < a->n && !hash; i++)
        if (strcmp(a->users[i].key, user) == 0)
            hash = a->users[i].value;
    bool known = hash != NULL;
    if (!known)
        hash = a->dummy; /* the same cost as a known user's, then refused */
    uint8_t key[KEY_BYTES];
    bool have_key = cache_key(user, hash, password, key) == 0;
    if (have_key) {
        pthread_mutex_lock(&a->cache_mu);
        for (size_t i = 0; i < CACHE_SLOTS; i++)
            if (a->cache[i].used && memcmp(a->cache[i].key, key, KEY_BYTES) == 0) {
                bool ok = a->cache[i].ok;
                pthread_mutex_unlock(&a->cache_mu);
                return ok;
            }
        pthread_mutex_unlock(&a->cache_mu);
    }
    pthread_mutex_lock(&a->bcrypt_mu);
    const char *out = crypt_r(password, hash, a->cd);
    bool match = out && out[0] != '*' && same_string(out, hash);
    explicit_bzero(a->cd, sizeof *a->cd);
    pthread_mutex_unlock(&a->bcrypt_mu);
    bool ok = known && match;
    if (have_key) {
        pthread_mutex_lock(&a->cache_mu);
        entry_t *e = &a->cache[a->next];
        a->next = (a->next + 1) % CACHE_SLOTS;
        memcpy(e->key, key, KEY_BYTES);
        e->used = true;
        e->ok = ok;
        pthread_mutex_unlock(&a->cache_mu);
    }
    return ok;
}
