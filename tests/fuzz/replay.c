/*
 * replay.c - a main for the fuzz targets without libFuzzer: feeds each file
 * named on the command line, or every file in a folder named there (sorted
 * by name, hidden files skipped), to LLVMFuzzerTestOneInput, after
 * LLVMFuzzerInitialize when the target has one. Each input is handed over
 * in a buffer of exactly its size, so a read past it is a sanitizer report.
 *
 * usage: fuzz-replay-<name> PATH...
 *
 * A failed check aborts (the input's name was printed just before); the
 * exit status is 0 when every input ran, 2 when a path could not be read.
 * The last line is "replay: N passed, M failed" (M: paths not read). This is how the normal
 * and the sanitizer builds replay tests/fuzz/corpus/<name>/ and
 * tests/fuzz/regressions/<name>/ (the fuzz-regress suite).
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

enum {
    INPUT_MAX = 16 << 20,  /* bytes of one input */
    ENTRIES_MAX = 100000   /* files in one folder */
};

/* libFuzzer calls it only when the target defines it. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* libFuzzer's own mutator, which a target's custom mutator may call: a
 * replay mutates nothing, so it is never called here. */
size_t LLVMFuzzerMutate(unsigned char *data, size_t size, size_t max);
size_t LLVMFuzzerMutate(unsigned char *data, size_t size, size_t max)
{
    (void)data;
    (void)max;
    return size;
}

static size_t replayed;
static size_t unreadable;

/* Reads the file at path into a buffer of its exact size (one byte for an
 * empty file, which is passed with size 0) and runs it. Returns false when
 * it cannot be read. */
static bool replay_file(const char *path)
{
    unreadable++; /* until it has run */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > INPUT_MAX) {
        fprintf(stderr, "replay: %s: not a readable file of at most %d bytes\n", path,
                INPUT_MAX);
        fclose(f);
        return false;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size > 0 ? size : 1);
    if (data == NULL) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        fclose(f);
        return false;
    }
    size_t got = size > 0 ? fread(data, 1, size, f) : 0;
    fclose(f);
    if (got != size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(data);
        return false;
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    replayed++;
    unreadable--;
    return true;
}

static int name_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in the folder dir, in name order. */
static bool replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        unreadable++;
        return false;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == ENTRIES_MAX) {
            fprintf(stderr, "replay: %s: more than %d files\n", dir, ENTRIES_MAX);
            ok = false;
            break;
        }
        if (n == cap) {
            size_t ncap = cap > 0 ? 2 * cap : 64;
            char **grown = realloc(names, ncap * sizeof *names);
            if (grown == NULL) {
                ok = false;
                break;
            }
            names = grown;
            cap = ncap;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            ok = false;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (!ok) {
        fprintf(stderr, "replay: %s: could not list the folder\n", dir);
        unreadable++;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, name_compare);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (ok && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            ok = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            unreadable++;
            ok = false;
        } else if (S_ISDIR(st.st_mode)) {
            ok = replay_dir(argv[i]) && ok;
        } else {
            ok = replay_file(argv[i]) && ok;
        }
    }
    printf("replay: %zu passed, %zu failed\n", replayed, unreadable);
    return ok ? 0 : 2;
}
