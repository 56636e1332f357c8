// factsd live dashboard.
//
// Everything shown comes from the public API under /v1, and changes arrive
// over /v1/stream (server-sent events). Dataset text is only ever inserted
// as text nodes or attribute values, never parsed as HTML.
"use strict";

// How each event status is drawn; the legend in index.html names the families.
const STATUS_FAMILY = {
  occurred: "fact",
  confirmed: "fact",
  reported: "reported",
  alleged: "reported",
  suspected: "reported",
  speculated: "uncertain",
  expected: "uncertain",
  proposed: "uncertain",
  unlikely: "uncertain",
  "not-acknowledged": "uncertain",
  ongoing: "ongoing",
};

const COLLECTIONS = ["sources", "actors", "events", "troop-estimates"];
const SEARCH_DELAY_MS = 200;   // typing pause before the search is sent
const REFRESH_DELAY_MS = 30;   // coalesces the re-queries a burst of changes causes
const REOPEN_DELAY_MS = 5000;  // a closed stream (e.g. after a 503) is reopened after this

const numbers = new Intl.NumberFormat("en-US");
const monthName = new Intl.DateTimeFormat("en-GB", { month: "long", timeZone: "UTC" });
const monthShort = new Intl.DateTimeFormat("en-GB", { month: "short", timeZone: "UTC" });
const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

const state = {
  records: {                 // collection -> Map(id -> record), as the API gives them
    sources: new Map(),
    actors: new Map(),
    events: new Map(),
    "troop-estimates": new Map(),
  },
  summary: null,             // GET /v1/troop-estimates/summary
  revision: 0,               // the revision the local copy reflects
  lastChange: null,          // time of the last change applied from the stream
  selected: null,            // { collection, id } shown in the details panel
  actorId: null,             // the actor whose events are listed
  actorEvents: null,         // that actor's events, from /v1/actors/{id}/events
  matches: null,             // events matching the search, or null with no search
  matchIds: null,            // their ids
  fresh: new Set(),          // ids changed by the stream, highlighted once
  loading: null,             // the running full load, if any
  pending: [],               // change entries that arrived during a full load
};

const $ = (id) => document.getElementById(id);
const actorBox = $("actor-events");   // moved under the chosen actor's button
const allEvents = () => [...state.records.events.values()];

/* ---------- DOM helpers ---------- */

// Creates an element. props: "class", "dataset", "on" (event listeners) or
// attributes; children: nodes or strings (strings become text nodes).
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") {
      for (const [type, listener] of Object.entries(value)) node.addEventListener(type, listener);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// Quoted words of the article.
function quote(text) {
  return `“${text}”`;
}

function humanize(value) {
  return String(value).replaceAll("-", " ");
}

