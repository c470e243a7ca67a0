/* SPDX-License-Identifier: Apache-2.0 */
/* config: the table-driven YAML engine and the foundation schema.
 * Error classes are a table of {YAML, exact messages}; a test-only schema
 * exercises what later sections will use (lists of sections, nested lists,
 * string maps with *_file values, secrets, unique names, validate hooks). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appconfig/app_config.h"
#include "config/schema.h"

#define DATA POH_SOURCE_DIR "/tests/unit/data/config"

/* ------------------------------------------------------ test-only schema */

typedef struct t_latency {
    char *name;
    char *to;
    char *to_field;
} t_latency_t;

typedef struct t_tls {
    char *ca_file;
    bool insecure;
} t_tls_t;

typedef struct t_group {
    char *name;
    char **targets;
    size_t targets_count;
    double timeout;
    char *password;
    poh_config_kv_t *metadata;
    size_t metadata_count;
    double *buckets;
    size_t buckets_count;
    t_latency_t *latencies;
    size_t latencies_count;
    t_tls_t tls;
    unsigned port;
    size_t limit;
    char *mode;
    char *listen;
} t_group_t;

typedef struct t_root {
    t_group_t *groups;
    size_t groups_count;
    char *token;
    char **tags;
    size_t tags_count;
} t_root_t;

static int latency_validate(poh_cfg_ctx_t *ctx, void *obj)
{
    t_latency_t *l = obj;
    if (l->to && l->to_field) {
        poh_cfg_error(ctx, "to_field", "cannot be used together with \"to\"");
        return -EINVAL;
    }
    if (!l->to && !l->to_field) {
        poh_cfg_error(ctx, NULL, "one of \"to\" or \"to_field\" is required");
        return -EINVAL;
    }
    return 0;
}

static const char *const to_choices[] = {"commit", NULL};
static const poh_cfg_entry_t latency_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = offsetof(t_latency_t, name),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "to", .type = POH_CFG_ENUM, .offset = offsetof(t_latency_t, to),
     .choices = to_choices},
    {.name = "to_field", .type = POH_CFG_STRING, .offset = offsetof(t_latency_t, to_field)},
    {NULL},
};
static const poh_cfg_section_t latency_section = {sizeof(t_latency_t), latency_entries,
                                                   latency_validate, NULL};

static const poh_cfg_entry_t tls_entries[] = {
    {.name = "ca_file", .type = POH_CFG_STRING, .offset = offsetof(t_tls_t, ca_file)},
    {.name = "insecure", .type = POH_CFG_BOOL, .offset = offsetof(t_tls_t, insecure),
     .def = "false"},
    {NULL},
};
static const poh_cfg_section_t tls_section = {sizeof(t_tls_t), tls_entries};

static const char *const mode_choices[] = {"fast", "slow", NULL};
#define G(f) offsetof(t_group_t, f)
static const poh_cfg_entry_t group_entries[] = {
    {.name = "name", .type = POH_CFG_STRING, .offset = G(name),
     .flags = POH_CFG_REQUIRED | POH_CFG_NONEMPTY},
    {.name = "targets", .type = POH_CFG_STRING_LIST, .offset = G(targets),
     .count_offset = G(targets_count), .flags = POH_CFG_REQUIRED},
    {.name = "timeout", .type = POH_CFG_DURATION, .offset = G(timeout), .def = "2s",
     .min = 0.001, .max = 60},
    {.name = "password", .type = POH_CFG_SECRET, .offset = G(password)},
    {.name = "metadata", .type = POH_CFG_STRING_MAP, .offset = G(metadata),
     .count_offset = G(metadata_count), .flags = POH_CFG_FILE_VALUES},
    {.name = "buckets", .type = POH_CFG_DOUBLE_LIST, .offset = G(buckets),
     .count_offset = G(buckets_count), .flags = POH_CFG_INCREASING, .def = "0.1, 1, 10"},
    {.name = "latencies", .type = POH_CFG_SECTION_LIST, .offset = G(latencies),
     .count_offset = G(latencies_count), .section = &latency_section, .unique = "name"},
    {.name = "tls", .type = POH_CFG_SECTION, .offset = G(tls), .section = &tls_section},
    {.name = "port", .type = POH_CFG_UINT, .offset = G(port), .def = "0", .min = 0,
     .max = 65535},
    {.name = "limit", .type = POH_CFG_SIZE, .offset = G(limit), .def = "1KiB"},
    {.name = "mode", .type = POH_CFG_ENUM, .offset = G(mode), .def = "fast",
     .choices = mode_choices},
    {.name = "listen", .type = POH_CFG_ADDRESS, .offset = G(listen), .def = ":9000",
     .env = "POH_TEST_LISTEN"},
    {NULL},
};
#undef G
static const poh_cfg_section_t group_section = {sizeof(t_group_t), group_entries};

static int no_spaces(const char *value, poh_strbuf_t *why)
{
    if (strchr(value, ' ')) {
        poh_strbuf_puts(why, "must not contain spaces");
        return -EINVAL;
    }
    return 0;
}

static const poh_cfg_entry_t t_root_entries[] = {
    {.name = "groups", .type = POH_CFG_SECTION_LIST, .offset = offsetof(t_root_t, groups),
     .count_offset = offsetof(t_root_t, groups_count), .section = &group_section,
     .unique = "name"},
    {.name = "token", .type = POH_CFG_SECRET, .offset = offsetof(t_root_t, token),
     .flags = POH_CFG_NONEMPTY, .check = no_spaces},
    {.name = "tags", .type = POH_CFG_STRING_LIST, .offset = offsetof(t_root_t, tags),
     .count_offset = offsetof(t_root_t, tags_count), .def = "a, b"},
    {NULL},
};
static const poh_cfg_section_t t_root_section = {sizeof(t_root_t), t_root_entries};

/* Parse with the test schema; the caller releases *root. */
static int tparse(const char *yaml, t_root_t *root, poh_strbuf_t *errors)
{
    memset(root, 0, sizeof *root);
    return poh_cfg_parse(&t_root_section, root, "g.yml", yaml, strlen(yaml), DATA, errors);
}

/* ------------------------------------------------------------ error table */

/* schema NULL: the real configuration through poh_config_load_string("t.yml").
 * want: every line of the error output, exactly, in order. */
