// Chronicle's history browser: a client of the public GraphQL API (POST /graphql), no framework, no
// build step. Views (hash routes): #/assignations, #/assignation/<id>, #/object/<ENTITY>/<id>, #/audit,
// #/trace/<trace id>.
// Everything users typed is rendered as text (never as HTML).

// The server's enums, read from its schema (introspection) before the first view: the UI keeps no
// list of its own, so a historized entity added to the server shows here without a change.
const ENTITIES = [];
const AUDIT_KINDS = [];

async function loadEnums() {
  if (ENTITIES.length) return;
  const data = await gql(`{
    entities: __type(name: "HistoryEntity") { enumValues { name } }
    kinds: __type(name: "AuditKind") { enumValues { name } } }`);
  ENTITIES.splice(0, ENTITIES.length, ...data.entities.enumValues.map((v) => v.name));
  AUDIT_KINDS.splice(0, AUDIT_KINDS.length, ...data.kinds.enumValues.map((v) => v.name));
}
const PAGE = 20;
const AUTH_KEY = "chronicle.auth";

// ---------- small DOM helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const svg = (tag, attrs, ...children) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
};

const main = () => document.getElementById("main");

const present = (nodes) => [nodes].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false);

// Each route() starts a render; a view paints only while its render is the newest, so a late answer
// never replaces a newer view.
let renders = 0;

function paint(seq, ...nodes) {
  if (seq === renders) main().replaceChildren(...present(nodes));
}

function show(...nodes) {
  main().replaceChildren(...present(nodes));
}

function status(message, isError = false) {
  const el = document.getElementById("status");
  el.textContent = message || "";
  el.className = isError ? "error" : "";
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function json(value) {
  if (value === undefined) return "";
  if (value === null) return "null";
  return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
}

// datetime-local value (local time) <-> ISO 8601 (UTC) for the API
function toIso(local) {
  if (!local) return null;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// ---------- identity (header or JWT mode), kept in session storage ----------

function loadAuth() {
  try {
    return { mode: "header", user: "", app: "chronicle-ui", token: "", ...JSON.parse(sessionStorage.getItem(AUTH_KEY) || "{}") };
  } catch {
    return { mode: "header", user: "", app: "chronicle-ui", token: "" };
  }
}

function setupIdentity() {
  const form = document.getElementById("identity");
  const auth = loadAuth();
  for (const name of ["mode", "user", "app", "token"]) form.elements[name].value = auth[name] || "";
  form.dataset.mode = auth.mode;
  form.elements.mode.addEventListener("change", () => { form.dataset.mode = form.elements.mode.value; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = {
      mode: form.elements.mode.value,
      user: form.elements.user.value.trim(),
      app: form.elements.app.value.trim(),
      token: form.elements.token.value.trim(),
    };
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(next));
    status(next.mode === "jwt" ? "Using the bearer token." : `Acting as ${next.user || "anonymous"}.`);
    route();
  });
}

// ---------- GraphQL ----------

class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

async function gql(query, variables = {}) {
  const headers = { "content-type": "application/json", ...authHeaders() };
  let response;
  try {
    response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    throw new ApiError([{ message: `the server cannot be reached (${e.message})` }]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `the server answered ${response.status} without JSON` }]);
  }
  if (body.errors && body.errors.length) throw new ApiError(body.errors);
  return body.data;
}

function authHeaders() {
  const auth = loadAuth();
  const headers = {};
  if (auth.mode === "jwt") {
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  } else {
    if (auth.user) headers["x-user"] = auth.user;
    if (auth.app) headers["x-app"] = auth.app;
  }
  return headers;
}

// Buttons that download `/export/<what>` with `filters` as NDJSON or CSV (fetched with the identity
// above, then saved: a plain link would not carry it). Each download is an EXPORT audit event.
function exportButtons(what, filters) {
  const query = (format) => {
    const params = new URLSearchParams({ format });
    for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
    return `/export/${what}?${params}`;
  };
  const button = (format) => h("button", {
    type: "button",
    class: "export",
    "data-format": format,
    onclick: async (event) => {
      const target = event.currentTarget;
      target.disabled = true;
      try {
        const response = await fetch(query(format), { headers: authHeaders() });
        if (!response.ok) {
          let message = `the server answered ${response.status}`;
          try { message = (await response.json()).errors.map((e) => e.message).join("; "); } catch { /* not JSON */ }
          throw new Error(message);
        }
        const disposition = response.headers.get("content-disposition") || "";
        const name = /filename="([^"]+)"/.exec(disposition)?.[1] || `chronicle-${what}.${format}`;
        const url = URL.createObjectURL(await response.blob());
        const link = h("a", { href: url, download: name });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        status(`Downloaded ${name}.`);
      } catch (e) {
        status(`The export failed: ${e.message}`);
      } finally {
        target.disabled = false;
      }
    },
  }, `Export ${format.toUpperCase()}`);
  return h("p", { class: "exports" }, h("span", { class: "muted" }, `Download these ${what === "events" ? "events" : "records"}: `),
    button("ndjson"), " ", button("csv"));
}

function errorBox(error) {
  const code = error.code ? `${error.code}: ` : "";
  return h("p", { class: "error", role: "alert" }, code + error.message);
}

// ---------- shared pieces ----------

function badgeFor(assignation) {
  if (assignation.revertedBy) return h("span", { class: "badge reverted" }, "reverted");
  if (assignation.reverts) return h("span", { class: "badge revert" }, "revert");
  return h("span", { class: "badge active" }, "active");
}

