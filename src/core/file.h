/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a small file whole, safely: a FIFO, device or directory in its
 * place is refused before anything blocks, and a file over the limit is
 * refused rather than read. */
#ifndef POH_FILE_H
#define POH_FILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/strbuf.h"

/* Append the content of path to out (NUL-terminated). Returns 0, -EINVAL
 * (not a regular file), -EFBIG (over max bytes), -ENOMEM or another
 * negative errno. When st is not NULL it receives the opened file's stat. */
int poh_read_file(const char *path, size_t max, poh_strbuf_t *out, struct stat *st);

/* poh_read_file of a configuration file, and its directory (*dir, malloc'd;
 * NULL when path has no "/"), from which the names inside are taken. */
int poh_read_config_file(const char *path, size_t max, poh_strbuf_t *text, char **dir);

/* What a negative return of poh_read_file means, for messages. */
const char *poh_read_file_strerror(int rc);

#endif
