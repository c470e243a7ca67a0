/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC's process-wide setup, once, for probes and the tracer alike. */
#include "grpc/runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/log.h>

#include "core/log.h"

/* gRPC core writes its own log format to stderr; route it into ours, at
 * debug level: what matters reaches the caller as a status code and details. */
static void grpc_log_to_poh(gpr_log_func_args *args)
{
    POH_DEBUG("grpc-core", "%s:%d: %s", args->file, args->line, args->message);
}

/* absl, under gRPC, checks every mutex operation for lock-order cycles when
 * its deadlock detection is on, as in Debian's build: about 10% of the CPU
 * of a probe, for a debugging aid. Turn it off when the symbol is there
 * (looked up, so other builds simply keep their default). */
static void absl_deadlock_detection_off(void)
{
    static const char *const names[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        if (sym) {
            void (*set_mode)(int);
            memcpy(&set_mode, &sym, sizeof set_mode);
            set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
            return;
        }
    }
}

static void grpc_global_setup(void)
{
    /* gRPC 1.51's "tcp_read_chunks" experiment (on by default) posts reads
     * in 8 KiB units whatever GRPC_ARG_TCP_READ_CHUNK_SIZE says: 8 MiB held
     * by 1,000 idle probe connections. Without it the read chunk arguments
     * (common_args) apply. Read once, at gRPC's first initialisation: an
     * operator's own GRPC_EXPERIMENTS is left as it is. */
    setenv("GRPC_EXPERIMENTS", "-tcp_read_chunks", 0);
    gpr_set_log_function(grpc_log_to_poh);
    absl_deadlock_detection_off();
}

void poh_grpc_runtime_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, grpc_global_setup);
}
