// End-to-end tests of the history browser at /ui, in Debian's headless Chromium driven by
// playwright-core. Each suite starts the real `chronicle` binary (CHRONICLE_BIN) on port 0 against a
// fresh SQLite database, creates data through the GraphQL API, drives the page, and then checks both
// what the page shows and what the API returns. Screenshots of each view go to
// target/ui-screenshots/ (CHRONICLE_SCREENSHOTS overrides).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const BIN = process.env.CHRONICLE_BIN || path.join(repo, "target/debug/chronicle");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.CHRONICLE_SCREENSHOTS || path.join(repo, "target/ui-screenshots");
const SECRET = "ui-tests-secret-that-is-at-least-32-bytes-long";
mkdirSync(SHOTS, { recursive: true });

// ---------- the server ----------

async function startServer(extraArgs = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "chronicle-ui-"));
  const child = spawn(BIN, ["serve", "--bind", "127.0.0.1:0", "--database-url", `sqlite://${dir}/ui.db?mode=rwc`, ...extraArgs], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "info,sqlx=warn,sea_orm=warn" },
  });
  const address = await new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error("chronicle did not start in 30 s")), 30_000);
    child.stdout.on("data", (chunk) => {
      buffer += chunk.toString();
      const match = buffer.match(/chronicle listening.*?127\.0\.0\.1:(\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${match[1]}`);
      }
    });
    child.on("exit", (code) => reject(new Error(`chronicle exited with ${code}`)));
  });
  child.stdout.resume();
  return {
    address,
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function api(server, query, variables = {}, headers = { "x-user": "alice", "x-app": "tests" }) {
  const response = await fetch(`${server.address}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const inAssignation = (id) => ({ "x-user": "alice", "x-app": "tests", "x-assignation-id": id });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const CREATE_PROJECT = "mutation($n: String!) { createProject(input: {name: $n}) { id } }";
const CREATE_TASK = "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { id } }";
const UPDATE_TASK = "mutation($id: ID!, $t: String!, $pr: Int! = 0) { updateTask(id: $id, input: {title: $t, priority: $pr}) { id } }";
const TASK = "query($id: ID!) { task(id: $id) { title priority } }";

// ---------- the browser ----------

let browser;
let server;
let project;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  server = await startServer();
  project = (await api(server, CREATE_PROJECT, { n: "Apollo" }, inAssignation("setup"))).createProject.id;
});

after(async () => {
  await browser?.close();
  server?.stop();
});

// A page that fails the test on any request leaving the server, and on script errors.
async function openPage(base, hash = "") {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(base)) outside.push(request.url());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  page.check = async () => {
    assert.doesNotMatch(await page.locator("body").innerText(), /^(null|undefined)$/m, "a stray null on the page");
    assert.deepEqual(outside, [], "the UI fetched something from outside");
    assert.deepEqual(errors, [], "the page threw");
  };
  await page.goto(`${base}/ui${hash}`);
  return page;
}

async function ready(page, view) {
  await page.waitForFunction((v) => document.body.dataset.ready === v, view);
}

async function useHeaderIdentity(page, user) {
  await page.selectOption("#identity select[name=mode]", "header");
  await page.fill("#identity input[name=user]", user);
  await page.fill("#identity input[name=app]", "ui");
  await page.click("#identity button[type=submit]");
}

test("the page is self-contained: its assets are served by the binary with a same-origin policy", async () => {
  for (const [asset, type] of [["/ui", "text/html"], ["/ui/app.js", "text/javascript"], ["/ui/app.css", "text/css"]]) {
    const response = await fetch(`${server.address}${asset}`);
    assert.equal(response.status, 200, asset);
    assert.ok(response.headers.get("content-type").startsWith(type), asset);
    assert.match(response.headers.get("content-security-policy"), /default-src 'none'; script-src 'self'/);
    // The SVG namespace is a name, not something fetched.
    const text = (await response.text()).replaceAll("http://www.w3.org/2000/svg", "");
    assert.doesNotMatch(text, /https?:\/\/(?!127\.0\.0\.1)[a-z]/i, `${asset} names an outside URL`);
  }
});

test("GraphiQL at /graphql works offline: every asset comes from the binary, and a query runs", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  const errors = [];
  const violations = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(server.address)) outside.push(request.url());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.goto(`${server.address}/graphql`);
  await page.locator(".graphiql-container").waitFor({ timeout: 20_000 });
  // Its schema came from this server: the documentation explorer lists the query root.
  await page.click("button[aria-label='Show Documentation Explorer']");
  await page.locator(".graphiql-doc-explorer").getByText("QueryRoot").first().waitFor();
  // A query typed into the editor runs against this server.
  await page.locator(".graphiql-query-editor .CodeMirror").first().click();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("{ projects { totalCount");
  await page.click("button.graphiql-execute-button");
  await page.locator(".graphiql-response").getByText("totalCount").waitFor();
  await page.screenshot({ path: path.join(SHOTS, "graphiql.png") });
  assert.deepEqual(outside, [], "GraphiQL fetched something from outside");
  assert.deepEqual(errors, [], "GraphiQL threw");
  assert.deepEqual(violations, [], "the page broke its own content security policy");
  await context.close();
});

