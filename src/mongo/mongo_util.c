/* SPDX-License-Identifier: Apache-2.0 */
/* Pure helpers of the MongoDB collectors (see mongo_util.h). */
#include "mongo/mongo_util.h"

#include <errno.h>
#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

/* ------------------------------------------------------------ libmongoc */

static _Thread_local bool log_quiet;

void poh_mongo_log_quiet(bool quiet)
{
    log_quiet = quiet;
}

static void mongoc_log_to_poh(mongoc_log_level_t level, const char *domain, const char *message,
                              void *data)
{
    (void)data;
    if (log_quiet)
        return;
    poh_log_level_t l = level <= MONGOC_LOG_LEVEL_ERROR     ? POH_LOG_ERROR
                        : level == MONGOC_LOG_LEVEL_WARNING ? POH_LOG_WARN
                                                            : POH_LOG_DEBUG;
    if (!poh_log_enabled(l))
        return;
    poh_strbuf_t sb = POH_STRBUF_INIT;
    poh_mongo_scrub(&sb, message ? message : "", NULL);
    poh_log(l, "mongoc", "%s: %s", domain ? domain : "", sb.data ? sb.data : "");
    poh_strbuf_free(&sb);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(mongoc_log_to_poh, NULL);
}

void poh_mongo_global_init(void)
{
    pthread_once(&init_once, global_init);
}

/* ------------------------------------------------------------ redaction */

/* URI options whose values are credentials, lowercase as libmongoc spells
 * them (mongoc-uri.h); any other option whose name says password, token or
 * secret is hidden too. authMechanismProperties can carry an
 * AWS_SESSION_TOKEN, so all of its value goes. */
static const char *const secret_options[] = {
    "tlscertificatekeyfilepassword",
    "sslclientcertificatekeypassword",
    "authmechanismproperties",
};

static bool has_word(const char *k, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (!strncasecmp(k + i, word, w))
            return true;
    return false;
}

bool poh_mongo_secret_option(const char *k, size_t n)
{
    for (size_t i = 0; i < sizeof secret_options / sizeof *secret_options; i++)
        if (strlen(secret_options[i]) == n && !strncasecmp(k, secret_options[i], n))
            return true;
    return has_word(k, n, "password") || has_word(k, n, "token") || has_word(k, n, "secret");
}

/* Append [p, end), the options part of a URI, with the value of every
 * credential option replaced by "***". '?', '&' and ';' all separate
 * options here, so a value is hidden wherever the query seems to start. */
static void redact_options(poh_strbuf_t *out, const char *p, const char *end)
{
    while (p < end) {
        const char *stop = p;
        while (stop < end && *stop != '&' && *stop != ';' && *stop != '?')
            stop++;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && poh_mongo_secret_option(p, (size_t)(eq - p))) {
            poh_strbuf_append(out, p, (size_t)(eq + 1 - p));
            poh_strbuf_puts(out, "***");
        } else {
            poh_strbuf_append(out, p, (size_t)(stop - p));
        }
        if (stop < end)
            poh_strbuf_append(out, stop, 1);
        p = stop + (stop < end);
    }
}

/* Append [p, end) with the password of a "scheme://user:pass@" prefix
 * hidden, and credential options after it; p points just after "://". */
static void redact_authority(poh_strbuf_t *out, const char *p, const char *end)
{
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon) {
        /* at may be in an option value: all of the rest goes through the
         * option filter (a host has no '='). */
        poh_strbuf_append(out, p, (size_t)(colon - p));
        poh_strbuf_puts(out, ":***");
        redact_options(out, at, end);
        return;
    }
    const char *qs = memchr(p, '?', (size_t)(end - p));
    if (!qs)
        qs = end;
    poh_strbuf_append(out, p, (size_t)(qs - p));
    redact_options(out, qs, end);
}

void poh_mongo_redact_uri(poh_strbuf_t *out, const char *uri)
{
    const char *sep = strstr(uri, "://");
    if (!sep) {
        poh_strbuf_puts(out, uri);
        return;
    }
    poh_strbuf_append(out, uri, (size_t)(sep + 3 - uri));
    redact_authority(out, sep + 3, uri + strlen(uri));
}

static bool uri_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'';
}

