//! The measurements, each on a fresh scratch database:
//!
//! - [`write_overhead`]: historized vs un-historized create, update and delete of the same task shape,
//!   in the same transaction pattern (the service's), interleaved in blocks in one run.
//! - [`http_mutations`]: `createTask` and `updateTask` over HTTP against the real server at
//!   concurrency 1, 8 and 32, with the server's RSS, each followed by its ceiling (see `ceiling`).
//! - [`scale`]: the write overhead and the HTTP throughput at concurrency 32 on an empty history
//!   table, and again once it holds a million records.
//! - [`log`]: the verifiable log's cost: `createTask` at concurrency 32 with the sequencer off and
//!   on, in turns (off, on, on, off), how far it trails the load, then how fast it sequences and
//!   how long verifying a checkpoint of a million records takes.
//! - [`history_latency`]: `history(TASK, id)` p50 over HTTP with 10k, 100k and 1M history records.
//! - [`revert`]: the revert of one assignation of 10,000 changes over 2,000 objects.

use std::time::{Duration, Instant};

use chronicle::config::Limits;
use chronicle::service::project::{NewProject, create_project};
use chronicle::service::task::{NewTask, TaskChanges, create_task, delete_task, update_task};
use chronicle::service::{find_for_update, lock_parent};
use entity::task::TaskStatus;
use entity::{HistoryEntity, project, task};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, IntoActiveModel, Schema, Set,
};
use sea_orm_history::capture::insert_with_history;
use sea_orm_history::record::HISTORY_COLUMNS;
use sea_orm_history::revert::{RevertOptions, revert_assignation};
use sea_orm_history::{AssignationId, ChangeContext, EntitySet, now};
use serde_json::{Value, json};

use crate::http::{Client, load, quantile_ms};
use crate::server::Server;