test("assignations are listed newest first with who, app, when, changes and state, and can be filtered", async () => {
  const task = (await api(server, CREATE_TASK, { p: project, t: "Listed" }, inAssignation("list-1"))).createTask.id;
  await api(server, UPDATE_TASK, { id: task, t: "Listed again", pr: 2 }, { "x-user": "bob", "x-app": "mobile", "x-assignation-id": "list-2" });

  const page = await openPage(server.address, "#/assignations");
  await ready(page, "assignations");
  const firstRow = page.locator("#assignations tbody tr").first();
  assert.equal(await firstRow.getAttribute("data-id"), "list-2");
  const cells = await firstRow.locator("td").allInnerTexts();
  assert.deepEqual([cells[0], cells[1], cells[2], cells[4], cells[5], cells[6]], ["list-2", "bob", "mobile", "1", "TASK", "active"]);
  await page.screenshot({ path: path.join(SHOTS, "assignations.png"), fullPage: true });

  // Filter by user: only bob's.
  await page.fill("form.filters input[name=user]", "bob");
  await page.click("form.filters button[type=submit]");
  await ready(page, "assignations");
  await page.waitForFunction(() => location.hash.includes("user=bob"));
  await ready(page, "assignations");
  const ids = await page.locator("#assignations tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert.deepEqual(ids, ["list-2"]);
  await page.check();
  await page.context().close();
});

test("an assignation shows its diff, previews its revert, and the confirmed revert links to the new assignation", async () => {
  const task = (await api(server, CREATE_TASK, { p: project, t: "Launch" }, inAssignation("plan"))).createTask.id;
  await api(server, UPDATE_TASK, { id: task, t: "Launch v2", pr: 3 }, inAssignation("rename"));

  const page = await openPage(server.address, "#/assignations");
  await ready(page, "assignations");
  await useHeaderIdentity(page, "alice");
  await ready(page, "assignations");
  await page.click("#assignations a:text-is('rename')");
  await ready(page, "assignation");

  const title = page.locator("#records tr[data-field=title]");
  assert.deepEqual(await title.locator("td").allInnerTexts(), ["title", "~ changed", '"Launch"', '"Launch v2"']);
  const priority = page.locator("#records tr[data-field=priority]");
  assert.deepEqual(await priority.locator("td").allInnerTexts(), ["priority", "~ changed", "0", "3"]);
  await page.screenshot({ path: path.join(SHOTS, "assignation.png"), fullPage: true });

  await page.click("#revert");
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor({ state: "visible" });
  const planned = dialog.locator(`#planned [data-object="${task}"] tr[data-field=title] td`);
  assert.deepEqual(await planned.allInnerTexts(), ["title", "~ changed", '"Launch v2"', '"Launch"']);
  assert.equal(await dialog.locator("#conflicts").count(), 0);
  await page.screenshot({ path: path.join(SHOTS, "revert-preview.png") });
  await page.fill("#revert-reason", "typo");
  await dialog.locator("#confirm-ok").click();
  await page.locator("#reverted-as a").waitFor();
  const newId = await page.locator("#reverted-as a").innerText();
  assert.equal(await page.locator("h2 .badge").innerText(), "reverted");

  // What the API now says.
  const data = await api(server, `query($id: String!, $n: String!, $t: ID!) {
    assignation(id: $id) { revertedBy { id } }
    reverting: assignation(id: $n) { user app reverts { id } records { edges { node { reason } } } }
    task(id: $t) { title priority } }`, { id: "rename", n: newId, t: task });
  assert.equal(data.assignation.revertedBy.id, newId);
  assert.equal(data.reverting.reverts.id, "rename");
  assert.equal(data.reverting.user, "alice");
  assert.equal(data.reverting.app, "ui");
  assert.equal(data.reverting.records.edges[0].node.reason, "typo");
  assert.deepEqual(data.task, { title: "Launch", priority: 0 });

  // The link leads to the new assignation.
  await page.click("#reverted-as a");
  await page.waitForFunction((id) => location.hash === `#/assignation/${id}`, newId);
  await ready(page, "assignation");
  assert.equal(await page.locator("h2 .badge").innerText(), "revert");
  await page.check();
  await page.context().close();
});

test("a revert with conflicts is only confirmed with force", async () => {
  const task = (await api(server, CREATE_TASK, { p: project, t: "Shared" }, inAssignation("shared-0"))).createTask.id;
  await api(server, UPDATE_TASK, { id: task, t: "first edit" }, inAssignation("edit-1"));
  await api(server, UPDATE_TASK, { id: task, t: "second edit" }, { "x-user": "bob", "x-assignation-id": "edit-2" });

  const page = await openPage(server.address, "#/assignation/edit-1");
  await ready(page, "assignation");
  await page.click("#revert");
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor({ state: "visible" });
  assert.match(await dialog.locator("#conflicts").innerText(), /1 conflict\(s\)[\s\S]*edit-2/);
  assert.equal(await dialog.locator("#confirm-ok").isDisabled(), true);
  await dialog.locator("#force").check();
  assert.equal(await dialog.locator("#confirm-ok").isDisabled(), false);
  await dialog.locator("#confirm-ok").click();
  await page.locator("#reverted-as a").waitFor();
  assert.deepEqual((await api(server, TASK, { id: task })).task.title, "Shared");
  await page.check();
  await page.context().close();
});

test("an assignation shows its tree, and the tree revert previews every part and undoes them as one", async () => {
  const task = (await api(server, CREATE_TASK, { p: project, t: "Tree root task" }, inAssignation("tree-root"))).createTask.id;
  const child = { "x-user": "planner", "x-app": "planner-app", "x-assignation-id": "tree-child", "x-parent-assignation-id": "tree-root" };
  await api(server, UPDATE_TASK, { id: task, t: "planned" }, child);
  const grandchild = { "x-user": "worker", "x-assignation-id": "tree-leaf", "x-parent-assignation-id": "tree-child" };
  const other = (await api(server, CREATE_TASK, { p: project, t: "built" }, grandchild)).createTask.id;

  const page = await openPage(server.address, "#/assignation/tree-child");
  await ready(page, "assignation");
  const ids = await page.locator("#tree li").evaluateAll((items) => items.map((i) => i.dataset.id));
  assert.deepEqual(ids, ["tree-root", "tree-child", "tree-leaf"]);
  assert.equal(await page.locator("#tree li.current > strong").innerText(), "tree-child");
  await page.screenshot({ path: path.join(SHOTS, "tree.png"), fullPage: true });

  // From the root, the tree revert previews the changes of all three as one.
  await page.click("#tree a:text-is('tree-root')");
  await page.waitForFunction(() => location.hash === "#/assignation/tree-root");
  await ready(page, "assignation");
  await page.click("#revert-tree");
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor({ state: "visible" });
  assert.match(await dialog.locator("p").first().innerText(), /tree-root and the 2 assignation\(s\) under it/);
  assert.equal(await dialog.locator("#planned [data-object]").count(), 2);
  await page.screenshot({ path: path.join(SHOTS, "tree-revert-preview.png") });
  await dialog.locator("#confirm-ok").click();
  await page.locator("#reverted-as a").waitFor();

  const data = await api(server, `query($t: ID!, $o: ID!) { task(id: $t) { id } other: task(id: $o) { id }
    assignations(rootId: "tree-root") { edges { node { id revertedBy { id } } } } }`, { t: task, o: other });
  assert.equal(data.task, null);
  assert.equal(data.other, null);
  assert.ok(data.assignations.edges.every((e) => e.node.revertedBy));
  await page.check();
  await page.context().close();
});

test("an object's timeline diffs versions, compares any two, shows a past state and restores a version", async () => {
  const task = (await api(server, CREATE_TASK, { p: project, t: "Timeline v1" }, inAssignation("t-1"))).createTask.id;
  await sleep(1_100); // the as-of picker has one-second precision
  await api(server, UPDATE_TASK, { id: task, t: "Timeline v2", pr: 1 }, inAssignation("t-2"));
  await api(server, UPDATE_TASK, { id: task, t: "Timeline v3", pr: 5 }, inAssignation("t-3"));
  const history = (await api(server, `query($id: ID!) { history(entity: TASK, id: $id) { edges { node { version at } } } }`, { id: task })).history.edges.map((e) => e.node);
  const v1 = history.find((r) => r.version === 1);

  const page = await openPage(server.address, `#/object/TASK/${task}`);
  await ready(page, "object");
  const versions = await page.locator("#versions article").evaluateAll((items) => items.map((a) => a.dataset.version));
  assert.deepEqual(versions, ["3", "2", "1"]);
  assert.match(await page.locator("#verification").innerText(), /verified \(3\)/);
  const v3title = page.locator('#versions article[data-version="3"] tr[data-field=title] td');
  assert.deepEqual(await v3title.allInnerTexts(), ["title", "~ changed", '"Timeline v2"', '"Timeline v3"']);

  // Compare v1 with v3.
  await page.selectOption("#compare-from", "1");
  await page.selectOption("#compare-to", "3");
  const compared = page.locator("#compare-result tr[data-field=title] td");
  assert.deepEqual(await compared.allInnerTexts(), ["title", "~ changed", '"Timeline v1"', '"Timeline v3"']);

  // As it was just after v1 (local time, to the second), and before it existed.
  const local = (ms) => {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    // Chromium writes a whole minute without its ":00", and playwright refuses a value the input
    // does not keep as given.
    const seconds = d.getSeconds() ? `:${pad(d.getSeconds())}` : "";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}${seconds}`;
  };
  const afterV1 = Math.ceil((Date.parse(v1.at) + 1) / 1000) * 1000;
  await page.fill("#as-of", local(afterV1));
  await page.locator("#as-of").dispatchEvent("change");
  assert.match(await page.locator("#as-of-result").innerText(), /Version 1[\s\S]*Timeline v1/);
  await page.fill("#as-of", local(Date.parse(v1.at) - 60_000));
  await page.locator("#as-of").dispatchEvent("change");
  assert.match(await page.locator("#as-of-result").innerText(), /did not exist/);
  await page.screenshot({ path: path.join(SHOTS, "object-timeline.png"), fullPage: true });

  // Restore version 1.
  await page.click('#versions article[data-version="1"] button.restore');
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor({ state: "visible" });
  assert.deepEqual(await dialog.locator("tr[data-field=title] td").allInnerTexts(), ["title", "~ changed", '"Timeline v3"', '"Timeline v1"']);
  await dialog.locator("#confirm-ok").click();
  await page.locator("#restored-as").waitFor();
  assert.match(await page.locator("#restored-as").innerText(), /version 4/);
  assert.deepEqual((await api(server, TASK, { id: task })).task, { title: "Timeline v1", priority: 0 });
  await page.check();
  await page.context().close();
});

test("the audit view filters events and charts them per day", async () => {
  const page = await openPage(server.address, "#/audit");
  await ready(page, "audit");
  const bars = await page.locator("#per-day-chart rect").count();
  const summary = (await api(server, "{ auditSummary { byDay { key count } } }")).auditSummary;
  assert.equal(bars, summary.byDay.length);
  assert.ok(bars >= 1);

  await page.selectOption("form.filters select[name=kind]", "MUTATION");
  await page.fill("form.filters input[name=action]", "revertAssignation");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("action=revertAssignation"));
  await ready(page, "audit");
  const shown = await page.locator("#audit-events tbody tr").count();
  const expected = (await api(server, `{ auditEvents(kind: MUTATION, action: "revertAssignation") { totalCount } }`)).auditEvents.totalCount;
  assert.equal(shown, expected);
  assert.ok(shown >= 2, "the reverts made above are listed");
  const actions = await page.locator("#audit-events tbody tr td:nth-child(3)").allInnerTexts();
  assert.ok(actions.every((a) => a === "revertAssignation"));
  await page.screenshot({ path: path.join(SHOTS, "audit.png"), fullPage: true });
  await page.check();
  await page.context().close();
});

test("the audit view and an object's timeline download what they list, and each download is an EXPORT event", async () => {
  const page = await openPage(server.address, "#/audit?kind=MUTATION");
  await ready(page, "audit");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("button.export[data-format=csv]"),
  ]);
  assert.match(download.suggestedFilename(), /^chronicle-events-.*\.csv$/);
  const csv = (await import("node:fs")).readFileSync(await download.path(), "utf8").trim().split("\r\n");
  assert.match(csv[0], /^id,kind,action,status,/);
  const total = (await api(server, "{ auditEvents(kind: MUTATION) { totalCount } }")).auditEvents.totalCount;
  assert.equal(csv.length - 1, total, "one line per listed event under the header");

  const task = (await api(server, CREATE_TASK, { p: project, t: "exported" })).createTask.id;
  await api(server, UPDATE_TASK, { id: task, t: "exported twice" });
  await page.goto(`${server.address}/ui#/object/TASK/${task}`);
  await ready(page, "object");
  const [history] = await Promise.all([
    page.waitForEvent("download"),
    page.click("button.export[data-format=ndjson]"),
  ]);
  const lines = (await import("node:fs")).readFileSync(await history.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.objectId, l.version]), [[task, 1], [task, 2]]);

  // Each event is written once its download has been sent.
  let exports = [];
  for (let i = 0; i < 50 && exports.length < 2; i += 1) {
    exports = (await api(server, "{ auditEvents(kind: EXPORT) { edges { node { action details } } } }")).auditEvents.edges.map((e) => e.node);
    if (exports.length < 2) await sleep(100);
  }
  const [latest, first] = exports;
  assert.equal(latest.action, "history");
  assert.equal(latest.details.filters.objectId, task);
  assert.equal(latest.details.rows, 2);
  assert.equal(first.action, "events");
  assert.equal(first.details.filters.kind, "MUTATION");
  await page.check();
  await page.context().close();
});