function capitalize(value) {
  const text = humanize(value);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/* ---------- API ---------- */

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

// Every page of a collection: { items, revision } where revision is the
// oldest revision any page reflected.
async function getAll(path, params = new URLSearchParams()) {
  const items = [];
  let revision = Infinity;
  let cursor = null;
  do {
    const query = new URLSearchParams(params);
    query.set("limit", "500");
    if (cursor) query.set("cursor", cursor);
    const page = await getJSON(`${path}?${query}`);
    items.push(...page.items);
    if (Number.isInteger(page.revision)) revision = Math.min(revision, page.revision);
    cursor = page.next;
  } while (cursor);
  return { items, revision };
}

function findBySlug(collection, slug) {
  for (const record of state.records[collection].values()) if (record.slug === slug) return record;
  return null;
}

function actorName(slug) {
  return findBySlug("actors", slug)?.name ?? humanize(slug);
}

/* ---------- loading and live changes ---------- */

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// Loads every collection afresh, then applies the changes that came meanwhile.
function reload() {
  if (!state.loading) {
    state.loading = loadAll().finally(() => { state.loading = null; });
  }
  return state.loading;
}

async function loadAll() {
  try {
    const pages = await Promise.all(COLLECTIONS.map((c) => getAll(`/v1/${c}`)));
    const summary = await getJSON("/v1/troop-estimates/summary");
    COLLECTIONS.forEach((collection, i) => {
      state.records[collection] = new Map(pages[i].items.map((r) => [r.id, r]));
    });
    state.summary = summary;
    state.revision = Math.min(...pages.map((p) => p.revision));
    showNotice("");
  } catch (error) {
    showNotice(`Could not load the data: ${error.message}. It loads again when the server is back.`);
    return;
  }
  renderAll();
  refreshQueries();
  const pending = state.pending;
  state.pending = [];
  pending.filter((entry) => entry.revision > state.revision).forEach(applyChange);
}

// Applies one change entry of the stream (see docs/api.md, "Following changes").
function applyChange(entry) {
  if (state.loading) {
    state.pending.push(entry);
    return;
  }
  state.revision = Math.max(state.revision, entry.revision);
  state.lastChange = new Date(entry.time ?? Date.now());
  const records = state.records[entry.collection];
  if (entry.op === "reload" || !records) {
    reload();
    return;
  }
  if (entry.op === "delete") records.delete(entry.id);
  else {
    records.set(entry.id, entry.record);
    state.fresh.add(entry.id);
  }
  if (entry.collection === "troop-estimates") refreshSummary();
  renderAll();
  refreshQueries();
}

async function refreshSummary() {
  try {
    state.summary = await getJSON("/v1/troop-estimates/summary");
    renderEstimates();
  } catch (error) {
    showNotice(`Could not load the estimate summary: ${error.message}.`);
  }
}

let stream = null;

// Follows /v1/stream from the revision the local copy reflects. EventSource
// reconnects by itself and sends Last-Event-ID; a reset means the server no
// longer has that position (or restarted): everything is loaded again.
function connect() {
  if (stream) stream.close();
  const source = new EventSource(`/v1/stream?last-event-id=${state.revision}`);
  stream = source;
  source.addEventListener("open", () => setLive("connected"));
  source.addEventListener("message", (e) => applyChange(JSON.parse(e.data)));
  source.addEventListener("reset", () => reload());
  source.addEventListener("error", () => {
    setLive("reconnecting");
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => { if (stream === source) connect(); }, REOPEN_DELAY_MS);
    }
  });
}

function setLive(status) {
  const text = { connected: "Connected, live", reconnecting: "Reconnecting…" }[status];
  $("live").dataset.state = status;
  $("live-text").textContent = text;
}

/* ---------- queries that depend on the server (search, an actor's events) ---------- */

let refreshTimer = 0;

function refreshQueries(delay = REFRESH_DELAY_MS) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    runSearch();
    loadActorEvents();
  }, delay);
}

function searchParams() {
  const params = new URLSearchParams();
  const q = $("q").value.trim();
  if (q) params.set("q", q);
  if ($("f-type").value) params.set("type", $("f-type").value);
  if ($("f-status").value) params.set("status", $("f-status").value);
  return params;
}

let searchToken = 0;

async function runSearch() {
  const token = ++searchToken;
  const params = searchParams();
  const before = state.matchIds;
  if (params.size === 0) {
    if (state.matches === null) return;  // no search before, none now
    state.matches = null;
    state.matchIds = null;
  } else {
    try {
      const { items } = await getAll("/v1/events", params);
      if (token !== searchToken) return;  // a newer search is under way
      state.matches = items;
      state.matchIds = new Set(items.map((e) => e.id));
    } catch (error) {
      if (token === searchToken) showNotice(`The search failed: ${error.message}.`);
      return;
    }
  }
  renderSearch();
  if (!sameMembers(before, state.matchIds)) renderTimeline();
}

function sameMembers(a, b) {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((x) => b.has(x));
}

let actorToken = 0;

