//! What a transaction costs in round trips to its database. On PostgreSQL, counted on the wire by a
//! proxy between the server's pool and the database: with `pipeline_begin` (the default) a
//! transaction's `BEGIN` travels with its first statement, and the transaction behaves as it does
//! with a `BEGIN` of its own: what it wrote is gone after a rollback, a failed first statement
//! aborts it, and an empty one leaves the connection out of any transaction; a create in its own
//! assignation is one statement without a transaction around it, one round trip. On PostgreSQL and
//! MariaDB, a read of one row leaves its connection in step with its server, so that the pool does
//! not ping it on its way back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, fresh_settings};
use crate::on_every_database;

/// A TCP proxy in front of a PostgreSQL server that counts the `ReadyForQuery` messages the server
/// sends: one for every round trip a client waits for.
struct CountingProxy {
    address: String,
    ready: Arc<AtomicUsize>,
}

impl CountingProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let ready = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ready);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                let counter = Arc::clone(&counter);
                // Every message the server sends is a type byte and a length that counts itself
                // (without TLS: the client is told not to ask for it).
                tokio::spawn(async move {
                    let mut header = [0u8; 5];
                    while from_server.read_exact(&mut header).await.is_ok() {
                        let length =
                            u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                        let mut body = vec![0; (length as usize).saturating_sub(4)];
                        if from_server.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        if header[0] == b'Z' {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        if to_client.write_all(&header).await.is_err()
                            || to_client.write_all(&body).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self { address, ready }
    }

    /// The round trips counted since the last call.
    fn round_trips(&self) -> usize {
        self.ready.swap(0, Ordering::SeqCst)
    }
}

/// A pool of one connection to the database of `url` through a new [`CountingProxy`], with the
/// server's settings but `pipeline_begin` as given, and no ping at checkout or return.
async fn pool_through_proxy(
    url: &str,
    pipeline_begin: bool,
) -> (DatabaseConnection, CountingProxy) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (before, path) = rest.split_once('/').unwrap();
    let (credentials, server) = match before.rsplit_once('@') {
        Some((credentials, server)) => (format!("{credentials}@"), server),
        None => (String::new(), before),
    };
    let proxy = CountingProxy::start(server.to_owned()).await;
    let separator = if path.contains('?') { '&' } else { '?' };
    let proxied = format!(
        "{scheme}://{credentials}{}/{path}{separator}sslmode=disable",
        proxy.address
    );
    let settings = chronicle::config::DatabaseSettings {
        url: proxied,
        max_connections: 1,
        ping_after_idle_ms: 3_600_000,
        pipeline_begin,
        ..chronicle::config::Settings::for_database(url).database
    };
    let db = chronicle::database::connect(&settings).await.unwrap();
    (db, proxy)
}

fn insert(id: i32) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO begin_probe (id) VALUES ($1)",
        [id.into()],
    )
}

