/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of the configuration engine share and nothing outside
 * src/config/ may include. The engine is split along its seams:
 *   diag.c          error messages, key paths, "did you mean" (edit distance)
 *   scalar.c        scalar values: numbers, durations, sizes, enums, secrets
 *   address.c       "host:port" values (poh_cfg_parse_address)
 *   secret_file.c   reading the file of a "<key>_file" secret
 *   nodes.c         YAML node helpers and the visit budget
 *   walk.c          the walk of a section: keys, values, defaults
 *   lists.c         lists, maps and lists of sections
 *   load.c          poh_cfg_parse() and poh_cfg_release()
 *   schema_check.c  poh_cfg_schema_check() */
#ifndef POH_CONFIG_CFG_INTERNAL_H
#define POH_CONFIG_CFG_INTERNAL_H

#include "config/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define POH_CFG_MAX_SECRET_BYTES (64u << 10)
#define POH_CFG_MAX_VISITS 1000000u   /* bounds alias expansion ("billion laughs") */
#define POH_CFG_MAX_MAP_ENTRIES 1000u
#define POH_CFG_MAX_SHOWN 64          /* bytes of a key or value quoted in messages */

struct poh_cfg_ctx {
    const char *name;
    const char *base_dir;
    const char *text;
    size_t len;
    yaml_document_t *doc;
    poh_strbuf_t *errors;
    poh_strbuf_t path;
    size_t nerrors;
    size_t visits;
    bool stop;                 /* error cap, visit budget or out of memory */
    bool oom;
    yaml_node_t *vmap;         /* mapping of the section being validated */
    yaml_mark_t vmark;
};

static inline void *poh_cfg_field_at(void *obj, size_t off)
{
    return (char *)obj + off;
}

/* diag.c */
/* Append s quoted, non-printable bytes as \xNN, cut at POH_CFG_MAX_SHOWN bytes. */
void poh_cfg_put_quoted(poh_strbuf_t *sb, const char *s, size_t n);
/* "<file>:<line>:<col>: <path>[.<key>]: <message>\n"; mark NULL drops line:col. */
void poh_cfg_error_at(poh_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Push a component on the key path; returns what poh_cfg_path_pop() restores. */
size_t poh_cfg_path_push_key(poh_cfg_ctx_t *ctx, const char *key, size_t n);
size_t poh_cfg_path_push_index(poh_cfg_ctx_t *ctx, size_t i);
void poh_cfg_path_pop(poh_cfg_ctx_t *ctx, size_t old);
/* Nearest candidate within a distance that still looks like a typo, or NULL. */
const char *poh_cfg_suggest(const char *word, const char *const *cands, size_t n);

/* scalar.c */
typedef int (*poh_cfg_scalar_fn)(const poh_cfg_entry_t *e, const char *s, void *field,
                                 poh_strbuf_t *why);
/* Indexed by type; parse is NULL for non-scalar types. */
typedef struct poh_cfg_type_info {
    const char *what;   /* "expected <what>" */
    poh_cfg_scalar_fn parse;
} poh_cfg_type_info_t;
extern const poh_cfg_type_info_t poh_cfg_type_info[POH_CFG_TYPE_COUNT];
/* Up to maxdigits decimal digits at s; *end after them. 0 or -EINVAL. */
int poh_cfg_parse_u64(const char *s, size_t maxdigits, uint64_t *out, const char **end);
int poh_cfg_sc_double(const poh_cfg_entry_t *e, const char *s, void *field, poh_strbuf_t *why);
/* NONEMPTY and the entry's check, for strings and string list items. */
int poh_cfg_string_checks(const poh_cfg_entry_t *e, const char *s, poh_strbuf_t *why);
/* Wipe, free and clear a secret string. */
void poh_cfg_free_secret(char **p);

/* address.c */
/* Check "host:port", "[v6]:port" or ":port"; host and port filled when not
 * NULL. 0, or a reason appended to why and -EINVAL. */
int poh_cfg_parse_address(const char *s, char *host, size_t hostlen, unsigned *port,
                          poh_strbuf_t *why);

/* secret_file.c */
/* Read a secret file into *out (one trailing newline stripped). Errors name
 * the path, never the content. */
int poh_cfg_read_secret_file(poh_cfg_ctx_t *ctx, const char *path, const yaml_mark_t *mark,
                             char **out);

/* nodes.c */
const char *poh_cfg_node_kind(const yaml_node_t *n);
bool poh_cfg_is_null(const yaml_node_t *n);
yaml_node_t *poh_cfg_node(poh_cfg_ctx_t *ctx, int index);
/* Count a visited node; false once the budget is spent (alias bombs). */
bool poh_cfg_visit(poh_cfg_ctx_t *ctx, const yaml_node_t *n);
/* A non-null scalar without NUL bytes, else an error naming what was expected. */
const char *poh_cfg_scalar_of(poh_cfg_ctx_t *ctx, const yaml_node_t *n, const char *what);
/* Remember an out-of-memory result (it stops the walk). */
void poh_cfg_note_rc(poh_cfg_ctx_t *ctx, int rc);

/* walk.c */
/* Fill obj from mapping `map` (NULL: the section is absent; a null node:
 * present but empty). Absent sections get defaults only: their required keys
 * are not demanded and validate() does not run. */
void poh_cfg_apply_section(poh_cfg_ctx_t *ctx, const poh_cfg_section_t *sec, void *obj,
                           yaml_node_t *map, const yaml_mark_t *mark, bool present);
/* Index of the entry for key, or -1; *as_file when it is "<secret>_file". */
int poh_cfg_find_entry(const poh_cfg_entry_t *entries, const char *key, size_t klen,
                       bool *as_file);

/* lists.c: the value of entry e (a sequence or mapping node, not empty-checked). */
void poh_cfg_apply_string_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                               yaml_node_t *seq);
void poh_cfg_apply_double_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                               yaml_node_t *seq);
void poh_cfg_apply_string_map(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                              yaml_node_t *map);
void poh_cfg_apply_section_list(poh_cfg_ctx_t *ctx, const poh_cfg_entry_t *e, void *obj,
                                yaml_node_t *seq);
/* Parse "a, b, c" (a list default) into a list field. */
int poh_cfg_default_list(const poh_cfg_entry_t *e, void *obj, poh_strbuf_t *why);

#endif