async function loadActorEvents() {
  const token = ++actorToken;
  const id = state.actorId;
  if (!id || !state.records.actors.has(id)) {
    if (id === null && state.actorEvents === null) return;  // nothing listed, nothing to list
    state.actorId = null;
    state.actorEvents = null;
  } else {
    try {
      const { items } = await getAll(`/v1/actors/${encodeURIComponent(id)}/events`);
      if (token !== actorToken) return;
      state.actorEvents = items;
    } catch (error) {
      if (token === actorToken) showNotice(`Could not load the actor's events: ${error.message}.`);
      return;
    }
  }
  renderActors();
}

/* ---------- dates ---------- */

// Start (inclusive) and end (exclusive) of a partial date, in ms since 1970 UTC.
function dayBounds(text) {
  const [y, m, d] = text.split("-").map(Number);
  if (d) return [Date.UTC(y, m - 1, d), Date.UTC(y, m - 1, d + 1)];
  if (m) return [Date.UTC(y, m - 1, 1), Date.UTC(y, m, 1)];
  return [Date.UTC(y, 0, 1), Date.UTC(y + 1, 0, 1)];
}

// The span a date allows, or null when the date is unknown.
function dateSpan(date) {
  if (!date || date.precision === "unknown" || !date.from || !date.to) return null;
  return { start: dayBounds(date.from)[0], end: dayBounds(date.to)[1] };
}

function partialText(text, short = false) {
  const [y, m, d] = text.split("-").map(Number);
  if (!m) return String(y);
  const month = (short ? monthShort : monthName).format(Date.UTC(y, m - 1, 1));
  return d ? `${d} ${month} ${y}` : `${month} ${y}`;
}

// "June 2024", "September–November 2024", "2023".
function dateText(date) {
  if (!dateSpan(date)) return "date not given";
  if (date.from === date.to) return partialText(date.from);
  const [fy] = date.from.split("-");
  const [ty] = date.to.split("-");
  if (fy === ty && date.from.length === 7) {
    return `${partialText(date.from).replace(` ${fy}`, "")}–${partialText(date.to)}`;
  }
  return `${partialText(date.from)}–${partialText(date.to)}`;
}

function basisText(date) {
  return { stated: "as stated", context: "inferred from context", unknown: "not given" }[date.basis]
    ?? humanize(date.basis);
}

/* ---------- small shared pieces ---------- */

function familyOf(status) {
  return STATUS_FAMILY[status] ?? "uncertain";
}

function statusBadge(status) {
  return h("span", { class: `status fam-${familyOf(status)}` }, humanize(status));
}

function hedgeText(hedge) {
  if (!hedge) return null;
  return h("span", { class: "hedge" },
    h("span", { class: "hedge-sign", "aria-hidden": "true" }, "≈"),
    h("span", { class: "visually-hidden" }, "hedged: "),
    quote(hedge));
}

function selectRecord(collection, id) {
  state.selected = { collection, id };
  renderDetails();
  renderTimeline();
  renderEstimates();
  if (window.matchMedia("(max-width: 1399px)").matches) {
    $("details").scrollIntoView({ block: "start" });
  }
}

// A list entry that opens an event in the details panel.
function eventButton(event) {
  return h("li", {},
    h("button", {
      type: "button",
      class: "event-link",
      dataset: { ref: event.id },
      on: { click: () => selectRecord("events", event.id) },
    },
    h("span", { class: "event-link-title" }, event.title),
    h("span", { class: "event-link-meta" }, statusBadge(event.status), " ", dateText(event.date))));
}

// Keeps keyboard focus on the same record when a list is drawn again.
function keepFocus(container, attribute, draw) {
  const focused = document.activeElement;
  if (!container.contains(focused)) {
    draw();
    return;
  }
  const key = focused.getAttribute(attribute);
  draw();
  if (document.activeElement === focused) return;
  if (focused.isConnected) focused.focus();
  else if (key) container.querySelector(`[${attribute}="${CSS.escape(key)}"]`)?.focus();
}

/* ---------- rendering ---------- */

function renderAll() {
  renderHeader();
  renderFilters();
  renderActors();
  renderTimeline();
  renderEstimates();
  renderDetails();
  renderSearch();
  state.fresh.clear();
}

