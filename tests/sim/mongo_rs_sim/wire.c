/* SPDX-License-Identifier: Apache-2.0 */
#include "wire.h"

#include <string.h>

#include "bsonutil.h"

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A BSON document at p within [p, end): sets *dlen. */
static bool doc_at(const uint8_t *p, const uint8_t *end, bson_t *out, uint32_t *dlen)
{
    if (end - p < 5)
        return false;
    int32_t n = sim_le32(p);
    if (n < 5 || n > end - p)
        return false;
    if (!bson_init_static(out, p, (size_t)n) || !sim_bson_ok(out, SIM_MAX_DEPTH))
        return false;
    *dlen = (uint32_t)n;
    return true;
}

static int parse_query(const uint8_t *msg, size_t len, sim_request_t *req, const char **why)
{
    const uint8_t *p = msg + 20, *end = msg + len;
    if (len < 20 + 1 + 8 + 5) {
        *why = "OP_QUERY too short";
        return -1;
    }
    const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
    if (!nul) {
        *why = "OP_QUERY namespace is not terminated";
        return -1;
    }
    size_t nslen = (size_t)(nul - p);
    const char *ns = (const char *)p;
    if (nslen < 6 || memcmp(ns + nslen - 5, ".$cmd", 5) != 0 || nslen - 5 >= sizeof req->dbbuf) {
        *why = "OP_QUERY is only accepted for commands on <db>.$cmd";
        return -1;
    }
    memcpy(req->dbbuf, ns, nslen - 5);
    req->dbbuf[nslen - 5] = 0;
    req->db = req->dbbuf;
    p = nul + 1 + 8; /* numberToSkip, numberToReturn */
    if (p > end) {
        *why = "OP_QUERY truncated";
        return -1;
    }
    uint32_t dlen;
    if (!doc_at(p, end, &req->body, &dlen)) {
        *why = "OP_QUERY query document is malformed";
        return -1;
    }
    p += dlen;
    if (p < end) {
        bson_t fields;
        if (!doc_at(p, end, &fields, &dlen) || p + dlen != end) {
            *why = "OP_QUERY trailing bytes are not a field selector document";
            return -1;
        }
    }
    /* Drivers may wrap the command: {$query: {...}, $readPreference: ...}. */
    bson_iter_t it;
    if (bson_iter_init(&it, &req->body) && bson_iter_next(&it) && !strcmp(bson_iter_key(&it), "$query")) {
        uint32_t qlen;
        const uint8_t *q;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            *why = "OP_QUERY $query is not a document";
            return -1;
        }
        bson_iter_document(&it, &qlen, &q);
        if (!bson_init_static(&req->body, q, qlen)) {
            *why = "OP_QUERY $query is malformed";
            return -1;
        }
    }
    return 0;
}

