/* SPDX-License-Identifier: Apache-2.0 */
/* MongoDB wire protocol framing: parse OP_QUERY and OP_MSG requests, frame
 * OP_REPLY and OP_MSG replies. Pure functions over byte buffers. */
#ifndef MONGO_SIM_WIRE_H
#define MONGO_SIM_WIRE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_OP_REPLY 1
#define SIM_OP_QUERY 2004
#define SIM_OP_COMPRESSED 2012
#define SIM_OP_MSG 2013

#define SIM_MSG_HEADER 16
#define SIM_MAX_MESSAGE 48000000
#define SIM_MAX_SEQS 8
#define SIM_REPLY_HDR_MAX 36

#define SIM_MSG_CHECKSUM 0x1u
#define SIM_MSG_MORE_TO_COME 0x2u
#define SIM_MSG_EXHAUST 0x10000u

/* A kind-1 document sequence; docs lie back to back in data[0..len). */
typedef struct sim_seq {
    const char *ident;
    const uint8_t *data;
    uint32_t len;
    uint32_t ndocs;
} sim_seq_t;

typedef struct sim_request {
    int32_t request_id;
    int32_t opcode;
    bool more_to_come;
    bson_t body;              /* static view into the message */
    const char *db;           /* OP_QUERY: from the namespace; OP_MSG: NULL (read $db) */
    char dbbuf[128];
    int nseq;
    sim_seq_t seq[SIM_MAX_SEQS];
} sim_request_t;

static inline int32_t sim_le32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Parse a complete message of len bytes (header included). Returns 0, or -1
 * with *why set to a static description of the problem. */
int sim_wire_parse(const uint8_t *msg, size_t len, sim_request_t *req, const char **why);

/* Iterate the documents of a sequence: start with *off = 0. */
bool sim_seq_next(const sim_seq_t *s, uint32_t *off, bson_t *doc);
const sim_seq_t *sim_request_seq(const sim_request_t *req, const char *ident);

/* Write the header that precedes a reply document of body_len bytes: OP_REPLY
 * for OP_QUERY requests, OP_MSG otherwise. Returns the header length. */
size_t sim_wire_reply_header(uint8_t *out, const sim_request_t *req, int32_t reply_id, uint32_t body_len);

#endif