static const struct {
    const poh_cfg_section_t *schema;
    const char *yaml;
    const char *want;
} error_cases[] = {
    /* unknown keys, with and without a suggestion */
    {NULL, "web:\n  listen_adress: 1.2.3.4:80\n",
     "t.yml:2:3: web.listen_adress: unknown key (did you mean \"listen_address\"?)\n"},
    {NULL, "web:\n  frobnicate: 1\n", "t.yml:2:3: web.frobnicate: unknown key\n"},
    {NULL, "stat_dir: /x\n", "t.yml:1:1: stat_dir: unknown key (did you mean \"state_dir\"?)\n"},
    {NULL, "Web: {}\n", "t.yml:1:1: Web: unknown key (did you mean \"web\"?)\n"},
    {NULL, "logs:\n  level: info\n", "t.yml:1:1: logs: unknown key (did you mean \"log\"?)\n"},
    {NULL, "x: 1\n", "t.yml:1:1: x: unknown key\n"},
    {NULL, "base: &b {level: info}\nlog:\n  <<: *b\n",
     "t.yml:1:1: base: unknown key\n"
     "t.yml:3:3: log.\"<<\": YAML merge keys are not supported (repeat the keys instead)\n"},
    {NULL, "\"a b.c\": 1\n", "t.yml:1:1: \"a b.c\": unknown key\n"},
    /* wrong node types */
    {NULL, "web:\n  listen_address: {a: 1}\n",
     "t.yml:2:19: web.listen_address: expected an address, got a mapping\n"},
    {NULL, "web:\n  max_connections: [1]\n",
     "t.yml:2:20: web.max_connections: expected an unsigned integer, got a list\n"},
    {NULL, "web: [1, 2]\n", "t.yml:1:6: web: expected a mapping, got a list\n"},
    {NULL, "log: debug\n", "t.yml:1:6: log: expected a mapping, got a scalar\n"},
    {NULL, "- a\n- b\n", "t.yml:1:1: (root): expected a mapping, got a list\n"},
    {NULL, "hello\n", "t.yml:1:1: (root): expected a mapping, got a scalar\n"},
    {NULL, "? [a]\n: 1\n", "t.yml:1:3: (root): keys must be strings, got a list\n"},
    /* unsigned integers */
    {NULL, "web:\n  max_connections: abc\n",
     "t.yml:2:20: web.max_connections: expected an unsigned integer, got \"abc\"\n"},
    {NULL, "web:\n  max_connections: -1\n",
     "t.yml:2:20: web.max_connections: expected an unsigned integer, got \"-1\"\n"},
    {NULL, "web:\n  max_connections: 1.5\n",
     "t.yml:2:20: web.max_connections: expected an unsigned integer, got \"1.5\"\n"},
    {NULL, "web:\n  max_connections: 99999999999\n",
     "t.yml:2:20: web.max_connections: expected an unsigned integer, got \"99999999999\"\n"},
    {NULL, "web:\n  max_connections: 0\n",
     "t.yml:2:20: web.max_connections: 0 is out of range (1 to 65536)\n"},
    /* booleans */
    {NULL, "web:\n  enable_reload: yes\n",
     "t.yml:2:18: web.enable_reload: expected true or false, got \"yes\"\n"},
    {NULL, "web:\n  enable_reload: True\n",
     "t.yml:2:18: web.enable_reload: expected true or false, got \"True\"\n"},
    {NULL, "web:\n  enable_reload: 1\n",
     "t.yml:2:18: web.enable_reload: expected true or false, got \"1\"\n"},
    /* durations */
    {NULL, "web:\n  idle_timeout: 5\n",
     "t.yml:2:17: web.idle_timeout: invalid duration \"5\" (expected a number and a unit such "
     "as 500ms, 2s, 1m30s or 1h)\n"},
    {NULL, "web:\n  idle_timeout: 2 s\n",
     "t.yml:2:17: web.idle_timeout: invalid duration \"2 s\" (expected a number and a unit "
     "such as 500ms, 2s, 1m30s or 1h)\n"},
    {NULL, "web:\n  scrape_timeout_offset: -1s\n",
     "t.yml:2:26: web.scrape_timeout_offset: invalid duration \"-1s\" (expected a number and a "
     "unit such as 500ms, 2s, 1m30s or 1h)\n"},
    {NULL, "web:\n  default_scrape_timeout: 1x\n",
     "t.yml:2:27: web.default_scrape_timeout: invalid duration \"1x\" (expected a number and a "
     "unit such as 500ms, 2s, 1m30s or 1h)\n"},
    {NULL, "web:\n  default_scrape_timeout: 2h\n",
     "t.yml:2:27: web.default_scrape_timeout: 7200s is out of range (0.001s to 3600s)\n"},
    /* sizes */
    {NULL, "web:\n  max_request_bytes: 16KB\n",
     "t.yml:2:22: web.max_request_bytes: invalid size \"16KB\" (expected bytes such as 16384, "
     "512B, 16KiB, 1MiB or 1GiB)\n"},
    {NULL, "web:\n  max_request_bytes: 100\n",
     "t.yml:2:22: web.max_request_bytes: 100 bytes is out of range (1024 bytes to 16777216 "
     "bytes)\n"},
    /* addresses */
    {NULL, "web:\n  listen_address: 127.0.0.1:99999\n",
     "t.yml:2:19: web.listen_address: invalid address \"127.0.0.1:99999\": port 99999 out of "
     "range (0-65535)\n"},
    {NULL, "web:\n  listen_address: localhost\n",
     "t.yml:2:19: web.listen_address: invalid address \"localhost\": missing port (expected "
     "host:port, [ipv6]:port or :port)\n"},
    {NULL, "web:\n  listen_address: '::1:9100'\n",
     "t.yml:2:19: web.listen_address: invalid address \"::1:9100\": IPv6 addresses must be in "
     "brackets, as in [::1]:9100\n"},
    {NULL, "web:\n  listen_address: '[::1]9100'\n",
     "t.yml:2:19: web.listen_address: invalid address \"[::1]9100\": expected \":port\" after "
     "\"]\"\n"},
    {NULL, "web:\n  listen_address: '[zz]:1'\n",
     "t.yml:2:19: web.listen_address: invalid address \"[zz]:1\": invalid IPv6 address in "
     "brackets\n"},
    {NULL, "web:\n  listen_address: 'host:'\n",
     "t.yml:2:19: web.listen_address: invalid address \"host:\": port must be a number from 0 "
     "to 65535\n"},
    {NULL, "web:\n  listen_address: 'a b:80'\n",
     "t.yml:2:19: web.listen_address: invalid address \"a b:80\": invalid character in host "
     "name\n"},
    /* duplicates */
    {NULL, "log:\n  level: info\n  level: warn\n",
     "t.yml:3:3: log.level: duplicate key (first defined at line 2)\n"},
    {NULL, "web: {}\nweb: {}\n", "t.yml:2:1: web: duplicate key (first defined at line 1)\n"},
    /* enums, strings */
    {NULL, "log:\n  level: debg\n",
     "t.yml:2:10: log.level: invalid value \"debg\" (expected one of: debug, info, warn, error) "
     "(did you mean \"debug\"?)\n"},
    {NULL, "log:\n  format: xml\n",
     "t.yml:2:11: log.format: invalid value \"xml\" (expected one of: logfmt, json)\n"},
    {NULL, "state_dir: ''\n", "t.yml:1:12: state_dir: must not be empty\n"},
    {NULL, "state_dir: \"a\\0b\"\n", "t.yml:1:12: state_dir: value contains a NUL byte\n"},
    {NULL, "web:\n  telemetry_path: metrics\n",
     "t.yml:2:19: web.telemetry_path: must start with \"/\"\n"},
    {NULL, "web:\n  telemetry_path: /a?b\n",
     "t.yml:2:19: web.telemetry_path: must be a plain URL path (no spaces, \"?\" or \"#\")\n"},
    /* YAML syntax */
    {NULL, "a: b: c\n",
     "t.yml:1:5: (root): YAML syntax error: mapping values are not allowed in this context\n"},
    {NULL, "web:\n\tlisten_address: x\n",
     "t.yml:2:1: (root): YAML syntax error: found character that cannot start any token (while "
     "scanning for the next token at line 2, column 1)\n"},
    {NULL, "web: {listen_address: x\n",
     "t.yml:2:1: (root): YAML syntax error: did not find expected ',' or '}' (while parsing a "
     "flow mapping at line 1, column 6)\n"},
    {NULL, "web:\n  listen_address: \"x\n",
     "t.yml:3:1: (root): YAML syntax error: found unexpected end of stream (while scanning a "
     "quoted scalar at line 2, column 19)\n"},
    {NULL, "state_dir: \xff\n",
     "t.yml:1:12: (root): YAML syntax error: invalid leading UTF-8 octet\n"},
    {NULL, "a: *nope\n",
     "t.yml:1:4: (root): YAML syntax error: found undefined alias\n"},
    {NULL, "web: {}\n---\nlog: {}\n",
     "t.yml:3:1: (root): more than one YAML document (remove the \"---\" separator)\n"},
    /* several errors in one pass, in document order */
    {NULL,
     "web:\n  listen_adress: 1.2.3.4:80\n  idle_timeout: 5 minutes\n  max_connections: x\n"
     "logg: {}\nlog:\n  level: loud\nstate_dir: ''\n",
     "t.yml:2:3: web.listen_adress: unknown key (did you mean \"listen_address\"?)\n"
     "t.yml:3:17: web.idle_timeout: invalid duration \"5 minutes\" (expected a number and a "
     "unit such as 500ms, 2s, 1m30s or 1h)\n"
     "t.yml:4:20: web.max_connections: expected an unsigned integer, got \"x\"\n"
     "t.yml:5:1: logg: unknown key (did you mean \"log\"?)\n"
     "t.yml:7:10: log.level: invalid value \"loud\" (expected one of: debug, info, warn, "
     "error)\n"
     "t.yml:8:12: state_dir: must not be empty\n"},

    /* test-only schema: what later sections (grpc, mongodb, tracing) use */
    {&t_root_section, "groups:\n  - targets: [a:1]\n",
     "g.yml:2:5: groups[0].name: missing required key\n"},
    {&t_root_section, "groups:\n  - name: a\n",
     "g.yml:2:5: groups[0].targets: missing required key\n"},
    {&t_root_section, "groups:\n  - name: ~\n    targets: [a:1]\n",
     "g.yml:2:11: groups[0].name: a value is required\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: []\n",
     "g.yml:3:14: groups[0].targets: must not be empty\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: [a:1, {x: 1}, [b]]\n",
     "g.yml:3:20: groups[0].targets[1]: expected a string, got a mapping\n"
     "g.yml:3:28: groups[0].targets[2]: expected a string, got a list\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: [{x: 1}]\n",
     "g.yml:3:15: groups[0].targets[0]: expected a string, got a mapping\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: a:1\n",
     "g.yml:3:14: groups[0].targets: expected a list, got a scalar\n"},
    {&t_root_section, "groups: {name: a}\n", "g.yml:1:9: groups: expected a list, got a mapping\n"},
    {&t_root_section, "groups: [{name: a, targets: [x], buckets: [1, 0.5, x, 2]}]\n",
     "g.yml:1:47: groups[0].buckets[1]: values must be strictly increasing (0.5 after 1)\n"
     "g.yml:1:52: groups[0].buckets[2]: expected a number, got \"x\"\n"},
    {&t_root_section, "groups: [{name: a, targets: [x], buckets: [1, .inf]}]\n",
     "g.yml:1:47: groups[0].buckets[1]: expected a number, got \".inf\"\n"},
    {&t_root_section, "groups:\n  - {name: a, targets: [x]}\n  - {name: b, targets: [x]}\n"
                      "  - {name: a, targets: [y]}\n  - {name: a, targets: [z]}\n",
     "g.yml:4:12: groups[2].name: duplicate value \"a\" (already used by item 0)\n"
     "g.yml:5:12: groups[3].name: duplicate value \"a\" (already used by item 0)\n"},
    {&t_root_section,
     "groups:\n  - name: a\n    targets: [x]\n    latencies:\n      - {name: s}\n"
     "      - {name: t, to: commit, to_field: approved_at}\n      - {name: s, to: comit}\n",
     "g.yml:5:9: groups[0].latencies[0]: one of \"to\" or \"to_field\" is required\n"
     "g.yml:6:41: groups[0].latencies[1].to_field: cannot be used together with \"to\"\n"
     "g.yml:7:23: groups[0].latencies[2].to: invalid value \"comit\" (expected one of: commit) "
     "(did you mean \"commit\"?)\n"
     "g.yml:7:16: groups[0].latencies[2].name: duplicate value \"s\" (already used by item 0)\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: [x]\n    tls: {insecre: true}\n",
     "g.yml:4:11: groups[0].tls.insecre: unknown key (did you mean \"insecure\"?)\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: [x]\n    pasword_file: /x\n",
     "g.yml:4:5: groups[0].pasword_file: unknown key (did you mean \"password_file\"?)\n"},
    {&t_root_section,
     "groups:\n  - name: a\n    targets: [x]\n    metadata: {a: 1, a: 2, b: [1], c_file: c, "
     "c: 3}\n",
     "g.yml:4:22: groups[0].metadata.a: duplicate key (first defined at line 4)\n"
     "g.yml:4:31: groups[0].metadata.b: expected a string, got a list\n"
     "g.yml:4:44: groups[0].metadata.c_file: cannot read \"" DATA "/c\": No such file or "
     "directory\n"
     "g.yml:4:47: groups[0].metadata.c: conflicts with \"c_file\" at line 4\n"},
    {&t_root_section,
     "groups:\n  - name: a\n    targets: [x]\n    metadata: {auth_file: missing.txt}\n",
     "g.yml:4:27: groups[0].metadata.auth_file: cannot read \"" DATA "/missing.txt\": No such "
     "file or directory\n"},
    {&t_root_section, "groups:\n  - name: a\n    targets: [x]\n    timeout: 0s\n    port: "
                      "65536\n    limit: 1TiB\n    mode: fastest\n    listen: x\n",
     "g.yml:4:14: groups[0].timeout: 0s is out of range (0.001s to 60s)\n"
     "g.yml:5:11: groups[0].port: 65536 is out of range (0 to 65535)\n"
     "g.yml:6:12: groups[0].limit: invalid size \"1TiB\" (expected bytes such as 16384, 512B, "
     "16KiB, 1MiB or 1GiB)\n"
     "g.yml:7:11: groups[0].mode: invalid value \"fastest\" (expected one of: fast, slow) "
     "(did you mean \"fast\"?)\n"
     "g.yml:8:13: groups[0].listen: invalid address \"x\": missing port (expected host:port, "
     "[ipv6]:port or :port)\n"},
    /* secrets: both forms, bad files; the content never appears */
    {&t_root_section, "token: abc\ntoken_file: password.txt\n",
     "g.yml:2:1: token_file: conflicts with \"token\" at line 1\n"},
    {&t_root_section, "token_file: password.txt\ntoken: abc\n",
     "g.yml:2:1: token: conflicts with \"token_file\" at line 1\n"},
    {&t_root_section, "token_file: nope.txt\n",
     "g.yml:1:13: token_file: cannot read \"" DATA "/nope.txt\": No such file or directory\n"},
    {&t_root_section, "token_file: empty.txt\n",
     "g.yml:1:13: token_file: file \"" DATA "/empty.txt\" is empty\n"},
    {&t_root_section, "token_file: /\n",
     "g.yml:1:13: token_file: cannot read \"/\": not a regular file\n"},
    {&t_root_section, "token: 'has space'\n", "g.yml:1:8: token: must not contain spaces\n"},
    {&t_root_section, "token_file: spaced.txt\n",
     "g.yml:1:13: token_file: content of the file: must not contain spaces\n"},
    {&t_root_section, "token: ''\n", "g.yml:1:8: token: must not be empty\n"},
    {&t_root_section, "token: {a: b}\n", "g.yml:1:8: token: expected a string, got a mapping\n"},
    {&t_root_section, "token_file: [a]\n",
     "g.yml:1:13: token_file: expected a string, got a list\n"},

    /* names a configuration makes may not clash with another kind's fixed ones */
    {NULL,
     "mongodb:\n  - name: m\n    uri: mongodb://h/\n    change_streams:\n"
     "      - {name: tx, database: d, collection: c, latencies: [\n"
     "          {name: mongodb_operation, from_field: t, to: commit},\n"
     "          {name: grpc_method, from_field: t, to: commit},\n"
     "          {name: storage, from_field: t, to: commit}]}\n",
     "t.yml:5:7: mongodb[0].change_streams: stream \"tx\": latency \"mongodb_operation\" would be "
     "exported as poh_mongodb_operation_latency_seconds, which clashes with "
     "poh_mongodb_operation_latency_seconds_total of the mongodb collector\n"
     "t.yml:5:7: mongodb[0].change_streams: stream \"tx\": latency \"grpc_method\" would be "
     "exported as poh_grpc_method_latency_seconds, which clashes with "
     "poh_grpc_method_latency_seconds of the grpc collector\n"},
    {NULL,
     "grpc:\n  - name: g\n    targets: [\"a:1\"]\n    state:\n      method: /a.B/C\n"
     "      fields:\n        - {path: \"1\", metric: poh_mongodb_up}\n"
     "        - {path: \"2\", metric: poh_exporter_build_info}\n"
     "        - {path: \"3\", metric: poh_node_height}\n",
     "t.yml:5:7: grpc[0].state: gauge poh_mongodb_up clashes with poh_mongodb_up of the mongodb "
     "collector\n"
     "t.yml:5:7: grpc[0].state: gauge poh_exporter_build_info clashes with "
     "poh_exporter_build_info of the self collector\n"},
};