test("a client's trace links its records and events: from the audit list to the trace's own page", async () => {
  const trace = "0af7651916cd43dd8448eb211c80319c";
  const traced = { "x-user": "alice", "x-app": "tests", traceparent: `00-${trace}-b7ad6b7169203331-01` };
  const task = (await api(server, CREATE_TASK, { p: project, t: "Traced" }, traced)).createTask.id;
  await api(server, UPDATE_TASK, { id: task, t: "Traced twice" }, traced);

  const page = await openPage(server.address, `#/audit?traceId=${trace}`);
  await ready(page, "audit");
  assert.equal(await page.locator("#audit-events tbody tr").count(), 2, "the filter keeps the trace's two events");
  await page.locator(`#audit-events a.trace[data-trace="${trace}"]`).first().click();
  await ready(page, "trace");
  assert.match(await page.locator("main h2").innerText(), new RegExp(trace));
  const kinds = await page.locator("#trace-records article.record header strong").allInnerTexts();
  assert.deepEqual(kinds, ["CREATE", "UPDATE"], "the records, oldest first");
  const actions = await page.locator("#trace-event-list tbody tr td:nth-child(3)").allInnerTexts();
  assert.deepEqual(actions, ["updateTask", "createTask"]);
  const expected = (await api(server, `{ traceHistory(traceId: "${trace}") { edges { node { spanId } } } }`)).traceHistory.edges.map((e) => e.node.spanId);
  const shown = await page.locator("#trace-records a.trace").evaluateAll((links) => links.map((a) => a.title.split("span ")[1]));
  assert.deepEqual(shown, expected, "each record names its span");
  await page.screenshot({ path: path.join(SHOTS, "trace.png"), fullPage: true });
  await page.check();
  await page.context().close();
});

