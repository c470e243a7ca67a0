/* SPDX-License-Identifier: Apache-2.0 */
#include "core/header_name.h"

#include <string.h>

/* Set by the gRPC transport or by the exporter itself on every call. */
static const char *const set_by_us[] = {"te",   "content-type", "user-agent",
                                        "host", "connection",   "traceparent"};

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

poh_header_name_problem_t poh_header_name_check(const char *name)
{
    if (!name || !*name)
        return POH_HEADER_NAME_EMPTY;
    for (const char *p = name; *p; p++)
        if (!token_char(*p))
            return POH_HEADER_NAME_BAD_CHAR;
    if (strncmp(name, "grpc-", 5) == 0)
        return POH_HEADER_NAME_GRPC_RESERVED;
    size_t n = strlen(name);
    if (n >= 4 && strcmp(name + n - 4, "-bin") == 0)
        return POH_HEADER_NAME_BINARY;
    for (size_t i = 0; i < sizeof set_by_us / sizeof set_by_us[0]; i++)
        if (strcmp(name, set_by_us[i]) == 0)
            return POH_HEADER_NAME_SET_BY_US;
    return POH_HEADER_NAME_OK;
}