START_TEST(test_error_messages)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    const char *yaml = error_cases[_i].yaml;
    int rc;
    if (error_cases[_i].schema) {
        t_root_t root;
        rc = tparse(yaml, &root, &err);
        poh_cfg_release(&t_root_section, &root);
    } else {
        poh_config_t *cfg = (poh_config_t *)1;
        rc = poh_config_load_string("t.yml", yaml, strlen(yaml), &cfg, &err);
        ck_assert_ptr_null(cfg);
    }
    ck_assert_msg(rc == -EINVAL, "case %d: rc %d", _i, rc);
    ck_assert_msg(err.data && strcmp(err.data, error_cases[_i].want) == 0,
                  "case %d:\n--- yaml\n%s--- got\n%s--- want\n%s", _i, yaml,
                  err.data ? err.data : "(nothing)\n", error_cases[_i].want);
    /* No message ever carries the secret fixtures' content. */
    ck_assert_ptr_null(strstr(err.data, "s3cr3t"));
    ck_assert_ptr_null(strstr(err.data, "spaced-s3cret"));
    poh_strbuf_free(&err);
}
END_TEST

/* ------------------------------------------------------------ valid configs */

static poh_config_t *load_ok(const char *yaml)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_config_t *cfg = NULL;
    int rc = poh_config_load_string("t.yml", yaml, strlen(yaml), &cfg, &err);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err.data ? err.data : "");
    ck_assert_ptr_nonnull(cfg);
    ck_assert(err.len == 0);
    poh_strbuf_free(&err);
    return cfg;
}

