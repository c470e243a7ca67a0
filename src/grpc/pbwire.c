/* SPDX-License-Identifier: Apache-2.0 */
#include "grpc/pbwire.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Nesting of proto2 groups we are willing to skip over. */
#define PB_MAX_GROUP_DEPTH 32

size_t poh_pb_varint_decode(const uint8_t *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i >= len)
            return 0;
        uint8_t b = p[i];
        /* The 10th byte may only carry the top bit of a 64-bit value. */
        if (i == 9 && b > 1)
            return 0;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

size_t poh_pb_varint_encode(uint64_t v, uint8_t out[10])
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* Varint at *pos; distinguishes a short buffer from an overlong encoding. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    size_t n = poh_pb_varint_decode(p + *pos, len - *pos, out);
    if (n == 0) {
        size_t avail = len - *pos;
        for (size_t i = 0; i < avail && i < 10; i++)
            if (!(p[*pos + i] & 0x80))
                return POH_PB_EMALFORMED; /* terminated but invalid 10th byte */
        return avail >= 10 ? POH_PB_EMALFORMED : POH_PB_ETRUNCATED;
    }
    *pos += n;
    return 0;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int read_tag(const uint8_t *p, size_t len, size_t *pos, uint32_t *field, int *wt)
{
    uint64_t tag;
    int rc = read_varint(p, len, pos, &tag);
    if (rc < 0)
        return rc;
    if (tag > UINT32_MAX || (tag >> 3) == 0)
        return POH_PB_EMALFORMED;
    *field = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    return 0;
}

static int read_len(const uint8_t *p, size_t len, size_t *pos, size_t *n)
{
    uint64_t l;
    int rc = read_varint(p, len, pos, &l);
    if (rc < 0)
        return rc;
    if (l > len - *pos)
        return POH_PB_ETRUNCATED;
    *n = (size_t)l;
    return 0;
}

/* Skip the value of a field whose tag was just read. A group is skipped to its
 * matching end tag. */
static int skip_value(const uint8_t *p, size_t len, size_t *pos, uint32_t field, int wt)
{
    uint32_t stack[PB_MAX_GROUP_DEPTH];
    size_t depth = 0;
    for (;;) {
        uint64_t v;
        size_t n;
        int rc = 0;
        switch (wt) {
        case POH_PB_WIRE_VARINT:
            rc = read_varint(p, len, pos, &v);
            break;
        case POH_PB_WIRE_I64:
        case POH_PB_WIRE_I32:
            n = wt == POH_PB_WIRE_I64 ? 8 : 4;
            if (len - *pos < n)
                return POH_PB_ETRUNCATED;
            *pos += n;
            break;
        case POH_PB_WIRE_LEN:
            rc = read_len(p, len, pos, &n);
            if (rc == 0)
                *pos += n;
            break;
        case POH_PB_WIRE_SGROUP:
            if (depth == PB_MAX_GROUP_DEPTH)
                return POH_PB_EMALFORMED;
            stack[depth++] = field;
            break;
        case POH_PB_WIRE_EGROUP:
            if (depth == 0 || stack[depth - 1] != field)
                return POH_PB_EMALFORMED;
            depth--;
            break;
        default:
            return POH_PB_EMALFORMED;
        }
        if (rc < 0)
            return rc;
        if (depth == 0)
            return 0;
        if (*pos >= len)
            return POH_PB_ETRUNCATED;
        rc = read_tag(p, len, pos, &field, &wt);
        if (rc < 0)
            return rc;
    }
}

static int expected_wire(poh_pb_type_t t)
{
    switch (t) {
    case POH_PB_UINT64: case POH_PB_INT64: case POH_PB_SINT64: case POH_PB_UINT32:
    case POH_PB_INT32: case POH_PB_SINT32: case POH_PB_BOOL:
        return POH_PB_WIRE_VARINT;
    case POH_PB_DOUBLE: case POH_PB_FIXED64: case POH_PB_SFIXED64:
        return POH_PB_WIRE_I64;
    case POH_PB_FLOAT: case POH_PB_FIXED32: case POH_PB_SFIXED32:
        return POH_PB_WIRE_I32;
    case POH_PB_AUTO:
        break;
    }
    return -1;
}

