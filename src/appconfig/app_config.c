/* SPDX-License-Identifier: Apache-2.0 */
/* Loading the application's configuration: the root schema (app_schema.c)
 * run through the engine of src/config/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "appconfig/app_config.h"
#include "config/schema.h"
#include "core/file.h"
#include "core/strbuf.h"

static int load(const char *name, const char *yaml, size_t len, const char *base_dir,
                poh_config_t **out, poh_strbuf_t *errors)
{
    poh_strbuf_t sink = POH_STRBUF_INIT;
    poh_config_t *cfg = NULL;
    int rc = -ENOMEM;
    *out = NULL;
    if (!errors)
        errors = &sink;
    cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->source = strdup(name)))
        goto err;
    rc = poh_cfg_parse(&poh_cfg_root_section, cfg, name, yaml, len, base_dir, errors);
    if (rc < 0)
        goto err;
    poh_strbuf_free(&sink);
    *out = cfg;
    return 0;
err:
    if (rc == -ENOMEM)
        poh_strbuf_printf(errors, "%s: out of memory\n", name);
    poh_config_free(cfg);
    poh_strbuf_free(&sink);
    return rc;
}

int poh_config_load_string(const char *name, const char *yaml, size_t len, poh_config_t **out,
                           poh_strbuf_t *errors)
{
    return load(name ? name : "<string>", yaml ? yaml : "", yaml ? len : 0, NULL, out, errors);
}

int poh_config_load_default(poh_config_t **out, poh_strbuf_t *errors)
{
    return load("<embedded>", "", 0, NULL, out, errors);
}

int poh_config_load_file(const char *path, poh_config_t **out, poh_strbuf_t *errors)
{
    poh_strbuf_t text = POH_STRBUF_INIT;
    char *dir = NULL;
    *out = NULL;
    int rc = poh_read_config_file(path, POH_CFG_MAX_INPUT_BYTES, &text, &dir);
    if (rc < 0) {
        if (errors)
            poh_strbuf_printf(errors, "%s: cannot read configuration: %s\n", path,
                              poh_read_file_strerror(rc));
        poh_strbuf_free(&text);
        return rc;
    }
    rc = load(path, text.data ? text.data : "", text.len, dir, out, errors);
    free(dir);
    poh_strbuf_free(&text);
    return rc;
}

void poh_config_free(poh_config_t *cfg)
{
    if (!cfg)
        return;
    poh_cfg_release(&poh_cfg_root_section, cfg);
    free(cfg->source);
    free(cfg);
}
