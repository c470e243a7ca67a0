/* SPDX-License-Identifier: Apache-2.0 */
/* Pure helpers of the MongoDB collectors: libmongoc set-up, URI redaction,
 * time values of documents, replica-set member status and replication lag,
 * error classification for change streams. Nothing here
 * talks to a server, so all of it is unit-tested with hand-built BSON. */
#ifndef POH_MONGO_UTIL_H
#define POH_MONGO_UTIL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

/* mongoc_init() once per process (pthread_once) and libmongoc's log routed
 * to core/log with URI passwords redacted. mongoc_cleanup() is never called:
 * other threads may still use the driver while the process exits. */
void poh_mongo_global_init(void);

/* Silence libmongoc's log on this thread (e.g. while the configuration
 * check parses a URI and reports the error itself). */
void poh_mongo_log_quiet(bool quiet);

/* Append uri with the password of its userinfo, and the value of every
 * credential option (poh_mongo_secret_option), replaced by "***". The
 * userinfo is everything between "://" and the last '@', so a password with
 * unescaped '@', '/' or '?' is still hidden entirely. Text without "://" is
 * copied as is. */
void poh_mongo_redact_uri(poh_strbuf_t *out, const char *uri);

/* Whether URI option k (n bytes, any case) holds a credential:
 * tlsCertificateKeyFilePassword, sslClientCertificateKeyPassword,
 * authMechanismProperties (an AWS_SESSION_TOKEN), or any option whose name
 * contains password, token or secret. Its value is shown as "***". */
bool poh_mongo_secret_option(const char *k, size_t n);

/* Append text with every "scheme://user:password@" redacted as above and
 * every occurrence of secret (when it is at least 3 bytes) replaced by
 * "***". For libmongoc error messages and log lines. */
void poh_mongo_scrub(poh_strbuf_t *out, const char *text, const char *secret);

typedef enum { POH_EPOCH_MS = 0, POH_EPOCH_S } poh_epoch_unit_t;

/* The times a document may hold, in unix milliseconds: the years 0000 to
 * 9999 that RFC 3339 can write, with a day's margin for UTC offsets
 * (-0001-12-31T00:00Z to 10000-01-02T00:00Z). Any two such times differ by
 * less than 2^49 ms, so their difference is exact in a double. */
#define POH_MONGO_TIME_MIN_MS (-62167305600000LL)
#define POH_MONGO_TIME_MAX_MS 253402387200000LL

/* A document's time value in unix milliseconds: BSON Date, Timestamp (its
 * seconds), int32/int64/double epoch in `unit`, or an RFC 3339 string.
 * Milliseconds keep whole-millisecond differences exact in a double.
 * Returns 0, -EINVAL for another type, a non-finite number or a string that
 * is not RFC 3339, or -ERANGE for a number or Date outside
 * POH_MONGO_TIME_MIN_MS..POH_MONGO_TIME_MAX_MS (checked in the value's own
 * type and unit, before any conversion). */
int poh_mongo_time_value(const bson_iter_t *it, poh_epoch_unit_t unit, double *ms);

/* Whether a BSON Date (int64 unix ms) lies in the range above. */
bool poh_mongo_time_in_range(int64_t ms);

/* RFC 3339 date-time ("2026-11-25T15:42:15.123Z", "...+01:00"; 'T', 't' or
 * ' ' between date and time; 'Z' or 'z'; any number of fraction digits) in
 * unix milliseconds. Returns 0 or -EINVAL. */
int poh_parse_rfc3339(const char *s, size_t len, double *ms);

/* One member of replSetGetStatus. */
typedef struct poh_mongo_member {
    char name[256];
    char state_str[32];
    int state;                 /* -1 when absent */
    int health;                /* 1 healthy, 0 not, -1 absent */
    double optime;             /* seconds of optime.ts (or optimeDate); 0 = none */
} poh_mongo_member_t;

/* Fill up to cap members from a replSetGetStatus reply; returns how many,
 * or -EINVAL when the reply has no members array. */
int poh_mongo_members_parse(const bson_t *reply, poh_mongo_member_t *members, size_t cap);

/* Replication lag of member i: primary optime minus its optime, clamped at
 * 0. NaN (skip the member) when there is no healthy primary with an optime,
 * or the member is unhealthy or has a zero optime. */
double poh_mongo_replication_lag(const poh_mongo_member_t *members, size_t n, size_t i);

/* Lag clamp: a - b, at least 0 (and NaN stays NaN). */
double poh_mongo_lag_clamp(double a, double b);

/* The replica set member states by number (0..10), "" for gaps. */
const char *poh_mongo_state_name(int state);

typedef enum {
    POH_MONGO_ERR_RESUMABLE = 0, /* network error or a resumable server error */
    POH_MONGO_ERR_HISTORY_LOST,  /* 286 ChangeStreamHistoryLost, 280 ChangeStreamFatalError */
    POH_MONGO_ERR_OTHER,         /* anything else (auth, bad namespace...) */
} poh_mongo_err_kind_t;

/* Classify a failed change stream command (aggregate or getMore). reply may
 * be NULL; its errorLabels are read when present. Works with either libmongoc
 * error API (server errors in MONGOC_ERROR_SERVER or MONGOC_ERROR_QUERY). */
poh_mongo_err_kind_t poh_mongo_error_kind(const bson_error_t *err, const bson_t *reply);

/* Names usable as labels and file names: 1..64 of [A-Za-z0-9_.-], not
 * starting with '.'. For the config checks. */
bool poh_mongo_name_valid(const char *s);

/* The cluster time in a resume token {_data: "82<16 hex digits>..."}: mongod
 * (4.2+, hex tokens) and the simulator begin _data with the KeyString type
 * byte of a Timestamp (0x82) and its 8 bytes big-endian, t then i. Returns
 * the Timestamp packed as t << 32 | i, or 0 when the token is not of that
 * form (opaque to us then). */
uint64_t poh_mongo_token_time(const bson_t *token);

#endif