static int64_t zigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Convert a raw scalar of wire type wt into type t (already checked to fit). */
static void convert(poh_pb_type_t t, uint64_t raw, poh_pb_value_t *out)
{
    out->type = t;
    switch (t) {
    case POH_PB_UINT64: case POH_PB_FIXED64:
        out->v.u = raw;
        break;
    case POH_PB_UINT32: case POH_PB_FIXED32:
        out->v.u = (uint32_t)raw;
        break;
    case POH_PB_BOOL:
        out->v.u = raw != 0;
        break;
    case POH_PB_INT64: case POH_PB_SFIXED64:
        out->v.i = (int64_t)raw;
        break;
    case POH_PB_INT32: case POH_PB_SFIXED32:
        out->v.i = (int32_t)(uint32_t)raw;
        break;
    case POH_PB_SINT64:
        out->v.i = zigzag(raw);
        break;
    case POH_PB_SINT32:
        out->v.i = zigzag((uint32_t)raw);
        break;
    case POH_PB_DOUBLE: {
        double d;
        memcpy(&d, &raw, sizeof d);
        out->v.d = d;
        break;
    }
    case POH_PB_FLOAT: {
        uint32_t r32 = (uint32_t)raw;
        float f;
        memcpy(&f, &r32, sizeof f);
        out->v.d = f;
        break;
    }
    case POH_PB_AUTO:
        break;
    }
}

/* One scalar of wire type wt at *pos. */
static int read_scalar(const uint8_t *p, size_t len, size_t *pos, int wt, uint64_t *raw)
{
    if (wt == POH_PB_WIRE_VARINT)
        return read_varint(p, len, pos, raw);
    size_t n = wt == POH_PB_WIRE_I64 ? 8 : 4;
    if (len - *pos < n)
        return POH_PB_ETRUNCATED;
    *raw = load_le(p + *pos, n);
    *pos += n;
    return 0;
}

static int read_leaf(const uint8_t *p, size_t len, size_t *pos, int wt, poh_pb_type_t type,
                     poh_pb_value_t *out, bool *found)
{
    if (type == POH_PB_AUTO) {
        switch (wt) {
        case POH_PB_WIRE_VARINT: type = POH_PB_INT64; break;
        case POH_PB_WIRE_I64: type = POH_PB_DOUBLE; break;
        case POH_PB_WIRE_I32: type = POH_PB_FLOAT; break;
        default: return POH_PB_EWIRETYPE;
        }
    }
    int want = expected_wire(type);
    uint64_t raw;
    int rc;
    if (wt == want) {
        rc = read_scalar(p, len, pos, wt, &raw);
        if (rc < 0)
            return rc;
        convert(type, raw, out);
        *found = true;
        return 0;
    }
    if (wt != POH_PB_WIRE_LEN)
        return POH_PB_EWIRETYPE;
    /* Packed repeated: the last element is the value. */
    size_t n;
    rc = read_len(p, len, pos, &n);
    if (rc < 0)
        return rc;
    size_t end = *pos + n;
    while (*pos < end) {
        rc = read_scalar(p, end, pos, want, &raw);
        if (rc < 0)
            return rc;
        convert(type, raw, out);
        *found = true;
    }
    return 0;
}

