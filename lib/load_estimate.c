/*
 * load_estimate.c - the loader of the troop-estimate record;
 * see load_internal.h and docs/dataset-format.md.
 */
#include <string.h>

#include "load_internal.h"

static const char *const estimate_members[] = {
    "id", "slug", "sender", "receiver", "low", "high", "unit", "kind", "period",
    "reported_by", "certainty", "hedge", "description", "evidence", NULL};
static const char *const estimate_required[] = {
    "slug", "sender", "receiver", "low", "high", "unit", "kind", "period", "certainty",
    "description", "evidence", NULL};
static const char *const units[] = {"troops", NULL};
static const char *const certainties[] = {"confirmed", "reported", "estimated", "possible", NULL};

bool facts_load_estimate(facts_loader *ld, const json_t *rec, facts_record *r)
{
    const char *sender = NULL, *receiver = NULL, *hedge, *desc;
    json_int_t low = -1, high = -1;
    int unit, certainty;
    bool present, ok = true;
    const size_t base = ld->len;
    FACTS_LOAD_STEP(ld, ok, base, facts_load_check_members(ld, rec, estimate_members,
                                                           estimate_required));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_id(ld, rec, r));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_slug(ld, rec, "slug", &r->slug));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref(ld, rec, "sender", FACTS_KIND_ACTOR, false,
                                                     &sender));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref(ld, rec, "receiver", FACTS_KIND_ACTOR, false,
                                                     &receiver));
    if (sender && receiver && strcmp(sender, receiver) == 0) {
        facts_load_ptr_push(ld, "receiver");
        FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "self-reference",
                                                      "sender and receiver are the same actor"));
    }
    bool low_ok = true, high_ok = true;
    FACTS_LOAD_STEP(ld, low_ok, base, facts_load_get_int(ld, rec, "low", 0, 10000000, &low));
    FACTS_LOAD_STEP(ld, high_ok, base, facts_load_get_int(ld, rec, "high", 0, 10000000, &high));
    ok = ok && low_ok && high_ok;
    if (low_ok && high_ok && low > high)
        FACTS_LOAD_STEP(ld, ok, base,
                        facts_load_fail(ld, FACTS_EINVALID, "low-high",
                                        "low (%" JSON_INTEGER_FORMAT ") is above high (%"
                                        JSON_INTEGER_FORMAT ")", low, high));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "unit", units, &unit));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "kind", facts_estimate_kinds,
                                                      &r->subkind));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_date(ld, rec, "period", &r->date, &present));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref_list(ld, rec, "reported_by", FACTS_KIND_ACTOR,
                                                          NULL));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "certainty", certainties,
                                                      &certainty));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "hedge", FACTS_PHRASE_MAX,
                                                        &hedge));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "description", FACTS_STRING_MAX,
                                                        &desc));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_evidence(ld, rec));
    if (!ok)
        return false;
    r->has_date = true;
    r->low = low;
    r->high = high;
    r->name = r->slug;
    return true;
}
