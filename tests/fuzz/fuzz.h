/*
 * fuzz.h - what the data core's libFuzzer targets share: the entry points'
 * prototypes, a check that aborts (so libFuzzer keeps the input), the error
 * contract of include/facts.h, and the embedded article store loaded once.
 *
 * A target is one file tests/fuzz/fuzz_<name>.c defining
 * LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize when it needs set-up). Every
 * target is deterministic (Jansson's hash seed is fixed) and bounds its work
 * per input, so a slow input is a finding, not noise.
 */
#ifndef FACTS_FUZZ_H
#define FACTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Aborts with a message when cond is false: a broken contract is a crash. */
#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* Fills err with bytes no call writes, so that the checks below see whether a
 * failed call filled every field. */
static inline void fuzz_error_poison(facts_error *err)
{
    memset(err, 0xA5, sizeof *err);
}

/* Whether a field of n bytes holds a NUL-terminated string. */
static inline int fuzz_terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

/* The contract of every failing call (facts.h, "facts_error"): the status it
 * returned, every string field filled and terminated, a sentence for people,
 * a rule id, a position that is not negative; and facts_error_format can
 * render it. */
static inline void fuzz_check_error(const facts_error *err, facts_status st)
{
    FUZZ_CHECK(st != FACTS_OK, "a failure must not be FACTS_OK");
    FUZZ_CHECK(err->status == st, "err->status %d, returned %d", (int)err->status, (int)st);
    FUZZ_CHECK(fuzz_terminated(err->source, sizeof err->source), "source not filled");
    FUZZ_CHECK(fuzz_terminated(err->pointer, sizeof err->pointer), "pointer not filled");
    FUZZ_CHECK(fuzz_terminated(err->rule, sizeof err->rule), "rule not filled");
    FUZZ_CHECK(fuzz_terminated(err->text, sizeof err->text), "text not filled");
    FUZZ_CHECK(err->text[0] != '\0', "a failure without text (status %s, rule \"%s\")",
               facts_status_name(st), err->rule);
    FUZZ_CHECK(err->rule[0] != '\0', "a failure without a rule: %s", err->text);
    FUZZ_CHECK(err->line >= 0 && err->column >= 0, "position %d:%d", err->line, err->column);
    FUZZ_CHECK(strcmp(facts_status_name(st), "unknown") != 0, "status %d", (int)st);
    char line[1024];
    size_t need = facts_error_format(err, line, sizeof line);
    FUZZ_CHECK(need > 0 && fuzz_terminated(line, sizeof line), "facts_error_format");
}

/* Jansson seeds its hash from /dev/urandom unless told otherwise: a fixed
 * seed keeps every run of an input the same. Call before any JSON exists. */
static inline void fuzz_init_jansson(void)
{
    json_object_seed(1);
}

/* The embedded article store, loaded once per process (never freed: the
 * leak checker ignores what a global still points to). */
static inline facts_store *fuzz_article(void)
{
    static facts_store *article;
    if (article == NULL) {
        facts_error err;
        facts_status st = facts_store_load_embedded(&article, &err);
        if (st != FACTS_OK) {
            char line[1024];
            facts_error_format(&err, line, sizeof line);
            fprintf(stderr, "fuzz: the embedded dataset does not load: %s\n", line);
            abort();
        }
    }
    return article;
}

/* A sentinel for out pointers: a failed call must leave it as it was. */
#define FUZZ_UNTOUCHED ((void *)(uintptr_t)0x5eed)

#endif /* FACTS_FUZZ_H */
