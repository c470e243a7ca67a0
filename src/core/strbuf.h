/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer. The buffer owns its memory; poh_strbuf_free() releases it,
 * poh_strbuf_steal() hands it to the caller (who then free()s it).
 * On allocation failure the buffer sets ->failed and further appends are no-ops,
 * so callers check once at the end instead of after every append. */
#ifndef POH_STRBUF_H
#define POH_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct poh_strbuf {
    char *data;   /* always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
    bool failed;
} poh_strbuf_t;

#define POH_STRBUF_INIT {NULL, 0, 0, false}

int poh_strbuf_reserve(poh_strbuf_t *sb, size_t extra);
int poh_strbuf_append(poh_strbuf_t *sb, const char *s, size_t n);
int poh_strbuf_puts(poh_strbuf_t *sb, const char *s);
int poh_strbuf_putc(poh_strbuf_t *sb, char c);
int poh_strbuf_printf(poh_strbuf_t *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int poh_strbuf_vprintf(poh_strbuf_t *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void poh_strbuf_reset(poh_strbuf_t *sb);      /* len = 0, keeps memory */
char *poh_strbuf_steal(poh_strbuf_t *sb);     /* caller frees; sb becomes empty */
void poh_strbuf_free(poh_strbuf_t *sb);

#endif
