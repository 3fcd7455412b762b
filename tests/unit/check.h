/* check: the unit-test harness. A test is a function; a failed CHECK prints
 * both values with file:line and marks the running test failed. Each binary
 * prints "PASS name" / "FAIL name" per test and a closing
 * "N passed, N failed" line; tests/run.sh adds them up. */
#ifndef CTRD_CHECK_H
#define CTRD_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failed_checks, check_passed_tests, check_failed_tests;

#define CHECK_FAIL_AT(...)                                    \
    do {                                                      \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);       \
        fprintf(stderr, __VA_ARGS__);                         \
        fputc('\n', stderr);                                  \
        check_failed_checks++;                                \
    } while (0)

#define CHECK(cond)                                           \
    do {                                                      \
        if (!(cond))                                          \
            CHECK_FAIL_AT("CHECK(%s) failed", #cond);         \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                   \
    do {                                                                     \
        uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);         \
        if (check_a_ != check_b_)                                            \
            CHECK_FAIL_AT("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b,       \
                          check_a_, check_b_);                               \
    } while (0)

#define CHECK_EQ_I64(a, b)                                                   \
    do {                                                                     \
        int64_t check_a_ = (int64_t)(a), check_b_ = (int64_t)(b);           \
        if (check_a_ != check_b_)                                            \
            CHECK_FAIL_AT("%s == %s: %" PRId64 " != %" PRId64, #a, #b,       \
                          check_a_, check_b_);                               \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                   \
    do {                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                         \
        if (strcmp(check_a_, check_b_) != 0)                                 \
            CHECK_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, check_a_,    \
                          check_b_);                                         \
    } while (0)

/* Compares a byte range with a C string literal. */
#define CHECK_EQ_MEM(ptr, len, lit)                                          \
    do {                                                                     \
        size_t check_l_ = (len);                                             \
        if (check_l_ != strlen(lit) || memcmp((ptr), (lit), check_l_) != 0)  \
            CHECK_FAIL_AT("%s == %s: \"%.*s\" != \"%s\"", #ptr, #lit,        \
                          (int)check_l_, (const char *)(ptr), lit);          \
    } while (0)

static inline void check_run(const char *name, void (*fn)(void))
{
    int before = check_failed_checks;
    fn();
    if (check_failed_checks == before) {
        printf("PASS %s\n", name);
        check_passed_tests++;
    } else {
        printf("FAIL %s\n", name);
        check_failed_tests++;
    }
    fflush(stdout);
}

#define RUN(fn) check_run(#fn, fn)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_passed_tests, check_failed_tests);
    return check_failed_tests != 0;
}

#endif
