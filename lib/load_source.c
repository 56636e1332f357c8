/*
 * load_source.c - the loader of the source record;
 * see load_internal.h and docs/dataset-format.md.
 */
#include "load_internal.h"

static const char *const source_members[] = {"id", "slug", "title", "publisher", "language",
                                             "published", "paragraphs", NULL};
static const char *const source_required[] = {"slug", "title", "publisher", "language",
                                              "published", "paragraphs", NULL};

static bool is_language_tag(const char *s)
{
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z')
        n++;
    if (n < 2 || n > 3)
        return false;
    s += n;
    while (*s == '-') {
        s++;
        n = 0;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
               (s[n] >= '0' && s[n] <= '9'))
            n++;
        if (n < 2 || n > 8)
            return false;
        s += n;
    }
    return *s == '\0';
}

bool facts_load_source(facts_loader *ld, const json_t *rec, facts_record *r)
{
    const char *lang = NULL, *publisher = NULL;
    const json_t *pars = NULL;
    bool present, ok = true;
    const size_t base = ld->len;
    FACTS_LOAD_STEP(ld, ok, base, facts_load_check_members(ld, rec, source_members,
                                                           source_required));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_id(ld, rec, r));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_slug(ld, rec, "slug", &r->slug));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "title", FACTS_STRING_MAX,
                                                        &r->name));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "publisher", FACTS_STRING_MAX,
                                                        &publisher));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "language", FACTS_STRING_MAX,
                                                        &lang));
    if (lang && !is_language_tag(lang)) {
        facts_load_ptr_push(ld, "language");
        FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "format",
                                                      "\"%s\" is not a language tag", lang));
    }
    FACTS_LOAD_STEP(ld, ok, base, facts_load_date(ld, rec, "published", &r->date, &present));
    r->has_date = true;
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_array(ld, rec, "paragraphs", 1,
                                                       FACTS_PARAGRAPHS_MAX, &pars));
    facts_load_ptr_push(ld, "paragraphs");
    for (size_t i = 0; pars && i < json_array_size(pars); i++) {
        facts_load_ptr_push_index(ld, i);
        const json_t *v = json_array_get(pars, i);
        if (!json_is_integer(v))
            FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "type",
                                                          "expected an integer"));
        else if (json_integer_value(v) < 1 || json_integer_value(v) > 100000)
            FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "range",
                                                          "a sentence count is 1..100000"));
        facts_load_ptr_pop(ld, base);
        facts_load_ptr_push(ld, "paragraphs");
    }
    facts_load_ptr_pop(ld, base);
    return ok;
}
