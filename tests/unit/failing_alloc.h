/*
 * failing_alloc.h - a Jansson allocator that fails on request, for the tests
 * that fail each allocation of an operation in turn. Install it with
 * json_set_alloc_funcs(failing_malloc, free) before the first load; set
 * failing_countdown to N to make the N-th next allocation (0-based) fail.
 */
#ifndef FACTS_FAILING_ALLOC_H
#define FACTS_FAILING_ALLOC_H

#include <stdlib.h>

static long failing_countdown = -1; /* fail when it reaches 0; -1 = never */
static long failing_calls;          /* allocations made so far */

static void *failing_malloc(size_t n)
{
    failing_calls++;
    if (failing_countdown >= 0 && failing_countdown-- == 0)
        return NULL;
    return malloc(n);
}

#endif