test("an object's records show their inclusion in the latest checkpoint, and a pasted forgery fails", async () => {
  const key = path.join(repo, "tests/fixtures/log/checkpoint-private.pem");
  const logged = await startServer(["--checkpoint-key", key, "--checkpoint-origin", "ui.test/log",
    "--sequence-every-ms", "50", "--checkpoint-every", "1s"]);
  try {
    const p = (await api(logged, CREATE_PROJECT, { n: "Logged" })).createProject.id;
    await api(logged, "mutation($id: ID!) { updateProject(id: $id, input: {name: \"Logged v2\"}) { id } }", { id: p });
    let checkpoint = null;
    for (let i = 0; i < 100 && !(checkpoint && checkpoint.size >= 2); i += 1) {
      await sleep(100);
      checkpoint = (await api(logged, "{ checkpoint { size note } }")).checkpoint;
    }
    assert.ok(checkpoint && checkpoint.size >= 2, "a checkpoint covers both records");

    const page = await openPage(logged.address, `#/object/PROJECT/${p}`);
    await ready(page, "object");
    await page.waitForFunction(() => [...document.querySelectorAll("[data-log]")].every((b) => /in the checkpoint of/.test(b.textContent)));
    assert.equal(await page.locator("[data-log].ok").count(), 2);
    await page.screenshot({ path: path.join(SHOTS, "log-inclusion.png"), fullPage: true });

    // A checkpoint with another root, pasted: no record is in it.
    const lines = checkpoint.note.split("\n");
    lines[2] = `${"A".repeat(43)}=`;
    await page.locator("#log details summary").click();
    await page.fill("#checkpoint-text", lines.join("\n"));
    await page.click("#check-checkpoint");
    await page.waitForFunction(() => [...document.querySelectorAll("[data-log]")].every((b) => /NOT in the checkpoint/.test(b.textContent)));
    // The genuine one, pasted back: every record is.
    await page.fill("#checkpoint-text", checkpoint.note);
    await page.click("#check-checkpoint");
    await page.waitForFunction(() => [...document.querySelectorAll("[data-log]")].every((b) => /: in the checkpoint of/.test(b.textContent)));
    await page.check();
    await page.context().close();
  } finally {
    logged.stop();
  }
});

