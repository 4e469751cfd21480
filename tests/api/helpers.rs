//! `spawn_app` and friends: a fresh database per test (a temporary SQLite file, or a new database on the
//! PostgreSQL / MariaDB server named by the environment), dropped when the test ends, the server on
//! port 0, a GraphQL client, and [`assert_history_consistent`], the invariant every test ends with.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use chronicle::config::Settings;
use chronicle::startup::Application;
use entity::HistoryEntity;
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use sea_orm_history::record::HISTORY_COLUMNS;
use sea_orm_history::{EntitySet, HistoryKind, HistoryRow};
use serde_json::{Value, json};

pub use chronicle_test_support::{Backend, ScratchDatabase};

/// A running server and a connection to its database.
pub struct TestApp {
    pub address: String,
    /// The database URL the server uses.
    pub url: String,
    pub db: DatabaseConnection,
    pub backend: Backend,
    client: reqwest::Client,
    /// The test's database, dropped after the connection above.
    scratch: Option<ScratchDatabase>,
}

/// Spawns the server on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A fresh database of `backend` with the settings a server for it would use; the database lives as
/// long as the returned guard.
pub async fn fresh_settings(backend: Backend) -> (Settings, ScratchDatabase) {
    let scratch = ScratchDatabase::create(backend).await;
    let mut settings = Settings::for_database(&scratch.url);
    settings.database.max_connections = 5;
    (settings, scratch)
}

/// [`spawn_app`] with settings changed by `configure` first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    chronicle::telemetry::init_for_tests();
    let (mut settings, scratch) = fresh_settings(backend).await;
    configure(&mut settings);
    let url = settings.database.url.clone();
    let app = Application::build(settings).await.expect("server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut app = TestApp::attach(address, url, backend).await;
    app.scratch = Some(scratch);
    app
}

/// Who sends a request.
#[derive(Clone, Debug, Default)]
pub struct As<'a> {
    pub user: Option<&'a str>,
    pub app: Option<&'a str>,
    pub assignation: Option<&'a str>,
    /// A bearer token (jwt mode).
    pub token: Option<&'a str>,
}

impl<'a> As<'a> {
    pub fn token(token: &'a str) -> Self {
        Self {
            token: Some(token),
            ..Self::default()
        }
    }
    pub fn anonymous() -> Self {
        Self::default()
    }
    pub fn user(user: &'a str) -> Self {
        Self {
            user: Some(user),
            app: Some("tests"),
            assignation: None,
            token: None,
        }
    }
    pub fn in_assignation(mut self, id: &'a str) -> Self {
        self.assignation = Some(id);
        self
    }
}

/// A response: its status, its `X-Assignation-Id`, and its JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub assignation: Option<String>,
    pub body: Value,
}

impl Reply {
    /// `data`, asserting there is no error.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }
    /// The first error's `extensions.code`.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.body))
    }
}

impl TestApp {
    /// A client of a server already running at `address` on the database at `url`.
    pub async fn attach(address: String, url: String, backend: Backend) -> Self {
        let db = chronicle::database::connect(&chronicle::config::DatabaseSettings {
            max_connections: 2,
            ..chronicle::config::DatabaseSettings::for_url(&url)
        })
        .await
        .expect("test connection");
        Self {
            address,
            url,
            db,
            backend,
            client: reqwest::Client::new(),
            scratch: None,
        }
    }

