//! Provenance tokens and assignation trees: forged, expired, wrong-audience, wrong-agent and replayed
//! tokens refused with nothing written; single use and required tokens; a three-level tree built by
//! three "services" (agents with their own bearer tokens), listed and reverted from its root with a
//! conflict and `force`; who may revert a tree; a tree in header mode with a part already reverted;
//! Koherent's `provenance` field; and `chronicle token` minting a token the server accepts.

use std::path::PathBuf;

use chronicle::config::{AuthMode, Settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::helpers::{As, Reply, TestApp, assert_history_consistent};

crate::on_every_database!(
    settings = provenance;
    forged_expired_foreign_and_replayed_tokens_are_refused_and_write_nothing,
    a_three_level_tree_built_by_three_services_reverts_from_its_root,
    an_agent_may_revert_a_tree_of_the_human_it_acts_for_and_no_other,
    koherent_clients_read_an_objects_provenance,
    a_token_minted_by_chronicle_token_is_accepted,
);

crate::on_every_database!(
    settings = single_use;
    a_single_use_token_is_refused_the_second_time,
    mutations_without_a_token_are_refused_when_provenance_is_required,
);

crate::on_every_database!(
    a_header_mode_tree_names_its_parent_and_a_partly_reverted_tree_says_which_parts,
);

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";
const ISSUER: &str = "arkitekt";
const AUDIENCE: &str = "chronicle";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn provenance(settings: &mut Settings) {
    settings.auth.mode = AuthMode::Jwt;
    settings.auth.jwt_secret = Some(SECRET.into());
    settings.auth.provenance_public_key = Some(
        fixture("ed25519-public.pem")
            .to_str()
            .expect("a UTF-8 path")
            .to_owned(),
    );
    settings.auth.provenance_issuer = Some(ISSUER.into());
    settings.auth.provenance_audience = Some(AUDIENCE.into());
}

fn single_use(settings: &mut Settings) {
    provenance(settings);
    settings.auth.provenance_single_use = true;
    settings.auth.require_provenance = true;
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An agent's bearer token: user `sub`, client `app`.
fn bearer(sub: &str, app: &str, scope: Option<&str>) -> String {
    let mut claims = json!({"sub": sub, "azp": app, "exp": now() + 3600, "iat": now()});
    if let Some(scope) = scope {
        claims["scope"] = json!(scope);
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("bearer token")
}

/// A provenance token's claims: for assignation `tsk` under `ptk` (root `rtk`), run for `rcb`, by the
/// agent `agent` through `client`.
fn claims(tsk: &str, ptk: Option<&str>, rtk: &str, rcb: &str, agent: &str, client: &str) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": [AUDIENCE, "elsewhere"], "sub": agent, "iat": now(),
        "exp": now() + 600, "jti": uuid::Uuid::now_v7().to_string(),
        "act": {"sub": agent, "cid": client},
        "tsk": tsk, "rtk": rtk, "rcb": rcb,
        "ahs": "5d41402abc4b2a76b9719d911017c592", "aha": "json-c14n",
    });
    if let Some(ptk) = ptk {
        claims["ptk"] = json!(ptk);
    }
    claims
}

fn sign(claims: &Value) -> String {
    let pem = std::fs::read(fixture("ed25519-private.pem")).expect("key");
    let key = EncodingKey::from_ed_pem(&pem).expect("private key");
    encode(&Header::new(Algorithm::EdDSA), claims, &key).expect("provenance token")
}

