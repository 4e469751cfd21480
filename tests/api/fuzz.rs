//! Property test of the whole HTTP surface: thousands of random, malformed and hostile requests
//! (garbage bodies, token soup, deep nesting, mutations with random argument values and types, odd
//! headers). Every answer must be well-formed JSON with known error codes and no internal detail, the
//! server must stay up, and a request that changed nothing visible (no mutation field returned data)
//! must leave the data and history exactly as they were. Seeded (`CHRONICLE_FUZZ_SEED`); the count is
//! `CHRONICLE_FUZZ_REQUESTS` (default 3,000 on SQLite, 600 on the servers).

use entity::HistoryEntity;
use sea_orm_history::EntitySet;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_history_consistent, live_snapshots};

crate::on_every_database!(
    random_and_malformed_requests_get_well_formed_answers_and_refusals_write_nothing
);

const CODES: [&str; 9] = [
    "BAD_INPUT",
    "NOT_FOUND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_ASSIGNATION_ID",
    "REVERT_CONFLICT",
    "ALREADY_REVERTED",
    "LIMIT_EXCEEDED",
    "INTERNAL",
];

/// Words that must never reach a client: they would mean a database or internal message leaked.
const LEAKS: [&str; 9] = [
    "sqlx",
    "SQLSTATE",
    "error returned from database",
    "panicked",
    "DbErr",
    "RecordNotFound",
    "constraint",
    "syntax error at or near",
    "stack backtrace",
];

/// SplitMix64: small, seedable, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What one random request is made of.
struct Case {
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// A query operation: it may never change anything, whatever it answers.
    read_only: bool,
}

fn random_string(rng: &mut Rng) -> String {
    let len = *rng.pick(&[
        0, 1, 2, 5, 49, 50, 51, 199, 200, 201, 500, 501, 1001, 10_001,
    ]);
    let alphabets: [&[char]; 5] = [
        &['a', 'b', 'Z', '0', ' '],
        &['\u{0}', '\u{1b}', '\n', '\t', '"', '\\', '\u{7f}'],
        &['é', 'ß', '漢', '🦀', '\u{202e}', '\u{feff}'],
        &['#', 'f', '0', 'a', 'F'],
        &['\'', ';', '-', '%', '_', '*', '(', ')'],
    ];
    let alphabet = *rng.pick(&alphabets);
    (0..len).map(|_| *rng.pick(alphabet)).collect()
}

fn random_value(rng: &mut Rng, ids: &[String]) -> Value {
    match rng.below(15) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(*rng.pick(&[-1i64, 0, 3, 5, 6, 2_147_483_648, i64::MIN, i64::MAX])),
        3 => json!(*rng.pick(&[0.5f64, -0.0, 1e308])),
        4 => json!([random_string(rng)]),
        5 => json!({"nested": random_string(rng)}),
        6 | 7 => json!(rng.pick(ids)),
        8 => json!(*rng.pick(&[
            "#aabbcc",
            "#AABBCC",
            "#abc",
            "red",
            "2026-02-30",
            "2026-11-23",
            "TODO",
            "DONE",
            "nope"
        ])),
        9 => json!(uuid::Uuid::now_v7().to_string()),
        10..=12 => json!(format!("v{}", rng.below(1000))),
        _ => json!(random_string(rng)),
    }
}