    /// Sends a GraphQL request as `who`.
    pub async fn send(&self, who: &As<'_>, query: &str, variables: Value) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(user) = who.user {
            request = request.header("X-User", user);
        }
        if let Some(app) = who.app {
            request = request.header("X-App", app);
        }
        if let Some(id) = who.assignation {
            request = request.header("X-Assignation-Id", id);
        }
        if let Some(token) = who.token {
            request = request.bearer_auth(token);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    /// Sends `body` as it is, with `headers`; the reply's body is JSON or the test fails.
    pub async fn send_raw(
        &self,
        headers: &[(&str, &[u8])],
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    /// A request to `path` with nothing set (no content type, no identity), from a client that does
    /// not follow redirects.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .request(method, format!("{}{path}", self.address))
    }

    /// Sends `request`; the reply's body is JSON or the test fails.
    pub async fn reply_to(request: reqwest::RequestBuilder) -> Reply {
        Self::reply(request.send().await.expect("request sent")).await
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let assignation = response
            .headers()
            .get("x-assignation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.expect("JSON body");
        Reply {
            status,
            assignation,
            body,
        }
    }

    /// Sends a GraphQL request as user `alice`.
    pub async fn gql(&self, query: &str, variables: Value) -> Reply {
        self.send(&As::user("alice"), query, variables).await
    }

    /// Creates a project and returns its id.
    pub async fn project(&self, name: &str) -> String {
        let reply = self
            .gql(
                "mutation($n: String!) { createProject(input: {name: $n}) { id } }",
                json!({"n": name}),
            )
            .await;
        reply.data()["createProject"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Creates a task in `project` and returns its id.
    pub async fn task(&self, project: &str, title: &str) -> String {
        let reply = self
            .gql(
                "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { id } }",
                json!({"p": project, "t": title}),
            )
            .await;
        reply.data()["createTask"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Creates a label and returns its id.
    pub async fn label(&self, name: &str) -> String {
        let reply = self
            .gql(
                "mutation($n: String!) { createLabel(input: {name: $n, color: \"#aabbcc\"}) { id } }",
                json!({"n": name}),
            )
            .await;
        reply.data()["createLabel"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Every history row of `entity`, read straight from its history table.
    pub async fn history_rows(&self, entity: HistoryEntity) -> Vec<HistoryRow> {
        let select = Query::select()
            .columns(HISTORY_COLUMNS.map(Alias::new))
            .from(Alias::new(format!(
                "{}_history",
                entity.name().to_lowercase()
            )))
            .to_owned();
        let stmt = self.db.get_database_backend().build(&select);
        HistoryRow::find_by_statement(stmt)
            .all(&self.db)
            .await
            .expect("history rows")
    }

    /// How many rows `table` holds.
    pub async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get("", "n").expect("n")
    }
}

/// Every live row of `E` as its snapshot (as history records hold it), by object id.
pub async fn live_snapshots<E: sea_orm_history::Historized>(
    db: &DatabaseConnection,
) -> BTreeMap<String, Value> {
    let registry = HistoryEntity::registry().expect("the registry");
    let info = registry.of::<E>().expect("a historized entity");
    E::find()
        .all(db)
        .await
        .expect("live rows")
        .iter()
        .map(|m| {
            let snapshot = info.snapshot_of(m).expect("snapshot");
            (info.object_id(&snapshot), snapshot)
        })
        .collect()
}

/// The invariant of capture: every live row equals its latest snapshot, every object whose latest record
/// is a DELETE is gone, versions run 1..n without gaps, and no two records share an assignation step.
pub async fn assert_history_consistent(app: &TestApp) {
    let mut steps: HashMap<(String, i32), String> = HashMap::new();
    for &entity in HistoryEntity::ALL {
        let live = match entity {
            HistoryEntity::Project => live_snapshots::<entity::project::Entity>(&app.db).await,
            HistoryEntity::Task => live_snapshots::<entity::task::Entity>(&app.db).await,
            HistoryEntity::Label => live_snapshots::<entity::label::Entity>(&app.db).await,
            HistoryEntity::TaskLabel => live_snapshots::<entity::task_label::Entity>(&app.db).await,
            HistoryEntity::Comment => live_snapshots::<entity::comment::Entity>(&app.db).await,
        };
        let mut by_object: BTreeMap<String, Vec<HistoryRow>> = BTreeMap::new();
        for row in app.history_rows(entity).await {
            let key = (row.assignation_id.clone(), row.step);
            if let Some(other) = steps.insert(key.clone(), row.object_id.clone()) {
                panic!("step {key:?} used twice ({other} and {})", row.object_id);
            }
            by_object
                .entry(row.object_id.clone())
                .or_default()
                .push(row);
        }
        for (object, mut rows) in by_object.clone() {
            rows.sort_by_key(|r| r.version);
            let versions: Vec<i32> = rows.iter().map(|r| r.version).collect();
            let expected: Vec<i32> = (1..=i32::try_from(rows.len()).expect("len")).collect();
            assert_eq!(
                versions, expected,
                "{entity:?} {object}: versions have gaps"
            );
            let latest = rows.last().expect("a record");
            match live.get(&object) {
                Some(snapshot) => {
                    assert_ne!(
                        latest.kind,
                        HistoryKind::Delete,
                        "{entity:?} {object} is live after DELETE"
                    );
                    assert_eq!(
                        &latest.snapshot, snapshot,
                        "{entity:?} {object}: live row differs from its latest snapshot"
                    );
                }
                None => assert_eq!(
                    latest.kind,
                    HistoryKind::Delete,
                    "{entity:?} {object} is gone without a DELETE record"
                ),
            }
        }
        for object in live.keys() {
            assert!(
                by_object.contains_key(object),
                "{entity:?} {object} has no history"
            );
        }
    }
}

/// Declares a test body `async fn name(app: TestApp)` and runs it as `name::sqlite`, `name::postgres`
/// and `name::mysql`. With `settings = f;` first, each server's settings pass through
/// `f(&mut Settings)` (a function of the test file) before it starts. With `backend;` first, the body
/// is `async fn name(backend: Backend)` and starts what it needs itself (processes, several servers).
#[macro_export]
macro_rules! on_every_database {
    (@run $configure:expr; $($name:ident),*) => {
        $(
            mod $name {
                use $crate::helpers::{Backend, spawn_app_with};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(spawn_app_with(Backend::Sqlite, $configure).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(chronicle_test_postgres),
                    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
                )]
                async fn postgres() {
                    super::$name(spawn_app_with(Backend::Postgres, $configure).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(chronicle_test_mysql), ignore = "CHRONICLE_TEST_MYSQL_URL is not set")]
                async fn mysql() {
                    super::$name(spawn_app_with(Backend::MySql, $configure).await).await;
                }
            }
        )*
    };
    (backend; $($name:ident),* $(,)?) => {
        chronicle_test_support::on_every_backend!($($name),*);
    };
    (servers; $($name:ident),* $(,)?) => {
        chronicle_test_support::on_every_backend!(servers; $($name),*);
    };
    (settings = $configure:ident; $($name:ident),* $(,)?) => {
        $crate::on_every_database!(@run super::$configure; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_every_database!(@run |_| {}; $($name),*);
    };
}

/// Reads every row of an entity (tests only).
pub trait FindAll: sea_orm::EntityTrait {
    /// Every row, in the order the database returns them.
    fn find_all(
        db: &DatabaseConnection,
    ) -> impl std::future::Future<Output = Vec<Self::Model>> + Send
    where
        Self: Sized,
    {
        async move { Self::find().all(db).await.expect("rows") }
    }
}

impl<E: sea_orm::EntityTrait> FindAll for E {}

/// The `chronicle` binary serving a fresh database in a child process, for what only the process
/// shows: its log lines on stdout. Killed when dropped.
pub struct ServerProcess {
    pub address: String,
    pub url: String,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The database it serves, when it made its own.
    scratch: Option<ScratchDatabase>,
}

impl ServerProcess {
    /// Starts `chronicle serve` on port 0 of a fresh database of `backend` with `args` added, and waits
    /// for its "listening" line.
    pub async fn start(backend: Backend, args: &[&str]) -> Self {
        let (settings, scratch) = fresh_settings(backend).await;
        let mut server = Self::start_on(settings.database.url, args);
        server.scratch = Some(scratch);
        server
    }

    /// Starts `chronicle serve` on port 0 of the database at `url` (another server may use it too).
    pub fn start_on(url: String, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
            .args(args)
            .env("RUST_LOG", "info,sqlx=warn,sea_orm=warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("chronicle serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            address: String::new(),
            url,
            child,
            lines,
            scratch: None,
        };
        let listening = server.wait_for_line(|l| l.contains("chronicle listening"));
        let port: String = listening
            .split("127.0.0.1:")
            .nth(1)
            .expect("the listening line names the address")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        server.address = format!("http://127.0.0.1:{port}");
        server
    }

    /// Kills the process at once (SIGKILL: no shutdown, no flush) and waits for it to end.
    pub fn kill(&mut self) {
        self.child.kill().expect("the server is killed");
        self.child.wait().expect("the server ends");
    }

    /// The next stdout line matching `wanted` (earlier lines are dropped); fails after 30 seconds.
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no matching line from the server: {e}"),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The database goes once the server is gone.
        self.scratch.take();
    }
}

/// Runs `chronicle verify --quiet` as `auditor` against the database at `url`: its exit code, and its
/// stdout then stderr.
pub fn chronicle_verify(url: &str) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .args([
            "verify",
            "--quiet",
            "--actor",
            "auditor",
            "--database-url",
            url,
        ])
        .output()
        .expect("chronicle verify runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The metrics as `name{labels}` → value.
pub async fn metrics(app: &TestApp) -> BTreeMap<String, f64> {
    let response = reqwest::get(format!("{}/metrics", app.address))
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4"))
    );
    response
        .text()
        .await
        .expect("text")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// `name{labels}`'s value in `metrics` (0 when absent).
pub fn value(metrics: &BTreeMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}