const assignationLink = (id) => h("a", { href: `#/assignation/${encodeURIComponent(id)}`, class: "mono" }, id);
const objectLink = (entity, id) => h("a", { href: `#/object/${entity}/${encodeURIComponent(id)}`, class: "mono" }, id);
// A W3C trace: its first 8 hex digits shown, the whole id (and the span) on hover.
const traceLink = (traceId, spanId) => h("a", { href: `#/trace/${traceId}`, class: "mono trace", "data-trace": traceId,
  title: `trace ${traceId}${spanId ? `, span ${spanId}` : ""}` }, `trace ${traceId.slice(0, 8)}…`);

// One row per field: old -> new, additions and removals marked in text (not only by colour).
function diffTable(changes, caption) {
  if (!changes.length) return h("p", { class: "muted" }, "No field changed.");
  return h("table", { class: "diff" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "field"), h("th", { scope: "col" }, "change"),
      h("th", { scope: "col" }, "old"), h("th", { scope: "col" }, "new"))),
    h("tbody", {}, changes.map((c) => {
      const added = c.old === null || c.old === undefined;
      const removed = c.new === null || c.new === undefined;
      const kind = added && removed ? "empty" : added ? "added" : removed ? "removed" : "changed";
      const mark = { added: "+ added", removed: "− removed", changed: "~ changed", empty: "· empty" }[kind];
      return h("tr", { class: kind, "data-field": c.field },
        h("td", { class: "field" }, c.field),
        h("td", { class: "mark" }, mark),
        h("td", { class: "old mono" }, added ? "" : json(c.old)),
        h("td", { class: "new mono" }, removed ? "" : json(c.new)));
    })));
}

function snapshotDiff(a, b) {
  const fields = [...new Set([...Object.keys(a || {}), ...Object.keys(b || {})])].sort();
  return fields
    .filter((f) => JSON.stringify(a?.[f] ?? null) !== JSON.stringify(b?.[f] ?? null))
    .map((f) => ({ field: f, old: a?.[f] ?? null, new: b?.[f] ?? null }));
}

// The object's state at a version: a DELETE record's snapshot is the row it removed.
const stateOf = (record) => (record.kind === "DELETE" ? {} : record.snapshot);

function snapshotTable(snapshot) {
  return h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "field"), h("th", { scope: "col" }, "value"))),
    h("tbody", {}, Object.entries(snapshot || {}).map(([k, v]) =>
      h("tr", {}, h("td", { class: "field" }, k), h("td", { class: "mono" }, json(v))))));
}

function pager(page, onPage) {
  const { totalCount, pageInfo } = page.connection;
  const first = page.index * PAGE + 1;
  const last = page.index * PAGE + page.connection.edges.length;
  return h("div", { class: "pager" },
    h("button", { type: "button", disabled: page.index === 0, onclick: () => onPage(page.index - 1) }, "← Previous"),
    h("span", { class: "muted" }, totalCount ? `${first}–${last} of ${totalCount}` : "nothing found"),
    h("button", { type: "button", disabled: !pageInfo.hasNextPage, onclick: () => onPage(page.index + 1) }, "Next →"));
}