/// A mutation with variables of random value and type.
fn random_mutation(rng: &mut Rng, ids: &[String]) -> (String, Value) {
    let (query, names): (&str, &[&str]) = *rng.pick(&[
        ("mutation($a: String!, $b: String) { createProject(input: {name: $a, description: $b}) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: String, $c: Boolean) { updateProject(id: $a, input: {name: $b, archived: $c}) { id } }", &["a", "b", "c"][..]),
        ("mutation($a: ID!) { deleteProject(id: $a) }", &["a"][..]),
        ("mutation($a: ID!, $b: String!, $c: Int, $d: Date, $e: TaskStatus) { createTask(input: {projectId: $a, title: $b, priority: $c, dueDate: $d, status: $e}) { id } }", &["a", "b", "c", "d", "e"][..]),
        ("mutation($a: ID!, $b: String, $c: Int, $d: Date) { updateTask(id: $a, input: {title: $b, priority: $c, dueDate: $d}) { id } }", &["a", "b", "c", "d"][..]),
        ("mutation($a: ID!) { deleteTask(id: $a) }", &["a"][..]),
        ("mutation($a: ID!, $b: ID!) { addLabel(taskId: $a, labelId: $b) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: ID!) { removeLabel(taskId: $a, labelId: $b) { id } }", &["a", "b"][..]),
        ("mutation($a: String!, $b: String!) { createLabel(input: {name: $a, color: $b}) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: String) { updateLabel(id: $a, input: {name: $b}) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: String!) { createComment(input: {taskId: $a, body: $b}) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: String) { updateComment(id: $a, input: {body: $b}) { id } }", &["a", "b"][..]),
        ("mutation($a: String!, $b: Boolean!) { revertAssignation(id: $a, force: $b) { id } }", &["a", "b"][..]),
        ("mutation($a: ID!, $b: Int!) { revertObject(entity: TASK, id: $a, toVersion: $b) { version } }", &["a", "b"][..]),
        ("mutation($a: String!, $r: String) { createProject(input: {name: $a}, reason: $r) { id } }", &["a", "r"][..]),
    ]);
    let mut variables = serde_json::Map::new();
    for name in names {
        if rng.chance(90) {
            variables.insert((*name).to_owned(), random_value(rng, ids));
        }
    }
    (query.to_owned(), Value::Object(variables))
}

fn random_read(rng: &mut Rng, ids: &[String]) -> (String, Value) {
    let query = *rng.pick(&[
        "query($a: Int, $b: String) { projects(first: $a, after: $b) { totalCount edges { node { id tasks { totalCount } } } } }",
        "query($a: ID!) { project(id: $a) { id name } }",
        "query($a: ID!, $b: DateTime) { task(id: $a, asOf: $b) { id title } }",
        "query($a: ID!, $b: Int) { history(entity: TASK, id: $a, first: $b) { edges { node { version hash } } } }",
        "query($a: String!) { assignation(id: $a) { id changeCount } }",
        "query($a: String!) { previewRevert(id: $a) { changes { kind } conflicts { objectId } } }",
        "query($a: String, $b: DateTime, $c: Boolean) { assignations(user: $a, since: $b, reverted: $c) { totalCount } }",
        "query($a: ID!) { verifyHistory(entity: PROJECT, id: $a) { ok checked } }",
    ]);
    let mut variables = serde_json::Map::new();
    for name in ["a", "b", "c"] {
        if rng.chance(70) {
            variables.insert(name.into(), random_value(rng, ids));
        }
    }
    (query.to_owned(), Value::Object(variables))
}

fn token_soup(rng: &mut Rng) -> String {
    const TOKENS: [&str; 34] = [
        "{",
        "}",
        "(",
        ")",
        ":",
        "$a",
        "!",
        "[",
        "]",
        "...",
        "@skip(if: true)",
        "mutation",
        "query",
        "fragment F on Task",
        "...F",
        "createProject",
        "input",
        "name",
        "\"x\"",
        "\"\\u0000\"",
        "123",
        "-1e999",
        "null",
        "true",
        "projects",
        "edges",
        "node",
        "id",
        "__typename",
        "__schema",
        "subscription",
        "deleteProject(id: \"x\")",
        "#",
        "\"\"\"",
    ];
    let n = rng.below(40);
    (0..n)
        .map(|_| *rng.pick(&TOKENS))
        .collect::<Vec<_>>()
        .join(" ")
}

fn random_headers(rng: &mut Rng, ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("x-user".to_owned(), b"fuzzer".to_vec())];
    for _ in 0..rng.below(4) {
        let name = rng
            .pick(&[
                "x-user",
                "x-app",
                "x-assignation-id",
                "authorization",
                "content-type",
                "x-forwarded-for",
                "rekuest-task",
                "x-rekuest-task",
                "x-parent-assignation-id",
            ])
            .to_string();
        let value: Vec<u8> = match rng.below(7) {
            0 => Vec::new(),
            1 => "a"
                .repeat(*rng.pick(&[128, 129, 200, 201, 5000]))
                .into_bytes(),
            2 => (0..rng.below(40))
                .map(|_| u8::try_from(0x20 + rng.below(0xdf)).unwrap_or(b'x'))
                .collect(),
            3 => b"bad id!".to_vec(),
            4 => format!("Bearer {}", rng.pick(ids)).into_bytes(),
            // Something shaped like a signed token: three base64url parts, the middle one JSON.
            5 => {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let claims = json!({"tsk": rng.pick(ids), "jti": rng.next(), "exp": 4_000_000_000_u64,
                    "act": {"sub": "fuzzer"}, "sub": "fuzzer", "aud": ["chronicle"]});
                format!(
                    "{}.{}.{}",
                    b64.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#),
                    b64.encode(claims.to_string()),
                    b64.encode(rng.next().to_be_bytes())
                )
                .into_bytes()
            }
            _ => rng.pick(ids).clone().into_bytes(),
        };
        headers.push((name, value));
    }
    headers
}

