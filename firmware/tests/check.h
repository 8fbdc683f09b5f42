/* A tiny assertion macro for the host tests: counts failures, prints where. */
#ifndef ECG_CHECK_H
#define ECG_CHECK_H

#include <stdio.h>

static int check_failures = 0;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                  \
        }                                                                      \
    } while (0)

#endif
