/* SPDX-License-Identifier: Apache-2.0 */
/* Channel arguments shared by the gRPC clients (channel_args.h). */
#include "grpc/channel_args.h"

#include <stdint.h>

grpc_arg poh_grpc_arg_int(const char *key, int v)
{
    grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)key};
    a.value.integer = v;
    return a;
}

grpc_arg poh_grpc_arg_str(const char *key, const char *v)
{
    grpc_arg a = {.type = GRPC_ARG_STRING, .key = (char *)key};
    a.value.string = (char *)v;
    return a;
}

grpc_resource_quota *poh_grpc_quota_new(const char *name, size_t bytes)
{
    grpc_resource_quota *q = grpc_resource_quota_create(name);
    if (q)
        grpc_resource_quota_resize(q, bytes);
    return q;
}

grpc_arg poh_grpc_arg_quota(grpc_resource_quota *q)
{
    grpc_arg a = {.type = GRPC_ARG_POINTER, .key = (char *)GRPC_ARG_RESOURCE_QUOTA};
    a.value.pointer.p = q;
    a.value.pointer.vtable = grpc_resource_quota_arg_vtable();
    return a;
}

size_t poh_grpc_budget(size_t max_reply, unsigned calls)
{
    if (calls == 0)
        calls = 1;
    if (max_reply > (SIZE_MAX - POH_GRPC_BUDGET_SLACK) / calls)
        return SIZE_MAX;
    return max_reply * calls + POH_GRPC_BUDGET_SLACK;
}
