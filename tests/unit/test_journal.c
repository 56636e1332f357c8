/*
 * test_journal.c - the journal: append and replay; a torn last record cut at
 * every offset, with and without garbage after it, always recovers to the
 * last good record; damage in the middle refuses to open with the offset;
 * a full disk trims back and leaves the journal usable; saving a store is
 * atomic and round-trips.
 *
 * usage: test_journal DATA_DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "facts.h"

static char dir[64];

typedef struct collected {
    size_t n;
    uint64_t revs[64];
    char payloads[64][128];
} collected;

static facts_status collect(void *ctx, uint64_t rev, const char *payload, size_t len,
                            facts_error *err)
{
    collected *c = ctx;
    (void)err;
    if (c->n < 64 && len < 128) {
        c->revs[c->n] = rev;
        memcpy(c->payloads[c->n], payload, len);
        c->payloads[c->n][len] = '\0';
    }
    c->n++;
    return FACTS_OK;
}

static facts_status refuse(void *ctx, uint64_t rev, const char *payload, size_t len,
                           facts_error *err)
{
    (void)ctx;
    (void)payload;
    (void)len;
    if (rev == 4) {
        snprintf(err->text, sizeof err->text, "refused");
        err->status = FACTS_EINVALID;
        return FACTS_EINVALID;
    }
    return FACTS_OK;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    *n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

static void spill(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, n, f);
        fclose(f);
    }
}

static char payload_for(uint64_t rev, char *buf, size_t size)
{
    /* Payloads of different lengths so frame boundaries vary. */
    snprintf(buf, size, "{\"change\": %llu, \"pad\": \"%.*s\"}", (unsigned long long)rev,
             (int)(rev % 23), "abcdefghijklmnopqrstuvwxyz");
    return 0;
}

/* Writes a journal with revisions 2..11 at path; returns the offset where
 * the last record starts. */
static long build_journal(const char *path)
{
    unlink(path);
    facts_journal *j = NULL;
    facts_journal_report rep;
    facts_error err;
    CHECK(facts_journal_open(path, NULL, NULL, &j, &rep, &err) == FACTS_OK);
    if (!j)
        return -1;
    CHECK(rep.records == 0 && file_size(path) == 8);
    long last = 0;
    for (uint64_t rev = 2; rev <= 11; rev++) {
        char p[128];
        payload_for(rev, p, sizeof p);
        last = file_size(path);
        CHECK(facts_journal_append(j, rev, p, strlen(p), &err) == FACTS_OK);
    }
    CHECK(facts_journal_revision(j) == 11);
    /* Revisions must follow on. */
    CHECK(facts_journal_append(j, 13, "{}", 2, &err) == FACTS_EARG);
    facts_journal_close(j);
    return last;
}

static void test_replay(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/replay.journal", dir);
    build_journal(path);
    collected c = {0};
    facts_journal *j = NULL;
    facts_journal_report rep;
    facts_error err;
    CHECK(facts_journal_open(path, collect, &c, &j, &rep, &err) == FACTS_OK);
    CHECK(c.n == 10 && rep.records == 10 && rep.last_revision == 11 && rep.torn_offset == 0);
    for (size_t i = 0; i < c.n && i < 10; i++) {
        char want[128];
        payload_for(i + 2, want, sizeof want);
        CHECK(c.revs[i] == i + 2);
        CHECK_STR(c.payloads[i], want);
    }
    /* A second opener is locked out. */
    facts_journal *j2 = NULL;
    CHECK(facts_journal_open(path, NULL, NULL, &j2, NULL, &err) == FACTS_EIO && j2 == NULL);
    CHECK(strcmp(err.rule, "locked") == 0);
    facts_journal_close(j);
    /* A callback's refusal stops the open with its status. */
    CHECK(facts_journal_open(path, refuse, NULL, &j, NULL, &err) == FACTS_EINVALID);
}