function renderHeader() {
  const sources = [...state.records.sources.values()];
  const line = $("source-line");
  if (sources.length === 0) line.textContent = "No source";
  else {
    line.replaceChildren(h("span", { class: "source-label" }, sources.length > 1 ? "Sources " : "Source "),
      ...sources.flatMap((s, i) => [i ? "; " : "", h("cite", {}, s.title), ` · ${s.publisher}`]));
  }
  const counts = [
    `${numbers.format(state.records.events.size)} events`,
    `${numbers.format(state.records.actors.size)} actors`,
    `${numbers.format(state.records["troop-estimates"].size)} estimates`,
    `revision ${numbers.format(state.revision)}`,
  ];
  if (state.lastChange) counts.push(`last change ${clock.format(state.lastChange)}`);
  $("meta").textContent = counts.join(" · ");
}

// Type and status choices: the values the events actually have.
function renderFilters() {
  const events = allEvents();
  fillSelect($("f-type"), "Any type", events.map((e) => e.type));
  fillSelect($("f-status"), "Any status", events.map((e) => e.status));
}

function fillSelect(select, anyText, values) {
  const current = select.value;
  const choices = [...new Set(values)].sort();
  if (current && !choices.includes(current)) choices.push(current);
  select.replaceChildren(h("option", { value: "" }, anyText),
    ...choices.map((v) => h("option", { value: v }, humanize(v))));
  select.value = current;
}

function renderSearch() {
  const results = $("results");
  const active = state.matches !== null;
  results.hidden = !active;
  $("clear-search").hidden = !active;
  if (!active) return;
  const n = state.matches.length;
  $("results-count").textContent = n === 1 ? "1 event matches" : `${numbers.format(n)} events match`;
  keepFocus($("results-list"), "data-ref", () => {
    $("results-list").replaceChildren(...state.matches.map(eventButton));
  });
}

function renderActors() {
  const counts = new Map();
  for (const event of allEvents()) {
    for (const slug of new Set(event.participants.map((p) => p.actor))) {
      counts.set(slug, (counts.get(slug) ?? 0) + 1);
    }
  }
  const actors = [...state.records.actors.values()].sort((a, b) => a.name.localeCompare(b.name, "en"));
  keepFocus($("actor-list"), "data-actor-id", () => {
    $("actor-list").replaceChildren(...actors.map((actor) => h("li", {},
      h("button", {
        type: "button",
        class: "actor",
        "aria-expanded": String(actor.id === state.actorId),
        "aria-controls": "actor-events",
        dataset: { actorId: actor.id },
        on: { click: () => showActor(state.actorId === actor.id ? null : actor.id) },
      },
      h("span", { class: "actor-name" }, actor.name),
      h("span", { class: "actor-kind" }, humanize(actor.kind)),
      h("span", { class: "actor-count", title: "events" }, numbers.format(counts.get(actor.slug) ?? 0))))));
    renderActorEvents();
  });
}

// Lists an actor's events (null: none).
function showActor(id) {
  state.actorId = id;
  state.actorEvents = null;
  renderActors();
  loadActorEvents();
}

// The chosen actor's events, right under its button.
function renderActorEvents() {
  const actor = state.records.actors.get(state.actorId);
  const button = actor && $("actor-list").querySelector(`[data-actor-id="${CSS.escape(actor.id)}"]`);
  actorBox.hidden = !button;
  if (!button) {
    $("actor-list").after(actorBox);
    return;
  }
  button.after(actorBox);
  $("actor-events-h").textContent = `Events with ${actor.name}`;
  const list = $("actor-events-list");
  if (state.actorEvents === null) {
    list.replaceChildren(h("li", { class: "empty" }, "Loading…"));
  } else if (state.actorEvents.length === 0) {
    list.replaceChildren(h("li", { class: "empty" }, "No events name this actor."));
  } else {
    keepFocus(list, "data-ref", () => list.replaceChildren(...state.actorEvents.map(eventButton)));
  }
}

