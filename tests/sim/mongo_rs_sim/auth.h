/* SPDX-License-Identifier: Apache-2.0 */
/* SCRAM-SHA-256 (RFC 5802, RFC 7677) for one user in the admin database, as
 * mongod runs it through saslStart/saslContinue. Passwords are taken as
 * bytes: no SASLprep, so use printable ASCII passwords. */
#ifndef MONGO_SIM_AUTH_H
#define MONGO_SIM_AUTH_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define SIM_AUTH_ITERATIONS 15000 /* mongod's default scramSHA256IterationCount */

typedef struct sim_auth {
    bool on;
    char user[128];
    uint8_t salt[28]; /* mongod's SCRAM-SHA-256 salt length; libmongoc refuses others */
    uint8_t stored_key[32];
    uint8_t server_key[32];
} sim_auth_t;

/* One connection's conversation: step 0 none, 1 after saslStart, 2 proof
 * accepted but the client still owes the empty exchange. */
typedef struct sim_auth_conv {
    int step;
    bool skip_empty;
    bool authenticated;
    char first_bare[600];
    char server_first[800];
    char nonce[400];
} sim_auth_conv_t;

/* Derive the keys for user/password (password bytes, not logged). 0 or -1. */
int sim_auth_init(sim_auth_t *a, const char *user, const char *password, size_t password_len);

/* Append saslSupportedMechs to a hello reply when body asks for our user. */
void sim_auth_hello(const sim_auth_t *a, const bson_t *body, bson_t *reply);

/* saslStart / saslContinue on db. 0 with reply filled, or -1 with e set. */
int sim_auth_start(const sim_auth_t *a, sim_auth_conv_t *c, const char *db, const bson_t *body, bson_t *reply,
                   sim_err_t *e);
int sim_auth_continue(const sim_auth_t *a, sim_auth_conv_t *c, const bson_t *body, bson_t *reply, sim_err_t *e);

#endif