static void assert_defaults(const poh_config_t *c)
{
    ck_assert_str_eq(c->web.listen_address, "0.0.0.0:8000");
    ck_assert_str_eq(c->web.telemetry_path, "/metrics");
    ck_assert(!c->web.enable_reload);
    ck_assert_double_eq(c->web.scrape_timeout_offset, 0.5);
    ck_assert_double_eq(c->web.default_scrape_timeout, 10);
    ck_assert_uint_eq(c->web.max_connections, 64);
    ck_assert_double_eq(c->web.idle_timeout, 30);
    ck_assert_uint_eq(c->web.max_request_bytes, 16384);
    ck_assert_str_eq(c->log.level, "info");
    ck_assert_str_eq(c->log.format, "logfmt");
    ck_assert_str_eq(c->state_dir, "/var/lib/poh_exporter");
}

START_TEST(test_defaults)
{
    unsetenv("PROMETHEUS_BIND");
    static const char *const empties[] = {"", "\n", "# only a comment\n", "---\n", "--- ~\n",
                                          "{}\n", "web:\nlog:\n", "web: {}\nlog: ~\n",
                                          "state_dir:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        poh_config_t *c = load_ok(empties[i]);
        assert_defaults(c);
        ck_assert_str_eq(c->source, "t.yml");
        poh_config_free(c);
    }
    poh_config_t *c = NULL;
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_config_load_default(&c, &err), 0);
    assert_defaults(c);
    ck_assert_str_eq(c->source, "<embedded>");
    poh_config_free(c);
    /* errors may be NULL */
    ck_assert_int_eq(poh_config_load_string("x", "web: 1", 6, &c, NULL), -EINVAL);
    ck_assert_ptr_null(c);
    poh_config_free(NULL);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_all_values)
{
    poh_config_t *c = load_ok("web:\n"
                              "  listen_address: \"[::1]:9100\"\n"
                              "  telemetry_path: /probe-metrics\n"
                              "  enable_reload: true\n"
                              "  scrape_timeout_offset: 250ms\n"
                              "  default_scrape_timeout: 1m30s\n"
                              "  max_connections: 128\n"
                              "  idle_timeout: 2m\n"
                              "  max_request_bytes: 1MiB\n"
                              "log: {level: debug, format: json}\n"
                              "state_dir: /tmp/poh-state\n");
    ck_assert_str_eq(c->web.listen_address, "[::1]:9100");
    ck_assert_str_eq(c->web.telemetry_path, "/probe-metrics");
    ck_assert(c->web.enable_reload);
    ck_assert_double_eq(c->web.scrape_timeout_offset, 0.25);
    ck_assert_double_eq(c->web.default_scrape_timeout, 90);
    ck_assert_uint_eq(c->web.max_connections, 128);
    ck_assert_double_eq(c->web.idle_timeout, 120);
    ck_assert_uint_eq(c->web.max_request_bytes, 1048576);
    ck_assert_str_eq(c->log.level, "debug");
    ck_assert_str_eq(c->log.format, "json");
    ck_assert_str_eq(c->state_dir, "/tmp/poh-state");
    poh_config_free(c);

    /* Plain ":port", a quoted bool is still a bool, anchors and aliases resolve. */
    c = load_ok("web:\n  listen_address: :8001\n  enable_reload: \"true\"\n"
                "  max_request_bytes: 2048\n"
                "log: &l {level: warn}\n");
    ck_assert_str_eq(c->web.listen_address, ":8001");
    ck_assert(c->web.enable_reload);
    ck_assert_uint_eq(c->web.max_request_bytes, 2048);
    ck_assert_str_eq(c->log.level, "warn");
    poh_config_free(c);
}
END_TEST

