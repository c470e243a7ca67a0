/* SPDX-License-Identifier: Apache-2.0 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/strbuf.h"

static atomic_int g_level = POH_LOG_INFO;
static atomic_int g_format = POH_LOG_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void poh_log_setup(poh_log_level_t level, poh_log_format_t format)
{
    atomic_store(&g_level, (int)level);
    atomic_store(&g_format, (int)format);
}

int poh_log_level_parse(const char *s, poh_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (poh_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int poh_log_format_parse(const char *s, poh_log_format_t *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = POH_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = POH_LOG_JSON;
    else
        return -EINVAL;
    return 0;
}

bool poh_log_enabled(poh_log_level_t level)
{
    return (int)level >= atomic_load(&g_level);
}

/* Quote for logfmt ("..." with \" and \\) or JSON (same plus control chars). */
static void put_quoted(poh_strbuf_t *sb, const char *s)
{
    poh_strbuf_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': poh_strbuf_puts(sb, "\\\""); break;
        case '\\': poh_strbuf_puts(sb, "\\\\"); break;
        case '\n': poh_strbuf_puts(sb, "\\n"); break;
        case '\r': poh_strbuf_puts(sb, "\\r"); break;
        case '\t': poh_strbuf_puts(sb, "\\t"); break;
        default:
            if (*p < 0x20)
                poh_strbuf_printf(sb, "\\u%04x", *p);
            else
                poh_strbuf_putc(sb, (char)*p);
        }
    }
    poh_strbuf_putc(sb, '"');
}

void poh_log(poh_log_level_t level, const char *module, const char *fmt, ...)
{
    if (!poh_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[80];
    snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000L);

    poh_strbuf_t sb = POH_STRBUF_INIT;
    const char *lv = level_names[level];
    if (atomic_load(&g_format) == POH_LOG_JSON) {
        poh_strbuf_printf(&sb, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", tbuf, lv);
        put_quoted(&sb, module);
        poh_strbuf_puts(&sb, ",\"msg\":");
        put_quoted(&sb, msg);
        poh_strbuf_puts(&sb, "}\n");
    } else {
        poh_strbuf_printf(&sb, "ts=%s level=%s module=%s msg=", tbuf, lv, module);
        put_quoted(&sb, msg);
        poh_strbuf_putc(&sb, '\n');
    }
    if (!sb.failed) {
        ssize_t w = write(STDERR_FILENO, sb.data, sb.len);
        (void)w;
    }
    poh_strbuf_free(&sb);
}

void poh_log_throttle_init(poh_log_throttle_t *t, double seconds)
{
    pthread_mutex_init(&t->mu, NULL);
    t->interval = seconds;
    t->last = 0;
    t->any = false;
    t->held = 0;
}

void poh_log_throttle_fini(poh_log_throttle_t *t)
{
    pthread_mutex_destroy(&t->mu);
}

bool poh_log_throttle_pass(poh_log_throttle_t *t, unsigned long *held)
{
    pthread_mutex_lock(&t->mu);
    double now = poh_now_mono();
    if (t->any && now - t->last < t->interval) {
        t->held++;
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    *held = t->held;
    t->held = 0;
    t->last = now;
    t->any = true;
    pthread_mutex_unlock(&t->mu);
    return true;
}
