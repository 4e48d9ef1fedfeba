/* A minimal test harness: CHECK records a failure and carries on, so one run reports all. */
#ifndef SIXCAST_TEST_CHECK_H
#define SIXCAST_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "sixcast.h"

static int check_failures = 0;
static int check_count = 0;

#define CHECK(condition, ...)                                                        \
    do {                                                                             \
        check_count++;                                                               \
        if (!(condition)) {                                                          \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #condition); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

/* Runs `call`, which writes any error through `&err`, and checks that it returned
 * `expected`; prints the error's message when it did not. */
#define CHECK_STATUS(call, expected)                                                   \
    do {                                                                               \
        SixcastError *err = NULL;                                                      \
        SixcastStatus check_status = (call);                                           \
        CHECK(check_status == (expected), "%s returned %s (%s), expected %s", #call,   \
              sixcast_status_name(check_status), sixcast_error_message(err),           \
              sixcast_status_name(expected));                                          \
        CHECK((check_status == SIXCAST_STATUS_OK) == (err == NULL),                    \
              "an error is stored exactly when the call fails");                       \
        sixcast_error_free(err);                                                       \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, SIXCAST_STATUS_OK)

/* Prints the summary; the exit code of main. */
static int check_summary(const char *suite) {
    printf("%s: %d checks, %d failed\n", suite, check_count, check_failures);
    return check_failures == 0 && check_count > 0 ? 0 : 1;
}

#endif