/* ----- timeline ----- */

function renderTimeline() {
  const events = allEvents();
  const dated = events.filter((e) => dateSpan(e.date)).sort(byDate);
  const undated = events.filter((e) => !dateSpan(e.date));
  const timeline = $("timeline");
  keepFocus(timeline, "data-event-id", () => {
    renderDated(dated);
    renderUndated(undated, dated, events);
  });
}

function byDate(a, b) {
  const x = dateSpan(a.date);
  const y = dateSpan(b.date);
  return x.start - y.start || x.end - y.end || a.title.localeCompare(b.title, "en");
}

// One button per event: the element tests and people click.
function markButton(event, extraClass, ...content) {
  const selected = state.selected?.collection === "events" && state.selected.id === event.id;
  const dimmed = state.matchIds !== null && !state.matchIds.has(event.id);
  const classes = ["mark", extraClass, `fam-${familyOf(event.status)}`];
  if (dimmed) classes.push("dim");
  if (selected) classes.push("selected");
  if (state.fresh.has(event.id)) classes.push("fresh");
  return h("button", {
    type: "button",
    class: classes.join(" "),
    "aria-current": selected ? "true" : null,
    dataset: { eventId: event.id, status: event.status, precision: event.date.precision },
    on: { click: () => selectRecord("events", event.id) },
  }, ...content);
}

function markText(event, withDate) {
  return h("span", { class: "mark-text" },
    h("span", { class: "mark-title" }, event.title),
    h("span", { class: "mark-meta" },
      statusBadge(event.status),
      withDate ? h("span", { class: "mark-when" }, `${dateText(event.date)} (${event.date.precision}`,
        event.date.basis === "context" ? ", inferred)" : ")") : null,
      hedgeText(event.hedge)));
}

// The time axis: whole years around the dated events.
function axisDomain(dated) {
  const spans = dated.map((e) => dateSpan(e.date));
  const first = new Date(Math.min(...spans.map((s) => s.start))).getUTCFullYear();
  const last = new Date(Math.max(...spans.map((s) => s.end)) - 1).getUTCFullYear();
  return { first, last, start: Date.UTC(first, 0, 1), end: Date.UTC(last + 1, 0, 1) };
}

function axisTicks(domain) {
  const years = domain.last - domain.first + 1;
  const step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].find((s) => years / s <= 8);
  const ticks = [];
  for (let y = domain.first; y <= domain.last + 1; y += 1) {
    const t = Date.UTC(y, 0, 1);
    if ((y - domain.first) % step === 0 || y === domain.last + 1) {
      ticks.push({ t, kind: "year", label: y <= domain.last ? String(y) : "" });
    }
    if (years > 4 || y > domain.last) continue;
    for (let m = 1; m < 12; m += 1) {
      const quarter = m % 3 === 0 && years <= 3;
      ticks.push({
        t: Date.UTC(y, m, 1),
        kind: quarter ? "quarter" : "month",
        label: quarter ? monthShort.format(Date.UTC(y, m, 1)) : "",
      });
    }
  }
  return ticks;
}

function renderDated(dated) {
  $("dated-count").textContent = `(${dated.length})`;
  const rows = $("dated-rows");
  const axis = $("axis");
  if (dated.length === 0) {
    axis.replaceChildren();
    rows.replaceChildren(h("li", { class: "empty" }, "No event has a date yet."));
    return;
  }
  const domain = axisDomain(dated);
  const position = (t) => ((t - domain.start) / (domain.end - domain.start)) * 100;
  const ticks = axisTicks(domain);

  axis.replaceChildren(h("span", { class: "axis-label" }),
    h("span", { class: "axis-scale" }, ...ticks.filter((t) => t.t < domain.end).map((tick) => {
      const node = h("span", { class: `tick tick-${tick.kind}` }, tick.label);
      node.style.left = `${position(tick.t)}%`;
      return node;
    })));

  rows.replaceChildren(...dated.map((event) => {
    const span = dateSpan(event.date);
    const track = h("span", { class: "track" },
      ...ticks.filter((t) => t.kind !== "month").map((tick) => {
        const line = h("span", { class: `grid grid-${tick.kind}` });
        line.style.left = `${position(tick.t)}%`;
        return line;
      }));
    const bar = h("span", { class: event.date.precision === "day" ? "bar point" : "bar band" });
    if (event.date.precision === "day") bar.style.left = `${position((span.start + span.end) / 2)}%`;
    else {
      bar.style.left = `${position(span.start)}%`;
      bar.style.width = `${position(span.end) - position(span.start)}%`;
    }
    track.append(bar);
    return h("li", { class: "row" }, markButton(event, "mark-dated", markText(event, true), track));
  }));
}

