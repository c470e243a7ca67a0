/* SPDX-License-Identifier: Apache-2.0 */
/* SCRAM-SHA-256 server side for the simulator (see auth.h), with libcrypto.
 * Error replies follow mongod: 18 AuthenticationFailed "Authentication
 * failed." for a wrong user, password or proof, 334 MechanismUnavailable for
 * another mechanism, 17 ProtocolError for a malformed conversation. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "sim.h"

static int hmac256(const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n) ? 0 : -1;
}

static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decode standard base64 (with padding); -1 when malformed or too long. */
static int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    return len;
}

int sim_auth_init(sim_auth_t *a, const char *user, const char *password, size_t password_len)
{
    uint8_t salted[32], client_key[32];
    memset(a, 0, sizeof *a);
    if (strlen(user) >= sizeof a->user || RAND_bytes(a->salt, sizeof a->salt) != 1)
        return -1;
    snprintf(a->user, sizeof a->user, "%s", user);
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, a->salt, sizeof a->salt, SIM_AUTH_ITERATIONS, EVP_sha256(),
                          sizeof salted, salted) != 1 ||
        hmac256(salted, sizeof salted, "Client Key", 10, client_key) < 0 ||
        hmac256(salted, sizeof salted, "Server Key", 10, a->server_key) < 0)
        return -1;
    SHA256(client_key, sizeof client_key, a->stored_key);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    a->on = true;
    return 0;
}

void sim_auth_hello(const sim_auth_t *a, const bson_t *body, bson_t *reply)
{
    bson_iter_t it;
    char want[160];
    if (!a->on || !bson_iter_init_find(&it, body, "saslSupportedMechs") || !BSON_ITER_HOLDS_UTF8(&it))
        return;
    snprintf(want, sizeof want, "admin.%s", a->user);
    if (strcmp(bson_iter_utf8(&it, NULL), want) != 0)
        return; /* mongod leaves the field out for an unknown user */
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(reply, "saslSupportedMechs", &arr);
    BSON_APPEND_UTF8(&arr, "0", "SCRAM-SHA-256");
    bson_append_array_end(reply, &arr);
}

static int failed(sim_auth_conv_t *c, sim_err_t *e)
{
    c->step = 0;
    return sim_err_set(e, 18, "Authentication failed.");
}

/* The payload as a NUL-terminated string; -1 when absent or not binary. */
static int get_payload(const bson_t *body, char *out, size_t cap)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_subtype_t st;
    if (!bson_iter_init_find(&it, body, "payload") || !BSON_ITER_HOLDS_BINARY(&it))
        return -1;
    bson_iter_binary(&it, &st, &len, &data);
    if (len >= cap || memchr(data, 0, len))
        return -1;
    memcpy(out, data, len);
    out[len] = 0;
    return (int)len;
}

static void sasl_reply(bson_t *reply, bool done, const char *payload)
{
    BSON_APPEND_INT32(reply, "conversationId", 1);
    BSON_APPEND_BOOL(reply, "done", done);
    BSON_APPEND_BINARY(reply, "payload", BSON_SUBTYPE_BINARY, (const uint8_t *)payload, (uint32_t)strlen(payload));
}

/* saslname of RFC 5802 (',' as =2C, '=' as =3D) back to the name. */
static int unescape_name(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '=') {
            if (i + 2 >= n)
                return -1;
            if (!strncmp(in + i, "=2C", 3))
                ch = ',';
            else if (!strncmp(in + i, "=3D", 3))
                ch = '=';
            else
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = 0;
    return 0;
}

