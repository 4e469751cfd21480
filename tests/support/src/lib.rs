//! What the test suites of the workspace share: a fresh database per test — a temporary SQLite file,
//! or a new database on the PostgreSQL / MariaDB server that `CHRONICLE_TEST_POSTGRES_URL` /
//! `CHRONICLE_TEST_MYSQL_URL` name — dropped (or deleted) when the test ends; and
//! [`inclusion_holds`], RFC 9162's inclusion check written out independently of the code under test.
//!
//! A test of a server that is not configured is built `#[ignore]`d with its reason (see the
//! workspace's `build.rs`); run anyway (`--ignored`), it fails here rather than pass.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use sea_orm::{ConnectionTrait, Database};

/// Declares `mod name { sqlite, postgres, mysql }` running `async fn name(backend: Backend)` of the
/// calling test file on each backend (PostgreSQL and MariaDB only when configured; else ignored, with
/// the reason). `on_every_backend!(servers; name)` declares `mod name { postgres, mysql }`, for what
/// only a database server has (replicas, a connection killed from the server's side).
#[macro_export]
macro_rules! on_every_backend {
    (servers; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::on_every_backend!(@servers $name);
            }
        )*
    };
    (@servers $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(chronicle_test_postgres), ignore = "CHRONICLE_TEST_POSTGRES_URL is not set")]
        async fn postgres() {
            super::$name($crate::Backend::Postgres).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(chronicle_test_mysql), ignore = "CHRONICLE_TEST_MYSQL_URL is not set")]
        async fn mysql() {
            super::$name($crate::Backend::MySql).await;
        }
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }

                $crate::on_every_backend!(@servers $name);
            }
        )*
    };
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A database on the PostgreSQL server of `CHRONICLE_TEST_POSTGRES_URL`.
    Postgres,
    /// A database on the MariaDB/MySQL server of `CHRONICLE_TEST_MYSQL_URL`.
    MySql,
}

/// The server URL of `backend` from the environment. A test of a backend that is not configured is
/// built `#[ignore]`d (see `build.rs`); run anyway (`--ignored`), it fails here rather than pass.
fn server_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => "CHRONICLE_TEST_POSTGRES_URL",
        Backend::MySql => "CHRONICLE_TEST_MYSQL_URL",
    };
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!("{var} must name a {backend:?} server for this test"),
    }
}

/// A database made for one test, dropped (or, for SQLite, deleted) when the test ends.
pub struct ScratchDatabase {
    backend: Backend,
    /// The URL of the new database.
    pub url: String,
    /// The server's URL and the database's name (PostgreSQL, MariaDB).
    server: Option<(String, String)>,
    /// The directory holding the SQLite file.
    _dir: Option<tempfile::TempDir>,
}

impl ScratchDatabase {
    /// Creates a fresh database of `backend`.
    pub async fn create(backend: Backend) -> Self {
        let name = format!("chronicle_t_{}", uuid::Uuid::now_v7().simple());
        match server_url(backend) {
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("chronicle-test-")
                    .tempdir()
                    .expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join(format!("{name}.db")).display()
                );
                Self {
                    backend,
                    url,
                    server: None,
                    _dir: Some(dir),
                }
            }
            Some(server) => {
                let admin = Database::connect(&server)
                    .await
                    .unwrap_or_else(|e| panic!("{backend:?} at {server} is unreachable: {e}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = server
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .expect("database URL with a path");
                Self {
                    backend,
                    url: format!("{base}/{name}"),
                    server: Some((server, name)),
                    _dir: None,
                }
            }
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.server.take() else {
            return;
        };
        let drop_sql = match self.backend {
            // Servers of the test may still hold connections to it.
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let admin = Database::connect(&server).await?;
                admin.execute_unprepared(&drop_sql).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {name}: {dropped:?}");
        }
    }
}

/// Whether `path` proves that `leaf` is leaf `index` of the tree of `size` leaves with root `root`:
/// RFC 9162 §2.1.3.2, step by step.
pub fn inclusion_holds(
    path: &[[u8; 32]],
    size: u64,
    root: [u8; 32],
    index: u64,
    leaf: [u8; 32],
) -> bool {
    use sha2::{Digest, Sha256};
    let node = |left: &[u8; 32], right: &[u8; 32]| {
        let mut hasher = Sha256::new();
        hasher.update([1]);
        hasher.update(left);
        hasher.update(right);
        <[u8; 32]>::from(hasher.finalize())
    };
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}