// Undirected links between events, in the order the records list them.
function linkGraph(events) {
  const known = new Set(events.map((e) => e.slug));
  const graph = new Map(events.map((e) => [e.slug, []]));
  const link = (a, b) => { if (!graph.get(a).includes(b)) graph.get(a).push(b); };
  for (const event of events) {
    for (const other of event.related_events ?? []) {
      if (!known.has(other) || other === event.slug) continue;
      link(event.slug, other);
      link(other, event.slug);
    }
  }
  return graph;
}

// Groups the undated events: a breadth-first walk of the links from all dated
// events at once gives each undated event its nearest dated event and an order;
// events no dated event leads to follow, walked from the most linked one.
function undatedGroups(undated, dated, events) {
  const graph = linkGraph(events);
  const anchor = new Map();
  const order = [];
  const walk = (queue) => {
    for (let i = 0; i < queue.length; i += 1) {
      for (const next of graph.get(queue[i])) {
        if (anchor.has(next)) continue;
        anchor.set(next, anchor.get(queue[i]));
        queue.push(next);
        order.push(next);
      }
    }
  };
  dated.forEach((e) => anchor.set(e.slug, e.slug));
  walk(dated.map((e) => e.slug));
  const unlinked = undated.filter((e) => !anchor.has(e.slug))
    .sort((a, b) => graph.get(b.slug).length - graph.get(a.slug).length || a.title.localeCompare(b.title, "en"));
  for (const start of unlinked) {
    if (anchor.has(start.slug)) continue;
    anchor.set(start.slug, null);
    order.push(start.slug);
    walk([start.slug]);
  }
  const bySlug = new Map(undated.map((e) => [e.slug, e]));
  const groups = [...dated, null].map((seed) => ({ seed, events: [] }));
  for (const slug of order) {
    const event = bySlug.get(slug);
    if (!event) continue;  // a dated event reached through an undated one
    const seed = anchor.get(slug);
    groups[seed === null ? dated.length : dated.findIndex((d) => d.slug === seed)].events.push(event);
  }
  return groups.filter((g) => g.events.length > 0);
}

function renderUndated(undated, dated, events) {
  $("undated-count").textContent = `(${undated.length})`;
  const groups = undatedGroups(undated, dated, events);
  $("undated-groups").replaceChildren(...groups.map(({ seed, events: members }) => h("div", { class: "group" },
    h("h4", { class: "group-head" },
      seed ? ["Nearest dated link: ", h("span", { class: "group-seed" }, seed.title), ` (${dateText(seed.date)})`]
        : "Not linked to a dated event"),
    h("ol", { class: "chips" }, ...members.map((event) => h("li", {},
      markButton(event, "mark-undated", h("span", { class: "chip-swatch", "aria-hidden": "true" }),
        markText(event, false))))))));
}

/* ----- troop estimates ----- */

// A round upper end for the scale, a little above max, and its tick step.
function niceScale(max) {
  const raw = Math.max(max, 1) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw);
  return { step, top: Math.floor(max / step) * step + step };
}