/// The twin of `task` without history: the baseline of [`write_overhead`].
mod plain {
    use entity::task::TaskStatus;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bench_plain_task")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub project_id: Uuid,
        pub title: String,
        pub description: Option<String>,
        pub status: TaskStatus,
        pub priority: i32,
        pub due_date: Option<Date>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One measured number.
pub struct Measure {
    /// What (`write_overhead_ratio`, `mutations_per_s`, …).
    pub metric: &'static str,
    /// Its parameters (`{"mutation": "createTask", "concurrency": 8}`).
    pub params: Value,
    /// The number.
    pub value: f64,
}

fn measure(metric: &'static str, params: Value, value: f64) -> Measure {
    Measure {
        metric,
        params,
        value,
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A change context in assignation `id` (a fresh one when `None`, as an HTTP request without
/// `X-Assignation-Id` gets).
pub(crate) fn context(id: Option<&str>) -> Result<ChangeContext, String> {
    let registry = HistoryEntity::registry().map_err(err)?;
    Ok(match id {
        Some(id) => ChangeContext::new(registry, AssignationId::parse(id).map_err(err)?),
        None => ChangeContext::fresh(registry),
    })
}

async fn bench_project(db: &DatabaseConnection) -> Result<project::Model, String> {
    context(Some("bench-setup"))?
        .scope(create_project(
            db,
            &Limits::default(),
            NewProject {
                name: "bench".into(),
                description: None,
            },
        ))
        .await
        .map_err(|e| format!("{e:?}"))
}

/// Time spent per kind of change.
#[derive(Default)]
struct Phases {
    create: Duration,
    update: Duration,
    delete: Duration,
}

impl Phases {
    fn create_update(&self) -> Duration {
        self.create + self.update
    }
}

/// Creates [`plain`]'s table unless it is there: `task`'s columns, indexes and foreign key to
/// `project`, so that both sides of [`write_overhead`] maintain the same indexes and check the same
/// key.
async fn plain_table(db: &DatabaseConnection) -> Result<(), String> {
    use sea_orm::sea_query::{ForeignKey, Index};
    // MySQL has no CREATE INDEX IF NOT EXISTS: made once per database.
    if migration::SchemaManager::new(db)
        .has_table("bench_plain_task")
        .await
        .map_err(err)?
    {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let mut create = Schema::new(backend).create_table_from_entity(plain::Entity);
    create.if_not_exists().foreign_key(
        ForeignKey::create()
            .name("fk_bench_plain_task_project_id")
            .from(plain::Entity, plain::Column::ProjectId)
            .to(project::Entity, project::Column::Id),
    );
    db.execute(&create).await.map_err(err)?;
    for (name, column) in [
        ("ix_bench_plain_task_project_id", plain::Column::ProjectId),
        ("ix_bench_plain_task_status", plain::Column::Status),
    ] {
        let mut index = Index::create();
        index.name(name).table(plain::Entity).col(column);
        db.execute(&index).await.map_err(err)?;
    }
    Ok(())
}

/// One block of `n` historized tasks of `project`: created, then updated, then deleted, each its own
/// transaction in a fresh assignation (as each HTTP request without `X-Assignation-Id` gets).
async fn historized_block(
    db: &DatabaseConnection,
    project: uuid::Uuid,
    round: usize,
    n: usize,
    phases: &mut Phases,
) -> Result<(), String> {
    let limits = Limits::default();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let created = context(None)?
            .scope(create_task(
                db,
                &limits,
                NewTask {
                    project_id: project,
                    title: format!("task {round}-{i}"),
                    description: None,
                    status: None,
                    priority: Some(1),
                    due_date: None,
                },
            ))
            .await
            .map_err(|e| format!("{e:?}"))?;
        ids.push(created.id);
    }
    phases.create += started.elapsed();
    let started = Instant::now();
    for (i, &id) in ids.iter().enumerate() {
        let changes = TaskChanges {
            title: Some(format!("task {round}-{i} v2")),
            priority: Some(2),
            ..TaskChanges::default()
        };
        context(None)?
            .scope(update_task(db, &limits, id, changes))
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
    phases.update += started.elapsed();
    let started = Instant::now();
    for &id in &ids {
        context(None)?
            .scope(delete_task(db, id))
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
    phases.delete += started.elapsed();
    Ok(())
}

/// The same block on [`plain`], with the statements the service sends minus history: lock the project
/// as the service does (on MySQL a share lock read; elsewhere the insert's foreign key) and insert
/// (on PostgreSQL one statement without a transaction around it, as the service's create there);
/// lock the row and update every column; lock the row and delete (the locks through the service's
/// own helpers).
async fn plain_block(
    db: &DatabaseConnection,
    project: uuid::Uuid,
    round: usize,
    n: usize,
    phases: &mut Phases,
) -> Result<(), String> {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let at = now();
        let row = plain::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            project_id: Set(project),
            title: Set(format!("task {round}-{i}")),
            description: Set(None),
            status: Set(TaskStatus::Todo),
            priority: Set(1),
            due_date: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let created = if db.get_database_backend() == DbBackend::Postgres {
            // As the service's create there: one statement, its own transaction.
            row.insert(db).await.map_err(err)?
        } else {
            let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
            lock_parent::<project::Entity>(&txn, project, "project")
                .await
                .map_err(|e| format!("{e:?}"))?;
            let created = row.insert(&txn).await.map_err(err)?;
            txn.commit().await.map_err(err)?;
            created
        };
        ids.push(created.id);
    }
    phases.create += started.elapsed();
    let started = Instant::now();
    for (i, &id) in ids.iter().enumerate() {
        let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
        let current = find_for_update::<plain::Entity, _>(&txn, id, "plain task")
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut next = current;
        next.title = format!("task {round}-{i} v2");
        next.priority = 2;
        next.updated_at = now();
        next.into_active_model()
            .reset_all()
            .update(&txn)
            .await
            .map_err(err)?;
        txn.commit().await.map_err(err)?;
    }
    phases.update += started.elapsed();
    let started = Instant::now();
    for &id in &ids {
        let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
        let current = find_for_update::<plain::Entity, _>(&txn, id, "plain task")
            .await
            .map_err(|e| format!("{e:?}"))?;
        current
            .into_active_model()
            .delete(&txn)
            .await
            .map_err(err)?;
        txn.commit().await.map_err(err)?;
    }
    phases.delete += started.elapsed();
    Ok(())
}

/// The time historized and plain blocks took, and how many changes of each kind they made.
async fn overhead(
    db: &DatabaseConnection,
    project: uuid::Uuid,
    iterations: usize,
) -> Result<(Phases, Phases, usize), String> {
    plain_table(db).await?;
    let (mut historized, mut baseline) = (Phases::default(), Phases::default());
    let block = 50;
    for round in 0..iterations.div_ceil(block) {
        historized_block(db, project, round, block, &mut historized).await?;
        plain_block(db, project, round, block, &mut baseline).await?;
    }
    Ok((historized, baseline, iterations.div_ceil(block) * block))
}

/// Historized vs plain create, update and delete of the same task shape, `iterations` of each,
/// interleaved in blocks of 50 so that both sides see the same machine.
pub async fn write_overhead(
    db: &DatabaseConnection,
    iterations: usize,
) -> Result<Vec<Measure>, String> {
    let project = bench_project(db).await?;
    let (historized, baseline, n) = overhead(db, project.id, iterations).await?;
    let ratio = |h: Duration, b: Duration| h.as_secs_f64() / b.as_secs_f64();
    let per_op = |d: Duration| d.as_secs_f64() * 1_000.0 / n as f64;
    let mut out = vec![measure(
        "write_overhead_ratio",
        json!({"change": "create+update", "iterations": n}),
        ratio(historized.create_update(), baseline.create_update()),
    )];
    for (change, h, b) in [
        ("create", historized.create, baseline.create),
        ("update", historized.update, baseline.update),
        ("delete", historized.delete, baseline.delete),
    ] {
        out.push(measure(
            "write_overhead_ratio",
            json!({"change": change, "iterations": n}),
            ratio(h, b),
        ));
        out.push(measure(
            "historized_ms",
            json!({"change": change, "iterations": n}),
            per_op(h),
        ));
        out.push(measure(
            "plain_ms",
            json!({"change": change, "iterations": n}),
            per_op(b),
        ));
    }
    Ok(out)
}

/// `objects` tasks of a new project, inserted with their history in one transaction.
async fn seed_tasks(
    db: &DatabaseConnection,
    objects: usize,
) -> Result<(project::Model, Vec<task::Model>), String> {
    let project = bench_project(db).await?;
    let at = now();
    let tasks: Vec<task::Model> = (0..objects)
        .map(|i| task::Model {
            id: uuid::Uuid::now_v7(),
            project_id: project.id,
            title: format!("task {i}"),
            description: None,
            status: TaskStatus::Todo,
            priority: 0,
            due_date: None,
            created_at: at,
            updated_at: at,
        })
        .collect();
    context(Some("bench-seed"))?
        .scope(async {
            let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
            insert_with_history::<task::Entity, _>(&txn, &tasks)
                .await
                .map_err(err)?;
            txn.commit().await.map_err(err)
        })
        .await?;
    Ok((project, tasks))
}

/// The ids of `tasks` as the API writes them, shared by a load's workers.
fn id_strings(tasks: &[task::Model]) -> std::sync::Arc<Vec<String>> {
    std::sync::Arc::new(tasks.iter().map(|t| t.id.to_string()).collect())
}

/// SplitMix64: cheap, seeded, good enough to pick rows.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const HEADERS: &[(&str, &str)] = &[("X-User", "bench"), ("X-App", "load")];

/// The body of worker `w`'s `i`-th `mutation` request: a new task of `project_id`, or an update of one
/// of `ids` picked at random.
fn mutation_body(
    mutation: &'static str,
    project_id: String,
    ids: std::sync::Arc<Vec<String>>,
) -> impl Fn(usize, u64) -> String + Send + Sync + Clone + 'static {
    move |worker: usize, i: u64| {
        match mutation {
        "createTask" => json!({
            "query": "mutation($p: ID!, $t: String!, $pr: Int!) { createTask(input: {projectId: $p, title: $t, priority: $pr}) { id } }",
            "variables": {"p": project_id, "t": format!("load {worker}-{i}"), "pr": i % 5},
        })
        .to_string(),
        _ => {
            let pick = mix((worker as u64) << 40 | i) as usize % ids.len();
            json!({
                "query": "mutation($id: ID!, $t: String!, $pr: Int!) { updateTask(id: $id, input: {title: $t, priority: $pr}) { id } }",
                "variables": {"id": ids[pick], "t": format!("upd {worker}-{i}"), "pr": i % 6},
            })
            .to_string()
        }
    }
    }
}

/// `createTask` and `updateTask` over HTTP at each concurrency; the server's RSS idle and at peak.
pub async fn http_mutations(
    db: &DatabaseConnection,
    url: &str,
    concurrencies: &[usize],
    seconds: u64,
    seeded: usize,
) -> Result<Vec<Measure>, String> {
    let (project, tasks) = seed_tasks(db, seeded).await?;
    let server = Server::start(url)?;
    // The ceiling's pool is the server's (default settings, and the same variables read, its size
    // included).
    let mut settings = chronicle::config::Settings::for_database(url).database;
    crate::database_settings_from_env(&mut settings);
    if let Some(size) = crate::env_setting("CHRONICLE_MAX_CONNECTIONS") {
        settings.max_connections = size;
    }
    let pool = chronicle::database::connect(&settings).await.map_err(err)?;
    let task_ids: std::sync::Arc<Vec<uuid::Uuid>> =
        std::sync::Arc::new(tasks.iter().map(|t| t.id).collect());
    let idle = server.rss_bytes().unwrap_or(0);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = server.sample_rss(stopped);
    let mut out = Vec::new();
    let ids = id_strings(&tasks);
    for mutation in ["createTask", "updateTask"] {
        for &concurrency in concurrencies {
            let body = mutation_body(mutation, project.id.to_string(), ids.clone());
            let (server_cpu, pg_cpu) = (
                crate::server::cpu_seconds(server.pid()),
                crate::server::postgres_cpu_seconds(),
            );
            let result = load(
                server.addr,
                concurrency,
                Duration::from_secs(1),
                Duration::from_secs(seconds),
                HEADERS,
                body,
            )
            .await?;
            let params =
                json!({"mutation": mutation, "concurrency": concurrency, "seconds": seconds});
            // CPU per request, read before the ceiling's run adds its own database work: less
            // sensitive to a shared machine than requests per second.
            let per_request = |seconds: f64| seconds * 1_000.0 / (result.all_ok.max(1) as f64);
            let server_cpu = per_request(crate::server::cpu_seconds(server.pid()) - server_cpu);
            let pg_cpu = per_request(crate::server::postgres_cpu_seconds() - pg_cpu);
            out.push(measure(
                "mutations_per_s",
                params.clone(),
                result.per_second(),
            ));
            // The same database work without HTTP and GraphQL, right after, at the same concurrency.
            let ceiling = crate::ceiling::load(
                &pool,
                mutation,
                project.id,
                task_ids.clone(),
                concurrency,
                Duration::from_secs(1),
                Duration::from_secs(seconds),
            )
            .await?;
            out.push(measure(
                "ceiling_per_s",
                params.clone(),
                ceiling.per_second(),
            ));
            out.push(measure(
                "ceiling_p99_ms",
                params.clone(),
                ceiling.quantile_ms(0.99),
            ));
            out.push(measure(
                "http_over_ceiling",
                params.clone(),
                result.per_second() / ceiling.per_second(),
            ));
            out.push(measure("p50_ms", params.clone(), result.quantile_ms(0.5)));
            out.push(measure("p99_ms", params.clone(), result.quantile_ms(0.99)));
            out.push(measure("errors", params.clone(), result.errors as f64));
            out.push(measure("server_cpu_ms_per_req", params.clone(), server_cpu));
            if url.starts_with("postgres") {
                out.push(measure("postgres_cpu_ms_per_req", params, pg_cpu));
            }
        }
    }
    let _ = stop.send(true);
    let peak = sampler.await.map_err(err)?;
    out.push(measure(
        "rss_idle_mib",
        json!({}),
        idle as f64 / 1_048_576.0,
    ));
    out.push(measure(
        "rss_peak_mib",
        json!({"under": "the mutation runs"}),
        peak as f64 / 1_048_576.0,
    ));
    Ok(out)
}

/// Sequences every record the verifiable log lacks, waiting while the server's sequencer holds it.
async fn log_caught_up(db: &DatabaseConnection) -> Result<(), String> {
    let registry = HistoryEntity::registry().map_err(err)?;
    let options = sea_orm_history::log::SequenceOptions::default();
    // Kept across tries: a try that found the log busy must not start over from the window.
    let mut cursors = sea_orm_history::log::Cursors::default();
    loop {
        let report = sea_orm_history::log::sequence_on(db, registry, &options, &mut cursors)
            .await
            .map_err(err)?;
        if report.busy {
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else if report.appended == 0 {
            return Ok(());
        }
    }
}

/// Adds history records of objects with `per_object` records each until `task_history` holds `total`.
async fn fill_history(
    db: &DatabaseConnection,
    total: u64,
    per_object: i32,
) -> Result<Vec<String>, String> {
    let count_select = Query::select()
        .expr_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(Alias::new("task_history"))
        .to_owned();
    let row = db
        .query_one(&count_select)
        .await
        .map_err(err)?
        .ok_or("no count")?;
    let have: i64 = row.try_get("", "n").map_err(err)?;
    let missing = total.saturating_sub(u64::try_from(have).unwrap_or(0));
    let objects = missing / u64::try_from(per_object).unwrap_or(1);
    let mut ids = Vec::new();
    let at = now();
    let batch_objects = 100;
    let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
    for chunk_start in (0..objects).step_by(batch_objects) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("task_history"))
            .columns(HISTORY_COLUMNS.map(Alias::new));
        for _ in chunk_start..(chunk_start + batch_objects as u64).min(objects) {
            let object_id = uuid::Uuid::now_v7().to_string();
            for version in 1..=per_object {
                // In the order of HISTORY_COLUMNS; filler rows (their hashes do not chain).
                insert
                    .values([
                        Expr::val(uuid::Uuid::now_v7()),
                        Expr::val(object_id.clone()),
                        Expr::val(version),
                        Expr::val(if version == 1 { "CREATE" } else { "UPDATE" }),
                        Expr::val(at),
                        Expr::val("bulk"),
                        Expr::val("bench"),
                        Expr::val("bench-bulk-history"),
                        Expr::val(0),
                        Expr::val(Option::<String>::None),
                        Expr::val(json!({"id": object_id, "title": format!("bulk v{version}"), "priority": version % 6})),
                        Expr::val("0".repeat(64)),
                        Expr::val(Option::<String>::None),
                        Expr::val(Option::<String>::None),
                        Expr::val(Option::<String>::None),
                    ])
                    .map_err(err)?;
            }
            ids.push(object_id);
        }
        txn.execute(&insert).await.map_err(err)?;
    }
    txn.commit().await.map_err(err)?;
    Ok(ids)
}

/// Pays off the maintenance a bulk load leaves behind before a measurement, as an operator would
/// after one: on PostgreSQL `VACUUM (ANALYZE)` of the (scratch) database, whose tables the load and
/// the log's catch-up grew (else autovacuum scans them during the measurement), and a `CHECKPOINT`
/// (else the first write of every page after the checkpoint the load's WAL set off logs the whole
/// page); on SQLite a checkpoint that empties the write-ahead log. Done before both sizes of [`scale`], so that each
/// starts from the same state, and after [`history_latency`]'s loads (whose plans need the
/// statistics). A step the bench's database user may not take (`CHECKPOINT` needs `pg_checkpoint`)
/// is said on stderr and skipped.
async fn settle(db: &DatabaseConnection) {
    let statements: &[&str] = match db.get_database_backend() {
        // Every table: the log's catch-up fills its stored hashes as well as its entries.
        sea_orm::DatabaseBackend::Postgres => &["VACUUM (ANALYZE)", "CHECKPOINT"],
        sea_orm::DatabaseBackend::Sqlite => &["PRAGMA wal_checkpoint(TRUNCATE)"],
        _ => &[],
    };
    for statement in statements {
        if let Err(e) = db.execute_unprepared(statement).await {
            eprintln!("bench: `{statement}` before the measurement failed, skipped: {e}");
        }
    }
}

/// `history(TASK, id)` latency over HTTP, 200 sequential queries after 20 warm-ups, at each size.
pub async fn history_latency(
    db: &DatabaseConnection,
    url: &str,
    sizes: &[u64],
) -> Result<Vec<Measure>, String> {
    let server = Server::start(url)?;
    let mut client = Client::connect(server.addr).await.map_err(err)?;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for &size in sizes {
        let started = Instant::now();
        ids.extend(fill_history(db, size, 10).await?);
        let loaded = started.elapsed().as_secs_f64();
        // As in `scale`: the latency of the table at this size, not of its contention with the
        // server's sequencer taking the bulk load into the log (on SQLite that costs the reads
        // 20-30 ms each while it lasts, a few seconds per million records).
        log_caught_up(db).await?;
        settle(db).await;
        let mut latencies = Vec::new();
        for i in 0..220u64 {
            let id = &ids[mix(size ^ i) as usize % ids.len()];
            let body = json!({
                "query": "query($id: ID!) { history(entity: TASK, id: $id, first: 20) { edges { node { version kind at user assignationId changes { field old new } } } } }",
                "variables": {"id": id},
            })
            .to_string();
            let sent = Instant::now();
            let (status, reply) = client.post("/graphql", HEADERS, &body).await.map_err(err)?;
            let took = sent.elapsed();
            if status != 200 || reply.windows(8).any(|w| w == b"\"errors\"") {
                return Err(format!(
                    "history query failed: {}",
                    String::from_utf8_lossy(&reply)
                ));
            }
            if i >= 20 {
                latencies.push(took);
            }
        }
        latencies.sort_unstable();
        let params = json!({"records": size});
        out.push(measure(
            "history_p50_ms",
            params.clone(),
            quantile_ms(&latencies, 0.5),
        ));
        out.push(measure(
            "history_p99_ms",
            params.clone(),
            quantile_ms(&latencies, 0.99),
        ));
        out.push(measure("history_load_s", params, loaded));
    }
    Ok(out)
}

/// Creates `objects` tasks, changes each `changes / objects` times in one assignation, and times the
/// revert of that assignation.
pub async fn revert(
    db: &DatabaseConnection,
    objects: usize,
    changes: usize,
) -> Result<Vec<Measure>, String> {
    let (_, tasks) = seed_tasks(db, objects).await?;
    let rounds = changes / objects.max(1);
    context(Some("bench-bulk"))?
        .scope(async {
            let txn = sea_orm_history::begin_write(db).await.map_err(err)?;
            for round in 0..rounds {
                for task in &tasks {
                    let mut active = task.clone().into_active_model();
                    active.title = Set(format!("{} r{round}", task.title));
                    active.priority = Set(i32::try_from(round % 6).unwrap_or(0));
                    active.update(&txn).await.map_err(err)?;
                }
            }
            txn.commit().await.map_err(err)
        })
        .await?;
    let started = Instant::now();
    let bulk = AssignationId::parse("bench-bulk").map_err(err)?;
    context(Some("bench-revert"))?
        .scope(revert_assignation(db, &bulk, &RevertOptions::default()))
        .await
        .map_err(|e| format!("revert: {e:?}"))?;
    let metric = if changes >= 10_000 {
        "revert_10k_s"
    } else {
        "revert_1k_s"
    };
    Ok(vec![measure(
        metric,
        json!({"changes": changes, "objects": objects}),
        started.elapsed().as_secs_f64(),
    )])
}

/// `scale_ratio`: the create+update overhead and `createTask`/`updateTask` at c = 32 on `full`
/// (given `records` history records) over the same figures on `empty`, both seeded alike. The two
/// databases are measured in turns, `rounds` times each, so that a machine whose speed drifts
/// during the run weighs on both sizes alike: the overhead is summed over the rounds, the throughput
/// is the median round's.
pub async fn scale(
    empty: (&DatabaseConnection, &str),
    full: (&DatabaseConnection, &str),
    iterations: usize,
    seconds: u64,
    records: u64,
    rounds: usize,
) -> Result<Vec<Measure>, String> {
    let mut sizes = Vec::new();
    for ((db, url), size) in [(empty, 0), (full, records)] {
        let (project, tasks) = seed_tasks(db, 1_000).await?;
        let ids = id_strings(&tasks);
        if size > 0 {
            fill_history(db, size, 10).await?;
        }
        sizes.push((db, url, size, project.id, ids));
    }
    for (db, ..) in &sizes {
        // A bulk load's records share one instant, and the server's sequencer logs them in the
        // background: measured once that is done, the figures are the write path's at this size,
        // not its contention with a catch-up. Nor with the maintenance the load (or the seeding)
        // left behind.
        log_caught_up(db).await?;
        settle(db).await;
    }
    let per_round = iterations.div_ceil(rounds);
    // Per size: historized and plain create+update time, and each round's createTask and
    // updateTask rates.
    let mut timed = vec![(Duration::ZERO, Duration::ZERO, 0usize); sizes.len()];
    let mut rates: Vec<[Vec<f64>; 2]> = vec![[Vec::new(), Vec::new()]; sizes.len()];
    for _ in 0..rounds {
        for (slot, (db, url, _, project, ids)) in sizes.iter().enumerate() {
            // As `write_overhead` measures it, with no server running (whose sequencer would take
            // the historized side's records into the log meanwhile, on the same two cores).
            let (historized, baseline, n) = overhead(db, *project, per_round).await?;
            timed[slot].0 += historized.create_update();
            timed[slot].1 += baseline.create_update();
            timed[slot].2 += n;
            // The records the overhead wrote are in the log before the server (and its
            // sequencer) starts.
            log_caught_up(db).await?;
            let server = Server::start(url)?;
            for (i, mutation) in ["createTask", "updateTask"].into_iter().enumerate() {
                let body = mutation_body(mutation, project.to_string(), ids.clone());
                let result = at_32(&server, seconds, body).await?;
                rates[slot][i].push(result.per_second());
            }
            drop(server);
        }
    }
    let mut out = Vec::new();
    let mut figures: Vec<[f64; 3]> = Vec::new();
    for (slot, (.., size, _, _)) in sizes.iter().enumerate() {
        let (historized, baseline, n) = timed[slot];
        let ratio = historized.as_secs_f64() / baseline.as_secs_f64();
        out.push(measure(
            "write_overhead_ratio",
            json!({"change": "create+update", "iterations": n, "history_records": size}),
            ratio,
        ));
        let mut row = [ratio, 0.0, 0.0];
        for (i, mutation) in ["createTask", "updateTask"].into_iter().enumerate() {
            row[i + 1] = median(&rates[slot][i]);
            out.push(measure(
                "mutations_per_s",
                json!({"mutation": mutation, "concurrency": 32, "seconds": seconds,
                       "rounds": rounds, "history_records": size}),
                row[i + 1],
            ));
        }
        figures.push(row);
    }
    if let [empty, full] = figures.as_slice() {
        for (i, what) in [
            "write_overhead_ratio",
            "createTask_per_s",
            "updateTask_per_s",
        ]
        .into_iter()
        .enumerate()
        {
            out.push(measure(
                "scale_ratio",
                json!({"figure": what, "history_records": records}),
                full[i] / empty[i],
            ));
        }
    }
    Ok(out)
}

/// `body`'s mutations against `server` at concurrency 32 for `seconds` after a second's warm-up: the
/// load the scale and log figures compare.
async fn at_32(
    server: &Server,
    seconds: u64,
    body: impl Fn(usize, u64) -> String + Send + Sync + Clone + 'static,
) -> Result<crate::http::LoadResult, String> {
    load(
        server.addr,
        32,
        Duration::from_secs(1),
        Duration::from_secs(seconds),
        HEADERS,
        body,
    )
    .await
}

/// The mean of `values` (0 for none).
fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The middle value of `values` (the mean of the middle two for an even count; 0 for none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// How many records of `task_history` there are, and how many the log holds.
async fn counts(db: &DatabaseConnection) -> Result<(i64, i64), String> {
    // Every history table: the log holds them all (the bench's project too, not only its tasks).
    let mut records: i64 = 0;
    for info in HistoryEntity::registry().map_err(err)?.entities() {
        let n: i64 = db
            .query_one(
                &Query::select()
                    .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
                    .from(Alias::new(info.history_table.as_str()))
                    .to_owned(),
            )
            .await
            .map_err(err)?
            .ok_or("no count")?
            .try_get("", "n")
            .map_err(err)?;
        records += n;
    }
    let logged =
        i64::try_from(sea_orm_history::log::tree_size(db).await.map_err(err)?).unwrap_or(i64::MAX);
    Ok((records, logged))
}

/// Adds `objects` tasks' histories of `per_object` records each, with valid hash chains (what
/// verification checks), in batches of one transaction each.
async fn fill_valid_history(
    db: &DatabaseConnection,
    objects: u64,
    per_object: i32,
) -> Result<(), String> {
    let at = now();
    let batch = 200;
    for start in (0..objects).step_by(batch) {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("task_history"))
            .columns(HISTORY_COLUMNS.map(Alias::new));
        for _ in start..(start + batch as u64).min(objects) {
            let object_id = uuid::Uuid::now_v7().to_string();
            let mut previous: Option<String> = None;
            for version in 1..=per_object {
                let mut row = sea_orm_history::HistoryRow {
                    id: uuid::Uuid::now_v7(),
                    object_id: object_id.clone(),
                    version,
                    kind: if version == 1 {
                        sea_orm_history::HistoryKind::Create
                    } else {
                        sea_orm_history::HistoryKind::Update
                    },
                    at,
                    actor: Some("bulk".into()),
                    app: Some("bench".into()),
                    assignation_id: "bench-bulk-log".into(),
                    step: 0,
                    reason: None,
                    snapshot: json!({"id": object_id, "title": format!("bulk v{version}")}),
                    hash: String::new(),
                    scope_id: None,
                    trace_id: None,
                    span_id: None,
                };
                row.hash = sea_orm_history::record::record_hash("TASK", &row, previous.as_deref());
                previous = Some(row.hash.clone());
                insert
                    .values([
                        Expr::val(row.id),
                        Expr::val(row.object_id),
                        Expr::val(row.version),
                        Expr::val(row.kind.as_str()),
                        Expr::val(row.at),
                        Expr::val(row.actor),
                        Expr::val(row.app),
                        Expr::val(row.assignation_id),
                        Expr::val(row.step),
                        Expr::val(row.reason),
                        Expr::val(row.snapshot),
                        Expr::val(row.hash),
                        Expr::val(row.scope_id),
                        Expr::val(row.trace_id),
                        Expr::val(row.span_id),
                    ])
                    .map_err(err)?;
            }
        }
        db.execute(&insert).await.map_err(err)?;
    }
    Ok(())
}

/// The verifiable log's cost (see the module docs).
pub async fn log(
    db: &DatabaseConnection,
    url: &str,
    seconds: u64,
    records: u64,
) -> Result<Vec<Measure>, String> {
    use sea_orm_history::log::{
        CheckpointKey, SequenceOptions, VerifyOptions, make_checkpoint, parse_checkpoint, sequence,
        verify_checkpoint,
    };
    let (project, tasks) = seed_tasks(db, 1_000).await?;
    let ids = id_strings(&tasks);
    let mut out = Vec::new();
    // Off, on, on, off: the machine's drift over the four runs falls on both sides alike. Each run
    // starts with the log holding every record, so that the sequencer's run measures keeping up
    // with the load, not taking in the runs before it (which a real server does once, at start-up).
    let turns = [(0, "0"), (1, "1000"), (1, "1000"), (0, "0")];
    let mut per_second = [Vec::new(), Vec::new()];
    let mut p99 = [Vec::new(), Vec::new()];
    for (turn, (slot, every)) in turns.into_iter().enumerate() {
        log_caught_up(db).await?;
        let server = Server::start_with(url, &["--sequence-every-ms", every])?;
        let body = mutation_body("createTask", project.id.to_string(), ids.clone());
        let result = at_32(&server, seconds, body).await?;
        per_second[slot].push(result.per_second());
        p99[slot].push(result.quantile_ms(0.99));
        let params = json!({"turn": turn + 1, "sequencer": every != "0"});
        out.push(measure(
            "log_turn_mutations_per_s",
            params.clone(),
            result.per_second(),
        ));
        out.push(measure("log_turn_p99_ms", params, result.quantile_ms(0.99)));
        if turn == 2 {
            // How far the log trails right after the load, and how long it takes to catch up.
            let (written, logged) = counts(db).await?;
            out.push(measure(
                "log_lag_records",
                json!({"after": "the c = 32 load"}),
                (written - logged) as f64,
            ));
            let started = Instant::now();
            loop {
                let (written, logged) = counts(db).await?;
                if logged >= written || started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            out.push(measure(
                "log_catch_up_s",
                json!({"after": "the c = 32 load"}),
                started.elapsed().as_secs_f64(),
            ));
        }
    }
    for (slot, sequencer) in [(0, false), (1, true)] {
        let params = json!({"mutation": "createTask", "concurrency": 32, "sequencer": sequencer,
                            "runs": per_second[slot].len()});
        out.push(measure(
            "mutations_per_s",
            params.clone(),
            mean(&per_second[slot]),
        ));
        out.push(measure("p99_ms", params, mean(&p99[slot])));
    }
    out.push(measure(
        "log_throughput_ratio",
        json!({"mutation": "createTask", "concurrency": 32, "on_over_off": true, "in_turns": true}),
        mean(&per_second[1]) / mean(&per_second[0]),
    ));

    // A million records: sequenced, checkpointed, verified.
    let per_object = 10;
    fill_valid_history(db, records / per_object as u64, per_object).await?;
    let registry = HistoryEntity::registry().map_err(err)?;
    let started = Instant::now();
    let options = SequenceOptions {
        full_sweep: true,
        ..SequenceOptions::default()
    };
    let sequenced = sequence(db, registry, &options).await.map_err(err)?;
    out.push(measure(
        "log_sequence_per_s",
        json!({"records": sequenced.appended}),
        sequenced.appended as f64 / started.elapsed().as_secs_f64(),
    ));
    let key = CheckpointKey::from_pem(BENCH_KEY, "bench/log").map_err(err)?;
    let checkpoint = make_checkpoint(db, &key).await.map_err(err)?;
    let checkpoint = parse_checkpoint(&checkpoint.note, None).map_err(err)?;
    let started = Instant::now();
    let report = verify_checkpoint(db, registry, &checkpoint, &VerifyOptions::default(), |_| {})
        .await
        .map_err(err)?;
    if let Some(fault) = report.fault {
        return Err(format!("the bench's own log does not verify: {fault}"));
    }
    out.push(measure(
        "log_verify_s",
        json!({"records": report.checked}),
        started.elapsed().as_secs_f64(),
    ));
    Ok(out)
}

/// The checkpoint key of the bench's throwaway logs (a test fixture: never a real log's key).
const BENCH_KEY: &str = include_str!("../../../tests/fixtures/log/checkpoint-private.pem");
