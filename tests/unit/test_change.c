/*
 * test_change.c - facts_store_apply: each operation builds a new revision and
 * leaves the base untouched; each failure class (not found, invalid record,
 * conflict) is reported with the right status, source and pointer.
 *
 * usage: test_change DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "facts.h"

static facts_store *base;

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fprintf(stderr, "test JSON: %s at %d:%d\n", je.text, je.line, je.column);
    return j;
}

static const char *new_event =
    "{\"slug\": \"test-created-event\", \"title\": \"A new meeting\", \"type\": \"meeting\","
    " \"status\": \"reported\","
    " \"date\": {\"precision\": \"day\", \"from\": \"2024-07-01\", \"to\": \"2024-07-01\","
    "          \"basis\": \"stated\"},"
    " \"participants\": [{\"actor\": \"kim-jong-un\", \"role\": \"host\"}],"
    " \"summary\": \"Kim holds a meeting.\","
    " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 1}]}";

/* Applies op with the record text (or NULL) and returns the status; on
 * success *out holds the new store. */
static facts_status apply(facts_op op, facts_kind kind, const char *key, const char *text,
                          facts_store **out, const facts_record **rec, facts_error *err)
{
    json_t *record = text ? parse(text) : NULL;
    facts_status s = facts_store_apply(base, op, kind, key, record, out, rec, err);
    json_decref(record);
    return s;
}

static void test_create(void)
{
    size_t before = facts_store_count(base, FACTS_KIND_EVENT);
    facts_store *st = NULL;
    const facts_record *rec = NULL;
    facts_error err;
    CHECK(apply(FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, new_event, &st, &rec, &err) == FACTS_OK);
    if (!st)
        return;
    CHECK(facts_store_revision(st) == facts_store_revision(base) + 1);
    CHECK(facts_store_count(st, FACTS_KIND_EVENT) == before + 1);
    CHECK(facts_store_count(base, FACTS_KIND_EVENT) == before);
    CHECK(facts_store_find(base, FACTS_KIND_EVENT, "test-created-event") == NULL);
    CHECK(rec && facts_store_find(st, FACTS_KIND_EVENT, "test-created-event") == rec);
    /* The id of a created record derives from its kind and slug. */
    CHECK(rec && strcmp(facts_record_id(rec), "26bb2915-3e85-52ac-aa65-6d3b2a979a1e") == 0);
    /* The new record takes part in queries: Kim's events include it. */
    facts_query q;
    facts_query_init(&q, FACTS_KIND_EVENT);
    q.actor = "kim-jong-un";
    facts_page *p = NULL;
    CHECK(facts_store_query(st, &q, &p, NULL) == FACTS_OK);
    bool found = false;
    for (size_t i = 0; p && i < facts_page_count(p); i++)
        found |= facts_page_get(p, i) == rec;
    CHECK(found);
    facts_page_free(p);
    /* A second change on top: revision 3; the first store is untouched. */
    facts_store *st2 = NULL;
    CHECK(facts_store_apply(st, FACTS_OP_DELETE, FACTS_KIND_EVENT, "test-created-event", NULL,
                            &st2, &rec, &err) == FACTS_OK);
    CHECK(st2 && facts_store_revision(st2) == facts_store_revision(base) + 2 && rec == NULL);
    CHECK(st2 && facts_store_count(st2, FACTS_KIND_EVENT) == before);
    CHECK(facts_store_find(st, FACTS_KIND_EVENT, "test-created-event") != NULL);
    facts_store_unref(st2);
    facts_store_unref(st);
}