static void test_torn_tails(void)
{
    char good[128], path[128];
    snprintf(good, sizeof good, "%s/good.journal", dir);
    snprintf(path, sizeof path, "%s/torn.journal", dir);
    long last = build_journal(good);
    size_t n;
    unsigned char *bytes = slurp(good, &n);
    if (!bytes || last <= 0)
        return;
    srand(12345);
    int cases = 0, ok_cases = 0;
    for (size_t cut = (size_t)last; cut < n; cut++) {
        for (int garbage = 0; garbage < 2; garbage++) {
            unsigned char buf[4096];
            memcpy(buf, bytes, cut);
            size_t len = cut;
            if (garbage) {
                size_t g = 1 + (size_t)(rand() % 200);
                for (size_t i = 0; i < g; i++)
                    buf[len++] = (unsigned char)rand();
            }
            if (len == (size_t)last)
                continue; /* exactly the good prefix: nothing is torn */
            spill(path, buf, len);
            collected c = {0};
            facts_journal *j = NULL;
            facts_journal_report rep;
            facts_error err;
            facts_status s = facts_journal_open(path, collect, &c, &j, &rep, &err);
            cases++;
            int ok = s == FACTS_OK && c.n == 9 && rep.last_revision == 10 &&
                     rep.torn_offset == (uint64_t)last && rep.torn_bytes == len - (size_t)last &&
                     file_size(path) == last && file_size(rep.torn_saved) == (long)(len - (size_t)last);
            /* The journal goes on from the last good record. */
            char p[128];
            payload_for(11, p, sizeof p);
            ok = ok && facts_journal_append(j, 11, p, strlen(p), &err) == FACTS_OK;
            facts_journal_close(j);
            j = NULL;
            if (rep.torn_saved[0])
                unlink(rep.torn_saved);
            c.n = 0;
            ok = ok && facts_journal_open(path, collect, &c, &j, &rep, &err) == FACTS_OK &&
                 c.n == 10 && rep.torn_offset == 0;
            facts_journal_close(j);
            if (!ok)
                fprintf(stderr, "torn tail: cut at %zu (+garbage %d) did not recover: %s\n", cut,
                        garbage, err.text);
            ok_cases += ok;
        }
    }
    CHECK(cases > 20 && ok_cases == cases);
    free(bytes);
}

static void test_damage(void)
{
    char good[128], path[128];
    snprintf(good, sizeof good, "%s/good2.journal", dir);
    snprintf(path, sizeof path, "%s/damaged.journal", dir);
    build_journal(good);
    size_t n;
    unsigned char *bytes = slurp(good, &n);
    if (!bytes)
        return;
    /* A flipped byte in every position of the first three records: each one
     * refuses to open, names an offset, and leaves the file as it was. */
    size_t third_end = 8;
    for (int r = 0; r < 3; r++) {
        uint32_t len = (uint32_t)bytes[third_end] | (uint32_t)bytes[third_end + 1] << 8;
        third_end += 16 + len;
    }
    int refused = 0, total = 0;
    for (size_t at = 0; at < third_end; at++) {
        bytes[at] ^= 0x20;
        spill(path, bytes, n);
        facts_journal *j = NULL;
        facts_error err;
        facts_status s = facts_journal_open(path, NULL, NULL, &j, NULL, &err);
        total++;
        size_t m;
        unsigned char *after = slurp(path, &m);
        int ok = s == FACTS_ECORRUPT && strstr(err.text, "offset") != NULL && after && m == n &&
                 memcmp(after, bytes, n) == 0;
        if (!ok)
            fprintf(stderr, "flipped byte at %zu: %s (%s)\n", at, facts_status_name(s), err.text);
        refused += ok;
        free(after);
        facts_journal_close(j);
        bytes[at] ^= 0x20;
    }
    CHECK(total > 40 && refused == total);
    free(bytes);
}

/* A record written by hand (with a bitwise CRC, not the library's table) is
 * read back: the format is what the comments say. And a revision gap is
 * damage. */
static uint32_t crc_bitwise(const unsigned char *p, size_t n, uint32_t crc)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static size_t frame(unsigned char *out, uint64_t rev, const char *payload)
{
    size_t len = strlen(payload);
    unsigned char revb[8];
    for (int i = 0; i < 8; i++)
        revb[i] = (unsigned char)(rev >> (8 * i));
    uint32_t crc = crc_bitwise(payload ? (const unsigned char *)payload : NULL, len,
                               crc_bitwise(revb, 8, 0));
    for (int i = 0; i < 4; i++) {
        out[i] = (unsigned char)(len >> (8 * i));
        out[4 + i] = (unsigned char)(crc >> (8 * i));
    }
    memcpy(out + 8, revb, 8);
    memcpy(out + 16, payload, len);
    return 16 + len;
}

static void test_format(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/format.journal", dir);
    unsigned char buf[512];
    size_t n = 0;
    memcpy(buf, "FACTSJ1\n", 8);
    n = 8;
    n += frame(buf + n, 5, "{\"a\":1}");
    n += frame(buf + n, 6, "{\"b\":2}");
    spill(path, buf, n);
    collected c = {0};
    facts_journal *j = NULL;
    facts_error err;
    CHECK(facts_journal_open(path, collect, &c, &j, NULL, &err) == FACTS_OK);
    CHECK(c.n == 2 && c.revs[0] == 5 && c.revs[1] == 6 && strcmp(c.payloads[1], "{\"b\":2}") == 0);
    facts_journal_close(j);
    /* A gap in the revisions. */
    n += frame(buf + n, 8, "{\"c\":3}");
    spill(path, buf, n);
    CHECK(facts_journal_open(path, NULL, NULL, &j, NULL, &err) == FACTS_ECORRUPT);
    /* Not a journal at all. */
    spill(path, (const unsigned char *)"{\"format\": 1}\n", 14);
    CHECK(facts_journal_open(path, NULL, NULL, &j, NULL, &err) == FACTS_ECORRUPT);
    /* A header cut short by a crash during creation is completed. */
    spill(path, (const unsigned char *)"FACT", 4);
    CHECK(facts_journal_open(path, NULL, NULL, &j, NULL, &err) == FACTS_OK && file_size(path) == 8);
    facts_journal_close(j);
    /* A folder that does not exist. */
    CHECK(facts_journal_open("/nonexistent-dir/x.journal", NULL, NULL, &j, NULL, &err) == FACTS_EIO);
}