fn random_case(rng: &mut Rng, ids: &[String]) -> Case {
    let headers = if rng.chance(25) {
        random_headers(rng, ids)
    } else {
        vec![("x-user".to_owned(), b"fuzzer".to_vec())]
    };
    let request = |query: String, variables: Value| {
        json!({"query": query, "variables": variables})
            .to_string()
            .into_bytes()
    };
    let (body, read_only) = match rng.below(20) {
        0..=7 => {
            let (q, v) = random_mutation(rng, ids);
            (request(q, v), false)
        }
        8..=10 => {
            let (q, v) = random_read(rng, ids);
            (request(q, v), true)
        }
        11..=13 => (request(token_soup(rng), json!({})), false),
        14 => {
            // Bytes that are not a GraphQL request at all.
            let n = rng.below(300);
            (
                (0..n)
                    .map(|_| u8::try_from(rng.below(256)).unwrap_or(0))
                    .collect(),
                false,
            )
        }
        15 => {
            let body = *rng.pick(&[
                "",
                "{",
                "[]",
                "null",
                "1",
                "\"q\"",
                "{\"query\": null}",
                "{\"query\": []}",
                "[{\"query\": \"{ projects { totalCount } }\"}]",
                "{\"query\": \"{ projects { totalCount } }\", \"variables\": \"x\"}",
                "{\"query\": \"{ projects { totalCount } }\", \"operationName\": 5}",
            ]);
            (body.as_bytes().to_vec(), false)
        }
        16 => {
            // Deep nesting, in the query and in the variables.
            let depth = *rng.pick(&[50usize, 500, 5000]);
            let query = format!("{{{}}}", "a{".repeat(depth) + &"}".repeat(depth));
            let variables = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let body = format!(
                "{{\"query\": {}, \"variables\": {{\"v\": {variables}}}}}",
                json!(query)
            );
            (body.into_bytes(), false)
        }
        17 => {
            // Many aliases of a write, and of a read.
            let n = *rng.pick(&[26usize, 300]);
            let fields: String = (0..n)
                .map(|i| format!("a{i}: createProject(input: {{name: \"m{i}\"}}) {{ id }} "))
                .collect();
            let reads: String = (0..n)
                .map(|i| {
                    format!("r{i}: projects(first: 100) {{ edges {{ node {{ id name }} }} }} ")
                })
                .collect();
            if rng.chance(50) {
                (
                    request(format!("mutation {{ {fields} }}"), json!({})),
                    false,
                )
            } else {
                (request(format!("{{ {reads} }}"), json!({})), true)
            }
        }
        _ => {
            // A mutation with an operation name that is not in the document, or several operations.
            let (q, v) = random_mutation(rng, ids);
            let op = rng.pick(&["Missing", "", "A"]).to_string();
            (
                json!({"query": q, "variables": v, "operationName": op})
                    .to_string()
                    .into_bytes(),
                false,
            )
        }
    };
    Case {
        headers,
        body,
        read_only,
    }
}

/// Everything a change could touch: every live row, every history record, every assignation.
async fn fingerprint(app: &TestApp) -> String {
    use sea_orm::EntityTrait;
    let mut parts = vec![
        format!(
            "{:?}",
            live_snapshots::<entity::project::Entity>(&app.db).await
        ),
        format!(
            "{:?}",
            live_snapshots::<entity::task::Entity>(&app.db).await
        ),
        format!(
            "{:?}",
            live_snapshots::<entity::label::Entity>(&app.db).await
        ),
        format!(
            "{:?}",
            live_snapshots::<entity::task_label::Entity>(&app.db).await
        ),
        format!(
            "{:?}",
            live_snapshots::<entity::comment::Entity>(&app.db).await
        ),
    ];
    let mut assignations = sea_orm_history::tables::assignation::Entity::find()
        .all(&app.db)
        .await
        .expect("assignations");
    assignations.sort_by(|a, b| a.id.cmp(&b.id));
    parts.push(format!("{assignations:?}"));
    for &entity in HistoryEntity::ALL {
        let mut hashes: Vec<String> = app
            .history_rows(entity)
            .await
            .into_iter()
            .map(|r| r.hash)
            .collect();
        hashes.sort();
        parts.push(hashes.join(","));
    }
    parts.join("\n")
}

