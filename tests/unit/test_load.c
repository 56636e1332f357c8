/*
 * test_load.c - the loader: the embedded dataset and a minimal one load; every
 * case of the bad-dataset corpus is rejected with its expected rule and
 * pointer; failed loads change nothing; ids are stable; caps hold.
 *
 * usage: test_load DATA_DIR   (the tests/data folder)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "facts.h"

static const char *data_dir;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Finds "name: value" in text and copies value (to end of line) into out. */
static int expect_field(const char *text, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= size)
                return 0;
            memcpy(out, v, len);
            out[len] = '\0';
            return 1;
        }
    }
    return 0;
}

static void test_embedded(void)
{
    facts_store *st = NULL;
    facts_error err;
    facts_status s = facts_store_load_embedded(&st, &err);
    if (s != FACTS_OK) {
        char msg[512];
        facts_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "embedded dataset: %s\n", msg);
    }
    CHECK(s == FACTS_OK);
    if (!st)
        return;
    CHECK(facts_store_revision(st) == 1);
    CHECK(facts_store_count(st, FACTS_KIND_SOURCE) == 1);
    CHECK(facts_store_count(st, FACTS_KIND_ACTOR) > 10);
    CHECK(facts_store_count(st, FACTS_KIND_EVENT) > 10);
    CHECK(facts_store_count(st, FACTS_KIND_ESTIMATE) == 2);
    /* Every record resolves by id and by slug, and its JSON carries both. */
    for (int k = 0; k < FACTS_KIND_COUNT; k++) {
        for (size_t i = 0; i < facts_store_count(st, (facts_kind)k); i++) {
            const facts_record *r = facts_store_at(st, (facts_kind)k, i);
            CHECK(facts_store_find(st, (facts_kind)k, facts_record_id(r)) == r);
            CHECK(facts_store_find(st, (facts_kind)k, facts_record_slug(r)) == r);
            CHECK_STR(json_string_value(json_object_get(facts_record_json(r), "id")),
                      facts_record_id(r));
            CHECK(facts_record_kind(r) == (facts_kind)k);
        }
    }
    CHECK(facts_store_at(st, FACTS_KIND_ACTOR, 100000) == NULL);
    CHECK(facts_store_find(st, FACTS_KIND_ACTOR, "no-such-actor") == NULL);
    CHECK(facts_store_find(st, FACTS_KIND_EVENT, "sergei-shoigu") == NULL);
    /* The embedded bytes are what was loaded. */
    size_t len;
    const char *bytes = facts_embedded_dataset(&len);
    CHECK(len > 1000 && bytes[len] == '\0');
    /* The canonical document round-trips through the loader unchanged. */
    char *dump = json_dumps(facts_store_json(st), JSON_COMPACT);
    facts_store *again = NULL;
    CHECK(dump && facts_store_load_buffer(dump, strlen(dump), "dump", &again, &err) == FACTS_OK);
    if (again) {
        CHECK(json_equal((json_t *)facts_store_json(st), (json_t *)facts_store_json(again)));
        facts_store_unref(again);
    }
    free(dump);
    /* References are counted. */
    CHECK(facts_store_ref(st) == st);
    facts_store_unref(st);
    facts_store_unref(st);
    facts_store_unref(NULL);
}

/* Ids are UUIDv5 of a fixed namespace and "<kind>/<slug>": a known slug has
 * the same id on every machine and every start. */
static void test_ids(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/valid/minimal.json", data_dir);
    facts_store *st = NULL;
    facts_error err;
    CHECK(facts_store_load_file(path, &st, &err) == FACTS_OK);
    if (!st)
        return;
    static const struct {
        facts_kind kind;
        const char *slug, *id;
    } known[] = {
        /* Derived (the file gives no id). */
        {FACTS_KIND_ACTOR, "russia", "9d5e1859-9ec0-57a1-a035-08088ea70577"},
        {FACTS_KIND_ACTOR, "kim-jong-un", "768bb1f7-c4ad-5842-9b7a-f1866d43a237"},
        /* Given in the file: kept as it is. */
        {FACTS_KIND_ACTOR, "north-korea", "7d1e2f30-4a5b-5c6d-8e7f-90a1b2c3d4e5"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const facts_record *r = facts_store_find(st, known[i].kind, known[i].slug);
        CHECK(r != NULL);
        if (r) {
            CHECK_STR(facts_record_id(r), known[i].id);
            /* Lookup by id is case-insensitive. */
            char upper[37];
            for (int j = 0; j < 37; j++)
                upper[j] = (char)(known[i].id[j] >= 'a' && known[i].id[j] <= 'f'
                                      ? known[i].id[j] - 32 : known[i].id[j]);
            CHECK(facts_store_find(st, known[i].kind, upper) == r);
        }
    }
    facts_store_unref(st);
}

/* Every file under valid/ loads. */
static void test_valid_corpus(void)
{
    static const char *const files[] = {"minimal.json", "limits.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/valid/%s", data_dir, files[i]);
        facts_store *st = NULL;
        facts_error err;
        facts_status s = facts_store_load_file(path, &st, &err);
        if (s != FACTS_OK)
            fprintf(stderr, "%s: %s %s\n", path, err.pointer, err.text);
        CHECK(s == FACTS_OK);
        if (st && i == 1) {
            /* A 36-character slug is a slug: matched exactly, not as an id. */
            CHECK(facts_store_find(st, FACTS_KIND_ACTOR, "abcdefghij-abcdefghij-abcdefghij-abc") != NULL);
            CHECK(facts_store_find(st, FACTS_KIND_ACTOR, "ABCDEFGHIJ-abcdefghij-abcdefghij-abc") == NULL);
        }
        facts_store_unref(st);
    }
}