void poh_mongo_scrub(poh_strbuf_t *out, const char *text, const char *secret)
{
    size_t start = out->len;
    const char *p = text;
    for (const char *sep; (sep = strstr(p, "://"));) {
        poh_strbuf_append(out, p, (size_t)(sep + 3 - p));
        const char *end = sep + 3;
        while (!uri_end(*end))
            end++;
        redact_authority(out, sep + 3, end);
        p = end;
    }
    poh_strbuf_puts(out, p);
    size_t slen = secret ? strlen(secret) : 0;
    if (slen < 3 || out->failed || !out->data)
        return;
    /* Rewrite the appended part with every occurrence of the secret hidden. */
    poh_strbuf_t tmp = POH_STRBUF_INIT;
    const char *q = out->data + start;
    for (const char *hit; (hit = strstr(q, secret)); q = hit + slen) {
        poh_strbuf_append(&tmp, q, (size_t)(hit - q));
        poh_strbuf_puts(&tmp, "***");
    }
    poh_strbuf_puts(&tmp, q);
    explicit_bzero(out->data + start, out->len - start);
    out->len = start;
    out->data[start] = '\0';
    if (tmp.data)
        poh_strbuf_append(out, tmp.data, tmp.len);
    else
        out->failed = true;
    poh_strbuf_free(&tmp);
}

/* ----------------------------------------------------------------- time */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic
     * Gregorian date, without timegm() and the TZ environment. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int poh_parse_rfc3339(const char *s, size_t len, double *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        return -EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 ||
        mi > 59 || se > 60)
        return -EINVAL;
    size_t i = 19;
    double frac = 0, scale = 100; /* milliseconds of the first fraction digit */
    if (i < len && s[i] == '.') {
        size_t first = ++i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            frac += (s[i] - '0') * scale;
        if (i == first)
            return -EINVAL;
    }
    int off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return -EINVAL;
        off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -EINVAL;
    }
    if (i != len)
        return -EINVAL;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    *ms = (double)t * 1000 + frac;
    return 0;
}

bool poh_mongo_time_in_range(int64_t ms)
{
    return ms >= POH_MONGO_TIME_MIN_MS && ms <= POH_MONGO_TIME_MAX_MS;
}

int poh_mongo_time_value(const bson_iter_t *it, poh_epoch_unit_t unit, double *ms)
{
    /* Each value is compared with the range in its own type and unit, so
     * nothing out of range is ever multiplied or converted. */
    int64_t per = unit == POH_EPOCH_MS ? 1 : 1000; /* ms per unit */
    int64_t i;
    double v;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DATE_TIME:
        i = bson_iter_date_time(it);
        if (!poh_mongo_time_in_range(i))
            return -ERANGE;
        *ms = (double)i;
        return 0;
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t, inc;
        bson_iter_timestamp(it, &t, &inc); /* 0..2^32-1 s: always in range */
        *ms = t * 1000.0;
        return 0;
    }
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        i = BSON_ITER_HOLDS_INT32(it) ? bson_iter_int32(it) : bson_iter_int64(it);
        if (i < POH_MONGO_TIME_MIN_MS / per || i > POH_MONGO_TIME_MAX_MS / per)
            return -ERANGE;
        *ms = (double)(i * per);
        return 0;
    case BSON_TYPE_DOUBLE:
        v = bson_iter_double(it);
        if (!isfinite(v))
            return -EINVAL;
        if (v < (double)(POH_MONGO_TIME_MIN_MS / per) || v > (double)(POH_MONGO_TIME_MAX_MS / per))
            return -ERANGE;
        *ms = v * (double)per;
        return 0;
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        return poh_parse_rfc3339(s, n, ms); /* 4-digit years: always in range */
    }
    default:
        return -EINVAL;
    }
}

/* ------------------------------------------------------- replica set */

static const char *const state_names[] = {
    "STARTUP", "PRIMARY", "SECONDARY", "RECOVERING", "", "STARTUP2",
    "UNKNOWN", "ARBITER", "DOWN",      "ROLLBACK",   "REMOVED",
};

const char *poh_mongo_state_name(int state)
{
    return state >= 0 && state < (int)(sizeof state_names / sizeof *state_names)
               ? state_names[state]
               : "";
}

static bool iter_number(const bson_iter_t *it, double *v)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_BOOL:
        *v = bson_iter_as_double(it);
        return isfinite(*v);
    default:
        return false;
    }
}

/* A member's numeric state, range-checked before the cast: a code of
 * 0..10, else -1 (a hostile 2.01e14 must not reach an int conversion). */
static int member_state_code(double v)
{
    if (!(v >= 0 && v <= 10) || v != floor(v))
        return -1;
    return (int)v;
}

/* optime is {ts: Timestamp, t: long} (protocol version 1) or a Timestamp. */
static double member_optime(const bson_iter_t *member)
{
    bson_iter_t it, sub;
    if (bson_iter_recurse(member, &it) && bson_iter_find(&it, "optime")) {
        if (BSON_ITER_HOLDS_TIMESTAMP(&it)) {
            uint32_t t, inc;
            bson_iter_timestamp(&it, &t, &inc);
            return t;
        }
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) &&
            bson_iter_find(&sub, "ts") && BSON_ITER_HOLDS_TIMESTAMP(&sub)) {
            uint32_t t, inc;
            bson_iter_timestamp(&sub, &t, &inc);
            return t;
        }
    }
    if (bson_iter_recurse(member, &it) && bson_iter_find(&it, "optimeDate") &&
        BSON_ITER_HOLDS_DATE_TIME(&it))
        return (double)bson_iter_date_time(&it) / 1000.0;
    return 0;
}

