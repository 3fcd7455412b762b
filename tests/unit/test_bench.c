/* Unit tests of bench_compare(), the check every `ctrd bench` figure
 * waits for: equal dumps pass; a count that differs by one anywhere (an
 * impression, a click, a term missing from either side, an extra ad), or
 * impressions that do not add up to what gen wrote, fail with the
 * difference said. */
#include "bench.h"
#include "check.h"
#include "error.h"

#define HEAD "ad_id,term,impressions,clicks,ctr\n"
#define ROWS                                                                   \
    "1000,shoes,10,1,0.100000\n"                                               \
    "1000,\"a, b\",3,0,0.000000\n"                                             \
    "1001,hats,2,2,1.000000\n"

static int compare(const char *a, const char *b, uint64_t impressions,
                   char *what)
{
    return bench_compare(a, strlen(a), b, strlen(b), impressions, what);
}

static void test_equal(void)
{
    char what[CTRD_ERR_LEN] = "";
    CHECK_EQ_I64(compare(HEAD ROWS, HEAD ROWS, 15, what), 0);
    CHECK_EQ_STR(what, "");
    CHECK_EQ_I64(compare(HEAD, HEAD, 0, what), 0);
}

static void test_count_differs(void)
{
    static const char *const other[] = {
        HEAD "1000,shoes,11,1,0.090909\n1000,\"a, b\",3,0,0.000000\n"
             "1001,hats,2,2,1.000000\n",
        HEAD "1000,shoes,10,1,0.100000\n1000,\"a, b\",3,0,0.000000\n"
             "1001,hats,2,1,0.500000\n",
        HEAD "1000,shoes,10,1,0.100000\n1001,hats,2,2,1.000000\n",
        HEAD ROWS "1002,caps,1,0,0.000000\n",
        HEAD ROWS "\n",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        char what[CTRD_ERR_LEN] = "";
        CHECK_EQ_I64(compare(HEAD ROWS, other[i], 15, what), CTRD_EINVAL);
        CHECK(strncmp(what, "line ", 5) == 0);
        CHECK_EQ_I64(compare(other[i], HEAD ROWS, 15, what), CTRD_EINVAL);
    }
    char what[CTRD_ERR_LEN];
    CHECK_EQ_I64(compare(HEAD ROWS, other[0], 15, what), CTRD_EINVAL);
    CHECK_EQ_STR(what, "line 2: batch '1000,shoes,10,1,0.100000', "
                       "streaming '1000,shoes,11,1,0.090909'");
}

static void test_impressions_differ(void)
{
    char what[CTRD_ERR_LEN];
    CHECK_EQ_I64(compare(HEAD ROWS, HEAD ROWS, 16, what), CTRD_EINVAL);
    CHECK_EQ_STR(what, "impressions: 15 counted, 16 generated");
    CHECK_EQ_I64(compare(HEAD ROWS, HEAD ROWS, 14, what), CTRD_EINVAL);
}

int main(void)
{
    RUN(test_equal);
    RUN(test_count_differs);
    RUN(test_impressions_differ);
    return check_done();
}
