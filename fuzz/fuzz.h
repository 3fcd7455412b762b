/* fuzz: what every libFuzzer target here shares. REQUIRE checks an
 * invariant and aborts (which libFuzzer reports with the input) when it
 * does not hold. */
#ifndef CTRD_FUZZ_H
#define CTRD_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