/* Every folder under invalid/ holds input.json and expect (rule, pointer). */
static void test_corpus(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/invalid", data_dir);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    int cases = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char input[1600], expect_path[1600];
        snprintf(input, sizeof input, "%s/%s/input.json", dir, e->d_name);
        snprintf(expect_path, sizeof expect_path, "%s/%s/expect", dir, e->d_name);
        char *expect = read_text(expect_path);
        char rule[64], pointer[256];
        if (!expect || !expect_field(expect, "rule", rule, sizeof rule) ||
            !expect_field(expect, "pointer", pointer, sizeof pointer)) {
            fprintf(stderr, "%s: unreadable expect file\n", e->d_name);
            CHECK(0);
            free(expect);
            continue;
        }
        free(expect);
        cases++;
        facts_store *st = (facts_store *)(uintptr_t)0x1; /* must stay untouched */
        facts_error err;
        memset(&err, 0, sizeof err);
        facts_status s = facts_store_load_file(input, &st, &err);
        char msg[768];
        facts_error_format(&err, msg, sizeof msg);
        int ok = s != FACTS_OK && st == (facts_store *)(uintptr_t)0x1 &&
                 strcmp(err.rule, rule) == 0 && strcmp(err.pointer, pointer) == 0 &&
                 err.status == s && strstr(msg, input) == msg;
        if (!ok)
            fprintf(stderr, "%s: expected [%s] at \"%s\", got %s: %s\n", e->d_name, rule,
                    pointer, facts_status_name(s), msg);
        CHECK(ok);
        if (strcmp(rule, "syntax") == 0 || strcmp(rule, "duplicate-key") == 0)
            CHECK(err.line > 0 && err.column > 0);
    }
    closedir(d);
    CHECK(cases >= 20);
}