START_TEST(test_load_file)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_config_t *c = NULL;
    ck_assert_int_eq(poh_config_load_file(DATA "/full.yml", &c, &err), 0);
    ck_assert_str_eq(c->source, DATA "/full.yml");
    ck_assert_str_eq(c->web.listen_address, "[::1]:9100");
    ck_assert_double_eq(c->web.default_scrape_timeout, 90);
    ck_assert_str_eq(c->log.format, "json");
    poh_config_free(c);

    ck_assert_int_eq(poh_config_load_file(DATA "/invalid.yml", &c, &err), -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.data,
                     DATA "/invalid.yml:2:3: web.listen_adress: unknown key (did you mean "
                          "\"listen_address\"?)\n"
                     DATA "/invalid.yml:3:19: web.listen_address: invalid address "
                          "\"127.0.0.1:99999\": port 99999 out of range (0-65535)\n"
                     DATA "/invalid.yml:4:17: web.idle_timeout: invalid duration \"5 minutes\" "
                          "(expected a number and a unit such as 500ms, 2s, 1m30s or 1h)\n"
                     DATA "/invalid.yml:6:10: log.level: invalid value \"loud\" (expected one "
                          "of: debug, info, warn, error)\n"
                     DATA "/invalid.yml:7:1: logs: unknown key (did you mean \"log\"?)\n");
    poh_strbuf_reset(&err);

    ck_assert_int_eq(poh_config_load_file(DATA "/does-not-exist.yml", &c, &err), -ENOENT);
    ck_assert_str_eq(err.data, DATA "/does-not-exist.yml: cannot read configuration: No such "
                               "file or directory\n");
    poh_strbuf_reset(&err);
    ck_assert_int_eq(poh_config_load_file(DATA, &c, &err), -EINVAL);
    ck_assert_str_eq(err.data, DATA ": cannot read configuration: not a regular file\n");
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_shipped_config)
{
    const char *src = getenv("POH_SOURCE_DIR") ? getenv("POH_SOURCE_DIR") : POH_SOURCE_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/poh_exporter.yml", src);
    unsetenv("PROMETHEUS_BIND");
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_config_t *c = NULL;
    int rc = poh_config_load_file(path, &c, &err);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    /* The shipped file documents the defaults, so it equals running without it. */
    assert_defaults(c);
    poh_config_free(c);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_env_precedence)
{
    setenv("PROMETHEUS_BIND", "127.0.0.1:9999", 1);
    poh_config_t *c = load_ok("");
    ck_assert_str_eq(c->web.listen_address, "127.0.0.1:9999");
    poh_config_free(c);
    ck_assert_int_eq(poh_config_load_default(&c, NULL), 0);
    ck_assert_str_eq(c->web.listen_address, "127.0.0.1:9999");
    poh_config_free(c);

    c = load_ok("web:\n  listen_address: 127.0.0.2:7000\n");   /* file wins */
    ck_assert_str_eq(c->web.listen_address, "127.0.0.2:7000");
    poh_config_free(c);
    c = load_ok("web:\n  listen_address: ~\n");                /* null = not set */
    ck_assert_str_eq(c->web.listen_address, "127.0.0.1:9999");
    poh_config_free(c);

    setenv("PROMETHEUS_BIND", "", 1);                           /* empty = unset */
    c = load_ok("");
    ck_assert_str_eq(c->web.listen_address, "0.0.0.0:8000");
    poh_config_free(c);

    setenv("PROMETHEUS_BIND", "nonsense", 1);
    poh_strbuf_t err = POH_STRBUF_INIT;
    ck_assert_int_eq(poh_config_load_string("t.yml", "", 0, &c, &err), -EINVAL);
    ck_assert_str_eq(err.data, "t.yml: web.listen_address: invalid value in environment variable "
                               "PROMETHEUS_BIND: invalid address \"nonsense\": missing port "
                               "(expected host:port, [ipv6]:port or :port)\n");
    /* A file value means the environment is not even looked at. */
    c = load_ok("web: {listen_address: ':1'}\n");
    ck_assert_str_eq(c->web.listen_address, ":1");
    poh_config_free(c);
    unsetenv("PROMETHEUS_BIND");
    poh_strbuf_free(&err);
}
END_TEST

/* -------------------------------------------------------- generic engine */

