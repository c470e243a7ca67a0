/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC's process-wide setup, shared by every gRPC client of the exporter. */
#ifndef POH_GRPC_RUNTIME_H
#define POH_GRPC_RUNTIME_H

/* Process-wide gRPC settings (log routing into ours, read buffer policy,
 * absl's deadlock detection off): once, before anything calls grpc_init()
 * and while the process has one thread (main() calls it first; target
 * creation calls it too, for tests). Idempotent. */
void poh_grpc_runtime_init(void);

#endif