function estimateRow(parts) {
  const track = h("span", { class: "track" },
    ...parts.ticks.map((t) => {
      const line = h("span", { class: "grid grid-year" });
      line.style.left = `${t}%`;
      return line;
    }));
  const range = h("span", { class: `range ${parts.rangeClass}` });
  range.style.left = `${parts.low}%`;
  range.style.width = `${Math.max(parts.high - parts.low, 0.6)}%`;
  track.append(range);
  return [h("span", { class: "est-text" }, ...parts.text), track,
    h("span", { class: "est-value" }, parts.value)];
}

function renderEstimates() {
  const box = $("estimates");
  const estimates = [...state.records["troop-estimates"].values()]
    .sort((a, b) => (a.kind === b.kind ? a.low - b.low : a.kind === "initial" ? -1 : 1));
  const summary = state.summary;
  if (estimates.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No troop estimates."));
    return;
  }
  const max = Math.max(summary?.high ?? 0, ...estimates.map((e) => e.high));
  const { step, top } = niceScale(max);
  const pct = (n) => (n / top) * 100;
  const tickValues = [];
  for (let v = 0; v <= top; v += step) tickValues.push(v);
  const ticks = tickValues.map(pct);
  const range = (low, high) => `${numbers.format(low)}–${numbers.format(high)}`;

  const scale = h("div", { class: "est-scale", "aria-hidden": "true" }, h("span"),
    h("span", { class: "axis-scale" }, ...tickValues.map((v, i) => {
      const classes = ["tick", "tick-year", v === top ? "tick-end" : "", i % 2 ? "tick-odd" : ""];
      const tick = h("span", { class: classes.join(" ") }, numbers.format(v));
      tick.style.left = `${pct(v)}%`;
      return tick;
    })), h("span"));

  const rows = estimates.map((e) => {
    const selected = state.selected?.collection === "troop-estimates" && state.selected.id === e.id;
    return h("li", {}, h("button", {
      type: "button",
      class: `est${selected ? " selected" : ""}${state.fresh.has(e.id) ? " fresh" : ""}`,
      "aria-current": selected ? "true" : null,
      dataset: { estimateId: e.id },
      on: { click: () => selectRecord("troop-estimates", e.id) },
    }, ...estimateRow({
      ticks,
      low: pct(e.low),
      high: pct(e.high),
      rangeClass: `cert-${e.certainty}`,
      value: [range(e.low, e.high), h("span", { class: "unit" }, ` ${e.unit}`)],
      text: [
        h("span", { class: "est-title" }, `${actorName(e.sender)} → ${actorName(e.receiver)}`),
        h("span", { class: "mark-meta" }, h("span", { class: "kind" }, capitalize(e.kind)),
          h("span", { class: "status" }, e.certainty), hedgeText(e.hedge),
          h("span", { class: "est-when" }, e.period.phrase ? quote(e.period.phrase) : dateText(e.period))),
      ],
    })));
  });

  const total = summary ? h("li", { class: "est est-derived", id: "estimate-total" }, ...estimateRow({
    ticks,
    low: pct(summary.low),
    high: pct(summary.high),
    rangeClass: "derived",
    value: [range(summary.low, summary.high), h("span", { class: "unit" }, ` ${summary.unit}`)],
    text: [
      h("span", { class: "est-title" }, "Total ", h("span", { class: "badge-derived" }, "derived")),
      h("span", { class: "est-note" },
        `The ${summary.count} estimates added up (lows, highs) by the server; the source gives no total.`),
    ],
  })) : null;

  keepFocus(box, "data-estimate-id", () => {
    box.replaceChildren(scale, h("ul", { class: "est-rows" }, ...rows, total));
  });
}

/* ----- details ----- */

function renderDetails() {
  if (!state.selected) return;
  const body = $("details-body");
  const chosen = state.records[state.selected.collection].get(state.selected.id);
  if (!chosen) {
    body.replaceChildren(h("p", { class: "empty" }, "This record was deleted."));
    return;
  }
  body.replaceChildren(...(state.selected.collection === "events" ? eventDetails(chosen) : estimateDetails(chosen)));
}

