/* SPDX-License-Identifier: Apache-2.0 */
/* "host:port" values of the configuration engine (POH_CFG_ADDRESS and
 * poh_parse_listen_address): the one host:port rule of core/hostport.h,
 * with ":port" (every address) and port 0 (any free port) allowed. */
#include "config/cfg_internal.h"

#include <errno.h>
#include <string.h>

#include "core/hostport.h"

int poh_cfg_parse_address(const char *s, char *host, size_t hostlen, unsigned *port,
                         poh_strbuf_t *why)
{
    const unsigned flags = POH_HOSTPORT_EMPTY_HOST | POH_HOSTPORT_PORT_ZERO;
    poh_hostport_t hp;
    poh_hostport_problem_t p = poh_hostport_parse(s, flags, &hp);
    if (p != POH_HOSTPORT_OK) {
        poh_hostport_explain(why, p, flags, &hp);
        return -EINVAL;
    }
    if (host) {
        size_t hl = strlen(hp.host);
        if (hl >= hostlen) {
            poh_strbuf_puts(why, "host name too long");
            return -EINVAL;
        }
        memcpy(host, hp.host, hl + 1);
    }
    if (port)
        *port = hp.portno;
    return 0;
}

int poh_parse_listen_address(const char *s, char *host, size_t hostlen, unsigned *port)
{
    poh_strbuf_t why = POH_STRBUF_INIT;
    int rc = s ? poh_cfg_parse_address(s, host, hostlen, port, &why) : -EINVAL;
    poh_strbuf_free(&why);
    return rc < 0 ? -EINVAL : 0;
}