static void test_disk_full(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/full.journal", dir);
    unlink(path);
    facts_journal *j = NULL;
    facts_error err;
    CHECK(facts_journal_open(path, NULL, NULL, &j, NULL, &err) == FACTS_OK);
    if (!j)
        return;
    CHECK(facts_journal_append(j, 2, "{\"x\":1}", 7, &err) == FACTS_OK);
    long before = file_size(path);
    /* A file size limit makes writes past it fail as a full disk would. */
    struct rlimit old, lim;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)before + 10;
    setrlimit(RLIMIT_FSIZE, &lim);
    char big[200];
    memset(big, 'x', sizeof big);
    CHECK(facts_journal_append(j, 3, big, sizeof big, &err) == FACTS_ENOSPC);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(file_size(path) == before && !facts_journal_failed(j));
    CHECK(facts_journal_append(j, 3, "{\"y\":2}", 7, &err) == FACTS_OK);
    /* Oversized records are refused before anything is written. */
    char *huge = malloc(FACTS_JOURNAL_RECORD_MAX + 1);
    if (huge) {
        memset(huge, ' ', FACTS_JOURNAL_RECORD_MAX + 1);
        CHECK(facts_journal_append(j, 4, huge, FACTS_JOURNAL_RECORD_MAX + 1, &err) == FACTS_ELIMIT);
        free(huge);
    }
    facts_journal_close(j);
    collected c = {0};
    CHECK(facts_journal_open(path, collect, &c, &j, NULL, &err) == FACTS_OK && c.n == 2);
    facts_journal_close(j);
}

static void test_save_and_reset(const char *data_dir)
{
    char src[1024], path[128], jpath[128];
    snprintf(src, sizeof src, "%s/valid/minimal.json", data_dir);
    snprintf(path, sizeof path, "%s/saved.json", dir);
    snprintf(jpath, sizeof jpath, "%s/reset.journal", dir);
    facts_store *st = NULL, *next = NULL, *again = NULL;
    facts_error err;
    CHECK(facts_store_load_file(src, &st, &err) == FACTS_OK);
    if (!st)
        return;
    CHECK(facts_store_apply(st, FACTS_OP_DELETE, FACTS_KIND_EVENT, "kim-visits-russia", NULL,
                            &next, NULL, &err) == FACTS_OK);
    CHECK(next && facts_store_save(next, path, &err) == FACTS_OK);
    CHECK(facts_store_load_file(path, &again, &err) == FACTS_OK);
    if (again && next) {
        CHECK(facts_store_revision(again) == 2);
        CHECK(json_equal((json_t *)facts_store_json(again), (json_t *)facts_store_json(next)));
    }
    CHECK(facts_store_save(st, "/nonexistent-dir/x.json", &err) == FACTS_EIO);
    /* A reset journal is empty and keeps counting. */
    unlink(jpath);
    facts_journal *j = NULL;
    CHECK(facts_journal_open(jpath, NULL, NULL, &j, NULL, &err) == FACTS_OK);
    if (j) {
        CHECK(facts_journal_append(j, 2, "{}", 2, &err) == FACTS_OK);
        CHECK(facts_journal_reset(j, &err) == FACTS_OK && file_size(jpath) == 8);
        CHECK(facts_journal_revision(j) == 2);
        CHECK(facts_journal_append(j, 3, "{}", 2, &err) == FACTS_OK);
        facts_journal_close(j);
        collected c = {0};
        CHECK(facts_journal_open(jpath, collect, &c, &j, NULL, &err) == FACTS_OK && c.n == 1 &&
              c.revs[0] == 3);
        facts_journal_close(j);
    }
    facts_store_unref(st);
    facts_store_unref(next);
    facts_store_unref(again);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_journal DATA_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "/tmp/factsd-journal-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_replay();
    test_torn_tails();
    test_damage();
    test_format();
    test_disk_full();
    test_save_and_reset(argv[1]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done("test_journal");
}