static void test_errors(void)
{
    facts_store *st = NULL;
    facts_error err;
    /* Unreadable file. */
    CHECK(facts_store_load_file("/nonexistent/dataset.json", &st, &err) == FACTS_EIO);
    CHECK(st == NULL && err.status == FACTS_EIO);
    /* Syntax errors carry line and column. */
    const char *bad = "{\n  \"format\": \"factsd-dataset/1\",\n  \"sources\": [,]\n}";
    CHECK(facts_store_load_buffer(bad, strlen(bad), "t.json", &st, &err) == FACTS_ESYNTAX);
    CHECK(err.line == 3 && err.column > 0 && strcmp(err.rule, "syntax") == 0);
    char msg[512];
    size_t n = facts_error_format(&err, msg, sizeof msg);
    CHECK(n == strlen(msg) && strncmp(msg, "t.json:3:", 9) == 0);
    /* A short buffer still gets a terminated prefix and the full length. */
    char tiny[8];
    CHECK(facts_error_format(&err, tiny, sizeof tiny) == n && strlen(tiny) == 7);
    /* Not an object. */
    CHECK(facts_store_load_buffer("[]", 2, NULL, &st, &err) == FACTS_EINVALID);
    CHECK(strcmp(err.rule, "type") == 0 && err.pointer[0] == '\0');
    /* Nesting deeper than the cap. */
    char deep[200];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    deep[80] = '\0';
    CHECK(facts_store_load_buffer(deep, 80, "deep", &st, &err) == FACTS_ELIMIT);
    CHECK(strcmp(err.rule, "limit") == 0);
    /* Input over the size cap is refused before parsing. */
    size_t big = 16 * 1024 * 1024 + 1;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, ' ', big);
        CHECK(facts_store_load_buffer(huge, big, "huge", &st, &err) == FACTS_ELIMIT);
        free(huge);
    }
    CHECK(st == NULL);
    /* Without an error struct the status is still exact. */
    CHECK(facts_store_load_buffer(deep, 80, "deep", &st, NULL) == FACTS_ELIMIT);
    CHECK(facts_store_load_buffer("[]", 2, NULL, &st, NULL) == FACTS_EINVALID);
    /* Duplicate keys under escaped and long keys get an RFC 6901 pointer. */
    static const struct {
        const char *doc, *pointer;
    } dups[] = {
        {"{\"a/b~c\": {\"x\": 1, \"x\": 2}}", "/a~1b~0c"},
        {"{\"a\\\"b\": {\"x\": 1, \"x\": 2}}", "/a\"b"},
        {"{\"a\\u002fb\": [0, {\"x\": 1, \"x\": 2}]}", "/a~1b/1"},
        {"{\"k\\u00e9\\ud83d\\ude00\": {\"x\": 1, \"x\": 2}}", "/k\u00e9\U0001F600"},
        {"[[1, 2], {\"y\": {}, \"z\": [{}, {\"q\": 1, \"q\": 1}]}]", "/1/z/1"},
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        facts_status ds = facts_store_load_buffer(dups[i].doc, strlen(dups[i].doc), "dup", &st, &err);
        if (ds != FACTS_EINVALID || strcmp(err.pointer, dups[i].pointer) != 0)
            fprintf(stderr, "duplicate key %zu: %s at \"%s\"\n", i, facts_status_name(ds), err.pointer);
        CHECK(ds == FACTS_EINVALID && strcmp(err.rule, "duplicate-key") == 0 &&
              strcmp(err.pointer, dups[i].pointer) == 0);
    }
    /* A long key is kept whole. */
    char longkey[400];
    int kn = snprintf(longkey, sizeof longkey, "{\"%0200d\": {\"x\": 1, \"x\": 2}}", 7);
    CHECK(facts_store_load_buffer(longkey, (size_t)kn, "dup", &st, &err) == FACTS_EINVALID &&
          strlen(err.pointer) == 201);
    /* Error text stays valid UTF-8 when a long value is cut. */
    char kind[256];
    size_t kl = (size_t)snprintf(kind, sizeof kind, "{\"format\": \"factsd-dataset/1\", \"x");
    for (int i = 0; i < 40; i++) {
        kind[kl++] = '\xc3';
        kind[kl++] = '\xa9';
    }
    memcpy(kind + kl, "\": 1}", 6);
    CHECK(facts_store_load_buffer(kind, strlen(kind), "utf8", &st, &err) == FACTS_EINVALID &&
          strcmp(err.rule, "unknown-member") == 0);
    json_t *as_json = json_string(err.text);
    CHECK(as_json != NULL);
    json_decref(as_json);
    /* A stated revision is the store's. */
    const char *rev7 = "{\"format\": \"factsd-dataset/1\", \"revision\": 7, \"sources\": "
                       "[{\"slug\": \"s\", \"title\": \"t\", \"publisher\": \"p\", "
                       "\"language\": \"en\", \"published\": {\"precision\": \"unknown\", "
                       "\"basis\": \"unknown\"}, \"paragraphs\": [1]}], \"actors\": [], "
                       "\"events\": [], \"troop_estimates\": []}";
    CHECK(facts_store_load_buffer(rev7, strlen(rev7), "rev7", &st, &err) == FACTS_OK);
    if (st) {
        CHECK(facts_store_revision(st) == 7);
        CHECK(json_integer_value(json_object_get(facts_store_json(st), "revision")) == 7);
        facts_store_unref(st);
        st = NULL;
    }
    CHECK(strcmp(facts_status_name(FACTS_EINVALID), "einvalid") == 0);
    CHECK(strcmp(facts_status_name((facts_status)99), "unknown") == 0);
}

static void test_kinds_and_dates(void)
{
    facts_kind k = FACTS_KIND_SOURCE;
    CHECK(facts_kind_from_collection("troop-estimates", &k) == FACTS_OK && k == FACTS_KIND_ESTIMATE);
    CHECK(facts_kind_from_collection("estimates", &k) == FACTS_ENOTFOUND && k == FACTS_KIND_ESTIMATE);
    CHECK_STR(facts_kind_name(FACTS_KIND_EVENT), "event");
    CHECK(facts_kind_name(FACTS_KIND_COUNT) == NULL);
    static const struct {
        const char *s;
        int last;
        facts_status st;
        int32_t day;
    } dates[] = {
        {"1970", 0, FACTS_OK, 0},          {"1970-01-01", 1, FACTS_OK, 0},
        {"1970", 1, FACTS_OK, 364},        {"2024-02", 1, FACTS_OK, 19782},
        {"2024-02-29", 0, FACTS_OK, 19782}, {"2023-02-29", 0, FACTS_EARG, -1},
        {"2024-13", 0, FACTS_EARG, -1},    {"0999", 0, FACTS_EARG, -1},
        {"2024-6", 0, FACTS_EARG, -1},     {"2024-06-01x", 0, FACTS_EARG, -1},
        {"", 0, FACTS_EARG, -1},           {"2024-00", 0, FACTS_EARG, -1},
    };
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        int32_t day = -1;
        facts_status s = facts_date_parse(dates[i].s, dates[i].last, &day);
        CHECK(s == dates[i].st);
        CHECK(day == dates[i].day);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_load DATA_DIR\n");
        return 2;
    }
    data_dir = argv[1];
    test_embedded();
    test_ids();
    test_valid_corpus();
    test_corpus();
    test_errors();
    test_kinds_and_dates();
    return check_done("test_load");
}
