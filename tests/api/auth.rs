//! Identity: header mode's bind guard, jwt mode's token checks (HS256, RS256, EdDSA; exp, nbf, iss,
//! aud; `alg: none` and algorithm confusion), anonymous reads, and who may revert what.

use std::path::PathBuf;

use chronicle::config::{AuthMode, Settings};
use chronicle::startup::{Application, StartupError};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::helpers::{As, Backend, Reply, TestApp, fresh_settings, spawn_app_with};

crate::on_every_database!(
    settings = hs256;
    only_the_assignations_user_or_a_revert_any_holder_may_revert_it,
    a_token_holder_may_not_join_another_users_assignation,
);

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";
const CREATE: &str = "mutation($n: String!) { createProject(input: {name: $n}) { id } }";
const PROJECTS: &str = "{ projects { totalCount } }";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn hs256(settings: &mut Settings) {
    settings.auth.mode = AuthMode::Jwt;
    settings.auth.jwt_secret = Some(SECRET.into());
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims for `sub` valid for an hour, with `extra` merged in.
fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({"sub": sub, "exp": now() + 3600, "iat": now()});
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            claims.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn hs_token(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token")
}

fn pem_token(algorithm: Algorithm, private_key: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(private_key)).expect("key");
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no fixture for {other:?}"),
    }
    .expect("private key");
    encode(&Header::new(algorithm), claims, &key).expect("token")
}

/// A token with `alg: none` and no signature, as an attacker would forge it.
fn unsigned_token(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64.encode(claims.to_string())
    )
}

async fn jwt_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.auth.mode = AuthMode::Jwt;
        configure(s);
    })
    .await
}

fn assert_unauthenticated(reply: &Reply, token: Option<&str>) {
    assert_eq!(reply.code(), "UNAUTHENTICATED", "{}", reply.body);
    if let Some(token) = token {
        assert!(
            !reply.body.to_string().contains(token),
            "the answer echoes the token"
        );
    }
}

#[tokio::test]
async fn header_mode_refuses_a_public_address_unless_insecure_bind_is_given() {
    let (mut settings, _database) = fresh_settings(Backend::Sqlite).await;
    settings.bind = "0.0.0.0:0".into();
    let refused = Application::build(settings.clone()).await;
    assert!(
        matches!(refused, Err(StartupError::InsecureBind(_))),
        "header auth on 0.0.0.0 must be refused"
    );

    settings.insecure_bind = true;
    assert!(Application::build(settings.clone()).await.is_ok());

    settings.insecure_bind = false;
    hs256(&mut settings);
    assert!(
        Application::build(settings).await.is_ok(),
        "jwt mode may bind anywhere"
    );
}

#[tokio::test]
async fn jwt_mode_refuses_to_start_without_exactly_one_usable_key() {
    let (base, _database) = fresh_settings(Backend::Sqlite).await;
    let mut none = base.clone();
    none.auth.mode = AuthMode::Jwt;
    assert!(matches!(
        Application::build(none.clone()).await,
        Err(StartupError::Auth(_))
    ));
    let mut both = none.clone();
    both.auth.jwt_secret = Some(SECRET.into());
    both.auth.jwt_public_key = Some(fixture("rsa-public.pem"));
    assert!(matches!(
        Application::build(both).await,
        Err(StartupError::Auth(_))
    ));
    let mut not_a_key = none;
    not_a_key.auth.jwt_public_key = Some(fixture("README.md"));
    assert!(matches!(
        Application::build(not_a_key).await,
        Err(StartupError::Auth(_))
    ));
}

#[tokio::test]
async fn a_valid_token_names_the_user_and_app_and_identity_headers_are_ignored() {
    let app = jwt_app(hs256).await;
    let token = hs_token(&claims("alice", json!({"azp": "web"})));
    let mut who = As::token(&token);
    who.user = Some("mallory");
    who.app = Some("forged");

    let created = app.send(&who, CREATE, json!({"n": "Apollo"})).await;
    let id = created.data()["createProject"]["id"].as_str().expect("id");

    let history = app
        .send(
            &who,
            "query($id: ID!) { history(entity: PROJECT, id: $id) { edges { node { user app } } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        history.data()["history"]["edges"][0]["node"],
        json!({"user": "alice", "app": "web"})
    );

    // Without azp, the app is client_id.
    let token = hs_token(&claims("bob", json!({"client_id": "cli"})));
    app.send(&As::token(&token), CREATE, json!({"n": "Gemini"}))
        .await
        .data();
    let rows = app.history_rows(entity::HistoryEntity::Project).await;
    let bob = rows
        .iter()
        .find(|r| r.actor.as_deref() == Some("bob"))
        .expect("bob's record");
    assert_eq!(bob.app.as_deref(), Some("cli"));
}

