/* SPDX-License-Identifier: Apache-2.0 */
/* The YAML configuration loader with every schema (web, log, memory,
 * grpc, mongodb, tracing), and the web config file (exporter-toolkit's
 * format) from the same bytes: any file gets a configuration or errors,
 * never a crash, and a loaded configuration frees cleanly. */
#include "appconfig/app_config.h"
#include "core/log.h"
#include "fuzz.h"
#include "http/web_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    poh_config_t *cfg = NULL;
    poh_strbuf_t errors = POH_STRBUF_INIT;
    int rc = poh_config_load_string("fuzz.yml", (const char *)data, size, &cfg, &errors);
    FUZZ_CHECK(rc == 0 ? cfg != NULL : cfg == NULL);
    poh_config_free(cfg);
    poh_strbuf_free(&errors);

    poh_web_config_t *web = NULL;
    rc = poh_web_config_parse("web.yml", (const char *)data, size, "/etc/poh", &web, &errors);
    FUZZ_CHECK(rc == 0 ? web != NULL : web == NULL && errors.len > 0);
    poh_web_config_free(web);
    poh_strbuf_free(&errors);
    return 0;
}