START_TEST(test_generic_sections)
{
    setenv("POH_TEST_LISTEN", "[::1]:1234", 1);
    poh_strbuf_t err = POH_STRBUF_INIT;
    t_root_t r;
    int rc = tparse("groups:\n"
                    "  - name: poh\n"
                    "    targets: [poh-1:50051, 'poh-2:50051']\n"
                    "    timeout: 1500ms\n"
                    "    password_file: password.txt\n"
                    "    metadata: {authorization_file: header_value.txt, x-tenant: blue}\n"
                    "    buckets: [0.005, 0.01, 1e1]\n"
                    "    latencies:\n"
                    "      - {name: storage, to: commit}\n"
                    "      - {name: approval, to_field: approved_at}\n"
                    "    tls: {ca_file: /ca.pem, insecure: true}\n"
                    "    port: 65535\n"
                    "    limit: 3MiB\n"
                    "    mode: slow\n"
                    "    listen: 10.0.0.1:80\n"
                    "  - name: presence\n"
                    "    targets: [presence:50052]\n"
                    "    password: inline-pw\n"
                    "token_file: " DATA "/token_crlf.txt\n"
                    "tags: [x]\n",
                    &r, &err);
    ck_assert_msg(rc == 0, "%s", err.data ? err.data : "");
    ck_assert_uint_eq(r.groups_count, 2);
    t_group_t *g = &r.groups[0];
    ck_assert_str_eq(g->name, "poh");
    ck_assert_uint_eq(g->targets_count, 2);
    ck_assert_str_eq(g->targets[0], "poh-1:50051");
    ck_assert_str_eq(g->targets[1], "poh-2:50051");
    ck_assert_double_eq(g->timeout, 1.5);
    ck_assert_str_eq(g->password, "s3cr3t-pa55");
    ck_assert_uint_eq(g->metadata_count, 2);
    ck_assert_str_eq(g->metadata[0].key, "authorization");
    ck_assert_str_eq(g->metadata[0].value, "hdr-value");
    ck_assert_str_eq(g->metadata[1].key, "x-tenant");
    ck_assert_str_eq(g->metadata[1].value, "blue");
    ck_assert_uint_eq(g->buckets_count, 3);
    ck_assert_double_eq(g->buckets[0], 0.005);
    ck_assert_double_eq(g->buckets[2], 10);
    ck_assert_uint_eq(g->latencies_count, 2);
    ck_assert_str_eq(g->latencies[0].name, "storage");
    ck_assert_str_eq(g->latencies[0].to, "commit");
    ck_assert_ptr_null(g->latencies[0].to_field);
    ck_assert_str_eq(g->latencies[1].to_field, "approved_at");
    ck_assert_str_eq(g->tls.ca_file, "/ca.pem");
    ck_assert(g->tls.insecure);
    ck_assert_uint_eq(g->port, 65535);
    ck_assert_uint_eq(g->limit, 3u << 20);
    ck_assert_str_eq(g->mode, "slow");
    ck_assert_str_eq(g->listen, "10.0.0.1:80");
    /* Second group: defaults everywhere, environment for listen. */
    g = &r.groups[1];
    ck_assert_str_eq(g->password, "inline-pw");
    ck_assert_double_eq(g->timeout, 2);
    ck_assert_uint_eq(g->buckets_count, 3);
    ck_assert_double_eq(g->buckets[0], 0.1);
    ck_assert_double_eq(g->buckets[1], 1);
    ck_assert_double_eq(g->buckets[2], 10);
    ck_assert_uint_eq(g->metadata_count, 0);
    ck_assert_uint_eq(g->latencies_count, 0);
    ck_assert_ptr_null(g->tls.ca_file);
    ck_assert(!g->tls.insecure);
    ck_assert_uint_eq(g->limit, 1024);
    ck_assert_str_eq(g->mode, "fast");
    ck_assert_str_eq(g->listen, "[::1]:1234");
    ck_assert_str_eq(r.token, "tok-123");   /* "\r\n" stripped */
    ck_assert_uint_eq(r.tags_count, 1);
    ck_assert_str_eq(r.tags[0], "x");
    poh_cfg_release(&t_root_section, &r);
    ck_assert_ptr_null(r.groups);
    ck_assert_uint_eq(r.groups_count, 0);

    /* Absent lists: default list or empty. */
    unsetenv("POH_TEST_LISTEN");
    ck_assert_int_eq(tparse("", &r, &err), 0);
    ck_assert_uint_eq(r.groups_count, 0);
    ck_assert_ptr_null(r.token);
    ck_assert_uint_eq(r.tags_count, 2);
    ck_assert_str_eq(r.tags[0], "a");
    ck_assert_str_eq(r.tags[1], "b");
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_secret_files)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    t_root_t r;
    /* Only one trailing newline is removed. */
    ck_assert_int_eq(tparse("token_file: two_newlines.txt\n", &r, &err), 0);
    ck_assert_str_eq(r.token, "two\n");
    poh_cfg_release(&t_root_section, &r);
    ck_assert_int_eq(tparse("token_file: header_value.txt\n", &r, &err), 0);
    ck_assert_str_eq(r.token, "hdr-value");
    poh_cfg_release(&t_root_section, &r);
    /* Relative paths: from base_dir; absolute paths as they are. */
    ck_assert_int_eq(tparse("token_file: " DATA "/password.txt\n", &r, &err), 0);
    ck_assert_str_eq(r.token, "s3cr3t-pa55");
    poh_cfg_release(&t_root_section, &r);
    /* A secret that fails a check is reported without its content. */
    ck_assert_int_eq(tparse("token: 'pa ss'\n", &r, &err), -EINVAL);
    ck_assert_ptr_null(strstr(err.data, "pa ss"));
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_reset(&err);
    ck_assert_int_eq(tparse("groups: [{name: a, targets: [x], password: 'p w', port: q}]\n",
                            &r, &err), -EINVAL);
    ck_assert_str_eq(err.data, "g.yml:1:57: groups[0].port: expected an unsigned integer, got "
                               "\"q\"\n");
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_free(&err);
}
END_TEST

/* A FIFO given as a secret or config file is refused instead of blocking. */
START_TEST(test_fifo_does_not_block)
{
    char dir[] = "/tmp/poh-config-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char fifo[64], yaml[128], want[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    snprintf(yaml, sizeof yaml, "token_file: %s\n", fifo);
    snprintf(want, sizeof want, "g.yml:1:13: token_file: cannot read \"%s\": not a regular file\n",
             fifo);
    poh_strbuf_t err = POH_STRBUF_INIT;
    t_root_t r;
    ck_assert_int_eq(tparse(yaml, &r, &err), -EINVAL);
    ck_assert_str_eq(err.data, want);
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_reset(&err);
    poh_config_t *c = NULL;
    ck_assert_int_eq(poh_config_load_file(fifo, &c, &err), -EINVAL);
    snprintf(want, sizeof want, "%s: cannot read configuration: not a regular file\n", fifo);
    ck_assert_str_eq(err.data, want);
    unlink(fifo);
    rmdir(dir);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_error_cap)
{
    poh_strbuf_t yaml = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    for (int i = 0; i < 80; i++)
        poh_strbuf_printf(&yaml, "bad%d: 1\n", i);
    poh_config_t *c = NULL;
    ck_assert_int_eq(poh_config_load_string("t.yml", yaml.data, yaml.len, &c, &err), -EINVAL);
    size_t lines = 0;
    for (const char *p = err.data; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, POH_CFG_MAX_ERRORS + 1);
    ck_assert(strncmp(err.data, "t.yml:1:1: bad0: unknown key\n", 29) == 0);
    ck_assert_ptr_nonnull(strstr(err.data, "t.yml:50:1: bad49: unknown key\n"
                                           "t.yml: too many errors, stopping after 50\n"));
    poh_strbuf_free(&yaml);
    poh_strbuf_free(&err);
}
END_TEST

/* CPU time this process has used: the two guards below bound the work a
 * hostile document costs, which other processes on a loaded machine do not
 * change (wall time they do). */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Aliases multiply work without multiplying text; the visit budget stops it. */
