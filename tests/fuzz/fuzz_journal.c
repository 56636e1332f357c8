/*
 * fuzz_journal.c - opening and replaying a journal file made of arbitrary
 * bytes.
 *
 * The input is written to a file in a private temporary folder (on /dev/shm
 * when there is one, so the fdatasync calls cost nothing) and opened with
 * facts_journal_open. The replay callback does with each payload what
 * factsd does at start (server/write.c, factsd_change_replay), with the
 * core's calls only: parse the payload with Jansson, skip the changes the
 * dataset already holds (checking them against the store before the first
 * new one), and facts_store_apply the rest onto the embedded article store,
 * each on the previous one's result.
 *
 * Checked besides the sanitizers: the error contract; a failed open leaves the
 * file as it was, but for a torn tail it cut; a cut tail is saved aside byte
 * for byte; what the report says matches what the callback saw; and a journal
 * that opened takes one more record and opens again with it.
 *
 * A mutated payload almost never keeps its frame's CRC-32, so on its own the
 * fuzzer would test the damage checks and little of the replay. The custom
 * mutator below mends the CRCs of the frames it finds in seven mutations out
 * of eight (and makes the revisions consecutive in half of those); the eighth
 * is left as it came, for the damage checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Bounds on the work per input: the size of the file, and the changes
 * applied (each one validates the whole dataset). */
enum { JOURNAL_INPUT_MAX = 256 * 1024, APPLIES_MAX = 8 };

static char folder[PATH_MAX];
static char journal_path[PATH_MAX];

static void remove_folder(void)
{
    if (journal_path[0] != '\0')
        unlink(journal_path);
    if (folder[0] != '\0')
        rmdir(folder);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_jansson();
    (void)fuzz_article();
    const char *base = getenv("FUZZ_TMPDIR");
    if (base == NULL)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (base == NULL)
        base = "/tmp";
    int n = snprintf(folder, sizeof folder, "%s/facts-fuzz-journal-XXXXXX", base);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof folder, "temporary folder name");
    FUZZ_CHECK(mkdtemp(folder) != NULL, "mkdtemp %s: %s", folder, strerror(errno));
    n = snprintf(journal_path, sizeof journal_path, "%s/journal", folder);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof journal_path, "journal path");
    atexit(remove_folder);
    return 0;
}

/* ------------------------------------------------------------- mutator */

size_t LLVMFuzzerMutate(unsigned char *data, size_t size, size_t max);
size_t LLVMFuzzerCustomMutator(unsigned char *data, size_t size, size_t max, unsigned int seed);