static int parse_msg(const uint8_t *msg, size_t len, sim_request_t *req, const char **why)
{
    if (len < 21) {
        *why = "OP_MSG too short";
        return -1;
    }
    uint32_t flags = (uint32_t)sim_le32(msg + 16);
    /* Bits 0-15 are required: a receiver must reject any it does not know. */
    if (flags & 0xfffcu) {
        *why = "OP_MSG has unknown required flag bits";
        return -1;
    }
    req->more_to_come = flags & SIM_MSG_MORE_TO_COME;
    const uint8_t *p = msg + 20, *end = msg + len;
    if (flags & SIM_MSG_CHECKSUM) {
        if (len < 25) {
            *why = "OP_MSG too short for its checksum";
            return -1;
        }
        end -= 4; /* CRC-32C: accepted, not verified */
    }
    bool have_body = false;
    while (p < end) {
        uint8_t kind = *p++;
        uint32_t dlen;
        if (kind == 0) {
            if (have_body) {
                *why = "OP_MSG has more than one kind-0 section";
                return -1;
            }
            if (!doc_at(p, end, &req->body, &dlen)) {
                *why = "OP_MSG body document is malformed";
                return -1;
            }
            have_body = true;
            p += dlen;
        } else if (kind == 1) {
            if (end - p < 4) {
                *why = "OP_MSG document sequence truncated";
                return -1;
            }
            int32_t size = sim_le32(p);
            if (size < 5 || size > end - p) {
                *why = "OP_MSG document sequence size out of range";
                return -1;
            }
            const uint8_t *send = p + size, *q = p + 4;
            const uint8_t *nul = memchr(q, 0, (size_t)(send - q));
            if (!nul || nul == q) {
                *why = "OP_MSG document sequence identifier is not terminated";
                return -1;
            }
            if (req->nseq == SIM_MAX_SEQS) {
                *why = "OP_MSG has too many document sequences";
                return -1;
            }
            sim_seq_t *s = &req->seq[req->nseq++];
            s->ident = (const char *)q;
            s->data = nul + 1;
            s->len = (uint32_t)(send - s->data);
            s->ndocs = 0;
            for (q = s->data; q < send; q += dlen) {
                bson_t d;
                if (!doc_at(q, send, &d, &dlen)) {
                    *why = "OP_MSG document sequence holds a malformed document";
                    return -1;
                }
                s->ndocs++;
            }
            p = send;
        } else {
            *why = "OP_MSG section kind is unknown";
            return -1;
        }
    }
    if (!have_body) {
        *why = "OP_MSG has no kind-0 section";
        return -1;
    }
    return 0;
}

int sim_wire_parse(const uint8_t *msg, size_t len, sim_request_t *req, const char **why)
{
    memset(req, 0, sizeof *req);
    if (len < SIM_MSG_HEADER || len > SIM_MAX_MESSAGE || sim_le32(msg) != (int32_t)len) {
        *why = "message length does not match its header";
        return -1;
    }
    req->request_id = sim_le32(msg + 4);
    req->opcode = sim_le32(msg + 12);
    switch (req->opcode) {
    case SIM_OP_QUERY: return parse_query(msg, len, req, why);
    case SIM_OP_MSG: return parse_msg(msg, len, req, why);
    case SIM_OP_COMPRESSED: *why = "OP_COMPRESSED is not supported (no compressor was negotiated)"; return -1;
    default: *why = "unsupported opcode"; return -1;
    }
}

bool sim_seq_next(const sim_seq_t *s, uint32_t *off, bson_t *doc)
{
    if (*off >= s->len)
        return false;
    uint32_t n = (uint32_t)sim_le32(s->data + *off);
    if (!bson_init_static(doc, s->data + *off, n))
        return false;
    *off += n;
    return true;
}

const sim_seq_t *sim_request_seq(const sim_request_t *req, const char *ident)
{
    for (int i = 0; i < req->nseq; i++)
        if (!strcmp(req->seq[i].ident, ident))
            return &req->seq[i];
    return NULL;
}

size_t sim_wire_reply_header(uint8_t *out, const sim_request_t *req, int32_t reply_id, uint32_t body_len)
{
    size_t hl = req->opcode == SIM_OP_QUERY ? 36 : 21;
    put_le32(out, (uint32_t)(hl + body_len));
    put_le32(out + 4, (uint32_t)reply_id);
    put_le32(out + 8, (uint32_t)req->request_id);
    if (req->opcode == SIM_OP_QUERY) {
        put_le32(out + 12, SIM_OP_REPLY);
        put_le32(out + 16, 0);      /* responseFlags */
        memset(out + 20, 0, 8);     /* cursorID */
        put_le32(out + 28, 0);      /* startingFrom */
        put_le32(out + 32, 1);      /* numberReturned */
    } else {
        put_le32(out + 12, SIM_OP_MSG);
        put_le32(out + 16, 0);      /* flagBits */
        out[20] = 0;                /* kind 0 */
    }
    return hl;
}
