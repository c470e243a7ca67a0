/* SPDX-License-Identifier: Apache-2.0 */
/* The table-driven configuration engine (src/config/) and the types its
 * schema tables are written in. It knows nothing of what it configures: each
 * section's struct and table live with their code (docs/architecture.md).
 *
 * A section (a YAML mapping) is described by a poh_cfg_section_t: the size of
 * the C struct it fills and a table of poh_cfg_entry_t, one per key, each
 * naming the key, its type, the offsetof() of its field, a default and flags.
 * The engine walks the YAML document against these tables, fills the struct,
 * applies environment and defaults to keys that are absent, and collects every
 * error as "<file>:<line>:<col>: <key.path>: <message>". poh_cfg_release()
 * frees whatever the tables say a struct owns, so schema files never write
 * free code. See the recipe at the top of load.c. */
#ifndef POH_CONFIG_SCHEMA_H
#define POH_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"

/* One entry of a string map (e.g. headers), in document order. */
typedef struct poh_config_kv {
    char *key;
    char *value;
} poh_config_kv_t;

typedef enum poh_cfg_type {
    POH_CFG_STRING,       /* char *                                                     */
    POH_CFG_BOOL,         /* bool; only true / false                                    */
    POH_CFG_UINT,         /* unsigned; decimal digits                                   */
    POH_CFG_DOUBLE,       /* double; finite                                             */
    POH_CFG_DURATION,     /* double seconds; "500ms", "2s", "1m30s", "1h", "7d", "1w"   */
    POH_CFG_SIZE,         /* size_t bytes; "16384", "512B", "16KiB", "1MiB", "1GiB"     */
    POH_CFG_ADDRESS,      /* char *; "host:port", "[v6]:port", ":port"                  */
    POH_CFG_ENUM,         /* char *; one of .choices (stored as the matching choice)    */
    POH_CFG_SECRET,       /* char *; key "x" inline or "x_file" read from a file        */
    POH_CFG_STRING_LIST,  /* char ** at .offset, size_t at .count_offset                */
    POH_CFG_DOUBLE_LIST,  /* double * at .offset, size_t at .count_offset               */
    POH_CFG_STRING_MAP,   /* poh_config_kv_t * at .offset, size_t at .count_offset         */
    POH_CFG_SECTION,      /* struct at .offset described by .section                    */
    POH_CFG_SECTION_LIST, /* array of .section->size bytes at .offset, size_t count     */
    POH_CFG_TYPE_COUNT
} poh_cfg_type_t;

enum {
    POH_CFG_REQUIRED = 1u << 0,    /* absent (or null) is an error                        */
    POH_CFG_NONEMPTY = 1u << 1,    /* strings (and string list items): not "";
                                      lists and maps: at least one item                   */
    POH_CFG_INCREASING = 1u << 2,  /* DOUBLE_LIST: strictly increasing (histogram buckets) */
    POH_CFG_FILE_VALUES = 1u << 3, /* STRING_MAP: key "x_file: path" sets "x" to the file's content */
};

typedef struct poh_cfg_ctx poh_cfg_ctx_t;
typedef struct poh_cfg_section poh_cfg_section_t;

/* Extra check of one string value (STRING, ADDRESS, SECRET, STRING_LIST items).
 * Return 0, or append a reason to why (never the value if it may be secret)
 * and return -EINVAL. */
typedef int (*poh_cfg_check_fn)(const char *value, poh_strbuf_t *why);

typedef struct poh_cfg_entry {
    const char *name;               /* YAML key; NULL ends a table */
    poh_cfg_type_t type;
    size_t offset;                  /* offsetof() the field */
    size_t count_offset;            /* lists and maps: offsetof() the size_t count */
    unsigned flags;                 /* POH_CFG_* */
    const char *def;                /* default, parsed like a YAML value; lists: "a, b, c" */
    const char *env;                /* scalar types: environment variable used, when set
                                       and non-empty, before def (file > env > default) */
    double min, max;                /* numeric bounds, inclusive, used when min < max */
    const char *const *choices;     /* ENUM: NULL-terminated */
    const poh_cfg_section_t *section; /* SECTION, SECTION_LIST */
    const char *unique;             /* SECTION_LIST: key whose value must differ between items */
    poh_cfg_check_fn check;
} poh_cfg_entry_t;

struct poh_cfg_section {
    size_t size;                    /* sizeof the struct (element size for lists) */
    const poh_cfg_entry_t *entries; /* ends with an entry whose name is NULL */
    /* Optional cross-key checks, run after the section is filled and its
     * defaults applied; report with poh_cfg_error(). Return 0 or -EINVAL. */
    int (*validate)(poh_cfg_ctx_t *ctx, void *obj);
    /* Optional: free what validate() allocated beyond the table's fields. */
    void (*release)(void *obj);
};

/* For validate(): report an error about key `key` of the section being
 * validated (NULL = the section itself). Positioned at that key in the file
 * when present, else at the section. Never pass secret values in fmt. */
void poh_cfg_error(poh_cfg_ctx_t *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse YAML text against root into obj (zeroed by the caller, root->size
 * bytes). name prefixes messages; relative *_file paths are taken from
 * base_dir (NULL = the working directory). Every error is appended to errors,
 * one per line, up to POH_CFG_MAX_ERRORS. Returns 0 or -EINVAL (-ENOMEM).
 * Whatever the result, obj owns memory afterwards: poh_cfg_release() it. */
#define POH_CFG_MAX_ERRORS 50
/* The largest YAML text accepted, bytes; a config beyond this is a mistake. */
#define POH_CFG_MAX_INPUT_BYTES (4u << 20)
int poh_cfg_parse(const poh_cfg_section_t *root, void *obj, const char *name, const char *yaml,
                  size_t len, const char *base_dir, poh_strbuf_t *errors);
/* Free everything obj owns according to the tables (not obj itself). */
void poh_cfg_release(const poh_cfg_section_t *sec, void *obj);

/* Check a schema's tables (offsets inside the struct, sections and choices
 * set, defaults that parse, unique keys...), appending one line per mistake.
 * Returns 0 or -EINVAL. Run by the unit tests over poh_cfg_root_section. */
int poh_cfg_schema_check(const poh_cfg_section_t *root, poh_strbuf_t *why);

/* Edit distance (Damerau-Levenshtein, optimal string alignment; ASCII case
 * differences cost nothing) used for "did you mean" suggestions. */
size_t poh_cfg_edit_distance(const char *a, const char *b);

/* Checks shared by schema tables. */
int poh_cfg_check_http_path(const char *value, poh_strbuf_t *why);

/* Parse "500ms", "2s", "1m", "1h", "1m30s" into seconds; 0 or -EINVAL. */
int poh_parse_duration(const char *s, double *seconds);
/* Validate "host:port", "[v6]:port" or ":port" (port 0..65535); 0 or -EINVAL. */
int poh_parse_listen_address(const char *s, char *host, size_t hostlen, unsigned *port);


#endif
