/* SPDX-License-Identifier: Apache-2.0 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int poh_read_file(const char *path, size_t max, poh_strbuf_t *out, struct stat *st)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; S_ISREG then
     * refuses it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    if ((unsigned long long)sb.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    size_t start = out->len;
    for (;;) {
        if (poh_strbuf_reserve(out, 4096) < 0) {
            rc = -ENOMEM;
            goto out;
        }
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
        out->data[out->len] = '\0';
        if (out->len - start > max) { /* grew while being read */
            rc = -EFBIG;
            goto out;
        }
    }
    if (st)
        *st = sb;
out:
    close(fd);
    return rc;
}

int poh_read_config_file(const char *path, size_t max, poh_strbuf_t *text, char **dir)
{
    *dir = NULL;
    int rc = poh_read_file(path, max, text, NULL);
    if (rc < 0)
        return rc;
    const char *slash = strrchr(path, '/');
    if (slash && !(*dir = strndup(path, slash == path ? 1 : (size_t)(slash - path))))
        return -ENOMEM;
    return 0;
}

const char *poh_read_file_strerror(int rc)
{
    if (rc == -EINVAL)
        return "not a regular file";
    if (rc == -EFBIG)
        return "file too large";
    return strerror(-rc);
}
