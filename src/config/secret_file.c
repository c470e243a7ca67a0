/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the file named by a "<key>_file" secret: a bounded, regular file,
 * wiped after use; errors name the path, never the content. */
#include "config/cfg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open full (a regular file of at most POH_CFG_MAX_SECRET_BYTES); -1 after
 * reporting why. */
static int open_secret(poh_cfg_ctx_t *ctx, const char *full, const yaml_mark_t *mark)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; S_ISREG rejects it. */
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        poh_cfg_error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_size > (off_t)POH_CFG_MAX_SECRET_BYTES) {
        poh_cfg_error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full,
                         S_ISREG(st.st_mode) ? "file larger than 64 KiB" : "not a regular file");
    } else {
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Read fd into buf (POH_CFG_MAX_SECRET_BYTES + 1 bytes) and check the content;
 * its length without one trailing newline, or -1 after reporting why. */
static ssize_t read_secret(poh_cfg_ctx_t *ctx, int fd, const char *full, const yaml_mark_t *mark,
                           char *buf)
{
    size_t n = 0;
    while (n <= POH_CFG_MAX_SECRET_BYTES) {
        ssize_t r = read(fd, buf + n, POH_CFG_MAX_SECRET_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            poh_cfg_error_at(ctx, mark, NULL, "cannot read \"%s\": %s", full, strerror(errno));
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > POH_CFG_MAX_SECRET_BYTES) {
        poh_cfg_error_at(ctx, mark, NULL, "cannot read \"%s\": file larger than 64 KiB", full);
        return -1;
    }
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    if (memchr(buf, '\0', n)) {
        poh_cfg_error_at(ctx, mark, NULL, "file \"%s\" contains a NUL byte", full);
        return -1;
    }
    if (n == 0) {
        poh_cfg_error_at(ctx, mark, NULL, "file \"%s\" is empty", full);
        return -1;
    }
    return (ssize_t)n;
}

int poh_cfg_read_secret_file(poh_cfg_ctx_t *ctx, const char *path, const yaml_mark_t *mark,
                             char **out)
{
    poh_strbuf_t full = POH_STRBUF_INIT;
    char *buf = NULL, *s = NULL;
    int fd = -1, rc = -EINVAL;
    if (path[0] != '/' && ctx->base_dir)
        poh_strbuf_printf(&full, "%s/", ctx->base_dir);
    poh_strbuf_puts(&full, path);
    if (full.failed) {
        rc = -ENOMEM;
        goto out;
    }
    if ((fd = open_secret(ctx, full.data, mark)) < 0)
        goto out;
    if (!(buf = malloc(POH_CFG_MAX_SECRET_BYTES + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    ssize_t n = read_secret(ctx, fd, full.data, mark, buf);
    if (n < 0)
        goto out;
    /* A fresh copy, so no unwiped block holding the secret reaches free(). */
    if (!(s = malloc((size_t)n + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(s, buf, (size_t)n);
    s[n] = '\0';
    *out = s;
    rc = 0;
out:
    if (buf) {
        explicit_bzero(buf, POH_CFG_MAX_SECRET_BYTES + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    poh_strbuf_free(&full);
    poh_cfg_note_rc(ctx, rc);
    return rc;
}