/// Sends `query` with a bearer token and, when given, a provenance token (and extra headers).
async fn send(
    app: &TestApp,
    bearer: &str,
    provenance: Option<&str>,
    extra: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> Reply {
    let mut request = app
        .request(reqwest::Method::POST, "/graphql")
        .bearer_auth(bearer)
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = provenance {
        request = request.header("Rekuest-Task", token);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    TestApp::reply_to(request).await
}

const CREATE_PROJECT: &str = "mutation($n: String!) { createProject(input: {name: $n}) { id } }";
const CREATE_TASK: &str =
    "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { id } }";
const UPDATE_TASK: &str =
    "mutation($id: ID!, $t: String!) { updateTask(id: $id, input: {title: $t}) { id } }";

/// Sends a query as an administrator (a bearer token with the revert-any scope).
async fn read(app: &TestApp, query: &str, variables: Value) -> Reply {
    let admin = bearer("admin", "console", Some("history:revert-any"));
    send(app, &admin, None, &[], query, variables).await
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("project").await,
        app.count("project_history").await,
        app.count("assignation").await,
    )
}

async fn forged_expired_foreign_and_replayed_tokens_are_refused_and_write_nothing(app: TestApp) {
    let bot = bearer("bot", "bot-app", None);
    let accepted = claims("task-1", None, "task-1", "alice", "bot", "bot-app");
    let reply = send(
        &app,
        &bot,
        Some(&sign(&accepted)),
        &[],
        CREATE_PROJECT,
        json!({"n": "by the bot"}),
    )
    .await;
    reply.data();
    assert_eq!(reply.assignation.as_deref(), Some("task-1"));
    let task = read(&app,
            "{ assignation(id: \"task-1\") { user app onBehalfOf rootId parentId argsHash argsHashAlgorithm } }",
            json!({}),
        )
        .await;
    assert_eq!(
        task.data()["assignation"],
        json!({"user": "bot", "app": "bot-app", "onBehalfOf": "alice", "rootId": "task-1",
               "parentId": null, "argsHash": "5d41402abc4b2a76b9719d911017c592",
               "argsHashAlgorithm": "json-c14n"})
    );
    let before = counts(&app).await;

    let valid = sign(&claims("task-2", None, "task-2", "alice", "bot", "bot-app"));
    let mut parts: Vec<&str> = valid.split('.').collect();
    let edited = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims = claims("task-2", None, "task-2", "mallory", "bot", "bot-app");
        claims["rcb"] = json!("mallory");
        b64.encode(claims.to_string())
    };
    parts[1] = &edited;
    let forged = parts.join(".");
    let mut expired = claims("task-3", None, "task-3", "alice", "bot", "bot-app");
    expired["exp"] = json!(now() - 3600);
    let mut elsewhere = claims("task-4", None, "task-4", "alice", "bot", "bot-app");
    elsewhere["aud"] = json!(["another-service"]);
    let mut other_issuer = claims("task-5", None, "task-5", "alice", "bot", "bot-app");
    other_issuer["iss"] = json!("someone-else");
    let stolen = claims("task-6", None, "task-6", "alice", "mallory", "bot-app");
    let mut replayed = claims("task-7", None, "task-7", "alice", "bot", "bot-app");
    replayed["jti"] = accepted["jti"].clone();
    let mut rootless = claims("task-8", None, "other-root", "alice", "bot", "bot-app");
    rootless["rtk"] = json!("other-root");
    let cases = [
        ("a forged signature", forged, "signature"),
        ("an expired token", sign(&expired), "expired"),
        ("another audience", sign(&elsewhere), "audience"),
        ("another issuer", sign(&other_issuer), "issuer"),
        ("another agent's token", sign(&stolen), "act"),
        ("a replayed jti", sign(&replayed), "replay"),
        ("a root whose rtk is not itself", sign(&rootless), "rtk"),
        ("not a token", "not-a-token".to_owned(), "malformed"),
    ];
    for (what, token, reason) in &cases {
        let reply = send(
            &app,
            &bot,
            Some(token),
            &[],
            CREATE_PROJECT,
            json!({"n": "never"}),
        )
        .await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{what}");
        let message = reply.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(reason),
            "{what}: {message:?} should say {reason:?}"
        );
        assert_eq!(counts(&app).await, before, "{what} wrote something");
    }
    // A token and an assignation header that disagree.
    let disagree = sign(&claims("task-9", None, "task-9", "alice", "bot", "bot-app"));
    let reply = send(
        &app,
        &bot,
        Some(&disagree),
        &[("X-Assignation-Id", "task-10")],
        CREATE_PROJECT,
        json!({"n": "never"}),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, "BAD_INPUT"));
    assert_eq!(counts(&app).await, before);

    // Each refusal is a LOGIN_FAILED event with its reason, never the token.
    let events = read(&app,
            "{ auditEvents(kind: LOGIN_FAILED, first: 50) { totalCount edges { node { error details } } } }",
            json!({}),
        )
        .await;
    let events = &events.data()["auditEvents"];
    assert_eq!(events["totalCount"], cases.len());
    let text = events.to_string();
    assert!(text.contains("provenance token"));
    assert!(
        !text.contains(&disagree[..40]),
        "a token reached the audit trail"
    );
    assert_history_consistent(&app).await;
}