fn describe(case: &Case) -> String {
    format!(
        "headers {:?}, body {:?}",
        case.headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&case.body)
            .chars()
            .take(400)
            .collect::<String>()
    )
}

/// Asserts the answer is well-formed; returns whether any top-level field returned data.
fn check_answer(status: u16, text: &str, case: &Case) -> bool {
    let what = describe(case);
    // 401: a provenance token, which this server (without a key) never accepts.
    assert!(
        matches!(status, 200 | 400 | 413) || (status == 401 && text.contains("provenance token")),
        "status {status} for {what}: {text}"
    );
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}) for {what}: {text}"));
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object for {what}: {text}"));
    assert!(
        object.contains_key("data") || object.contains_key("errors"),
        "neither data nor errors for {what}: {text}"
    );
    if let Some(errors) = object.get("errors") {
        let errors = errors
            .as_array()
            .unwrap_or_else(|| panic!("errors not a list: {text}"));
        assert!(!errors.is_empty(), "empty errors for {what}");
        for error in errors {
            let message = error["message"]
                .as_str()
                .unwrap_or_else(|| panic!("no message: {text}"));
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("no code for {what}: {text}"));
            assert!(CODES.contains(&code), "unknown code {code} for {what}");
            // INTERNAL means the server failed on input it should have refused: a bug.
            assert_ne!(code, "INTERNAL", "INTERNAL for {what}: {text}");
            for leak in LEAKS {
                assert!(
                    !message.to_lowercase().contains(&leak.to_lowercase()),
                    "internal detail {leak:?} leaked for {what}: {message}"
                );
            }
        }
    }
    object
        .get("data")
        .and_then(Value::as_object)
        .is_some_and(|data| data.values().any(|v| !v.is_null()))
}

async fn random_and_malformed_requests_get_well_formed_answers_and_refusals_write_nothing(
    app: TestApp,
) {
    let seed: u64 = std::env::var("CHRONICLE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE);
    let requests: usize = std::env::var("CHRONICLE_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if app.backend == Backend::Sqlite {
            3000
        } else {
            600
        });
    let mut rng = Rng(seed);

    // Real objects to aim at, so that some random requests hit something.
    let project = app.project("Seed").await;
    let task = app.task(&project, "Seed task").await;
    let label = app.label("seed").await;
    let assignation = app
        .gql(
            "query { assignations(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await
        .data()["assignations"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("an assignation")
        .to_owned();
    let ids = vec![
        project,
        task,
        label,
        assignation,
        "not-an-id".to_owned(),
        String::new(),
    ];

    let client = reqwest::Client::new();
    let mut before = fingerprint(&app).await;
    let (mut refused, mut accepted) = (0, 0);
    let mut outcomes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for i in 0..requests {
        let case = random_case(&mut rng, &ids);
        let mut request = client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(case.body.clone());
        for (name, value) in &case.headers {
            if let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) {
                request = request.header(name.as_str(), value);
            }
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!(
                "request {i} (seed {seed}) got no answer: {e}; {}",
                describe(&case)
            )
        });
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let wrote = check_answer(status, &text, &case);
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|b| {
                b["errors"][0]["extensions"]["code"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "data".into());
        *outcomes.entry(format!("{status} {code}")).or_default() += 1;
        let after = fingerprint(&app).await;
        if wrote && !case.read_only {
            accepted += 1;
        } else {
            refused += 1;
            assert!(
                before == after,
                "request {i} (seed {seed}) changed data or history without returning any: {}; answer {text}",
                describe(&case)
            );
        }
        before = after;
    }
    eprintln!(
        "fuzz on {:?}, seed {seed}: {accepted} accepted, {refused} refused; {outcomes:?}",
        app.backend
    );
    assert!(
        refused > requests / 2,
        "most random requests should be refused ({refused})"
    );
    assert!(accepted > 0, "some random requests should succeed");

    let health = client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200, "the server must still be up");
    assert_history_consistent(&app).await;
    for info in HistoryEntity::registry().expect("registry").entities() {
        let report = sea_orm_history::verify::verify_table(&app.db, info, |_| {})
            .await
            .expect("verify");
        assert!(
            report.broken.is_empty(),
            "{}: {:?}",
            info.name,
            report.broken
        );
    }
}