#[tokio::test]
async fn without_a_token_nothing_is_served_and_nothing_is_written() {
    let app = jwt_app(hs256).await;

    let read = app.send(&As::anonymous(), PROJECTS, json!({})).await;
    assert_unauthenticated(&read, None);
    let write = app
        .send(&As::user("mallory"), CREATE, json!({"n": "Forged"}))
        .await;
    assert_unauthenticated(&write, None);

    assert_eq!(app.count("project").await, 0);
    assert_eq!(app.count("project_history").await, 0);
    assert_eq!(app.count("assignation").await, 0);
}

#[tokio::test]
async fn anonymous_reads_are_served_only_when_allowed_and_anonymous_writes_never() {
    let app = jwt_app(|s| {
        hs256(s);
        s.auth.allow_anonymous_read = true;
    })
    .await;
    let token = hs_token(&claims("alice", json!({})));
    app.send(&As::token(&token), CREATE, json!({"n": "Apollo"}))
        .await
        .data();

    let read = app.send(&As::anonymous(), PROJECTS, json!({})).await;
    assert_eq!(read.data()["projects"]["totalCount"], 1);

    let write = app
        .send(&As::anonymous(), CREATE, json!({"n": "Forged"}))
        .await;
    assert_unauthenticated(&write, None);
    // A document that also holds a query still may not run its mutation anonymously.
    let named = app
        .send_raw(
            &[],
            json!({
                "query": format!("query Q {PROJECTS} mutation M {{ createProject(input: {{name: \"F\"}}) {{ id }} }}"),
                "operationName": "M",
            })
            .to_string(),
        )
        .await;
    assert_unauthenticated(&named, None);
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("project_history").await, 1);
    // The audit trail, timelines included, is not for anonymous readers.
    let listed = app
        .send(
            &As::token(&token),
            "{ projects { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let id = listed.data()["projects"]["edges"][0]["node"]["id"].clone();
    let timeline = app
        .send(
            &As::anonymous(),
            "query($p: ID!) { project(id: $p) { timeline { edges { node { __typename } } } } }",
            json!({"p": id}),
        )
        .await;
    assert_unauthenticated(&timeline, None);
    let events = app
        .send(
            &As::anonymous(),
            "{ auditEvents { totalCount } }",
            json!({}),
        )
        .await;
    assert_unauthenticated(&events, None);
    // The same goes for downloads: history yes, the audit trail no.
    let history = app
        .request(reqwest::Method::GET, "/export/history")
        .send()
        .await
        .expect("download");
    assert_eq!(history.status(), 200);
    assert_eq!(history.text().await.expect("body").lines().count(), 1);
    let events = TestApp::reply_to(app.request(reqwest::Method::GET, "/export/events")).await;
    assert_eq!(events.status, 401);
    assert_eq!(events.code(), "UNAUTHENTICATED");
    let without_token = TestApp::reply_to(
        app.request(reqwest::Method::GET, "/export/events")
            .bearer_auth("not-a-token"),
    )
    .await;
    assert_eq!(without_token.status, 401);
}

#[tokio::test]
async fn expired_unsigned_forged_and_malformed_tokens_are_unauthenticated() {
    let app = jwt_app(hs256).await;
    let expired = hs_token(&json!({"sub": "alice", "exp": now() - 3600}));
    let no_exp = hs_token(&json!({"sub": "alice"}));
    let no_sub = hs_token(&json!({"exp": now() + 3600}));
    let not_yet = hs_token(&claims("alice", json!({"nbf": now() + 3600})));
    let unsigned = unsigned_token(&claims("alice", json!({})));
    let other_secret = encode(
        &Header::new(Algorithm::HS256),
        &claims("alice", json!({})),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes"),
    )
    .expect("token");
    let wrong_algorithm = pem_token(
        Algorithm::RS256,
        "rsa-private.pem",
        &claims("alice", json!({})),
    );
    let mut tampered = hs_token(&claims("alice", json!({})));
    tampered.insert(tampered.len() - 2, 'A');

    for (case, token) in [
        ("expired", expired),
        ("without exp", no_exp),
        ("without sub", no_sub),
        ("not valid yet", not_yet),
        ("alg none", unsigned),
        ("signed with another secret", other_secret),
        ("RS256 on an HS256 server", wrong_algorithm),
        ("tampered signature", tampered),
        ("not a JWT", "not.a.jwt".into()),
    ] {
        let reply = app
            .send(&As::token(&token), CREATE, json!({"n": case}))
            .await;
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{case}: {}", reply.body);
        assert!(
            !reply.body.to_string().contains(&token),
            "{case}: token echoed"
        );
    }
    let basic = app
        .send_raw(
            &[("authorization", b"Basic YWxpY2U6c2VjcmV0")],
            json!({"query": PROJECTS}).to_string(),
        )
        .await;
    assert_unauthenticated(&basic, Some("YWxpY2U6c2VjcmV0"));
    assert_eq!(app.count("project").await, 0);
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let app = jwt_app(|s| {
        hs256(s);
        s.auth.jwt_issuer = Some("https://id.example".into());
        s.auth.jwt_audience = Some("chronicle".into());
    })
    .await;
    let good = hs_token(&claims(
        "alice",
        json!({"iss": "https://id.example", "aud": ["other", "chronicle"]}),
    ));
    app.send(&As::token(&good), PROJECTS, json!({}))
        .await
        .data();

    for (case, extra) in [
        (
            "wrong issuer",
            json!({"iss": "https://evil.example", "aud": "chronicle"}),
        ),
        (
            "wrong audience",
            json!({"iss": "https://id.example", "aud": "other"}),
        ),
        ("no issuer", json!({"aud": "chronicle"})),
        ("no audience", json!({"iss": "https://id.example"})),
    ] {
        let token = hs_token(&claims("alice", extra));
        let reply = app.send(&As::token(&token), PROJECTS, json!({})).await;
        assert_eq!(reply.code(), "UNAUTHENTICATED", "{case}");
    }
}