int sim_auth_start(const sim_auth_t *a, sim_auth_conv_t *c, const char *db, const bson_t *body, bson_t *reply,
                   sim_err_t *e)
{
    bson_iter_t it;
    char msg[600], user[160];
    const char *mech = NULL;
    if (bson_iter_init_find(&it, body, "mechanism") && BSON_ITER_HOLDS_UTF8(&it))
        mech = bson_iter_utf8(&it, NULL);
    if (!mech || strcmp(mech, "SCRAM-SHA-256") != 0)
        return sim_err_set(e, 334, "Received authentication for mechanism %.40s which is not enabled",
                           mech ? mech : "(none)");
    c->authenticated = false;
    c->skip_empty = bson_iter_init_find(&it, body, "options") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
                    bson_iter_recurse(&it, &it) && bson_iter_find(&it, "skipEmptyExchange") &&
                    bson_iter_as_bool(&it);
    if (get_payload(body, msg, sizeof msg) < 0 || (strncmp(msg, "n,,", 3) && strncmp(msg, "y,,", 3)))
        return sim_err_set(e, 17, "SCRAM: malformed client-first message");
    const char *bare = msg + 3;
    const char *r = strstr(bare, ",r=");
    if (strncmp(bare, "n=", 2) || !r || unescape_name(bare + 2, (size_t)(r - bare - 2), user, sizeof user) < 0)
        return sim_err_set(e, 17, "SCRAM: malformed client-first message");
    const char *cnonce = r + 3;
    size_t cn = strcspn(cnonce, ",");
    if (cn == 0 || cn > 200)
        return sim_err_set(e, 17, "SCRAM: malformed client nonce");
    if (strcmp(db, "admin") != 0 || strcmp(user, a->user) != 0) {
        POH_INFO(SIM_LOG, "authentication failed: no user %.60s in %.40s", user, db);
        return failed(c, e);
    }
    uint8_t rnd[24];
    char snonce[40], salt[48];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return sim_err_set(e, 1, "RAND_bytes failed");
    b64_encode(rnd, sizeof rnd, snonce);
    b64_encode(a->salt, sizeof a->salt, salt);
    snprintf(c->first_bare, sizeof c->first_bare, "%s", bare);
    snprintf(c->nonce, sizeof c->nonce, "%.*s%s", (int)cn, cnonce, snonce);
    snprintf(c->server_first, sizeof c->server_first, "r=%s,s=%s,i=%d", c->nonce, salt, SIM_AUTH_ITERATIONS);
    c->step = 1;
    sasl_reply(reply, false, c->server_first);
    return 0;
}

/* Check the client-final message's proof; 0 and the server signature when right. */
static int check_proof(const sim_auth_t *a, const sim_auth_conv_t *c, const char *final, char *verifier)
{
    char prefix[512], auth_msg[2200];
    const char *p = strstr(final, ",p=");
    int pn = snprintf(prefix, sizeof prefix, "c=biws,r=%s", c->nonce);
    if (!p || pn < 0 || (size_t)pn >= sizeof prefix || strncmp(final, prefix, (size_t)pn) != 0 ||
        (final[pn] != ',' || final + pn != p))
        return -1;
    uint8_t proof[64], sig[32], client_key[32], stored[32], ssig[32];
    if (b64_decode(p + 3, strlen(p + 3), proof, sizeof proof) != 32)
        return -1;
    int n = snprintf(auth_msg, sizeof auth_msg, "%s,%s,%.*s", c->first_bare, c->server_first, (int)(p - final), final);
    if (n < 0 || (size_t)n >= sizeof auth_msg || hmac256(a->stored_key, 32, auth_msg, (size_t)n, sig) < 0)
        return -1;
    for (int i = 0; i < 32; i++)
        client_key[i] = proof[i] ^ sig[i];
    SHA256(client_key, sizeof client_key, stored);
    if (CRYPTO_memcmp(stored, a->stored_key, 32) != 0 || hmac256(a->server_key, 32, auth_msg, (size_t)n, ssig) < 0)
        return -1;
    memcpy(verifier, "v=", 2);
    b64_encode(ssig, sizeof ssig, verifier + 2);
    return 0;
}

int sim_auth_continue(const sim_auth_t *a, sim_auth_conv_t *c, const bson_t *body, bson_t *reply, sim_err_t *e)
{
    bson_iter_t it;
    char msg[700], verifier[64];
    if (!bson_iter_init_find(&it, body, "conversationId") || bson_iter_as_int64(&it) != 1 || c->step == 0)
        return sim_err_set(e, 17, "No SASL session state found");
    int n = get_payload(body, msg, sizeof msg);
    if (c->step == 2) { /* the empty exchange after the server's signature */
        if (n != 0)
            return failed(c, e);
        c->step = 0;
        c->authenticated = true;
        POH_INFO(SIM_LOG, "authenticated %.60s with SCRAM-SHA-256", a->user);
        sasl_reply(reply, true, "");
        return 0;
    }
    if (n <= 0 || check_proof(a, c, msg, verifier) < 0) {
        POH_INFO(SIM_LOG, "authentication failed for %.60s: wrong proof", a->user);
        return failed(c, e);
    }
    c->step = c->skip_empty ? 0 : 2;
    c->authenticated = c->skip_empty;
    if (c->authenticated)
        POH_INFO(SIM_LOG, "authenticated %.60s with SCRAM-SHA-256", a->user);
    sasl_reply(reply, c->skip_empty, verifier);
    return 0;
}
