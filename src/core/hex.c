/* SPDX-License-Identifier: Apache-2.0 */
#include "core/hex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int poh_hex_decode(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = hex ? strlen(hex) : 0;
    if (n % 2)
        return -EINVAL;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -EINVAL;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return 0;
}