async fn a_three_level_tree_built_by_three_services_reverts_from_its_root(app: TestApp) {
    let alice = bearer("alice", "web", None);
    let planner = bearer("planner", "planner-app", None);
    let worker = bearer("worker", "worker-app", None);
    let bob = bearer("bob", "web", None);

    // The web app starts the root for alice; the planner service a child; the worker a grandchild.
    let root = sign(&claims("root-1", None, "root-1", "alice", "alice", "web"));
    let project = send(
        &app,
        &alice,
        Some(&root),
        &[],
        CREATE_PROJECT,
        json!({"n": "Launch"}),
    )
    .await
    .data()["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = sign(&claims(
        "child-1",
        Some("root-1"),
        "root-1",
        "alice",
        "planner",
        "planner-app",
    ));
    let first = send(
        &app,
        &planner,
        Some(&child),
        &[],
        CREATE_TASK,
        json!({"p": project, "t": "plan"}),
    )
    .await
    .data()["createTask"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let grandchild = sign(&claims(
        "grand-1",
        Some("child-1"),
        "root-1",
        "alice",
        "worker",
        "worker-app",
    ));
    send(
        &app,
        &worker,
        Some(&grandchild),
        &[],
        UPDATE_TASK,
        json!({"id": first, "t": "plan v2"}),
    )
    .await
    .data();
    send(
        &app,
        &worker,
        Some(&grandchild),
        &[],
        CREATE_TASK,
        json!({"p": project, "t": "build"}),
    )
    .await
    .data();

    // The tree as the API shows it.
    let tree = read(&app,
            r#"{ assignation(id: "root-1") {
                 id parent { id } root { id } onBehalfOf tree { assignations changeCount reverted }
                 children { totalCount edges { node { id user parent { id }
                   children { edges { node { id user app parentId root { id } onBehalfOf changeCount } } } } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        tree.data()["assignation"],
        json!({
            "id": "root-1", "parent": null, "root": {"id": "root-1"}, "onBehalfOf": "alice",
            "tree": {"assignations": 3, "changeCount": 4, "reverted": 0},
            "children": {"totalCount": 1, "edges": [{"node": {
                "id": "child-1", "user": "planner", "parent": {"id": "root-1"},
                "children": {"edges": [{"node": {
                    "id": "grand-1", "user": "worker", "app": "worker-app", "parentId": "child-1",
                    "root": {"id": "root-1"}, "onBehalfOf": "alice", "changeCount": 2
                }}]}
            }}]}
        })
    );
    let listed = read(
        &app,
        "{ assignations(rootId: \"root-1\") { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed.data()["assignations"]["totalCount"], 3);

    // Bob changes the first task since: the tree revert conflicts on it.
    let since = send(
        &app,
        &bob,
        None,
        &[("X-Assignation-Id", "bob-edit")],
        UPDATE_TASK,
        json!({"id": first, "t": "bob's plan"}),
    )
    .await;
    since.data();
    let preview = send(
        &app,
        &alice,
        None,
        &[],
        r#"{ previewRevert(id: "root-1", includeDescendants: true) {
             changes { entity kind } conflicts { entity objectId assignationId } } }"#,
        json!({}),
    )
    .await;
    let preview = &preview.data()["previewRevert"];
    assert_eq!(
        preview["conflicts"],
        json!([{"entity": "TASK", "objectId": first, "assignationId": "bob-edit"}])
    );
    assert_eq!(preview["changes"].as_array().map(Vec::len), Some(3));
    let revert = r#"mutation($f: Boolean) { revertAssignation(id: "root-1", includeDescendants: true, force: $f) {
                      id reverts { id } } }"#;
    let refused = send(&app, &alice, None, &[], revert, json!({"f": false})).await;
    assert_eq!(refused.code(), "REVERT_CONFLICT");
    assert_eq!(
        app.count("task").await,
        2,
        "a refused revert writes nothing"
    );

    let done = send(&app, &alice, None, &[], revert, json!({"f": true})).await;
    let undo = done.data()["revertAssignation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(done.data()["revertAssignation"]["reverts"]["id"], "root-1");
    assert_eq!(
        (app.count("project").await, app.count("task").await),
        (0, 0)
    );
    let reverted = read(
        &app,
        "{ assignations(rootId: \"root-1\") { edges { node { id revertedBy { id } } } } }",
        json!({}),
    )
    .await;
    for edge in reverted.data()["assignations"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["revertedBy"]["id"], undo.as_str(), "{edge}");
    }
    let again = send(&app, &alice, None, &[], revert, json!({"f": true})).await;
    assert_eq!(again.code(), "ALREADY_REVERTED");
    // Reverting the revert is a redo: everything the tree made is back (and bob's edit with it,
    // since the redo restores what the revert removed).
    let redo = format!("mutation {{ revertAssignation(id: \"{undo}\") {{ id }} }}");
    send(&app, &alice, None, &[], &redo, json!({})).await.data();
    assert_eq!(
        (app.count("project").await, app.count("task").await),
        (1, 2)
    );
    assert_history_consistent(&app).await;
}