int poh_mongo_members_parse(const bson_t *reply, poh_mongo_member_t *members, size_t cap)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, reply, "members") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return -EINVAL;
    size_t n = 0;
    while (n < cap && bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            continue;
        poh_mongo_member_t *m = &members[n];
        memset(m, 0, sizeof *m);
        m->state = -1;
        m->health = -1;
        bson_iter_t f;
        if (!bson_iter_recurse(&arr, &f))
            continue;
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            double v;
            if (!strcmp(k, "name") && BSON_ITER_HOLDS_UTF8(&f))
                snprintf(m->name, sizeof m->name, "%s", bson_iter_utf8(&f, NULL));
            else if (!strcmp(k, "stateStr") && BSON_ITER_HOLDS_UTF8(&f))
                snprintf(m->state_str, sizeof m->state_str, "%s", bson_iter_utf8(&f, NULL));
            else if (!strcmp(k, "state") && iter_number(&f, &v))
                m->state = member_state_code(v);
            else if (!strcmp(k, "health") && iter_number(&f, &v))
                m->health = v >= 1 ? 1 : 0;
        }
        if (!m->name[0])
            continue; /* a member without a name cannot be labelled */
        m->optime = member_optime(&arr);
        /* The numeric state is the member's state; stateStr is for people
         * and is not always a state name (a member that is down says
         * "(not reachable/healthy)" with state 8). It is kept only when the
         * code is absent or unknown. */
        const char *name = poh_mongo_state_name(m->state);
        if (name[0])
            snprintf(m->state_str, sizeof m->state_str, "%s", name);
        n++;
    }
    return (int)n;
}

double poh_mongo_lag_clamp(double a, double b)
{
    double d = a - b;
    return d > 0 || isnan(d) ? d : 0;
}

double poh_mongo_replication_lag(const poh_mongo_member_t *members, size_t n, size_t i)
{
    const poh_mongo_member_t *primary = NULL;
    for (size_t j = 0; j < n && !primary; j++)
        if (members[j].state == 1 && members[j].health != 0 && members[j].optime > 0)
            primary = &members[j];
    const poh_mongo_member_t *m = &members[i];
    if (!primary || m->health == 0 || m->optime <= 0)
        return NAN;
    return poh_mongo_lag_clamp(primary->optime, m->optime);
}

/* --------------------------------------------------------------- errors */

static bool has_label(const bson_t *reply, const char *label)
{
    bson_iter_t it, arr;
    if (!reply || !bson_iter_init_find(&it, reply, "errorLabels") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return false;
    while (bson_iter_next(&arr))
        if (BSON_ITER_HOLDS_UTF8(&arr) && !strcmp(bson_iter_utf8(&arr, NULL), label))
            return true;
    return false;
}

poh_mongo_err_kind_t poh_mongo_error_kind(const bson_error_t *err, const bson_t *reply)
{
    /* The change streams specification's resumable codes for servers that do
     * not send the ResumableChangeStreamError label (before 4.4), plus
     * CursorNotFound. */
    static const uint32_t resumable[] = {6,   7,    43,    63,    89,    91,    133,
                                         150, 189,  234,   262,   9001,  10107, 11600,
                                         11602, 13388, 13435, 13436};
    bool server = err->domain == MONGOC_ERROR_SERVER || err->domain == MONGOC_ERROR_QUERY ||
                  err->domain == MONGOC_ERROR_WRITE_CONCERN;
    if (!server)
        return POH_MONGO_ERR_RESUMABLE; /* network, server selection, protocol */
    if (err->code == 286 || err->code == 280)
        return POH_MONGO_ERR_HISTORY_LOST;
    if (has_label(reply, "ResumableChangeStreamError"))
        return POH_MONGO_ERR_RESUMABLE;
    for (size_t i = 0; i < sizeof resumable / sizeof *resumable; i++)
        if (err->code == resumable[i])
            return POH_MONGO_ERR_RESUMABLE;
    return POH_MONGO_ERR_OTHER;
}

uint64_t poh_mongo_token_time(const bson_t *token)
{
    bson_iter_t it;
    uint32_t len;
    if (!token || !bson_iter_init_find(&it, token, "_data") || !BSON_ITER_HOLDS_UTF8(&it))
        return 0;
    const char *s = bson_iter_utf8(&it, &len);
    if (len < 18 || s[0] != '8' || s[1] != '2')
        return 0;
    uint64_t v = 0;
    for (int k = 2; k < 18; k++) {
        char c = s[k];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (h < 0)
            return 0;
        v = v << 4 | (uint64_t)h;
    }
    return v;
}

bool poh_mongo_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}
