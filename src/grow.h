/* grow: the one way an array grows in ctrd — its capacity doubles (from a
 * first capacity) until it holds what is needed, so n appends cost O(n).
 * Header only; touches only the array it is given. Any thread.
 *
 * Errors: 0, or CTRD_ENOMEM with the array and its capacity unchanged
 * (still the caller's to free). */
#ifndef CTRD_GROW_H
#define CTRD_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Room for need elements of size bytes in the array *arr (the address of
 * any object pointer; NULL with *cap 0 before the first call), whose room
 * is *cap elements: reallocs it to first, 2 first, 4 first, ... elements,
 * the first that hold need, when *cap does not. */
static inline int grow(void *arr, size_t *cap, size_t need, size_t size,
                       size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *old, *p;
    memcpy(&old, arr, sizeof old); /* arr may be a T **: no aliasing */
    if (n > SIZE_MAX / size || !(p = realloc(old, n * size)))
        return CTRD_ENOMEM;
    memcpy(arr, &p, sizeof p);
    *cap = n;
    return 0;
}

#endif