static uint32_t crc32_ieee(const unsigned char *p, size_t n, uint32_t crc)
{
    static uint32_t table[256];
    if (table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Walks the frames after the magic: gives each the right CRC and, if
 * renumber, the revision after the previous frame's. Stops at the first
 * frame whose length does not fit. */
static void mend_frames(unsigned char *data, size_t size, bool renumber)
{
    if (size < 8 || memcmp(data, "FACTSJ1\n", 8) != 0)
        return;
    uint64_t prev = 0;
    for (size_t off = 8; size - off >= 16;) {
        uint32_t n = get_u32(data + off);
        if (n > FACTS_JOURNAL_RECORD_MAX || size - off - 16 < n)
            return;
        unsigned char *rev = data + off + 8;
        if (renumber && off > 8) {
            prev++;
            put_u32(rev, (uint32_t)prev);
            put_u32(rev + 4, (uint32_t)(prev >> 32));
        } else {
            prev = (uint64_t)get_u32(rev) | (uint64_t)get_u32(rev + 4) << 32;
        }
        put_u32(data + off + 4, crc32_ieee(rev + 8, n, crc32_ieee(rev, 8, 0)));
        off += 16 + (size_t)n;
    }
}

size_t LLVMFuzzerCustomMutator(unsigned char *data, size_t size, size_t max, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max);
    if (seed % 8 != 0)
        mend_frames(data, size, (seed / 8) % 2 == 1);
    return size;
}

/* ------------------------------------------------------------- replay */

/* What the replay carries from record to record (as in server/write.c). */
typedef struct replay {
    facts_store *store; /* the latest store, owned */
    uint64_t base;      /* the dataset's revision before the replay */
    json_t *skipped;    /* id -> {"collection","record"|null} the dataset holds */
    bool verified;      /* the skipped changes were checked against the store */
    size_t seen;        /* records the callback was given */
    size_t applied;     /* changes applied */
    uint64_t last;      /* the last revision the callback was given */
} replay;

static facts_status replay_fail(facts_error *err, facts_status st, const char *rule,
                                const char *text)
{
    memset(err, 0, sizeof *err);
    err->status = st;
    snprintf(err->source, sizeof err->source, "journal");
    snprintf(err->rule, sizeof err->rule, "%s", rule);
    snprintf(err->text, sizeof err->text, "%s", text);
    return st;
}

/* The skipped changes must be what the store holds. */
static facts_status replay_verify(replay *rs, facts_error *err)
{
    rs->verified = true;
    const char *id;
    json_t *eff;
    json_object_foreach(rs->skipped, id, eff) {
        facts_kind kind;
        const json_t *want = json_object_get(eff, "record");
        if (facts_kind_from_collection(json_string_value(json_object_get(eff, "collection")),
                                       &kind) != FACTS_OK)
            return replay_fail(err, FACTS_ECORRUPT, "journal", "not a change of a collection");
        const facts_record *have = facts_store_find(rs->store, kind, id);
        bool ok = json_is_null(want) ? have == NULL
                                     : have != NULL &&
                                           json_equal((json_t *)facts_record_json(have),
                                                      (json_t *)want);
        if (!ok)
            return replay_fail(err, FACTS_ECORRUPT, "journal-mismatch",
                               "the dataset does not hold a skipped change");
    }
    return FACTS_OK;
}

static facts_status replay_apply(replay *rs, facts_op op, facts_kind kind, const char *key,
                                 const json_t *record, facts_error *err)
{
    if (rs->applied >= APPLIES_MAX)
        return replay_fail(err, FACTS_ELIMIT, "fuzz-limit", "enough changes for one input");
    rs->applied++;
    facts_store *next = FUZZ_UNTOUCHED;
    const facts_record *rec = FUZZ_UNTOUCHED;
    fuzz_error_poison(err);
    facts_status st = facts_store_apply(rs->store, op, kind, op == FACTS_OP_CREATE ? NULL : key,
                                        op == FACTS_OP_DELETE ? NULL : record, &next, &rec, err);
    if (st != FACTS_OK) {
        FUZZ_CHECK(next == FUZZ_UNTOUCHED && rec == FUZZ_UNTOUCHED,
                   "a failed change set its outputs");
        fuzz_check_error(err, st);
        return st;
    }
    FUZZ_CHECK(facts_store_revision(next) == facts_store_revision(rs->store) + 1,
               "a change gives the next revision");
    FUZZ_CHECK(op == FACTS_OP_DELETE ? rec == NULL : rec != NULL, "the changed record");
    facts_store_unref(rs->store);
    rs->store = next;
    return FACTS_OK;
}

static facts_status replay_one(void *ctx, uint64_t revision, const char *payload, size_t len,
                               facts_error *err)
{
    static const char *const ops[] = {"create", "replace", "delete"};
    replay *rs = ctx;
    FUZZ_CHECK(rs->seen == 0 || revision == rs->last + 1, "revisions %llu after %llu",
               (unsigned long long)revision, (unsigned long long)rs->last);
    FUZZ_CHECK(len <= FACTS_JOURNAL_RECORD_MAX, "a record of %zu bytes", len);
    rs->seen++;
    rs->last = revision;

    json_error_t jerr;
    json_t *p = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *opname = json_string_value(json_object_get(p, "op"));
    const char *coll = json_string_value(json_object_get(p, "collection"));
    const char *key = json_string_value(json_object_get(p, "key"));
    const json_t *record = json_object_get(p, "record");
    facts_kind kind = FACTS_KIND_SOURCE;
    int op = -1;
    for (int i = 0; opname != NULL && i < 3; i++) {
        if (strcmp(opname, ops[i]) == 0)
            op = i;
    }
    if (op < 0 || coll == NULL || key == NULL ||
        facts_kind_from_collection(coll, &kind) != FACTS_OK ||
        (op != FACTS_OP_DELETE && !json_is_object(record))) {
        json_decref(p);
        return replay_fail(err, FACTS_ECORRUPT, "journal", "not a change factsd writes");
    }
    facts_status st;
    if (revision <= rs->base) {
        json_t *eff = json_pack("{s:s,s:O}", "collection", coll, "record",
                                op == FACTS_OP_DELETE ? json_null() : (json_t *)record);
        FUZZ_CHECK(eff != NULL && json_object_set_new(rs->skipped, key, eff) == 0, "json_pack");
        json_decref(p);
        return FACTS_OK;
    }
    if (!rs->verified && (st = replay_verify(rs, err)) != FACTS_OK) {
        json_decref(p);
        return st;
    }
    if (revision != facts_store_revision(rs->store) + 1) {
        json_decref(p);
        return replay_fail(err, FACTS_ECORRUPT, "revision-gap",
                           "a record that does not follow the dataset's revision");
    }
    st = replay_apply(rs, (facts_op)op, kind, key, record, err);
    json_decref(p);
    return st;
}

/* Counts the records of a reopened journal. */
static facts_status count_one(void *ctx, uint64_t revision, const char *payload, size_t len,
                              facts_error *err)
{
    (*(size_t *)ctx)++;
    return FACTS_OK;
}

/* The file at path holds exactly n bytes of data. */
static void check_file(const char *path, const unsigned char *data, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat sb;
    FUZZ_CHECK(fstat(fd, &sb) == 0 && (size_t)sb.st_size == n, "%s has %lld bytes, not %zu",
               path, (long long)sb.st_size, n);
    unsigned char *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf != NULL, "malloc");
    FUZZ_CHECK(pread(fd, buf, n, 0) == (ssize_t)n, "read %s", path);
    FUZZ_CHECK(n == 0 || memcmp(buf, data, n) == 0, "%s is not what it should be", path);
    free(buf);
    close(fd);
}