START_TEST(test_alias_bomb)
{
    poh_strbuf_t yaml = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    poh_strbuf_puts(&yaml, "groups:\n  - &g {name: a, targets: &t [");
    for (int i = 0; i < 2000; i++)
        poh_strbuf_puts(&yaml, i ? ", x" : "x");
    poh_strbuf_puts(&yaml, "]}\n");
    for (int i = 0; i < 2000; i++)
        poh_strbuf_puts(&yaml, "  - *g\n");
    t_root_t r;
    double cpu0 = cpu_seconds();
    ck_assert_int_eq(poh_cfg_parse(&t_root_section, memset(&r, 0, sizeof r), "g.yml", yaml.data,
                                   yaml.len, NULL, &err),
                     -EINVAL);
    double cpu = cpu_seconds() - cpu0;
    ck_assert_ptr_nonnull(strstr(err.data, "document too complex"));
    ck_assert_msg(cpu < 20, "%.1f s of CPU", cpu);
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_free(&yaml);
    poh_strbuf_free(&err);
}
END_TEST

/* 200k items sharing one name: duplicate detection stays n log n. */
START_TEST(test_many_duplicates)
{
    poh_strbuf_t yaml = POH_STRBUF_INIT, err = POH_STRBUF_INIT;
    poh_strbuf_puts(&yaml, "groups:\n  - &g {name: a, targets: [x]}\n");
    for (int i = 1; i < 200000; i++)
        poh_strbuf_puts(&yaml, "  - *g\n");
    t_root_t r;
    double cpu0 = cpu_seconds();
    ck_assert_int_eq(poh_cfg_parse(&t_root_section, memset(&r, 0, sizeof r), "g.yml", yaml.data,
                                   yaml.len, NULL, &err),
                     -EINVAL);
    double cpu = cpu_seconds() - cpu0;
    ck_assert_uint_eq(r.groups_count, 200000);
    /* An alias reports the anchored text's position under the path where it is used. */
    static const char first[] =
        "g.yml:2:15: groups[1].name: duplicate value \"a\" (already used by item 0)\n";
    ck_assert(strncmp(err.data, first, sizeof first - 1) == 0);
    ck_assert_ptr_nonnull(strstr(err.data, "g.yml: too many errors, stopping after 50\n"));
    ck_assert_msg(cpu < 30, "%.1f s of CPU", cpu);
    poh_cfg_release(&t_root_section, &r);
    poh_strbuf_free(&yaml);
    poh_strbuf_free(&err);
}
END_TEST

START_TEST(test_too_large)
{
    size_t n = (4u << 20) + 1;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', n);
    poh_strbuf_t err = POH_STRBUF_INIT;
    poh_config_t *c = NULL;
    ck_assert_int_eq(poh_config_load_string("t.yml", big, n, &c, &err), -EINVAL);
    ck_assert_str_eq(err.data, "t.yml: file too large (4194305 bytes, at most 4194304)\n");
    free(big);
    poh_strbuf_free(&err);
}
END_TEST

/* ---------------------------------------------------------- parse helpers */

static const struct {
    const char *s;
    int rc;
    double seconds;
} durations[] = {
    {"500ms", 0, 0.5}, {"2s", 0, 2},      {"1m", 0, 60},     {"1m30s", 0, 90},
    {"1h", 0, 3600},   {"0s", 0, 0},      {"1d", 0, 86400},  {"1w", 0, 604800},
    {"1h1m1s1ms", 0, 3661.001},           {"90s", 0, 90},    {"5", -EINVAL, 0},
    {"2 s", -EINVAL, 0}, {"-1s", -EINVAL, 0}, {"1x", -EINVAL, 0}, {"", -EINVAL, 0},
    {"s", -EINVAL, 0}, {"1.5s", -EINVAL, 0}, {"1s1m", -EINVAL, 0}, {"1s1s", -EINVAL, 0},
    {"1ms1s", -EINVAL, 0}, {" 1s", -EINVAL, 0}, {"1s ", -EINVAL, 0}, {"1S", -EINVAL, 0},
    {"1000000000000s", -EINVAL, 0}, {"999999999999w", -EINVAL, 0}, {"1mss", -EINVAL, 0},
};

START_TEST(test_parse_duration)
{
    double v = -7;
    int rc = poh_parse_duration(durations[_i].s, &v);
    ck_assert_msg(rc == durations[_i].rc, "\"%s\": rc %d", durations[_i].s, rc);
    if (rc == 0)
        ck_assert_double_eq_tol(v, durations[_i].seconds, 1e-9);
    else
        ck_assert_double_eq(v, -7);
}
END_TEST

static const struct {
    const char *s;
    int rc;
    const char *host;
    unsigned port;
} addresses[] = {
    {"0.0.0.0:8000", 0, "0.0.0.0", 8000},   {"[::1]:9100", 0, "::1", 9100},
    {":8000", 0, "", 8000},                 {"localhost:0", 0, "localhost", 0},
    {"host-1.example.org:65535", 0, "host-1.example.org", 65535},
    {"[fe80::1]:1", 0, "fe80::1", 1},       {"a:65536", -EINVAL, NULL, 0},
    {"a:", -EINVAL, NULL, 0},               {"a", -EINVAL, NULL, 0},
    {"", -EINVAL, NULL, 0},                 {"::1:80", -EINVAL, NULL, 0},
    {"[::1]", -EINVAL, NULL, 0},            {"[::1]:", -EINVAL, NULL, 0},
    {"[::1:80", -EINVAL, NULL, 0},          {"[]:80", -EINVAL, NULL, 0},
    {"[1.2.3.4]:80", -EINVAL, NULL, 0},     {"a:-1", -EINVAL, NULL, 0},
    {"a:1x", -EINVAL, NULL, 0},             {"a b:1", -EINVAL, NULL, 0},
    {"a:123456", -EINVAL, NULL, 0},         {"a/b:1", -EINVAL, NULL, 0},
};

START_TEST(test_parse_listen_address)
{
    char host[64] = "unchanged";
    unsigned port = 7;
    int rc = poh_parse_listen_address(addresses[_i].s, host, sizeof host, &port);
    ck_assert_msg(rc == addresses[_i].rc, "\"%s\": rc %d", addresses[_i].s, rc);
    if (rc == 0) {
        ck_assert_str_eq(host, addresses[_i].host);
        ck_assert_uint_eq(port, addresses[_i].port);
    }
}
END_TEST

