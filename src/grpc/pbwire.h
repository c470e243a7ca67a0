/* SPDX-License-Identifier: Apache-2.0 */
/* Protobuf wire-format reader: one scalar at a field path ("1", "5.2") read
 * straight from encoded bytes, so the exporter needs no .proto of the node.
 *
 * Semantics follow the protobuf parsing rules: for a scalar the last
 * occurrence wins; occurrences of an embedded message are merged, so a path
 * "5.2" yields the last field 2 found in any occurrence of field 5. A
 * length-delimited occurrence of an explicitly numeric field is read as a
 * packed repeated field (its last element), as parsers must accept both.
 *
 * Pure functions over caller memory: no allocation, bounded by the input
 * length, never read past len. Errors are negative errno values:
 *   POH_PB_EPATH      bad path or type name (config time)
 *   POH_PB_EMISSING   the field (or a message on the way) is absent
 *   POH_PB_EWIRETYPE  the wire type does not fit the requested type or path
 *   POH_PB_ETRUNCATED input ends inside a tag, value or length
 *   POH_PB_EMALFORMED overlong varint, field number 0, group mismatch, ...
 */
#ifndef POH_PBWIRE_H
#define POH_PBWIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define POH_PB_EPATH (-EINVAL)
#define POH_PB_EMISSING (-ENOENT)
#define POH_PB_EWIRETYPE (-EPROTOTYPE)
#define POH_PB_ETRUNCATED (-ENODATA)
#define POH_PB_EMALFORMED (-EBADMSG)

#define POH_PB_MAX_DEPTH 8
#define POH_PB_MAX_FIELD 536870911u /* 2^29 - 1 */

typedef enum {
    POH_PB_WIRE_VARINT = 0,
    POH_PB_WIRE_I64 = 1,
    POH_PB_WIRE_LEN = 2,
    POH_PB_WIRE_SGROUP = 3,
    POH_PB_WIRE_EGROUP = 4,
    POH_PB_WIRE_I32 = 5,
} poh_pb_wire_t;

/* Requested interpretation. AUTO infers it from the wire type: varint → int64,
 * 64-bit → double, 32-bit → float; a length-delimited leaf is a mismatch. */
typedef enum {
    POH_PB_AUTO = 0,
    POH_PB_UINT64,
    POH_PB_INT64,
    POH_PB_SINT64,
    POH_PB_UINT32,
    POH_PB_INT32,
    POH_PB_SINT32,
    POH_PB_BOOL,
    POH_PB_DOUBLE,
    POH_PB_FLOAT,
    POH_PB_FIXED64,
    POH_PB_SFIXED64,
    POH_PB_FIXED32,
    POH_PB_SFIXED32,
} poh_pb_type_t;

typedef struct poh_pb_path {
    uint32_t field[POH_PB_MAX_DEPTH];
    size_t depth;
} poh_pb_path_t;

typedef struct poh_pb_value {
    poh_pb_type_t type; /* the resolved type, never AUTO */
    union {
        uint64_t u;     /* UINT64, UINT32, BOOL, FIXED64, FIXED32 */
        int64_t i;      /* INT64, SINT64, INT32, SINT32, SFIXED64, SFIXED32 */
        double d;       /* DOUBLE, FLOAT */
    } v;
} poh_pb_value_t;

/* "1", "5.2": dot-separated field numbers 1..2^29-1, at most POH_PB_MAX_DEPTH. */
int poh_pb_path_parse(const char *s, poh_pb_path_t *out);
/* "uint64", "sint64", "double", ... or "auto"/""/NULL for AUTO. */
int poh_pb_type_parse(const char *s, poh_pb_type_t *out);
const char *poh_pb_type_name(poh_pb_type_t t);

/* Read the value at path. Returns 0 or one of the POH_PB_E* codes. */
int poh_pb_read(const uint8_t *buf, size_t len, const poh_pb_path_t *path, poh_pb_type_t type,
                poh_pb_value_t *out);
/* The value as a double (gauges); uint64 above 2^53 loses precision. */
double poh_pb_value_double(const poh_pb_value_t *v);
/* Short reason for a POH_PB_E* code ("missing field", ...), for logs and labels. */
const char *poh_pb_strerror(int err);

/* Low-level helpers, exposed for tests and simple encoders. Return the number
 * of bytes consumed/written, 0 on truncation or overlong input. */
size_t poh_pb_varint_decode(const uint8_t *p, size_t len, uint64_t *out);
size_t poh_pb_varint_encode(uint64_t v, uint8_t out[10]);

#endif