static void test_replace(void)
{
    const facts_record *orig = facts_store_find(base, FACTS_KIND_EVENT, "kim-visits-russia");
    CHECK(orig != NULL);
    if (!orig)
        return;
    char *id = strdup(facts_record_id(orig));
    /* Rename the slug and change the title: the id stays. */
    json_t *rec = json_deep_copy(json_object_get(facts_store_json(base), "events"));
    json_t *ev = json_array_get(rec, 0);
    json_object_set_new(ev, "slug", json_string("kim-goes-to-russia"));
    json_object_set_new(ev, "title", json_string("Kim goes to Russia"));
    facts_store *st = NULL;
    const facts_record *r = NULL;
    facts_error err;
    CHECK(facts_store_apply(base, FACTS_OP_REPLACE, FACTS_KIND_EVENT, id, ev, &st, &r, &err) ==
          FACTS_OK);
    if (st) {
        CHECK(r && strcmp(facts_record_id(r), id) == 0);
        CHECK(r && strcmp(facts_record_name(r), "Kim goes to Russia") == 0);
        CHECK(facts_store_find(st, FACTS_KIND_EVENT, "kim-goes-to-russia") == r);
        CHECK(facts_store_find(st, FACTS_KIND_EVENT, "kim-visits-russia") == NULL);
        CHECK(strcmp(facts_record_name(orig), "Kim Jong Un visits Russia") == 0);
        facts_store_unref(st);
    }
    /* Another id in the body is refused. */
    json_object_set_new(ev, "id", json_string("00000000-0000-4000-8000-000000000000"));
    st = (facts_store *)(uintptr_t)0x1;
    CHECK(facts_store_apply(base, FACTS_OP_REPLACE, FACTS_KIND_EVENT, "kim-visits-russia", ev,
                            &st, &r, &err) == FACTS_EINVALID);
    CHECK(st == (facts_store *)(uintptr_t)0x1 && strcmp(err.rule, "id-mismatch") == 0 &&
          strcmp(err.pointer, "/id") == 0);
    json_decref(rec);
    free(id);
}