START_TEST(test_listen_address_host_buffer)
{
    char host[4];
    unsigned port;
    ck_assert_int_eq(poh_parse_listen_address("abc:1", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "abc");
    ck_assert_int_eq(poh_parse_listen_address("abcd:1", host, sizeof host, &port), -EINVAL);
    ck_assert_int_eq(poh_parse_listen_address("abcd:1", NULL, 0, NULL), 0);
    ck_assert_int_eq(poh_parse_listen_address(NULL, NULL, 0, NULL), -EINVAL);
}
END_TEST

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(poh_cfg_edit_distance("", ""), 0);
    ck_assert_uint_eq(poh_cfg_edit_distance("abc", ""), 3);
    ck_assert_uint_eq(poh_cfg_edit_distance("listen_adress", "listen_address"), 1);
    ck_assert_uint_eq(poh_cfg_edit_distance("lsiten_address", "listen_address"), 1); /* swap */
    ck_assert_uint_eq(poh_cfg_edit_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(poh_cfg_edit_distance("WEB", "web"), 0);
    char longer[80];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    ck_assert_uint_eq(poh_cfg_edit_distance(longer, "a"), SIZE_MAX);
}
END_TEST

/* A broken table is caught before it can misparse anything. */
static const poh_cfg_entry_t broken_entries[] = {
    {.name = "a", .type = POH_CFG_UINT, .offset = 0, .def = "ten"},
    {.name = "a", .type = POH_CFG_STRING, .offset = 8},
    {.name = "l", .type = POH_CFG_STRING_LIST, .offset = 0, .count_offset = 0},
    {.name = "s", .type = POH_CFG_SECTION, .offset = 0},
    {.name = "e", .type = POH_CFG_ENUM, .offset = 0},
    {.name = "r", .type = POH_CFG_STRING, .offset = 0, .flags = POH_CFG_REQUIRED, .def = "x"},
    {.name = "far", .type = POH_CFG_BOOL, .offset = 4096},
    {NULL},
};
static const poh_cfg_section_t broken_section = {16, broken_entries};

START_TEST(test_schema_check)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    ck_assert_msg(poh_cfg_schema_check(&poh_cfg_root_section, &why) == 0, "%s", why.data);
    ck_assert_msg(poh_cfg_schema_check(&t_root_section, &why) == 0, "%s", why.data);
    ck_assert_int_eq(poh_cfg_schema_check(&broken_section, &why), -EINVAL);
    ck_assert_str_eq(why.data,
                     "a: bad default: expected an unsigned integer, got \"ten\"\n"
                     "a: empty or duplicate key name\n"
                     "l: offset or count_offset outside the struct\n"
                     "s: .section must be set exactly for sections\n"
                     "e: .choices must be set exactly for enums\n"
                     "r: a required key cannot have a default\n"
                     "far: offset or count_offset outside the struct\n");
    poh_strbuf_free(&why);
}
END_TEST

/* ------------------------------------------------------------------ fuzz */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Every result is either a config and no errors, or no config and one or more
 * lines that each start with the source name. */
static void check_one(const char *text, size_t len, bool test_schema)
{
    poh_strbuf_t err = POH_STRBUF_INIT;
    int rc;
    if (test_schema) {
        t_root_t r;
        memset(&r, 0, sizeof r);
        rc = poh_cfg_parse(&t_root_section, &r, "f.yml", text, len, DATA, &err);
        poh_cfg_release(&t_root_section, &r);
    } else {
        poh_config_t *c = NULL;
        rc = poh_config_load_string("f.yml", text, len, &c, &err);
        ck_assert((rc == 0) == (c != NULL));
        poh_config_free(c);
    }
    ck_assert(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        ck_assert_uint_eq(err.len, 0);
    } else {
        ck_assert(err.len > 0 && err.data[err.len - 1] == '\n');
        for (const char *line = err.data; *line; line = strchr(line, '\n') + 1)
            ck_assert_msg(strncmp(line, "f.yml", 5) == 0, "bad line: %s", line);
        ck_assert_ptr_null(strstr(err.data, "s3cr3t"));
    }
    poh_strbuf_free(&err);
}

START_TEST(test_fuzz_truncated_and_mutated)
{
    static const char *const seeds_test[] = {
        "groups:\n  - name: poh\n    targets: [poh-1:50051, 'b:1']\n    timeout: 1500ms\n"
        "    password_file: password.txt\n    metadata: {auth_file: header_value.txt, k: v}\n"
        "    buckets: [0.005, 0.01, 1e1]\n    latencies:\n      - {name: s, to: commit}\n"
        "      - &l {name: a, to_field: approved_at}\n    tls: {ca_file: /ca.pem}\n"
        "  - {name: p, targets: [x], latencies: [*l]}\ntoken: \"t\\x41\"\ntags: [x, y]\n",
    };
    size_t flen, elen;
    char *full = slurp(DATA "/full.yml", &flen);
    char path[4096];
    snprintf(path, sizeof path, "%s/etc/poh_exporter.yml", POH_SOURCE_DIR);
    char *shipped = slurp(path, &elen);
    struct {
        const char *text;
        size_t len;
        bool test_schema;
    } seeds[] = {{full, flen, false}, {shipped, elen, false},
                 {seeds_test[0], strlen(seeds_test[0]), true}};
    size_t nseeds = sizeof seeds / sizeof seeds[0];
    char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);

    /* Every prefix of every seed (bounded by the seeds' size). */
    for (size_t s = 0; s < nseeds; s++)
        for (size_t n = 0; n <= seeds[s].len; n++)
            check_one(seeds[s].text, n, seeds[s].test_schema);

    /* Deterministic mutations: YAML punctuation and arbitrary bytes. */
    static const char alphabet[] = ":-[]{}&*!|>'\"#%@`,?~ \t\n\r\\0aZ9.";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int iter = 0; iter < 3000; iter++) {
        size_t s = (size_t)iter % nseeds;
        size_t len = seeds[s].len;
        memcpy(buf, seeds[s].text, len);
        int edits = 1 + iter % 4;
        for (int k = 0; k < edits && len; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = (size_t)(x >> 16) % len;
            if (x & 1)
                buf[pos] = alphabet[(x >> 8) % (sizeof alphabet - 1)];
            else if (x & 2)
                buf[pos] = (char)(x >> 24);
            else {  /* delete a span */
                size_t span = 1 + (x >> 40) % 8;
                if (pos + span > len)
                    span = len - pos;
                memmove(buf + pos, buf + pos + span, len - pos - span);
                len -= span;
            }
        }
        check_one(buf, len, seeds[s].test_schema);
    }
    free(buf);
    free(full);
    free(shipped);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_error_messages, 0,
                        (int)(sizeof error_cases / sizeof error_cases[0]));
    tcase_add_test(tc, test_error_cap);
    tcase_add_test(tc, test_alias_bomb);
    tcase_add_test(tc, test_many_duplicates);
    tcase_add_test(tc, test_too_large);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_all_values);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_shipped_config);
    tcase_add_test(tc, test_env_precedence);
    tcase_add_test(tc, test_generic_sections);
    tcase_add_test(tc, test_secret_files);
    tcase_add_test(tc, test_fifo_does_not_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_loop_test(tc, test_parse_duration, 0, (int)(sizeof durations / sizeof durations[0]));
    tcase_add_loop_test(tc, test_parse_listen_address, 0,
                        (int)(sizeof addresses / sizeof addresses[0]));
    tcase_add_test(tc, test_listen_address_host_buffer);
    tcase_add_test(tc, test_edit_distance);
    tcase_add_test(tc, test_schema_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_fuzz_truncated_and_mutated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