static void write_input(const unsigned char *data, size_t size)
{
    int fd = open(journal_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "create %s: %s", journal_path, strerror(errno));
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        FUZZ_CHECK(w > 0, "write %s: %s", journal_path, strerror(errno));
        done += (size_t)w;
    }
    close(fd);
}

/* A journal that opened takes one more record, and opens again with it. */
static void check_append(facts_journal *j, size_t records)
{
    static const char payload[] = "{\"op\":\"delete\",\"collection\":\"events\",\"key\":\"x\"}";
    facts_error err;
    uint64_t next = facts_journal_revision(j) + 1;
    facts_status st = facts_journal_append(j, next, payload, sizeof payload - 1, &err);
    FUZZ_CHECK(st == FACTS_OK, "append after an open: %s", err.text);
    FUZZ_CHECK(facts_journal_revision(j) == next, "the append's revision");
    facts_journal_close(j);
    size_t count = 0;
    facts_journal_report report;
    facts_journal *again = FUZZ_UNTOUCHED;
    st = facts_journal_open(journal_path, count_one, &count, &again, &report, &err);
    FUZZ_CHECK(st == FACTS_OK, "reopen after an append: %s", err.text);
    FUZZ_CHECK(count == records + 1 && report.records == records + 1,
               "%zu records after the append, %zu before", count, records);
    FUZZ_CHECK(report.torn_offset == 0 && report.last_revision == next, "reopen report");
    facts_journal_close(again);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > JOURNAL_INPUT_MAX)
        return 0;
    write_input(data, size);
    replay rs = {facts_store_ref(fuzz_article()), facts_store_revision(fuzz_article()),
                 json_object(), false, 0, 0, 0};
    FUZZ_CHECK(rs.skipped != NULL, "json_object");
    facts_journal *j = FUZZ_UNTOUCHED;
    facts_journal_report report;
    memset(&report, 0xA5, sizeof report);
    facts_error err;
    fuzz_error_poison(&err);
    facts_status st = facts_journal_open(journal_path, replay_one, &rs, &j, &report, &err);
    if (st == FACTS_OK && !rs.verified)
        st = replay_verify(&rs, &err);

    FUZZ_CHECK(fuzz_terminated(report.torn_saved, sizeof report.torn_saved), "torn_saved");
    size_t kept = size;
    if (report.torn_offset != 0) {
        FUZZ_CHECK(report.torn_offset < size && report.torn_bytes == size - report.torn_offset,
                   "torn tail %llu+%llu of %zu", (unsigned long long)report.torn_offset,
                   (unsigned long long)report.torn_bytes, size);
        check_file(report.torn_saved, data + report.torn_offset, (size_t)report.torn_bytes);
        unlink(report.torn_saved);
        kept = (size_t)report.torn_offset;
    } else {
        FUZZ_CHECK(report.torn_bytes == 0 && report.torn_saved[0] == '\0', "no torn tail");
    }

    if (st != FACTS_OK) {
        if (j != FUZZ_UNTOUCHED)
            facts_journal_close(j); /* replay_verify failed after the open */
        fuzz_check_error(&err, st);
        /* Nothing but a cut tail changed the file. */
        check_file(journal_path, data, kept);
    } else {
        FUZZ_CHECK(j != NULL && j != FUZZ_UNTOUCHED, "an open returned no journal");
        FUZZ_CHECK(report.records == rs.seen, "report: %zu records, callback saw %zu",
                   report.records, rs.seen);
        FUZZ_CHECK(report.last_revision == (rs.seen ? rs.last : 0) &&
                       facts_journal_revision(j) == report.last_revision,
                   "last revision");
        if (size < 8) {
            static const unsigned char magic[8] = "FACTSJ1\n";
            check_file(journal_path, magic, sizeof magic);
        } else {
            check_file(journal_path, data, kept);
        }
        check_append(j, rs.seen);
    }
    facts_store_unref(rs.store);
    json_decref(rs.skipped);
    unlink(journal_path);
    return 0;
}