static void test_failures(void)
{
    static const struct {
        facts_op op;
        facts_kind kind;
        const char *key;
        const char *record;
        facts_status status;
        const char *source, *rule, *pointer;
    } cases[] = {
        /* An invalid record: pointers are relative to it. */
        {FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL,
         "{\"slug\": \"x\", \"title\": \"t\", \"type\": \"party\"}", FACTS_EINVALID, "record",
         "required", ""},
        {FACTS_OP_CREATE, FACTS_KIND_ACTOR, NULL,
         "{\"slug\": \"new-actor\", \"name\": \"N\", \"kind\": \"robot\", \"description\": \"d\","
         " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 1}]}",
         FACTS_EINVALID, "record", "enum", "/kind"},
        {FACTS_OP_CREATE, FACTS_KIND_ACTOR, NULL,
         "{\"slug\": \"new-actor\", \"name\": \"N\", \"kind\": \"person\", \"description\": \"d\","
         " \"country\": \"atlantis\","
         " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 1}]}",
         FACTS_EINVALID, "record", "reference", "/country"},
        {FACTS_OP_CREATE, FACTS_KIND_ACTOR, NULL,
         "{\"slug\": \"new-actor\", \"name\": \"N\", \"kind\": \"person\", \"description\": \"d\","
         " \"evidence\": [{\"source\": \"article\", \"paragraph\": 99, \"sentence\": 1}]}",
         FACTS_EINVALID, "record", "locator", "/evidence/0/paragraph"},
        /* The slug is taken. */
        {FACTS_OP_CREATE, FACTS_KIND_ACTOR, NULL,
         "{\"slug\": \"russia\", \"name\": \"Russia again\", \"kind\": \"state\","
         " \"description\": \"d\","
         " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 1}]}",
         FACTS_ECONFLICT, "record", "duplicate-slug", "/slug"},
        /* Deleting an actor that other records refer to. */
        {FACTS_OP_DELETE, FACTS_KIND_ACTOR, "kim-jong-un", NULL, FACTS_ECONFLICT, "dataset",
         "reference", "/events/0/participants/0/actor"},
        /* Nothing to change. */
        {FACTS_OP_DELETE, FACTS_KIND_EVENT, "no-such-event", NULL, FACTS_ENOTFOUND, "change",
         "not-found", ""},
        {FACTS_OP_REPLACE, FACTS_KIND_ACTOR, "no-such-actor", "{}", FACTS_ENOTFOUND, "change",
         "not-found", ""},
        /* Bad arguments. */
        {FACTS_OP_CREATE, FACTS_KIND_ACTOR, NULL, "[]", FACTS_EARG, "change", "argument", ""},
        {FACTS_OP_CREATE, FACTS_KIND_COUNT, NULL, "{}", FACTS_EARG, "change", "argument", ""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        facts_store *st = (facts_store *)(uintptr_t)0x1;
        const facts_record *rec = (const facts_record *)(uintptr_t)0x1;
        facts_error err;
        memset(&err, 0, sizeof err);
        facts_status s = apply(cases[c].op, cases[c].kind, cases[c].key, cases[c].record, &st,
                               &rec, &err);
        int ok = s == cases[c].status && err.status == s &&
                 strcmp(err.source, cases[c].source) == 0 &&
                 strcmp(err.rule, cases[c].rule) == 0 &&
                 strcmp(err.pointer, cases[c].pointer) == 0 &&
                 st == (facts_store *)(uintptr_t)0x1 &&
                 rec == (const facts_record *)(uintptr_t)0x1;
        if (!ok)
            fprintf(stderr, "change case %zu: got %s %s [%s] at \"%s\": %s\n", c,
                    facts_status_name(s), err.source, err.rule, err.pointer, err.text);
        CHECK(ok);
    }
    CHECK(facts_store_revision(base) == 1);
}

/* Every problem of a record is reported, in document order, each relative to
 * the record; the list stops at the room given. */
static void test_all_problems(void)
{
    static const char *bad =
        "{\"slug\": \"many-problems\", \"colour\": \"red\", \"title\": \"T\","
        " \"type\": \"picnic\", \"status\": \"reported\","
        " \"date\": {\"precision\": \"month\", \"from\": \"2024-13\", \"to\": \"2024-12\","
        "          \"basis\": \"stated\"},"
        " \"participants\": [{\"actor\": \"kim-jong-un\", \"role\": \"host\"}],"
        " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 1}]}";
    static const struct {
        const char *rule, *pointer;
    } want[] = {
        {"unknown-member", "/colour"},
        {"required", ""},
        {"enum", "/type"},
        {"date", "/date/from"},
    };
    json_t *record = parse(bad);
    facts_error errs[8];
    size_t n = 99;
    facts_store *st = NULL;
    CHECK(facts_store_apply_all(base, FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, record, &st, NULL,
                                errs, 8, &n) == FACTS_EINVALID);
    CHECK(n == 4 && st == NULL);
    for (size_t i = 0; i < n && i < 4; i++) {
        if (strcmp(errs[i].rule, want[i].rule) != 0 || strcmp(errs[i].pointer, want[i].pointer) != 0)
            fprintf(stderr, "problem %zu: [%s] at \"%s\"\n", i, errs[i].rule, errs[i].pointer);
        CHECK(strcmp(errs[i].rule, want[i].rule) == 0);
        CHECK(strcmp(errs[i].pointer, want[i].pointer) == 0);
        CHECK(strcmp(errs[i].source, "record") == 0 && errs[i].status == FACTS_EINVALID);
    }
    /* Room for two: two are reported. */
    CHECK(facts_store_apply_all(base, FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, record, &st, NULL,
                                errs, 2, &n) == FACTS_EINVALID && n == 2);
    json_decref(record);
    /* A well-formed record whose references all fail: each one is listed. */
    record = parse("{\"slug\": \"bad-refs\", \"title\": \"T\", \"type\": \"meeting\","
                   " \"status\": \"reported\", \"date\": {\"precision\": \"unknown\","
                   " \"basis\": \"unknown\"}, \"summary\": \"S\","
                   " \"participants\": [{\"actor\": \"nobody\", \"role\": \"host\"},"
                   " {\"actor\": \"no-one\", \"role\": \"visitor\"}],"
                   " \"evidence\": [{\"source\": \"article\", \"paragraph\": 1, \"sentence\": 9}]}");
    CHECK(facts_store_apply_all(base, FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, record, &st, NULL,
                                errs, 8, &n) == FACTS_EINVALID);
    CHECK(n == 3 && strcmp(errs[0].pointer, "/participants/0/actor") == 0 &&
          strcmp(errs[1].pointer, "/participants/1/actor") == 0 &&
          strcmp(errs[2].pointer, "/evidence/0/sentence") == 0 &&
          strcmp(errs[2].rule, "locator") == 0);
    json_decref(record);
    /* Other failures fill one. */
    CHECK(facts_store_apply_all(base, FACTS_OP_DELETE, FACTS_KIND_EVENT, "nope", NULL, &st, NULL,
                                errs, 8, &n) == FACTS_ENOTFOUND && n == 1);
    /* Success reports none. */
    record = parse(new_event);
    CHECK(facts_store_apply_all(base, FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, record, &st, NULL,
                                errs, 8, &n) == FACTS_OK && n == 0);
    facts_store_unref(st);
    json_decref(record);
}

/* A change that would make the dataset too large to load again is refused:
 * every state a store reaches can be saved and loaded. */
static void test_size_cap(void)
{
    json_t *doc = json_deep_copy(facts_store_json(base));
    json_t *events = json_object_get(doc, "events");
    char *summary = malloc(65001);
    if (!doc || !events || !summary) {
        CHECK(0);
        json_decref(doc);
        free(summary);
        return;
    }
    memset(summary, 's', 65000);
    summary[65000] = '\0';
    json_t *tmpl = json_deep_copy(json_array_get(events, 0));
    json_object_del(tmpl, "id");
    json_object_del(tmpl, "related_estimates");
    json_object_set_new(tmpl, "summary", json_string(summary));
    for (int i = 0; i < 250; i++) {
        json_t *e = json_deep_copy(tmpl);
        char slug[32];
        snprintf(slug, sizeof slug, "big-%d", i);
        json_object_set_new(e, "slug", json_string(slug));
        json_array_append_new(events, e);
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    facts_store *st = NULL;
    facts_error err;
    CHECK(text && facts_store_load_buffer(text, strlen(text), "big", &st, &err) == FACTS_OK);
    free(text);
    facts_status s = FACTS_OK;
    int added = 0;
    while (st && s == FACTS_OK && added < 40) {
        json_t *e = json_deep_copy(tmpl);
        char slug[32];
        snprintf(slug, sizeof slug, "more-%d", added);
        json_object_set_new(e, "slug", json_string(slug));
        facts_store *next = NULL;
        s = facts_store_apply(st, FACTS_OP_CREATE, FACTS_KIND_EVENT, NULL, e, &next, NULL, &err);
        json_decref(e);
        if (s == FACTS_OK) {
            facts_store_unref(st);
            st = next;
            added++;
        }
    }
    CHECK(s == FACTS_ELIMIT && strcmp(err.rule, "limit") == 0 && added < 40);
    /* The last state accepted saves to a file that loads again. */
    if (st) {
        char path[] = "/tmp/factsd-cap-XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) {
            close(fd);
            facts_store *again = NULL;
            CHECK(facts_store_save(st, path, &err) == FACTS_OK);
            CHECK(facts_store_load_file(path, &again, &err) == FACTS_OK);
            facts_store_unref(again);
            unlink(path);
        }
    }
    facts_store_unref(st);
    json_decref(tmpl);
    json_decref(doc);
    free(summary);
}

/* What a reload compares, and the renumbering of a store nobody shares. */
static void test_same_and_renumber(void)
{
    char *text = json_dumps(facts_store_json(base), JSON_COMPACT);
    facts_store *again = NULL, *st = NULL;
    facts_error err;
    CHECK(text != NULL &&
          facts_store_load_buffer(text, strlen(text), "again", &again, &err) == FACTS_OK);
    free(text);
    if (!again)
        return;
    CHECK(facts_store_same_records(base, again) && facts_store_same_records(again, base));
    const facts_record *orig = facts_store_find(base, FACTS_KIND_EVENT, "kim-visits-russia");
    json_t *ev = orig ? json_deep_copy(facts_record_json(orig)) : NULL;
    CHECK(ev != NULL);
    if (ev)
        json_object_set_new(ev, "title", json_string("Another title"));
    if (ev && facts_store_apply(base, FACTS_OP_REPLACE, FACTS_KIND_EVENT, "kim-visits-russia",
                                ev, &st, NULL, &err) == FACTS_OK) {
        CHECK(!facts_store_same_records(base, st));
        /* Same records, other revision: still the same records. */
        CHECK(facts_store_revision(st) == facts_store_revision(base) + 1);
        facts_store_unref(st);
    }
    json_decref(ev);
    uint64_t rev = facts_store_revision(again);
    CHECK(facts_store_renumber(again, rev - 1, &err) == FACTS_EARG &&
          facts_store_revision(again) == rev);
    CHECK(facts_store_renumber(again, (uint64_t)1 << 60, &err) == FACTS_EARG);
    facts_store_ref(again);
    CHECK(facts_store_renumber(again, rev + 5, &err) == FACTS_EARG); /* shared */
    facts_store_unref(again);
    CHECK(facts_store_renumber(again, rev + 5, &err) == FACTS_OK &&
          facts_store_revision(again) == rev + 5);
    CHECK(facts_store_same_records(base, again));
    facts_store_unref(again);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_change DATA_DIR\n");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/valid/minimal.json", argv[1]);
    facts_error err;
    if (facts_store_load_file(path, &base, &err) != FACTS_OK) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        return 1;
    }
    test_create();
    test_replace();
    test_failures();
    test_all_problems();
    test_size_cap();
    test_same_and_renumber();
    facts_store_unref(base);
    return check_done("test_change");
}
