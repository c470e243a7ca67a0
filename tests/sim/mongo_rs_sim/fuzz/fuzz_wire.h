/* SPDX-License-Identifier: Apache-2.0 */
#ifndef MONGO_SIM_FUZZ_WIRE_H
#define MONGO_SIM_FUZZ_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Inputs that parsed as a message, and those whose command answered ok: 1. */
extern unsigned long sim_fuzz_parsed, sim_fuzz_ok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Free the in-process simulator (so leak checkers see a clean exit). */
void sim_fuzz_cleanup(void);

#endif