async fn an_agent_may_revert_a_tree_of_the_human_it_acts_for_and_no_other(app: TestApp) {
    let alice = bearer("alice", "web", None);
    let bob = bearer("bob", "web", None);
    let agent = bearer("agent", "agent-app", None);
    for (owner, token) in [("alice", &alice), ("bob", &bob)] {
        let id = format!("{owner}-root");
        let root = sign(&claims(&id, None, &id, owner, owner, "web"));
        send(
            &app,
            token,
            Some(&root),
            &[],
            CREATE_PROJECT,
            json!({"n": owner}),
        )
        .await
        .data();
    }
    let preview = "query($id: String!) { previewRevert(id: $id) { changes { entity } } }";
    // The agent, acting for alice in a task of her tree, may preview (and run) the revert of her
    // tree; acting for alice, it may not touch bob's.
    let for_alice = sign(&claims(
        "agent-task",
        Some("alice-root"),
        "alice-root",
        "alice",
        "agent",
        "agent-app",
    ));
    let allowed = send(
        &app,
        &agent,
        Some(&for_alice),
        &[],
        preview,
        json!({"id": "alice-root"}),
    )
    .await;
    allowed.data();
    let refused = send(
        &app,
        &agent,
        Some(&for_alice),
        &[],
        preview,
        json!({"id": "bob-root"}),
    )
    .await;
    assert_eq!(refused.code(), "FORBIDDEN");
    // Without a token for anyone, the agent is just another user.
    let bare = send(
        &app,
        &agent,
        None,
        &[],
        preview,
        json!({"id": "alice-root"}),
    )
    .await;
    assert_eq!(bare.code(), "FORBIDDEN");
    // A holder of the revert-any scope may.
    let admin = bearer("admin", "console", Some("history:revert-any"));
    send(&app, &admin, None, &[], preview, json!({"id": "bob-root"}))
        .await
        .data();
    // Alice herself may revert what an agent did for her.
    let done = send(
        &app,
        &alice,
        None,
        &[],
        "mutation { revertAssignation(id: \"alice-root\") { id } }",
        json!({}),
    )
    .await;
    done.data();
    assert_eq!(app.count("project").await, 1, "only bob's project is left");
}

