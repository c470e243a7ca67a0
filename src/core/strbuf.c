/* SPDX-License-Identifier: Apache-2.0 */
#include "core/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int poh_strbuf_reserve(poh_strbuf_t *sb, size_t extra)
{
    if (sb->failed)
        return -ENOMEM;
    if (sb->len + extra + 1 <= sb->cap)
        return 0;
    size_t ncap = sb->cap ? sb->cap : 256;
    while (ncap < sb->len + extra + 1) {
        if (ncap > ((size_t)-1) / 2) {
            sb->failed = true;
            return -ENOMEM;
        }
        ncap *= 2;
    }
    char *n = realloc(sb->data, ncap);
    if (!n) {
        sb->failed = true;
        return -ENOMEM;
    }
    sb->data = n;
    sb->cap = ncap;
    return 0;
}

int poh_strbuf_append(poh_strbuf_t *sb, const char *s, size_t n)
{
    if (poh_strbuf_reserve(sb, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
    return 0;
}

int poh_strbuf_puts(poh_strbuf_t *sb, const char *s)
{
    return poh_strbuf_append(sb, s, strlen(s));
}

int poh_strbuf_putc(poh_strbuf_t *sb, char c)
{
    return poh_strbuf_append(sb, &c, 1);
}

int poh_strbuf_vprintf(poh_strbuf_t *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = sb->cap > sb->len ? sb->cap - sb->len : 0;
    int n = vsnprintf(room ? sb->data + sb->len : NULL, room, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return -EINVAL;
    }
    if ((size_t)n >= room) {
        if (poh_strbuf_reserve(sb, (size_t)n) < 0) {
            va_end(ap2);
            return -ENOMEM;
        }
        vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
    }
    va_end(ap2);
    sb->len += (size_t)n;
    return 0;
}

int poh_strbuf_printf(poh_strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = poh_strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
    return rc;
}

void poh_strbuf_reset(poh_strbuf_t *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

char *poh_strbuf_steal(poh_strbuf_t *sb)
{
    char *d = sb->data;
    if (!d)
        d = calloc(1, 1);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = false;
    return d;
}

void poh_strbuf_free(poh_strbuf_t *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = false;
}
