/* SPDX-License-Identifier: Apache-2.0 */
/* Hex strings to bytes (request_hex of gRPC state calls, test tools). */
#ifndef POH_HEX_H
#define POH_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Decode hex (upper or lower case, even length; NULL or "" is empty) into a
 * malloc'd buffer the caller frees (never NULL on success, even when empty).
 * Returns 0, -EINVAL for odd length or a non-hex character, -ENOMEM. */
int poh_hex_decode(const char *hex, uint8_t **out, size_t *len);

#endif