static int find(const uint8_t *p, size_t len, const uint32_t *fields, size_t depth,
                poh_pb_type_t type, poh_pb_value_t *out, bool *found)
{
    size_t pos = 0;
    while (pos < len) {
        uint32_t field;
        int wt, rc;
        rc = read_tag(p, len, &pos, &field, &wt);
        if (rc < 0)
            return rc;
        if (field != fields[0]) {
            rc = skip_value(p, len, &pos, field, wt);
        } else if (depth > 1) {
            size_t n;
            if (wt != POH_PB_WIRE_LEN)
                return POH_PB_EWIRETYPE;
            rc = read_len(p, len, &pos, &n);
            if (rc == 0) {
                rc = find(p + pos, n, fields + 1, depth - 1, type, out, found);
                pos += n;
            }
        } else {
            rc = read_leaf(p, len, &pos, wt, type, out, found);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int poh_pb_read(const uint8_t *buf, size_t len, const poh_pb_path_t *path, poh_pb_type_t type,
                poh_pb_value_t *out)
{
    if (!path || path->depth == 0 || path->depth > POH_PB_MAX_DEPTH || !out || (!buf && len))
        return POH_PB_EPATH;
    bool found = false;
    int rc = find(buf, len, path->field, path->depth, type, out, &found);
    if (rc < 0)
        return rc;
    return found ? 0 : POH_PB_EMISSING;
}

double poh_pb_value_double(const poh_pb_value_t *v)
{
    switch (v->type) {
    case POH_PB_UINT64: case POH_PB_UINT32: case POH_PB_BOOL: case POH_PB_FIXED64:
    case POH_PB_FIXED32:
        return (double)v->v.u;
    case POH_PB_INT64: case POH_PB_SINT64: case POH_PB_INT32: case POH_PB_SINT32:
    case POH_PB_SFIXED64: case POH_PB_SFIXED32:
        return (double)v->v.i;
    case POH_PB_DOUBLE: case POH_PB_FLOAT:
        return v->v.d;
    case POH_PB_AUTO:
        break;
    }
    return 0.0;
}

int poh_pb_path_parse(const char *s, poh_pb_path_t *out)
{
    if (!s || !*s || !out)
        return POH_PB_EPATH;
    out->depth = 0;
    const char *p = s;
    for (;;) {
        if (out->depth == POH_PB_MAX_DEPTH || *p < '0' || *p > '9')
            return POH_PB_EPATH;
        uint64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (uint64_t)(*p - '0');
            if (n > POH_PB_MAX_FIELD)
                return POH_PB_EPATH;
            p++;
        }
        if (n == 0)
            return POH_PB_EPATH;
        out->field[out->depth++] = (uint32_t)n;
        if (*p == '\0')
            return 0;
        if (*p++ != '.')
            return POH_PB_EPATH;
    }
}

static const char *const type_names[] = {
    [POH_PB_AUTO] = "auto",       [POH_PB_UINT64] = "uint64",     [POH_PB_INT64] = "int64",
    [POH_PB_SINT64] = "sint64",   [POH_PB_UINT32] = "uint32",     [POH_PB_INT32] = "int32",
    [POH_PB_SINT32] = "sint32",   [POH_PB_BOOL] = "bool",         [POH_PB_DOUBLE] = "double",
    [POH_PB_FLOAT] = "float",     [POH_PB_FIXED64] = "fixed64",   [POH_PB_SFIXED64] = "sfixed64",
    [POH_PB_FIXED32] = "fixed32", [POH_PB_SFIXED32] = "sfixed32",
};

int poh_pb_type_parse(const char *s, poh_pb_type_t *out)
{
    if (!s || !*s) {
        *out = POH_PB_AUTO;
        return 0;
    }
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (poh_pb_type_t)i;
            return 0;
        }
    }
    return POH_PB_EPATH;
}

const char *poh_pb_type_name(poh_pb_type_t t)
{
    if ((size_t)t < sizeof type_names / sizeof type_names[0])
        return type_names[t];
    return "?";
}

const char *poh_pb_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case POH_PB_EPATH: return "invalid path or type";
    case POH_PB_EMISSING: return "missing field";
    case POH_PB_EWIRETYPE: return "wire type mismatch";
    case POH_PB_ETRUNCATED: return "truncated input";
    case POH_PB_EMALFORMED: return "malformed input";
    default: return "unknown error";
    }
}
