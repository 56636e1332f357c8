/*
 * load_event.c - the loader of the event record (with its location and participants);
 * see load_internal.h and docs/dataset-format.md.
 */
#include <string.h>

#include "load_internal.h"

static const char *const event_members[] = {
    "id", "slug", "title", "type", "status", "date", "location", "participants", "summary",
    "hedge", "related_events", "related_estimates", "cameo", "acled", "evidence", NULL};
static const char *const event_required[] = {"slug", "title", "type", "status", "date",
                                             "participants", "summary", "evidence", NULL};
static const char *const location_members[] = {"name", "country", NULL};
static const char *const location_required[] = {"name", NULL};
static const char *const participant_members[] = {"actor", "role", NULL};
static const char *const participant_required[] = {"actor", "role", NULL};
static const char *const roles[] = {
    "visitor", "host", "signatory", "overseer", "accuser", "accused", "reporter", "sender",
    "receiver", "mediator", "party", "observer", "subject", "inviter", "invitee", "appointee",
    "organizer", "speaker", "target", NULL};
static const char *const acled_types[] = {
    "Battles", "Explosions/Remote violence", "Violence against civilians", "Protests",
    "Riots", "Strategic developments", NULL};

/* An event's location (the pointer is at the event). */
static bool load_location(facts_loader *ld, const json_t *loc)
{
    const char *name;
    facts_load_ptr_push(ld, "location");
    return facts_load_expect_object(ld, loc) &&
           facts_load_check_members(ld, loc, location_members, location_required) &&
           facts_load_get_string(ld, loc, "name", FACTS_STRING_MAX, &name) &&
           facts_load_get_ref(ld, loc, "country", FACTS_KIND_ACTOR, true, NULL);
}

/* Participant i of parts (the pointer is at the participant). */
static bool load_participant(facts_loader *ld, const json_t *parts, size_t i)
{
    const json_t *p = json_array_get(parts, i);
    int role;
    if (!facts_load_expect_object(ld, p) ||
        !facts_load_check_members(ld, p, participant_members, participant_required) ||
        !facts_load_get_ref(ld, p, "actor", FACTS_KIND_ACTOR, false, NULL) ||
        !facts_load_get_enum(ld, p, "role", roles, &role))
        return false;
    for (size_t j = 0; j < i; j++) {
        if (json_equal(json_array_get(parts, j), (json_t *)p))
            return facts_load_fail(ld, FACTS_EINVALID, "duplicate",
                                   "the same actor is listed twice in the same role");
    }
    return true;
}

static bool is_cameo(const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 2 && n <= 4;
    for (size_t i = 0; i < n; i++)
        ok = ok && s[i] >= '0' && s[i] <= '9';
    return ok;
}

bool facts_load_event(facts_loader *ld, const json_t *rec, facts_record *r)
{
    const char *summary, *hedge, *cameo = NULL;
    const json_t *parts = NULL;
    int acled;
    bool present, ok = true;
    const size_t base = ld->len;
    FACTS_LOAD_STEP(ld, ok, base, facts_load_check_members(ld, rec, event_members, event_required));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_id(ld, rec, r));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_slug(ld, rec, "slug", &r->slug));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "title", FACTS_STRING_MAX,
                                                        &r->name));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "type", facts_event_types,
                                                      &r->type));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "status", facts_event_statuses,
                                                      &r->status));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_date(ld, rec, "date", &r->date, &present));
    r->has_date = true;
    const json_t *loc = json_object_get(rec, "location");
    if (loc)
        FACTS_LOAD_STEP(ld, ok, base, load_location(ld, loc));
    facts_load_ptr_pop(ld, base);
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_array(ld, rec, "participants", 1, FACTS_ITEMS_MAX,
                                                       &parts));
    for (size_t i = 0; parts && i < json_array_size(parts); i++) {
        facts_load_ptr_push(ld, "participants");
        facts_load_ptr_push_index(ld, i);
        FACTS_LOAD_STEP(ld, ok, base, load_participant(ld, parts, i));
        facts_load_ptr_pop(ld, base);
    }
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "summary", FACTS_STRING_MAX,
                                                        &summary));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "hedge", FACTS_PHRASE_MAX,
                                                        &hedge));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref_list(ld, rec, "related_events",
                                                          FACTS_KIND_EVENT, r->slug));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref_list(ld, rec, "related_estimates",
                                                          FACTS_KIND_ESTIMATE, NULL));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "cameo", 4, &cameo));
    if (cameo && !is_cameo(cameo)) {
        facts_load_ptr_push(ld, "cameo");
        FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "format",
                                                      "a CAMEO code is 2 to 4 digits"));
    }
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "acled", acled_types, &acled));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_evidence(ld, rec));
    return ok;
}