async fn koherent_clients_read_an_objects_provenance(app: TestApp) {
    let planner = bearer("planner", "planner-app", None);
    let token = sign(&claims(
        "k-child",
        Some("k-root"),
        "k-root",
        "alice",
        "planner",
        "planner-app",
    ));
    let project = send(
        &app,
        &planner,
        Some(&token),
        &[],
        CREATE_PROJECT,
        json!({"n": "Docs"}),
    )
    .await
    .data()["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = sign(&claims(
        "k-child",
        Some("k-root"),
        "k-root",
        "alice",
        "planner",
        "planner-app",
    ));
    send(
        &app,
        &planner,
        Some(&again),
        &[],
        "mutation($id: ID!) { updateProject(id: $id, input: {name: \"Docs v2\"}) { id } }",
        json!({"id": project}),
    )
    .await
    .data();
    // The query an Arkitekt client sends for an object's provenance.
    let reply = send(
        &app,
        &planner,
        None,
        &[],
        r#"query($id: ID!) { project(id: $id) { provenance {
             id kind date user { sub preferredUsername } client { clientId name }
             task { taskId parentId assignerSub app createdAt }
             effectiveChanges { field oldValue newValue } } } }"#,
        json!({"id": project}),
    )
    .await;
    let entries = reply.data()["project"]["provenance"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 2);
    let (update, create) = (&entries[0], &entries[1]);
    assert_eq!(update["kind"], "UPDATE");
    assert_eq!(create["kind"], "CREATE");
    assert_eq!(
        update["user"],
        json!({"sub": "planner", "preferredUsername": "planner"})
    );
    assert_eq!(
        update["client"],
        json!({"clientId": "planner-app", "name": "planner-app"})
    );
    assert_eq!(update["task"]["taskId"], "k-child");
    assert_eq!(update["task"]["parentId"], "k-root");
    assert_eq!(update["task"]["assignerSub"], "alice");
    let name = update["effectiveChanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "name")
        .cloned();
    assert_eq!(
        name,
        Some(json!({"field": "name", "oldValue": "Docs", "newValue": "Docs v2"}))
    );
    assert!(
        create["effectiveChanges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["oldValue"].is_null())
    );
}

async fn a_token_minted_by_chronicle_token_is_accepted(app: TestApp) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args([
            "token",
            "--sub",
            "bot",
            "--app",
            "bot-app",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--rcb",
            "alice",
            "--tsk",
            "minted-1",
            "--private-key",
        ])
        .arg(fixture("ed25519-private.pem"))
        .output()
        .expect("chronicle token runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let bot = bearer("bot", "bot-app", None);
    let reply = send(
        &app,
        &bot,
        Some(&token),
        &[],
        CREATE_PROJECT,
        json!({"n": "minted"}),
    )
    .await;
    reply.data();
    assert_eq!(reply.assignation.as_deref(), Some("minted-1"));
}

async fn a_single_use_token_is_refused_the_second_time(app: TestApp) {
    let bot = bearer("bot", "bot-app", None);
    let token = sign(&claims("once-1", None, "once-1", "alice", "bot", "bot-app"));
    send(
        &app,
        &bot,
        Some(&token),
        &[],
        CREATE_PROJECT,
        json!({"n": "first"}),
    )
    .await
    .data();
    let second = send(
        &app,
        &bot,
        Some(&token),
        &[],
        CREATE_PROJECT,
        json!({"n": "second"}),
    )
    .await;
    assert_eq!((second.status, second.code()), (401, "UNAUTHENTICATED"));
    assert_eq!(app.count("project").await, 1);
}

async fn mutations_without_a_token_are_refused_when_provenance_is_required(app: TestApp) {
    let bot = bearer("bot", "bot-app", None);
    let refused = send(
        &app,
        &bot,
        None,
        &[],
        CREATE_PROJECT,
        json!({"n": "no token"}),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (401, "UNAUTHENTICATED"));
    assert_eq!(app.count("project").await, 0);
    // Queries still run.
    send(
        &app,
        &bot,
        None,
        &[],
        "{ projects { totalCount } }",
        json!({}),
    )
    .await
    .data();
}

async fn a_header_mode_tree_names_its_parent_and_a_partly_reverted_tree_says_which_parts(
    app: TestApp,
) {
    let project = app
        .send(
            &As::user("alice").in_assignation("h-root"),
            CREATE_PROJECT,
            json!({"n": "Header tree"}),
        )
        .await
        .data()["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = app
        .request(reqwest::Method::POST, "/graphql")
        .header("X-User", "helper")
        .header("X-Assignation-Id", "h-child")
        .header("X-Parent-Assignation-Id", "h-root")
        .json(&json!({"query": CREATE_TASK, "variables": {"p": project, "t": "sub-task"}}));
    TestApp::reply_to(child).await.data();
    let shown = app
        .gql(
            "{ assignation(id: \"h-child\") { parent { id } root { id } onBehalfOf } }",
            json!({}),
        )
        .await;
    assert_eq!(
        shown.data()["assignation"],
        json!({"parent": {"id": "h-root"}, "root": {"id": "h-root"}, "onBehalfOf": "alice"})
    );
    // A second request that names another parent for the same assignation is refused.
    let other = app
        .request(reqwest::Method::POST, "/graphql")
        .header("X-User", "helper")
        .header("X-Assignation-Id", "h-child")
        .header("X-Parent-Assignation-Id", "elsewhere")
        .json(&json!({"query": CREATE_TASK, "variables": {"p": project, "t": "stray"}}));
    let other = TestApp::reply_to(other).await;
    assert_eq!(other.code(), "FORBIDDEN", "{}", other.body);
    assert_eq!(app.count("task").await, 1);

    // The child alone is reverted; the tree revert then names it.
    app.gql(
        "mutation { revertAssignation(id: \"h-child\") { id } }",
        json!({}),
    )
    .await
    .data();
    let partly = app
        .gql(
            "mutation { revertAssignation(id: \"h-root\", includeDescendants: true) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(partly.code(), "ALREADY_REVERTED");
    let parts = &partly.body["errors"][0]["extensions"]["reverted"];
    assert_eq!(parts[0]["assignationId"], "h-child", "{}", partly.body);
    assert!(
        partly.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("h-child")
    );
    // The root alone still reverts.
    app.gql(
        "mutation { revertAssignation(id: \"h-root\") { id } }",
        json!({}),
    )
    .await
    .data();
    assert_eq!(app.count("project").await, 0);
    assert_history_consistent(&app).await;
}
