/* SPDX-License-Identifier: Apache-2.0 */
/* Table-driven YAML → struct engine (nginx style: key → type → offsetof).
 *
 * The engine knows only the tables it is given: each section's C struct and
 * its poh_cfg_entry_t table live with the code they configure (e.g.
 * grpc/grpc_conf.h + grpc/grpc_schema.c), and the application's root table
 * (appconfig/app_schema.c) hooks each in with one entry. A table has one
 * entry per key {key, POH_CFG_<type>, offsetof(field), offsetof(count) for
 * lists/maps, flags, default text, env var, bounds, choices, nested section,
 * unique key, check}, ended by {NULL}, wrapped in a poh_cfg_section_t
 * {sizeof(struct), table, validate, release}. Lists are (pointer, size_t
 * count) pairs; maps are (poh_config_kv_t *, size_t count); nested sections
 * are embedded structs. Cross-key rules ("to" xor "to_field") go in
 * validate(), reported with poh_cfg_error(ctx, "to_field", "...").
 * Parsing, defaults, environment, errors with file:line:col, "did you mean",
 * secrets from *_file keys and freeing all come from the tables.
 * poh_cfg_schema_check() (run by the tests) catches table mistakes.
 * docs/architecture.md tells how to add a collector kind; cfg_internal.h lists
 * the files of the engine.
 *
 * Parsing uses libyaml's document API (aliases resolve to shared nodes; a
 * visit budget bounds alias expansion). Values are only read where the
 * schema asks, so traversal depth is bounded by the schema, not the input. */
#include "config/cfg_internal.h"

#include <errno.h>
#include <stdlib.h>

void poh_cfg_release(const poh_cfg_section_t *sec, void *obj)
{
    if (!obj)
        return;
    if (sec->release)
        sec->release(obj);
    for (const poh_cfg_entry_t *e = sec->entries; e->name; e++) {
        void *field = poh_cfg_field_at(obj, e->offset);
        size_t *count = e->count_offset ? poh_cfg_field_at(obj, e->count_offset) : NULL;
        switch (e->type) {
        case POH_CFG_STRING:
        case POH_CFG_ADDRESS:
        case POH_CFG_ENUM:
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        case POH_CFG_SECRET:
            poh_cfg_free_secret(field);
            break;
        case POH_CFG_STRING_LIST:
            for (size_t i = 0; i < *count; i++)
                free((*(char ***)field)[i]);
            free(*(char ***)field);
            *(char ***)field = NULL;
            *count = 0;
            break;
        case POH_CFG_DOUBLE_LIST:
            free(*(double **)field);
            *(double **)field = NULL;
            *count = 0;
            break;
        case POH_CFG_STRING_MAP: {
            poh_config_kv_t *kv = *(poh_config_kv_t **)field;
            for (size_t i = 0; i < *count; i++) {
                free(kv[i].key);
                poh_cfg_free_secret(&kv[i].value);
            }
            free(kv);
            *(poh_config_kv_t **)field = NULL;
            *count = 0;
            break;
        }
        case POH_CFG_SECTION:
            poh_cfg_release(e->section, field);
            break;
        case POH_CFG_SECTION_LIST: {
            char *arr = *(char **)field;
            for (size_t i = 0; i < *count; i++)
                poh_cfg_release(e->section, arr + i * e->section->size);
            free(arr);
            *(char **)field = NULL;
            *count = 0;
            break;
        }
        default:
            break;
        }
    }
}

static void offset_to_mark(const char *text, size_t len, size_t off, yaml_mark_t *m)
{
    m->line = m->column = 0;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            m->line++;
            m->column = 0;
        } else {
            m->column++;
        }
    }
}

static void syntax_error(poh_cfg_ctx_t *ctx, yaml_parser_t *p)
{
    yaml_mark_t mark = p->problem_mark;
    if (p->error == YAML_MEMORY_ERROR) {
        poh_cfg_note_rc(ctx, -ENOMEM);
        return;
    }
    if (p->error == YAML_READER_ERROR)
        offset_to_mark(ctx->text, ctx->len, p->problem_offset, &mark);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        poh_cfg_error_at(ctx, &mark, NULL, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                 p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    else
        poh_cfg_error_at(ctx, &mark, NULL, "YAML syntax error: %s", problem);
}

int poh_cfg_parse(const poh_cfg_section_t *root, void *obj, const char *name, const char *yaml,
                  size_t len, const char *base_dir, poh_strbuf_t *errors)
{
    poh_cfg_ctx_t ctx = {.name = name, .base_dir = base_dir, .text = yaml, .len = len,
                         .errors = errors, .path = POH_STRBUF_INIT};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    if (len > POH_CFG_MAX_INPUT_BYTES) {
        poh_strbuf_printf(errors, "%s: file too large (%zu bytes, at most %u)\n", name, len,
                          POH_CFG_MAX_INPUT_BYTES);
        ctx.nerrors++;
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&ctx, &parser);
        goto out;
    }
    have_doc = true;
    ctx.doc = &doc;
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    yaml_mark_t start = {0, 0, 0};
    poh_cfg_apply_section(&ctx, root, obj, top, top ? &top->start_mark : &start, true);
    if (ctx.stop)
        goto out;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(&ctx, &parser);
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second)
        poh_cfg_error_at(&ctx, &second->start_mark, NULL,
                 "more than one YAML document (remove the \"---\" separator)");
    yaml_document_delete(&extra);
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    bool oom = ctx.oom || errors->failed || ctx.path.failed;
    poh_strbuf_free(&ctx.path);
    if (oom)
        return -ENOMEM;
    return ctx.nerrors ? -EINVAL : 0;
}