#[tokio::test]
async fn rs256_and_eddsa_tokens_verify_against_their_public_key_and_nothing_else_does() {
    let rsa = jwt_app(|s| s.auth.jwt_public_key = Some(fixture("rsa-public.pem"))).await;
    let rs_token = pem_token(
        Algorithm::RS256,
        "rsa-private.pem",
        &claims("alice", json!({})),
    );
    rsa.send(&As::token(&rs_token), PROJECTS, json!({}))
        .await
        .data();

    // Algorithm confusion: an HS256 token whose "secret" is the server's public key.
    let public_pem = std::fs::read(fixture("rsa-public.pem")).expect("key");
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("alice", json!({})),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("token");
    let reply = rsa.send(&As::token(&confused), PROJECTS, json!({})).await;
    assert_eq!(reply.code(), "UNAUTHENTICATED");
    let ed_token = pem_token(
        Algorithm::EdDSA,
        "ed25519-private.pem",
        &claims("alice", json!({})),
    );
    let reply = rsa.send(&As::token(&ed_token), PROJECTS, json!({})).await;
    assert_eq!(reply.code(), "UNAUTHENTICATED");

    let ed = jwt_app(|s| s.auth.jwt_public_key = Some(fixture("ed25519-public.pem"))).await;
    ed.send(&As::token(&ed_token), PROJECTS, json!({}))
        .await
        .data();
    let reply = ed.send(&As::token(&rs_token), PROJECTS, json!({})).await;
    assert_eq!(reply.code(), "UNAUTHENTICATED");
}

async fn only_the_assignations_user_or_a_revert_any_holder_may_revert_it(app: TestApp) {
    let alice = hs_token(&claims("alice", json!({})));
    let bob = hs_token(&claims("bob", json!({"scope": "history:read"})));
    let admin = hs_token(&claims(
        "carol",
        json!({"scope": "history:read history:revert-any"}),
    ));
    let work = As::token(&alice).in_assignation("alice-work");
    app.send(&work, CREATE, json!({"n": "Apollo"})).await.data();

    let preview = "query { previewRevert(id: \"alice-work\") { changes { kind } } }";
    let revert = "mutation { revertAssignation(id: \"alice-work\") { id reverts { id } } }";
    let reply = app.send(&As::token(&bob), preview, json!({})).await;
    assert_eq!(reply.code(), "FORBIDDEN");
    let reply = app.send(&As::token(&bob), revert, json!({})).await;
    assert_eq!(reply.code(), "FORBIDDEN");
    assert_eq!(
        app.count("project").await,
        1,
        "a refused revert writes nothing"
    );
    assert_eq!(app.count("project_history").await, 1);

    let reply = app.send(&As::token(&admin), preview, json!({})).await;
    assert_eq!(
        reply.data()["previewRevert"]["changes"],
        json!([{"kind": "DELETE"}])
    );
    let reply = app.send(&As::token(&alice), revert, json!({})).await;
    assert_eq!(
        reply.data()["revertAssignation"]["reverts"]["id"],
        "alice-work"
    );
    assert_eq!(app.count("project").await, 0);

    // The revert is alice's: bob may not redo it, carol (revert-any) may.
    let redo = reply.data()["revertAssignation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mutation = format!("mutation {{ revertAssignation(id: \"{redo}\") {{ id }} }}");
    assert_eq!(
        app.send(&As::token(&bob), &mutation, json!({}))
            .await
            .code(),
        "FORBIDDEN"
    );
    app.send(&As::token(&admin), &mutation, json!({}))
        .await
        .data();
    assert_eq!(app.count("project").await, 1);
}

async fn a_token_holder_may_not_join_another_users_assignation(app: TestApp) {
    let alice = hs_token(&claims("alice", json!({})));
    let bob = hs_token(&claims("bob", json!({})));
    app.send(
        &As::token(&alice).in_assignation("shared"),
        CREATE,
        json!({"n": "A"}),
    )
    .await
    .data();
    let reply = app
        .send(
            &As::token(&bob).in_assignation("shared"),
            CREATE,
            json!({"n": "B"}),
        )
        .await;
    assert_eq!(reply.code(), "FORBIDDEN");
    assert_eq!(app.count("project").await, 1);
    assert_eq!(app.count("project_history").await, 1);
}