test("in jwt mode the page works with a token kept in session storage, and without one it says so", async () => {
  const jwt = await startServer(["--auth", "jwt", "--jwt-secret", SECRET]);
  try {
    const token = execFileSync(BIN, ["token", "--sub", "carol", "--app", "ui", "--jwt-secret", SECRET]).toString().trim();
    const bearer = { authorization: `Bearer ${token}` };
    const p = (await api(jwt, CREATE_PROJECT, { n: "Secured" }, { ...bearer, "x-assignation-id": "secured-1" })).createProject.id;
    assert.ok(p);

    const page = await openPage(jwt.address, "#/assignations");
    await ready(page, "assignations");
    assert.match(await page.locator("main .error").innerText(), /UNAUTHENTICATED/);

    await page.selectOption("#identity select[name=mode]", "jwt");
    await page.fill("#identity input[name=token]", token);
    await page.click("#identity button[type=submit]");
    await page.locator("#assignations tr[data-id=secured-1]").waitFor();
    await page.reload();
    await page.locator("#assignations tr[data-id=secured-1]").waitFor();
    assert.equal(await page.evaluate(() => JSON.parse(sessionStorage.getItem("chronicle.auth")).mode), "jwt");

    // Revert as the token's user.
    await page.click("#assignations a:text-is('secured-1')");
    await ready(page, "assignation");
    await page.click("#revert");
    await page.locator("dialog#confirm #confirm-ok").click();
    await page.locator("#reverted-as a").waitFor();
    const newId = await page.locator("#reverted-as a").innerText();
    const reverting = (await api(jwt, "query($id: String!) { assignation(id: $id) { user app reverts { id } } }", { id: newId }, bearer)).assignation;
    assert.deepEqual(reverting, { user: "carol", app: "ui", reverts: { id: "secured-1" } });
    await page.check();
    await page.context().close();
  } finally {
    jwt.stop();
  }
});
