/* SPDX-License-Identifier: Apache-2.0 */
/* Channel arguments shared by every gRPC client of the exporter (the probe
 * engine and the OTLP exporter), and the memory budget that bounds what a
 * peer can make a channel hold.
 *
 * gRPC 1.51 checks a reply's size only once the whole message has arrived:
 * its HTTP/2 transport keeps opening the flow-control window up to the
 * length the message's prefix declares, so a peer declaring 2 GB and
 * streaming it could make one call hold 2 GB (both with the message-size
 * filter and without it, in the minimal stack). A resource quota of its own
 * per channel bounds that while the bytes arrive: every read buffer and
 * call arena of the channel is charged to it, and when the peer has pushed
 * it past its size, gRPC's reclaimer cancels a call of that channel
 * (RESOURCE_EXHAUSTED, "Buffers full") and frees what it held. Other
 * channels, and so other targets, are untouched. */
#ifndef POH_GRPC_CHANNEL_ARGS_H
#define POH_GRPC_CHANNEL_ARGS_H

#include <grpc/grpc.h>
#include <stddef.h>

/* Slack above the replies themselves in a channel's budget: the transport's
 * buffers, HPACK tables and call arenas of a few calls (measured: a probe
 * channel holds under 100 KiB of its own). */
#define POH_GRPC_BUDGET_SLACK (1u << 20)

grpc_arg poh_grpc_arg_int(const char *key, int v);
grpc_arg poh_grpc_arg_str(const char *key, const char *v);

/* A resource quota of bytes for one channel (name: for gRPC's traces), or
 * NULL when gRPC cannot make one. Pass it with poh_grpc_arg_quota() to the
 * channel's creation; the channel keeps its own reference, so release ours
 * with grpc_resource_quota_unref() when no other channel will use it. */
grpc_resource_quota *poh_grpc_quota_new(const char *name, size_t bytes);
grpc_arg poh_grpc_arg_quota(grpc_resource_quota *q);

/* The budget of a channel on which up to `calls` replies of at most
 * max_reply bytes each may arrive at once. */
size_t poh_grpc_budget(size_t max_reply, unsigned calls);

#endif
