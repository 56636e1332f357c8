/*
 * load_actor.c - the loader of the actor record (with its roles and aliases);
 * see load_internal.h and docs/dataset-format.md.
 */
#include "load_internal.h"

static const char *const actor_members[] = {"id", "slug", "name", "kind", "country", "aliases",
                                            "description", "roles", "evidence", NULL};
static const char *const actor_required[] = {"slug", "name", "kind", "description",
                                             "evidence", NULL};
static const char *const role_members[] = {"title", "organization", "date", "evidence", NULL};
static const char *const role_required[] = {"title", "evidence", NULL};

/* One role of an actor (the pointer is at the role). */
static bool load_role(facts_loader *ld, const json_t *role)
{
    const char *title;
    facts_date_range dr;
    bool present;
    return facts_load_expect_object(ld, role) &&
           facts_load_check_members(ld, role, role_members, role_required) &&
           facts_load_get_string(ld, role, "title", FACTS_STRING_MAX, &title) &&
           facts_load_get_ref(ld, role, "organization", FACTS_KIND_ACTOR, false, NULL) &&
           facts_load_date(ld, role, "date", &dr, &present) && facts_load_evidence(ld, role);
}

/* The unique alias list of an actor. */
static bool load_aliases(facts_loader *ld, const json_t *aliases)
{
    size_t m = facts_load_ptr_push(ld, "aliases");
    for (size_t i = 0; i < json_array_size(aliases); i++) {
        size_t mi = facts_load_ptr_push_index(ld, i);
        const json_t *v = json_array_get(aliases, i);
        if (!facts_load_check_string(ld, v, FACTS_STRING_MAX))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_array_get(aliases, j), (json_t *)v))
                return facts_load_fail(ld, FACTS_EINVALID, "duplicate", "alias listed twice");
        }
        facts_load_ptr_pop(ld, mi);
    }
    facts_load_ptr_pop(ld, m);
    return true;
}

bool facts_load_actor(facts_loader *ld, const json_t *rec, facts_record *r)
{
    const char *desc, *country;
    const json_t *aliases = NULL, *roles = NULL;
    bool ok = true;
    const size_t base = ld->len;
    FACTS_LOAD_STEP(ld, ok, base, facts_load_check_members(ld, rec, actor_members, actor_required));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_id(ld, rec, r));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_slug(ld, rec, "slug", &r->slug));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "name", FACTS_STRING_MAX,
                                                        &r->name));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_enum(ld, rec, "kind", facts_actor_kinds,
                                                      &r->subkind));
    if (json_object_get(rec, "country") &&
        r->subkind == facts_table_find(facts_actor_kinds, "state")) {
        facts_load_ptr_push(ld, "country");
        FACTS_LOAD_STEP(ld, ok, base, facts_load_fail(ld, FACTS_EINVALID, "not-allowed",
                                                      "a state has no \"country\""));
    } else {
        FACTS_LOAD_STEP(ld, ok, base, facts_load_get_ref(ld, rec, "country", FACTS_KIND_ACTOR, true,
                                                         &country));
    }
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_array(ld, rec, "aliases", 0, FACTS_ITEMS_MAX,
                                                       &aliases));
    if (aliases)
        FACTS_LOAD_STEP(ld, ok, base, load_aliases(ld, aliases));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_string(ld, rec, "description", FACTS_STRING_MAX,
                                                        &desc));
    FACTS_LOAD_STEP(ld, ok, base, facts_load_get_array(ld, rec, "roles", 0, FACTS_ITEMS_MAX,
                                                       &roles));
    for (size_t i = 0; roles && i < json_array_size(roles); i++) {
        facts_load_ptr_push(ld, "roles");
        facts_load_ptr_push_index(ld, i);
        FACTS_LOAD_STEP(ld, ok, base, load_role(ld, json_array_get(roles, i)));
        facts_load_ptr_pop(ld, base);
    }
    FACTS_LOAD_STEP(ld, ok, base, facts_load_evidence(ld, rec));
    return ok;
}