// Confirmation dialog; resolves true on confirm. `canConfirm` (optional) gates the button.
function confirmDialog(title, body, confirmLabel, canConfirm) {
  const dialog = document.getElementById("confirm");
  if (dialog.open) return Promise.resolve(false);
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(...present(body));
  const ok = document.getElementById("confirm-ok");
  ok.textContent = confirmLabel;
  const refresh = () => { ok.disabled = canConfirm ? !canConfirm() : false; };
  refresh();
  dialog.addEventListener("change", refresh);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.removeEventListener("change", refresh);
      resolve(dialog.returnValue === "ok");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function filterForm(fields, values, onApply) {
  const form = h("form", { class: "filters", role: "search" },
    fields.map((f) => {
      const value = values[f.name] ?? "";
      const control = f.options
        ? h("select", { name: f.name }, h("option", { value: "" }, "any"),
            f.options.map((o) => h("option", { value: o.value ?? o, selected: String(o.value ?? o) === value }, o.label ?? o)))
        : h("input", { name: f.name, type: f.type || "text", value, size: f.size || 12 });
      return h("label", {}, f.label, control);
    }),
    h("button", { type: "submit", class: "primary" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = {};
    for (const f of fields) {
      const v = form.elements[f.name].value.trim();
      if (v) next[f.name] = v;
    }
    onApply(next);
  });
  return form;
}

function hashWith(path, params) {
  const query = new URLSearchParams(params).toString();
  return query ? `${path}?${query}` : path;
}

// Keyset pages: cursors[i] is the `after` of page i, per view and filters.
const cursorCache = new Map();

// The page a paginated view at `base` shows: its filters, its number and the cursor leading to it;
// null after sending a bookmarked page number, whose cursors this tab never saw, back to page one.
function pageOf(base, params) {
  const { page, ...filters } = params;
  const index = Math.max(0, Number(page || 0) | 0);
  const key = `${base}?${JSON.stringify(filters)}`;
  if (!cursorCache.has(key)) cursorCache.set(key, [null]);
  const cursors = cursorCache.get(key);
  if (index >= cursors.length || cursors[index] === undefined) {
    location.hash = hashWith(base, filters);
    return null;
  }
  return {
    filters,
    index,
    after: cursors[index],
    reached: (connection) => { cursors[index + 1] = connection.pageInfo.endCursor; },
    go: (i) => { location.hash = hashWith(base, { ...filters, ...(i ? { page: i } : {}) }); },
  };
}

// ---------- view: assignations ----------

const ASSIGNATIONS = `query($user: String, $app: String, $entity: HistoryEntity, $since: DateTime, $until: DateTime,
  $reverted: Boolean, $first: Int, $after: String) {
  assignations(user: $user, app: $app, entity: $entity, since: $since, until: $until, reverted: $reverted,
    first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id user app startedAt changeCount entities reverts { id } revertedBy { id } } }
  }
}`;

async function assignationsView(params) {
  const seq = renders;
  const fields = [
    { name: "user", label: "User" },
    { name: "app", label: "App" },
    { name: "entity", label: "Entity", options: ENTITIES },
    { name: "since", label: "Since", type: "datetime-local", size: 16 },
    { name: "until", label: "Until", type: "datetime-local", size: 16 },
    { name: "reverted", label: "Reverted", options: [{ value: "true", label: "reverted" }, { value: "false", label: "not reverted" }] },
  ];
  const page = pageOf("#/assignations", params);
  if (!page) return;
  const { filters, index } = page;
  const heading = h("h2", {}, "Assignations");
  const form = filterForm(fields, filters, (next) => { location.hash = hashWith("#/assignations", next); });
  paint(seq, heading, form, h("p", { class: "muted" }, "Loading…"));
  const variables = {
    user: filters.user || null, app: filters.app || null, entity: filters.entity || null,
    since: toIso(filters.since), until: toIso(filters.until),
    reverted: filters.reverted ? filters.reverted === "true" : null,
    first: PAGE, after: page.after,
  };
  let connection;
  try {
    connection = (await gql(ASSIGNATIONS, variables)).assignations;
  } catch (e) {
    paint(seq, heading, form, errorBox(e));
    return;
  }
  page.reached(connection);
  const table = h("table", { id: "assignations" },
    h("caption", {}, "Newest first"),
    h("thead", {}, h("tr", {}, ["Assignation", "Who", "App", "When", "Changes", "Entities", "State"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, connection.edges.map(({ node }) => h("tr", { "data-id": node.id },
      h("td", {}, assignationLink(node.id)),
      h("td", {}, node.user || h("span", { class: "muted" }, "anonymous")),
      h("td", {}, node.app || ""),
      h("td", {}, h("time", { datetime: node.startedAt }, when(node.startedAt))),
      h("td", {}, node.changeCount),
      h("td", {}, node.entities.join(", ")),
      h("td", {}, badgeFor(node))))));
  paint(seq, heading, form, table, pager({ index, connection }, page.go));
}

// ---------- view: one assignation ----------

const ASSIGNATION = `query($id: String!, $after: String) {
  assignation(id: $id) {
    id user app startedAt changeCount entities reverts { id } revertedBy { id }
    parentId rootId onBehalfOf tree { assignations changeCount reverted }
    records(first: 100, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id entity objectId version kind at user app step reason traceId spanId changes { field old new } } }
    }
  }
}`;

const PREVIEW = `query($id: String!, $tree: Boolean) { previewRevert(id: $id, includeDescendants: $tree) {
  changes { entity objectId kind changes { field old new } }
  conflicts { entity objectId assignationId } } }`;

const REVERT = `mutation($id: String!, $force: Boolean, $reason: String, $tree: Boolean) {
  revertAssignation(id: $id, force: $force, reason: $reason, includeDescendants: $tree) { id changeCount } }`;

// The assignations of a tree (up to 100), with their parents, to draw it.
const TREE = `query($root: String!) { assignations(rootId: $root, first: 100) {
  totalCount edges { node { id parentId user app changeCount revertedBy { id } } } } }`;

// The tree around assignation `current`, from its root, as nested lists.
async function treeView(current, rootId) {
  let connection;
  try {
    connection = (await gql(TREE, { root: rootId })).assignations;
  } catch (e) {
    return errorBox(e);
  }
  const nodes = connection.edges.map((e) => e.node);
  const children = new Map();
  for (const n of nodes) {
    const key = n.parentId && nodes.some((p) => p.id === n.parentId) ? n.parentId : null;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(n);
  }
  const branch = (n) => h("li", { "data-id": n.id, class: n.id === current ? "current" : "" },
    n.id === current ? h("strong", { class: "mono" }, n.id) : assignationLink(n.id),
    h("span", { class: "muted" }, ` ${n.user || "anonymous"}${n.app ? ` via ${n.app}` : ""}, ${n.changeCount} change(s)`),
    n.revertedBy ? h("span", { class: "badge" }, " reverted") : null,
    children.has(n.id) ? h("ul", {}, children.get(n.id).map(branch)) : null);
  return h("section", { id: "tree" },
    h("h3", {}, "Tree"),
    h("ul", { class: "tree" }, (children.get(null) || []).map(branch)),
    connection.totalCount > nodes.length ? h("p", { class: "muted" }, `Showing ${nodes.length} of ${connection.totalCount} assignations.`) : null);
}

// Reads up to 2,000 records of an assignation, 100 per request.
async function loadAssignation(id) {
  let after = null;
  let assignation = null;
  const records = [];
  for (let i = 0; i < 20; i += 1) {
    const data = await gql(ASSIGNATION, { id, after });
    if (!data.assignation) return null;
    assignation = data.assignation;
    records.push(...assignation.records.edges.map((e) => e.node));
    if (!assignation.records.pageInfo.hasNextPage) break;
    after = assignation.records.pageInfo.endCursor;
  }
  return { assignation, records };
}

function recordView(record, { linkAssignation = false } = {}) {
  return h("article", { class: "record", "data-step": record.step, "data-version": record.version },
    h("header", {},
      h("strong", {}, `${record.kind}`),
      h("span", {}, record.entity, " ", objectLink(record.entity, record.objectId)),
      h("span", { class: "muted" }, `version ${record.version}`),
      linkAssignation ? null : h("span", { class: "muted" }, `step ${record.step}`),
      h("time", { class: "muted", datetime: record.at }, when(record.at)),
      record.user ? h("span", { class: "muted" }, `by ${record.user}`) : null,
      linkAssignation ? h("span", {}, "in ", assignationLink(record.assignationId)) : null,
      record.reason ? h("span", { class: "muted" }, `“${record.reason}”`) : null,
      record.traceId ? traceLink(record.traceId, record.spanId) : null),
    diffTable(record.changes));
}

async function assignationView(id) {
  const seq = renders;
  paint(seq, h("h2", {}, "Assignation ", h("span", { class: "mono" }, id)), h("p", { class: "muted" }, "Loading…"));
  let loaded;
  try {
    loaded = await loadAssignation(id);
  } catch (e) {
    paint(seq, h("h2", {}, "Assignation"), errorBox(e));
    return;
  }
  if (!loaded) {
    paint(seq, h("h2", {}, "Assignation"), h("p", { class: "error", role: "alert" }, `No assignation ${id}.`));
    return;
  }
  const { assignation: a, records } = loaded;
  const result = h("div", { id: "revert-result", "aria-live": "polite" });
  const revertButton = h("button", { type: "button", class: "danger", id: "revert", disabled: !!a.revertedBy },
    a.revertedBy ? "Already reverted" : "Revert…");
  revertButton.addEventListener("click", async () => {
    revertButton.disabled = true;
    try {
      await revertFlow(a, result);
    } finally {
      if (revertButton.isConnected) revertButton.disabled = !!a.revertedBy;
    }
  });
  const inTree = a.tree.assignations > 1 || a.parentId;
  let treeButton = null;
  if (a.tree.assignations > 1) {
    treeButton = h("button", { type: "button", class: "danger", id: "revert-tree", disabled: a.tree.reverted > 0 },
      a.tree.reverted > 0 ? "Part of the tree is reverted" : `Revert with the ${a.tree.assignations - 1} under it…`);
    treeButton.addEventListener("click", async () => {
      treeButton.disabled = true;
      try {
        await revertFlow(a, result, true);
      } finally {
        if (treeButton.isConnected) treeButton.disabled = a.tree.reverted > 0;
      }
    });
  }
  const tree = inTree ? await treeView(a.id, a.rootId) : null;
  if (seq !== renders) return;
  paint(seq,
    h("h2", {}, "Assignation ", h("span", { class: "mono" }, a.id), " ", badgeFor(a)),
    h("dl", { class: "grid2" },
      h("div", {}, h("dt", { class: "muted" }, "Who"), h("dd", {}, a.user || "anonymous", a.app ? ` via ${a.app}` : "")),
      h("div", {}, h("dt", { class: "muted" }, "Started"), h("dd", {}, when(a.startedAt))),
      h("div", {}, h("dt", { class: "muted" }, "Changes"), h("dd", {}, `${a.changeCount} (${a.entities.join(", ")})`)),
      a.reverts ? h("div", {}, h("dt", { class: "muted" }, "Reverts"), h("dd", {}, assignationLink(a.reverts.id))) : null,
      a.revertedBy ? h("div", {}, h("dt", { class: "muted" }, "Reverted by"), h("dd", {}, assignationLink(a.revertedBy.id))) : null,
      a.parentId ? h("div", {}, h("dt", { class: "muted" }, "Started by"), h("dd", {}, assignationLink(a.parentId))) : null,
      a.onBehalfOf && a.onBehalfOf !== a.user ? h("div", {}, h("dt", { class: "muted" }, "On behalf of"), h("dd", {}, a.onBehalfOf)) : null),
    h("p", {}, revertButton, " ", treeButton),
    result,
    tree,
    h("h3", {}, "Changes in step order"),
    exportButtons("history", { assignationId: a.id }),
    records.length < a.changeCount
      ? h("p", { class: "muted" }, `Showing ${records.length} of ${a.changeCount}: the others were removed by retention (chronicle prune --history) or are beyond the first 2,000.`)
      : null,
    h("div", { id: "records" }, records.map((r) => recordView(r))));
}

async function revertFlow(assignation, result, tree = false) {
  status("Previewing the revert…");
  let preview;
  try {
    preview = (await gql(PREVIEW, { id: assignation.id, tree })).previewRevert;
  } catch (e) {
    status("");
    result.replaceChildren(errorBox(e));
    return;
  }
  status("");
  const conflicts = preview.conflicts;
  const force = h("input", { type: "checkbox", name: "force", id: "force" });
  const reason = h("input", { name: "reason", id: "revert-reason", size: 40, maxlength: 1000 });
  const body = [
    h("p", {}, tree
      ? `Reverting ${assignation.id} and the ${assignation.tree.assignations - 1} assignation(s) under it will make ${preview.changes.length} change(s), as one new assignation:`
      : `Reverting ${assignation.id} will make ${preview.changes.length} change(s), as a new assignation:`),
    h("div", { id: "planned" }, preview.changes.map((c) => h("section", { class: "record", "data-object": c.objectId },
      h("header", {}, h("strong", {}, c.kind), h("span", {}, c.entity, " ", h("span", { class: "mono" }, c.objectId))),
      diffTable(c.changes)))),
    conflicts.length
      ? h("div", { class: "conflicts", id: "conflicts", role: "alert" },
          h("p", {}, h("strong", {}, `${conflicts.length} conflict(s): `), "these objects were changed by later assignations."),
          h("ul", {}, conflicts.map((c) => h("li", {}, `${c.entity} `, h("span", { class: "mono" }, c.objectId), " changed in ", h("span", { class: "mono" }, c.assignationId)))),
          h("label", { class: "force" }, h("span", {}, force, " Force: override those later changes")))
      : null,
    h("label", {}, "Reason (optional)", reason),
  ];
  const title = tree ? `Revert assignation ${assignation.id} and its tree?` : `Revert assignation ${assignation.id}?`;
  const confirmed = await confirmDialog(title, body, "Revert", () => !conflicts.length || force.checked);
  if (!confirmed) return;
  status("Reverting…");
  const seq = renders;
  try {
    const done = (await gql(REVERT, { id: assignation.id, force: force.checked, reason: reason.value.trim() || null, tree })).revertAssignation;
    status("Reverted.");
    if (seq !== renders) return;
    await assignationView(assignation.id);
    document.getElementById("revert-result")?.replaceChildren(
      h("p", { class: "badge ok", id: "reverted-as" }, "Reverted as ", assignationLink(done.id), ` (${done.changeCount} changes)`));
  } catch (e) {
    status("");
    result.replaceChildren(errorBox(e));
  }
}

// ---------- view: one object's timeline ----------

const HISTORY = `query($entity: HistoryEntity!, $id: ID!, $after: String) {
  history(entity: $entity, id: $id, first: 100, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id entity objectId version kind at user app assignationId step reason snapshot hash logIndex traceId spanId changes { field old new } } }
  }
}`;

// ---------- the verifiable log: inclusion of records in a checkpoint, checked here ----------

const LATEST_CHECKPOINT = `{ checkpoint { size rootHash note } }`;
const INCLUSION = `query($r: ID!, $s: Int) { inclusionProof(recordId: $r, treeSize: $s) { logIndex treeSize hashes } }`;

const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function nodeHash(left, right) {
  const bytes = new Uint8Array(65);
  bytes[0] = 1;
  bytes.set(left, 1);
  bytes.set(right, 33);
  return sha256(bytes);
}

// The record's leaf, computed here from what the page shows: SHA-256(0x00 ‖ "entity\nid\nhash").
async function leafOf(record) {
  const text = new TextEncoder().encode(`${record.entity}\n${record.id}\n${record.hash}`);
  const bytes = new Uint8Array(text.length + 1);
  bytes.set(text, 1);
  return sha256(bytes);
}

// RFC 9162 §2.1.3.2: whether `path` leads from leaf `index` of a tree of `size` leaves to `root`.
async function inclusionHolds(path, size, root, index, leaf) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && sameBytes(r, root);
}

// A checkpoint's size and root, from its note (the signature is checked by `chronicle verify`).
function parseCheckpoint(note) {
  const lines = note.split("\n");
  const size = Number(lines[1]);
  if (lines.length < 3 || !lines[0] || !Number.isSafeInteger(size) || !/^[A-Za-z0-9+/]{43}=$/.test(lines[2])) return null;
  return { origin: lines[0], size, root: fromBase64(lines[2]) };
}

// Marks each record of `versions` as in the checkpoint or not, each badge in `badges`.
async function checkInclusion(versions, badges, checkpoint) {
  if (!crypto.subtle) {
    for (const badge of badges.values()) badge.replaceChildren("log: checking needs HTTPS (or localhost)");
    return;
  }
  for (const v of versions) {
    const badge = badges.get(v.id);
    if (v.logIndex === null || v.logIndex === undefined || v.logIndex >= checkpoint.size) {
      badge.className = "badge";
      badge.textContent = v.logIndex === null || v.logIndex === undefined ? "not in the log yet" : `log #${v.logIndex}: after this checkpoint`;
      continue;
    }
    try {
      const proof = (await gql(INCLUSION, { r: v.id, s: checkpoint.size })).inclusionProof;
      const holds = proof.logIndex === v.logIndex
        && await inclusionHolds(proof.hashes.map(fromBase64), checkpoint.size, checkpoint.root, v.logIndex, await leafOf(v));
      badge.className = `badge ${holds ? "ok" : "broken"}`;
      badge.textContent = holds ? `log #${v.logIndex}: in the checkpoint of ${checkpoint.size}` : `log #${v.logIndex}: NOT in the checkpoint of ${checkpoint.size}`;
    } catch (e) {
      badge.className = "badge broken";
      badge.textContent = `log #${v.logIndex}: ${e.message}`;
    }
  }
}

// The log section of an object's timeline: the latest checkpoint, and a box to paste one.
function logSection(versions, badges) {
  const out = h("p", { id: "log-status", class: "muted" }, "");
  const pasted = h("textarea", { id: "checkpoint-text", rows: 4, cols: 70, placeholder: "origin\nsize\nroot\n\n— signature" });
  const check = h("button", { type: "button", id: "check-checkpoint" }, "Check against this checkpoint");
  check.addEventListener("click", async () => {
    const checkpoint = parseCheckpoint(pasted.value.trim() + "\n");
    if (!checkpoint) { out.textContent = "That is not a checkpoint (origin, size, base64 root)."; return; }
    out.textContent = `Checking against the pasted checkpoint of ${checkpoint.size} records (${checkpoint.origin}); its signature is checked by chronicle verify --public-key.`;
    await checkInclusion(versions, badges, checkpoint);
  });
  (async () => {
    try {
      const latest = (await gql(LATEST_CHECKPOINT)).checkpoint;
      if (!latest) { out.textContent = "No checkpoint has been signed yet."; return; }
      const checkpoint = parseCheckpoint(latest.note);
      out.textContent = `Against the latest checkpoint: ${latest.size} records.`;
      await checkInclusion(versions, badges, checkpoint);
    } catch (e) {
      out.textContent = `The log: ${e.message}`;
    }
  })();
  return h("section", { id: "log" }, h("h3", {}, "In the verifiable log"), out,
    h("details", {}, h("summary", {}, "Paste a checkpoint kept elsewhere"), h("p", {}, pasted), h("p", {}, check)));
}

const VERIFY = `query($entity: HistoryEntity!, $id: ID!) { verifyHistory(entity: $entity, id: $id) { ok checked brokenAt } }`;

const RESTORE = `mutation($entity: HistoryEntity!, $id: ID!, $version: Int!, $reason: String) {
  revertObject(entity: $entity, id: $id, toVersion: $version, reason: $reason) { version assignationId } }`;

function objectPicker(entity, id) {
  const form = h("form", { class: "filters", id: "object-picker" },
    h("label", {}, "Entity", h("select", { name: "entity" }, ENTITIES.map((e) => h("option", { value: e, selected: e === entity }, e)))),
    h("label", {}, "Object id", h("input", { name: "id", value: id || "", size: 40, required: true })),
    h("button", { type: "submit", class: "primary" }, "Show timeline"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const objectId = form.elements.id.value.trim();
    if (objectId) location.hash = `#/object/${form.elements.entity.value}/${encodeURIComponent(objectId)}`;
  });
  return form;
}

async function objectView(entity, id) {
  const seq = renders;
  const heading = h("h2", {}, "Object timeline");
  if (!entity || !id || !ENTITIES.includes(entity)) {
    paint(seq, heading, objectPicker(entity || "TASK", id));
    return;
  }
  paint(seq, heading, objectPicker(entity, id), h("p", { class: "muted" }, "Loading…"));
  const versions = [];
  let verification = null;
  try {
    let after = null;
    for (let i = 0; i < 10; i += 1) {
      const data = await gql(HISTORY, { entity, id, after });
      versions.push(...data.history.edges.map((e) => e.node));
      if (!data.history.pageInfo.hasNextPage) break;
      after = data.history.pageInfo.endCursor;
    }
  } catch (e) {
    paint(seq, heading, objectPicker(entity, id), errorBox(e));
    return;
  }
  if (!versions.length) {
    paint(seq, heading, objectPicker(entity, id), h("p", { class: "muted" }, `${entity} ${id} has no history.`));
    return;
  }
  try {
    verification = (await gql(VERIFY, { entity, id })).verifyHistory;
  } catch {
    verification = null;
  }
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  const latest = versions[0];
  const versionOptions = (selected) => versions.map((v) => h("option", { value: v.version, selected: v.version === selected }, `v${v.version} ${v.kind} ${when(v.at)}`));

  // Compare any two versions.
  const compareOut = h("div", { id: "compare-result" });
  const left = h("select", { name: "from", id: "compare-from" }, versionOptions(versions[Math.min(1, versions.length - 1)].version));
  const right = h("select", { name: "to", id: "compare-to" }, versionOptions(latest.version));
  const compare = () => {
    const a = byVersion.get(Number(left.value));
    const b = byVersion.get(Number(right.value));
    compareOut.replaceChildren(diffTable(snapshotDiff(stateOf(a), stateOf(b)), `v${a.version} → v${b.version}`));
  };
  left.addEventListener("change", compare);
  right.addEventListener("change", compare);

  // The object as it was at a chosen time (from its records: the newest at or before it).
  const asOfOut = h("div", { id: "as-of-result" });
  const asOfInput = h("input", { type: "datetime-local", name: "at", id: "as-of", step: 1 });
  const asOf = () => {
    const t = toIso(asOfInput.value);
    if (!t) { asOfOut.replaceChildren(); return; }
    const record = versions.find((v) => Date.parse(v.at) <= Date.parse(t));
    const oldest = versions[versions.length - 1];
    if (!record && oldest.version > 1) {
      asOfOut.replaceChildren(h("p", { class: "muted" }, `Unknown: the records before version ${oldest.version} are not available (pruned, or beyond the ${versions.length} loaded).`));
    } else if (!record) asOfOut.replaceChildren(h("p", { class: "muted" }, "It did not exist yet."));
    else if (record.kind === "DELETE") asOfOut.replaceChildren(h("p", { class: "muted" }, `It had been deleted (version ${record.version}).`));
    else asOfOut.replaceChildren(h("p", { class: "muted" }, `Version ${record.version}, ${when(record.at)}:`), snapshotTable(record.snapshot));
  };
  asOfInput.addEventListener("change", asOf);

  const badges = new Map();
  const list = versions.map((v) => {
    const restore = h("button", { type: "button", class: "restore", "data-version": v.version, disabled: v.version === latest.version },
      "Restore this version…");
    restore.addEventListener("click", async () => {
      restore.disabled = true;
      try {
        await restoreFlow(entity, id, v, latest);
      } finally {
        if (restore.isConnected) restore.disabled = false;
      }
    });
    const item = recordView(v, { linkAssignation: true });
    const badge = h("span", { class: "badge log", "data-log": v.id }, "log: …");
    badges.set(v.id, badge);
    item.append(h("p", {}, restore, " ", badge));
    return item;
  });
  paint(seq, heading, objectPicker(entity, id),
    h("p", {}, `${entity} `, h("span", { class: "mono" }, id), ` — ${versions.length} version(s), latest v${latest.version} (${latest.kind}). `,
      verification ? h("span", { class: `badge ${verification.ok ? "ok" : "broken"}`, id: "verification" },
        verification.ok ? `hash chain verified (${verification.checked})` : `hash chain broken at v${verification.brokenAt}`) : null),
    h("div", { id: "restore-result", "aria-live": "polite" }),
    h("div", { class: "grid2" },
      h("section", {}, h("h3", {}, "Compare two versions"), h("div", { class: "filters" }, h("label", {}, "From", left), h("label", {}, "To", right)), compareOut),
      h("section", {}, h("h3", {}, "As it was at"), h("div", { class: "filters" }, h("label", {}, "Time (local)", asOfInput)), asOfOut)),
    h("h3", {}, "Every version, newest first"),
    exportButtons("history", { entity, objectId: id }),
    h("div", { id: "versions" }, list),
    logSection(versions, badges));
  compare();
}

async function restoreFlow(entity, id, version, latest) {
  const reason = h("input", { name: "reason", size: 40, maxlength: 1000 });
  const body = [
    h("p", {}, `Bring ${entity} ${id} back to version ${version.version}, as a new history record in a new assignation.`,
      version.kind === "DELETE" ? " That version is its deletion: the object will be deleted." : ""),
    diffTable(snapshotDiff(stateOf(latest), stateOf(version)), `now (v${latest.version}) → v${version.version}`),
    h("label", {}, "Reason (optional)", reason),
  ];
  if (!(await confirmDialog(`Restore version ${version.version}?`, body, "Restore"))) return;
  status("Restoring…");
  const seq = renders;
  try {
    const record = (await gql(RESTORE, { entity, id, version: version.version, reason: reason.value.trim() || null })).revertObject;
    status("Restored.");
    if (seq !== renders) return;
    await objectView(entity, id);
    document.getElementById("restore-result")?.replaceChildren(
      h("p", { class: "badge ok", id: "restored-as" }, `Restored as version ${record.version} in `, assignationLink(record.assignationId)));
  } catch (e) {
    status("");
    document.getElementById("restore-result").replaceChildren(errorBox(e));
  }
}

// ---------- view: audit events ----------

const AUDIT = `query($kind: AuditKind, $action: String, $status: AuditStatus, $user: String, $app: String,
  $assignationId: String, $entity: HistoryEntity, $objectId: ID, $since: DateTime, $until: DateTime,
  $traceId: String, $first: Int, $after: String) {
  auditEvents(kind: $kind, action: $action, status: $status, user: $user, app: $app, assignationId: $assignationId,
    entity: $entity, objectId: $objectId, since: $since, until: $until, traceId: $traceId, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id kind action status at durationMs user app assignationId assignation { id } ip userAgent input output error logs entity objectId details traceId spanId } }
  }
  auditSummary(since: $since, until: $until, user: $user) {
    byKind { key count } byStatus { key count } byDay { key count }
  }
}`;

function dayChart(byDay) {
  if (!byDay.length) return h("p", { class: "muted" }, "No events in this range.");
  const days = [...byDay].sort((a, b) => a.key.localeCompare(b.key)).slice(-60);
  const max = Math.max(...days.map((d) => d.count));
  const barWidth = 14;
  const height = 90;
  const width = Math.max(240, days.length * (barWidth + 4) + 4);
  const chart = svg("svg", { class: "chart", id: "per-day-chart", width, height: height + 16, viewBox: `0 0 ${width} ${height + 16}`, role: "img", "aria-label": "Events per day" },
    ...days.map((d, i) => {
      const barHeight = Math.max(2, Math.round((d.count / max) * height));
      return svg("rect", { x: 4 + i * (barWidth + 4), y: height - barHeight, width: barWidth, height: barHeight }, svg("title", {}, `${d.key}: ${d.count}`));
    }),
    svg("text", { x: 4, y: height + 12 }, days[0].key),
    ...(days.length > 1 ? [svg("text", { x: width - 4, y: height + 12, "text-anchor": "end" }, days[days.length - 1].key)] : []));
  const table = h("table", { id: "per-day" }, h("caption", {}, "Events per day (UTC)"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "day"), h("th", { scope: "col" }, "events"))),
    h("tbody", {}, days.map((d) => h("tr", {}, h("td", {}, d.key), h("td", {}, d.count)))));
  return h("div", {}, chart, h("details", {}, h("summary", {}, "As a table"), table));
}

function jsonDetails(label, value) {
  if (value === null || value === undefined || (Array.isArray(value) && !value.length)) return null;
  return h("details", {}, h("summary", {}, label), h("pre", {}, JSON.stringify(value, null, 2)));
}

async function auditView(params) {
  const seq = renders;
  const fields = [
    { name: "kind", label: "Kind", options: AUDIT_KINDS },
    { name: "action", label: "Action" },
    { name: "status", label: "Status", options: ["SUCCESS", "FAILURE"] },
    { name: "user", label: "User", size: 10 },
    { name: "app", label: "App", size: 10 },
    { name: "assignationId", label: "Assignation" },
    { name: "entity", label: "Entity", options: ENTITIES },
    { name: "objectId", label: "Object id" },
    { name: "since", label: "Since", type: "datetime-local", size: 16 },
    { name: "until", label: "Until", type: "datetime-local", size: 16 },
    { name: "traceId", label: "Trace id", size: 32 },
  ];
  const page = pageOf("#/audit", params);
  if (!page) return;
  const { filters, index } = page;
  const heading = h("h2", {}, "Audit events");
  const form = filterForm(fields, filters, (next) => { location.hash = hashWith("#/audit", next); });
  paint(seq, heading, form, h("p", { class: "muted" }, "Loading…"));
  const variables = { first: PAGE, after: page.after };
  for (const f of fields) variables[f.name] = filters[f.name] || null;
  variables.since = toIso(filters.since);
  variables.until = toIso(filters.until);
  let data;
  try {
    data = await gql(AUDIT, variables);
  } catch (e) {
    paint(seq, heading, form, errorBox(e));
    return;
  }
  const connection = data.auditEvents;
  page.reached(connection);
  const summary = data.auditSummary;
  const counts = (list) => list.map((c) => `${c.key} ${c.count}`).join(" · ") || "none";
  const table = h("table", { id: "audit-events" },
    h("caption", {}, "Newest first"),
    h("thead", {}, h("tr", {}, ["When", "Kind", "Action", "Status", "User", "App", "Object", "ms", "Details"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, connection.edges.map(({ node: e }) => h("tr", { "data-id": e.id },
      h("td", {}, h("time", { datetime: e.at }, when(e.at))),
      h("td", {}, e.kind),
      h("td", {}, e.action),
      h("td", {}, h("span", { class: `badge ${e.status}` }, e.status)),
      h("td", {}, e.user || ""),
      h("td", {}, e.app || ""),
      h("td", {}, e.entity && e.objectId ? [e.entity, " ", objectLink(e.entity, e.objectId)] : ""),
      h("td", {}, e.durationMs ?? ""),
      h("td", {},
        e.error ? h("div", { class: "error" }, e.error) : null,
        // Only assignations that hold changes have a page; the others are named, not linked.
        e.assignationId ? h("div", {}, "assignation ", e.assignation ? assignationLink(e.assignationId) : h("span", { class: "mono" }, e.assignationId)) : null,
        e.ip ? h("div", { class: "muted" }, `${e.ip}${e.userAgent ? ` · ${e.userAgent}` : ""}`) : null,
        e.traceId ? h("div", {}, traceLink(e.traceId, e.spanId)) : null,
        jsonDetails("input", e.input), jsonDetails("output", e.output), jsonDetails("logs", e.logs), jsonDetails("details", e.details))))));
  const exported = {};
  for (const f of fields) exported[f.name] = filters[f.name] || "";
  exported.since = toIso(filters.since) || "";
  exported.until = toIso(filters.until) || "";
  paint(seq, heading, form,
    exportButtons("events", exported),
    h("section", { id: "summary" }, h("h3", {}, "Summary"),
      h("p", {}, h("span", { class: "muted" }, "By kind: "), counts(summary.byKind)),
      h("p", {}, h("span", { class: "muted" }, "By status: "), counts(summary.byStatus)),
      dayChart(summary.byDay)),
    table, pager({ index, connection }, page.go));
}

// ---------- view: one W3C trace (its records and events, across entities and assignations) ----------

const TRACE = `query($t: String!) {
  traceHistory(traceId: $t, first: 100) {
    totalCount
    edges { node { id entity objectId version kind at user app assignationId step reason traceId spanId changes { field old new } } }
  }
  auditEvents(traceId: $t, first: 100) {
    totalCount
    edges { node { id kind action status at user app spanId error } }
  }
}`;

async function traceView(traceId) {
  const seq = renders;
  const heading = h("h2", {}, "Trace ", h("span", { class: "mono" }, traceId));
  paint(seq, heading, h("p", { class: "muted" }, "Loading…"));
  let data;
  try {
    data = await gql(TRACE, { t: traceId });
  } catch (e) {
    paint(seq, heading, errorBox(e));
    return;
  }
  const records = data.traceHistory;
  const events = data.auditEvents;
  const more = (connection) => connection.totalCount > connection.edges.length ? ` (the first ${connection.edges.length} shown)` : "";
  paint(seq, heading,
    h("p", { class: "muted" }, `${records.totalCount} history record(s) and ${events.totalCount} audit event(s) in this trace, oldest record first.`),
    h("section", { id: "trace-records" }, h("h3", {}, `Records${more(records)}`),
      records.edges.length ? records.edges.map(({ node }) => recordView(node, { linkAssignation: true })) : h("p", { class: "muted" }, "No history record.")),
    h("section", { id: "trace-events" }, h("h3", {}, `Audit events${more(events)}`),
      events.edges.length ? h("table", { id: "trace-event-list" },
        h("caption", {}, "Newest first"),
        h("thead", {}, h("tr", {}, ["When", "Kind", "Action", "Status", "User", "App", "Span"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, events.edges.map(({ node: e }) => h("tr", { "data-id": e.id },
          h("td", {}, h("time", { datetime: e.at }, when(e.at))),
          h("td", {}, e.kind), h("td", {}, e.action),
          h("td", {}, h("span", { class: `badge ${e.status}` }, e.status)),
          h("td", {}, e.user || ""), h("td", {}, e.app || ""),
          h("td", { class: "mono" }, e.spanId || "")))))
        : h("p", { class: "muted" }, "No audit event.")));
}

// ---------- routing ----------

function route() {
  renders += 1;
  const seq = renders;
  document.body.dataset.ready = "";
  const raw = location.hash.replace(/^#/, "") || "/assignations";
  const [path, query] = raw.split("?");
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  const view = parts[0] || "assignations";
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    const current = link.dataset.view === view || (view === "assignation" && link.dataset.view === "assignations");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const rendering = loadEnums().then(() => {
    switch (view) {
      case "assignation": return assignationView(parts[1] || "");
      case "object": return objectView(parts[1], parts[2]);
      case "audit": return auditView(params);
      case "trace": return traceView(parts[1] || "");
      default: return assignationsView(params);
    }
  });
  rendering.catch((e) => show(errorBox(e))).finally(() => {
    if (seq === renders) document.body.dataset.ready = view;
  });
}

setupIdentity();
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  main().focus();
});
window.addEventListener("hashchange", () => { status(""); route(); });
route();