async fn rows(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM begin_probe",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn a_transaction_sends_its_begin_with_its_first_statement_on_postgresql() {
    let (settings, _scratch) = fresh_settings(Backend::Postgres).await;
    assert!(settings.database.pipeline_begin, "the default");
    let url = settings.database.url.clone();
    let (pipelined, wire) = pool_through_proxy(&url, true).await;
    let (published, published_wire) = pool_through_proxy(&url, false).await;
    pipelined
        .execute_unprepared("CREATE TABLE begin_probe (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    // Each connection's first use of the statement prepares it (a round trip of its own).
    for (db, first) in [(&pipelined, 1), (&published, 2)] {
        let txn = db.begin().await.unwrap();
        txn.execute_raw(insert(first)).await.unwrap();
        txn.commit().await.unwrap();
    }
    wire.round_trips();
    published_wire.round_trips();

    let txn = pipelined.begin().await.unwrap();
    txn.execute_raw(insert(3)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(wire.round_trips(), 2, "BEGIN with the INSERT, then COMMIT");

    let txn = published.begin().await.unwrap();
    txn.execute_raw(insert(4)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        published_wire.round_trips(),
        3,
        "sqlx as published: BEGIN, INSERT, COMMIT"
    );
    assert_eq!(rows(&published).await, 4, "every committed row is there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn a_transaction_whose_begin_travels_with_its_statement_is_still_one_transaction() {
    let (settings, _scratch) = fresh_settings(Backend::Postgres).await;
    let (db, wire) = pool_through_proxy(&settings.database.url, true).await;
    let other = chronicle::database::connect(&settings.database)
        .await
        .unwrap();
    db.execute_unprepared("CREATE TABLE begin_probe (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    db.execute_raw(insert(1)).await.unwrap();

    // Rolled back: the row its first statement wrote is gone.
    let txn = db.begin().await.unwrap();
    txn.execute_raw(insert(2)).await.unwrap();
    assert_eq!(rows(&other).await, 1, "uncommitted, unseen by others");
    txn.rollback().await.unwrap();
    assert_eq!(rows(&other).await, 1, "the rolled-back row is gone");

    // A failed first statement aborts its transaction: the next statement in it fails too, as
    // it would after a BEGIN of its own (it would succeed, outside any transaction, had the BEGIN
    // been lost).
    let txn = db.begin().await.unwrap();
    let duplicate = txn.execute_raw(insert(1)).await.unwrap_err();
    assert!(
        duplicate.to_string().contains("duplicate key"),
        "{duplicate}"
    );
    let aborted = txn.execute_raw(insert(3)).await.unwrap_err();
    assert!(
        aborted
            .to_string()
            .contains("current transaction is aborted"),
        "{aborted}"
    );
    drop(txn);
    assert_eq!(rows(&other).await, 1, "nothing of the failed transaction");

    // An empty transaction, committed or dropped, costs nothing and leaves the connection out of
    // any transaction: its next statement commits on its own. (The pool's one connection comes
    // back first, with the dropped transaction's ROLLBACK sent and the pool's ping after it.)
    rows(&db).await;
    wire.round_trips();
    db.begin().await.unwrap().commit().await.unwrap();
    drop(db.begin().await.unwrap());
    assert_eq!(wire.round_trips(), 0, "an empty transaction sends nothing");
    db.execute_raw(insert(4)).await.unwrap();
    assert_eq!(rows(&other).await, 2, "committed without a transaction");

    // A savepoint sends the pending BEGIN first; rolling back to it keeps what came before.
    let txn = db.begin().await.unwrap();
    let nested = txn.begin().await.unwrap();
    nested.execute_raw(insert(5)).await.unwrap();
    nested.rollback().await.unwrap();
    txn.execute_raw(insert(6)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        rows(&other).await,
        3,
        "the row after the savepoint, not the one in it"
    );
}

/// sea-orm's `one()` is the driver's `fetch_optional`: it reads to the end of the result (MySQL's
/// driver, as published, stopped at the first row and left the rest to the pool's release ping).
async fn a_one_row_read_leaves_its_connection_in_step_with_its_server(backend: Backend) {
    use sea_orm::sqlx::{self, Connection};

    let (settings, _scratch) = fresh_settings(backend).await;
    let db = chronicle::database::connect(&settings.database)
        .await
        .unwrap();
    // The same check on either backend's pool (sqlx's pools are typed by their database).
    macro_rules! a_first_row_then_nothing_left_to_read {
        ($pool:expr) => {{
            let mut connection = $pool.acquire().await.unwrap();
            let first = sqlx::query("SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3")
                .fetch_optional(&mut *connection)
                .await
                .unwrap();
            assert!(first.is_some(), "a row");
            assert!(!connection.should_flush(), "nothing left to read");
        }};
    }
    match backend {
        Backend::Postgres => {
            a_first_row_then_nothing_left_to_read!(db.get_postgres_connection_pool())
        }
        _ => a_first_row_then_nothing_left_to_read!(db.get_mysql_connection_pool()),
    }
}

on_every_database!(servers; a_one_row_read_leaves_its_connection_in_step_with_its_server);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(chronicle_test_postgres),
    ignore = "CHRONICLE_TEST_POSTGRES_URL is not set"
)]
async fn a_create_in_its_own_assignation_is_one_statement_and_one_round_trip_on_postgresql() {
    use chronicle::config::Limits;
    use chronicle::service::task::{NewTask, create_task};
    use entity::HistoryEntity;
    use sea_orm_history::{AssignationId, ChangeContext, EntitySet};

    let (settings, _scratch) = fresh_settings(Backend::Postgres).await;
    let (db, wire) = pool_through_proxy(&settings.database.url, true).await;
    chronicle::database::migrate_schema(&db).await.unwrap();
    let registry = HistoryEntity::registry().unwrap();
    let limits = Limits::default();
    let project = ChangeContext::fresh(registry)
        .scope(chronicle::service::project::create_project(
            &db,
            &limits,
            chronicle::service::project::NewProject {
                name: "Apollo".into(),
                description: None,
            },
        ))
        .await
        .unwrap();
    let new_task = |title: &str| NewTask {
        project_id: project.id,
        title: title.into(),
        description: None,
        status: None,
        priority: None,
        due_date: None,
    };
    // The first create of the connection prepares its statement (a round trip of its own).
    ChangeContext::fresh(registry)
        .scope(create_task(&db, &limits, new_task("prepared")))
        .await
        .unwrap();
    wire.round_trips();

    let alone = ChangeContext::fresh(registry)
        .scope(create_task(&db, &limits, new_task("alone")))
        .await
        .unwrap();
    assert_eq!(wire.round_trips(), 1, "no BEGIN, no COMMIT: one statement");
    // A named assignation, which other requests may join: its transaction locks it first.
    let named = AssignationId::parse("shared-1").unwrap();
    ChangeContext::new(registry, named.clone())
        .scope(create_task(&db, &limits, new_task("joined")))
        .await
        .unwrap();
    ChangeContext::new(registry, named)
        .scope(create_task(&db, &limits, new_task("joined again")))
        .await
        .unwrap();
    wire.round_trips();
    ChangeContext::new(registry, AssignationId::parse("shared-2").unwrap())
        .scope(create_task(&db, &limits, new_task("in a transaction")))
        .await
        .unwrap();
    assert_eq!(
        wire.round_trips(),
        3,
        "BEGIN with the reservation, the statement, COMMIT"
    );

    // What the one statement committed: the row, its record, its assignation.
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM task").await, 5);
    assert_eq!(count("SELECT COUNT(*) AS n FROM task_history").await, 5);
    let record = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT h.version, h.step, a.change_count FROM task_history h \
             JOIN assignation a ON a.id = h.assignation_id WHERE h.object_id = $1",
            [alone.id.to_string().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.try_get::<i32>("", "version").unwrap(), 1);
    assert_eq!(record.try_get::<i32>("", "step").unwrap(), 0);
    assert_eq!(record.try_get::<i32>("", "change_count").unwrap(), 1);
    assert_eq!(
        count("SELECT change_count::bigint AS n FROM assignation WHERE id = 'shared-1'").await,
        2
    );
}