function field(term, ...description) {
  return [h("dt", {}, term), h("dd", {}, ...description)];
}

function dateDetails(date) {
  return [
    h("span", { class: "when-main" }, dateText(date)),
    h("span", { class: "when-sub" }, `precision: ${date.precision} · ${basisText(date)}`),
    date.phrase ? h("span", { class: "when-sub" }, "in the source: ", h("q", {}, date.phrase)) : null,
    date.note ? h("span", { class: "when-note" }, date.note) : null,
  ];
}

function actorLink(slug) {
  const actor = findBySlug("actors", slug);
  if (!actor) return h("span", {}, humanize(slug));
  return h("button", {
    type: "button",
    class: "link",
    on: {
      click: () => {
        showActor(actor.id);
        $("actor-list").querySelector(`[data-actor-id="${CSS.escape(actor.id)}"]`)?.focus();
      },
    },
  }, actor.name);
}

function evidenceList(evidence) {
  const multipleSources = state.records.sources.size > 1;
  return h("ul", { class: "evidence" }, ...evidence.map((loc) => h("li", {},
    h("span", { class: "locator" }, `paragraph ${loc.paragraph}, sentence ${loc.sentence}`),
    multipleSources ? ` (${findBySlug("sources", loc.source)?.title ?? loc.source})` : null,
    loc.phrase ? [" ", h("q", {}, loc.phrase)] : null)));
}

function eventDetails(event) {
  const related = (event.related_events ?? []).map((slug) => findBySlug("events", slug)).filter(Boolean);
  return [
    h("h3", { class: "details-title" }, event.title),
    h("p", { class: "details-badges" }, statusBadge(event.status), " ",
      h("span", { class: "type" }, humanize(event.type)), " ", hedgeText(event.hedge)),
    h("p", { class: "summary" }, event.summary),
    h("dl", { class: "facts" },
      field("When", ...dateDetails(event.date)),
      event.location ? field("Where", event.location.name,
        event.location.country ? ` (${actorName(event.location.country)})` : "") : [],
      field("Who", h("ul", { class: "participants" }, ...event.participants.map((p) => h("li", {},
        actorLink(p.actor), h("span", { class: "role" }, humanize(p.role)))))),
      field("Evidence", evidenceList(event.evidence)),
      related.length ? field("Linked events", h("ul", { class: "related" }, ...related.map(eventButton))) : []),
    h("p", { class: "record-link" }, h("a", { href: `/v1/events/${encodeURIComponent(event.slug)}` }, "This record as JSON")),
  ];
}

function estimateDetails(e) {
  return [
    h("h3", { class: "details-title" },
      `${capitalize(e.kind)} estimate: ${numbers.format(e.low)}–${numbers.format(e.high)} ${e.unit}`),
    h("p", { class: "details-badges" }, h("span", { class: "status" }, e.certainty), " ", hedgeText(e.hedge)),
    h("p", { class: "summary" }, e.description),
    h("dl", { class: "facts" },
      field("Sent", actorLink(e.sender), " → ", actorLink(e.receiver)),
      field("When", ...dateDetails(e.period)),
      e.reported_by?.length ? field("Reported by", h("ul", { class: "participants" },
        ...e.reported_by.map((slug) => h("li", {}, actorLink(slug))))) : [],
      field("Evidence", evidenceList(e.evidence))),
    h("p", { class: "record-link" },
      h("a", { href: `/v1/troop-estimates/${encodeURIComponent(e.slug)}` }, "This record as JSON")),
  ];
}

/* ---------- start ---------- */

function wireSearch() {
  let timer = 0;
  $("q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(runSearch, SEARCH_DELAY_MS);
  });
  $("f-type").addEventListener("change", runSearch);
  $("f-status").addEventListener("change", runSearch);
  $("clear-search").addEventListener("click", () => {
    $("q").value = "";
    $("f-type").value = "";
    $("f-status").value = "";
    runSearch();
    $("q").focus();
  });
}

async function start() {
  wireSearch();
  await reload();
  connect();
}

start();
