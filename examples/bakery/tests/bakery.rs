//! The bakery over HTTP, on SQLite, PostgreSQL and MariaDB: history captured in each mutation's
//! transaction with nothing but the entities' declarations, read per object and per assignation and as
//! of an instant, a bakery's closing reverted with its cakes, links, orders and line items coming back
//! under their old integer ids, conflicts and `force`, a unique name taken since, a key to the same
//! table, and verification.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use bakery::entities::{baker, bakery as bakery_entity, cake, cakes_bakers, lineitem, order};
use chronicle_test_support::{Backend, ScratchDatabase};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

/// A bakery server on a fresh database of one backend.
struct Bakery {
    address: String,
    db: DatabaseConnection,
    client: reqwest::Client,
    _scratch: ScratchDatabase,
}

impl Bakery {
    async fn start(backend: Backend) -> Self {
        let scratch = ScratchDatabase::create(backend).await;
        let (router, db) = bakery::app(&scratch.url).await.expect("the bakery starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = format!("http://{}/graphql", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            address,
            db,
            client: reqwest::Client::new(),
            _scratch: scratch,
        }
    }

    /// Sends `query` as alice, in `assignation` when given; the whole JSON answer.
    async fn send(&self, assignation: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(&self.address)
            .header("x-user", "alice")
            .header("x-app", "bakery-tests")
            .json(&json!({"query": query, "variables": variables}));
        if let Some(id) = assignation {
            request = request.header("x-assignation-id", id);
        }
        request
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON")
    }

    /// `data` of an answer that must have no error.
    async fn data(&self, assignation: Option<&str>, query: &str, variables: Value) -> Value {
        let answer = self.send(assignation, query, variables).await;
        assert!(answer.get("errors").is_none(), "errors: {answer}");
        answer["data"].clone()
    }

    async fn count<E: EntityTrait>(&self) -> u64
    where
        E::Model: Sync,
    {
        PaginatorTrait::count(E::find(), &self.db)
            .await
            .expect("count")
    }
}

macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use chronicle_test_support::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::Bakery::start(Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(chronicle_test_postgres), ignore = "CHRONICLE_TEST_POSTGRES_URL is not set")]
                async fn postgres() {
                    super::$name(super::Bakery::start(Backend::Postgres).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(chronicle_test_mysql), ignore = "CHRONICLE_TEST_MYSQL_URL is not set")]
                async fn mysql() {
                    super::$name(super::Bakery::start(Backend::MySql).await).await;
                }
            }
        )*
    };
}

on_every_database!(
    every_change_is_captured_in_its_mutations_transaction,
    history_reads_per_object_per_assignation_and_as_of_an_instant,
    reverting_a_closed_bakery_brings_everything_back_under_its_old_ids,
    a_later_change_is_a_conflict_that_force_overrides,
    a_cake_name_taken_since_is_a_conflict_force_cannot_override,
    a_leaving_manager_leaves_reports_without_one_and_a_revert_brings_them_back,
    a_manager_and_report_deleted_together_come_back_manager_first,
);

const BAKERY: &str = "mutation($n: String!) { createBakery(name: $n, profitMargin: 0.25) { id } }";
const CAKE: &str = "mutation($n: String!, $b: Int) { createCake(name: $n, price: \"4.50\", bakeryId: $b, glutenFree: true) { id } }";
const BAKER: &str = "mutation($n: String!, $b: Int, $m: Int) { createBaker(name: $n, bakeryId: $b, managerId: $m, contactDetails: {phone: \"555\"}) { id } }";

fn id(data: &Value, field: &str) -> i64 {
    data[field]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {data}"))
}

async fn every_change_is_captured_in_its_mutations_transaction(app: Bakery) {
    let bakery = id(
        &app.data(Some("open"), BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    app.data(Some("open"), CAKE, json!({"n": "Lemon", "b": bakery}))
        .await;

    // A cake named like another is refused: neither the row nor a record is written.
    let refused = app
        .send(Some("twice"), CAKE, json!({"n": "Lemon", "b": bakery}))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_INPUT",
        "{refused}"
    );
    assert_eq!(app.count::<cake::Entity>().await, 1);
    let twice = app
        .data(None, "{ assignation(id: \"twice\") { id } }", json!({}))
        .await;
    assert!(twice["assignation"].is_null());

    // A decimal, a UUID and a boolean come back in the snapshot exactly as the row holds them.
    let records = app
        .data(
            None,
            "{ history(entity: CAKE, id: \"1\") { totalCount edges { node { kind user app assignationId snapshot } } } }",
            json!({}),
        )
        .await;
    let node = &records["history"]["edges"][0]["node"];
    assert_eq!(records["history"]["totalCount"], 1);
    assert_eq!(node["kind"], "CREATE");
    assert_eq!(node["user"], "alice");
    assert_eq!(node["assignationId"], "open");
    assert_eq!(node["snapshot"]["glutenFree"], true);
    assert_eq!(node["snapshot"]["bakeryId"], bakery);
    let stored = cake::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    // Decimals are kept exact, as the database holds them (4.5000 at scale 4; SQLite keeps 4.5).
    assert_eq!(node["snapshot"]["price"], stored.price.to_string());
    assert_eq!(
        stored.price,
        "4.50".parse::<rust_decimal::Decimal>().unwrap()
    );
    assert_eq!(node["snapshot"]["serial"], stored.serial.to_string());
}

async fn history_reads_per_object_per_assignation_and_as_of_an_instant(app: Bakery) {
    let bakery = id(
        &app.data(Some("start"), BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    let baker = id(
        &app.data(Some("start"), BAKER, json!({"n": "Ann", "b": bakery}))
            .await,
        "createBaker",
    );
    let cake = id(
        &app.data(Some("start"), CAKE, json!({"n": "Lemon", "b": bakery}))
            .await,
        "createCake",
    );
    app.data(
        Some("start"),
        "mutation($c: Int!, $b: Int!) { addBaker(cakeId: $c, bakerId: $b) }",
        json!({"c": cake, "b": baker}),
    )
    .await;
    let before_rename = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.data(
        Some("rename"),
        "mutation($b: Int!) { renameBakery(id: $b, name: \"Sourdough\") { name } }",
        json!({"b": bakery}),
    )
    .await;

    let assignation = app
        .data(
            None,
            "{ assignation(id: \"start\") { changeCount entities records { edges { node { entity objectId step } } } } }",
            json!({}),
        )
        .await;
    let a = &assignation["assignation"];
    assert_eq!(a["changeCount"], 4);
    assert_eq!(
        a["entities"],
        json!(["BAKERY", "BAKER", "CAKE", "CAKES_BAKERS"])
    );
    let steps: Vec<(String, String)> = a["records"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["entity"].as_str().unwrap().to_owned(),
                e["node"]["objectId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(steps[3], ("CAKES_BAKERS".into(), format!("{cake}:{baker}")));

    let history = app
        .data(
            None,
            "query($b: Int!) { bakery(id: $b) { name history { edges { node { version kind changes { field old new } } } } } }",
            json!({"b": bakery}),
        )
        .await;
    let edges = &history["bakery"]["history"]["edges"];
    assert_eq!(edges[0]["node"]["version"], 2);
    assert_eq!(
        edges[0]["node"]["changes"],
        json!([{"field": "name", "old": "Rye", "new": "Sourdough"}])
    );
    let then = app
        .data(
            None,
            "query($b: Int!, $at: DateTime!) { bakery(id: $b, asOf: $at) { name } }",
            json!({"b": bakery, "at": before_rename.to_rfc3339()}),
        )
        .await;
    assert_eq!(then["bakery"]["name"], "Rye");
    let verified = app
        .data(
            None,
            "query($id: ID!) { verifyHistory(entity: BAKERY, id: $id) { ok checked } }",
            json!({"id": bakery.to_string()}),
        )
        .await;
    assert_eq!(verified["verifyHistory"], json!({"ok": true, "checked": 2}));
}

async fn reverting_a_closed_bakery_brings_everything_back_under_its_old_ids(app: Bakery) {
    let bakery = id(
        &app.data(Some("setup"), BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    let baker = id(
        &app.data(Some("setup"), BAKER, json!({"n": "Ann", "b": bakery}))
            .await,
        "createBaker",
    );
    let lemon = id(
        &app.data(Some("setup"), CAKE, json!({"n": "Lemon", "b": bakery}))
            .await,
        "createCake",
    );
    let plum = id(
        &app.data(Some("setup"), CAKE, json!({"n": "Plum", "b": bakery}))
            .await,
        "createCake",
    );
    for cake in [lemon, plum] {
        app.data(
            Some("setup"),
            "mutation($c: Int!, $b: Int!) { addBaker(cakeId: $c, bakerId: $b) }",
            json!({"c": cake, "b": baker}),
        )
        .await;
    }
    let customer = app
        .data(
            Some("setup"),
            "mutation { createCustomer(name: \"Bob\", notes: \"no nuts\") }",
            json!({}),
        )
        .await["createCustomer"]
        .as_i64()
        .unwrap();
    app.data(
        Some("setup"),
        "mutation($b: Int!, $c: Int!, $l: Int!, $p: Int!) { placeOrder(bakeryId: $b, customerId: $c, lines: [{cakeId: $l, price: \"4.50\", quantity: 2}, {cakeId: $p, price: \"3.25\", quantity: 1}]) { id total } }",
        json!({"b": bakery, "c": customer, "l": lemon, "p": plum}),
    )
    .await;
    let before = (
        bakery_entity::Entity::find().all(&app.db).await.unwrap(),
        cake::Entity::find().all(&app.db).await.unwrap(),
        cakes_bakers::Entity::find().all(&app.db).await.unwrap(),
        order::Entity::find().all(&app.db).await.unwrap(),
        lineitem::Entity::find().all(&app.db).await.unwrap(),
        baker::Entity::find().all(&app.db).await.unwrap(),
    );

    // Closing the bakery: cakes, their links and line items, and the order go; the baker stays.
    app.data(
        Some("close"),
        "mutation($b: Int!) { deleteBakery(id: $b) }",
        json!({"b": bakery}),
    )
    .await;
    assert_eq!(app.count::<cake::Entity>().await, 0);
    assert_eq!(app.count::<cakes_bakers::Entity>().await, 0);
    assert_eq!(app.count::<lineitem::Entity>().await, 0);
    assert_eq!(app.count::<order::Entity>().await, 0);
    let stayed = baker::Entity::find_by_id(i32::try_from(baker).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stayed.bakery_id, None);
    let closed = app
        .data(
            None,
            "{ assignation(id: \"close\") { changeCount entities } }",
            json!({}),
        )
        .await;
    assert_eq!(closed["assignation"]["changeCount"], 1 + 2 + 2 + 1 + 2 + 1);

    // One revert brings all of it back, under the same ids.
    let preview = app
        .data(
            None,
            "{ previewRevert(id: \"close\") { changes { entity kind } conflicts { objectId } } }",
            json!({}),
        )
        .await;
    assert_eq!(preview["previewRevert"]["conflicts"], json!([]));
    assert_eq!(
        preview["previewRevert"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
    let undo = app
        .data(
            None,
            "mutation { revertAssignation(id: \"close\") { changeCount reverts { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(undo["revertAssignation"]["changeCount"], 9);
    let after = (
        bakery_entity::Entity::find().all(&app.db).await.unwrap(),
        cake::Entity::find().all(&app.db).await.unwrap(),
        cakes_bakers::Entity::find().all(&app.db).await.unwrap(),
        order::Entity::find().all(&app.db).await.unwrap(),
        lineitem::Entity::find().all(&app.db).await.unwrap(),
        baker::Entity::find().all(&app.db).await.unwrap(),
    );
    let sorted = |mut v: Vec<cakes_bakers::Model>| {
        v.sort_by_key(|l| (l.cake_id, l.baker_id));
        v
    };
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);
    assert_eq!(sorted(after.2), sorted(before.2));
    assert_eq!(after.3, before.3);
    assert_eq!(after.4, before.4);
    assert_eq!(after.5, before.5);

    // A new cake after the revert gets a fresh id, past the restored ones.
    let next = id(
        &app.data(None, CAKE, json!({"n": "Fig", "b": bakery})).await,
        "createCake",
    );
    assert!(next > plum);
    let verified = app
        .data(
            None,
            "query($id: ID!) { verifyHistory(entity: CAKES_BAKERS, id: $id) { ok checked } }",
            json!({"id": format!("{lemon}:{baker}")}),
        )
        .await;
    assert_eq!(verified["verifyHistory"], json!({"ok": true, "checked": 3}));
}

async fn a_later_change_is_a_conflict_that_force_overrides(app: Bakery) {
    let bakery = id(
        &app.data(Some("one"), BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    let cake = id(
        &app.data(Some("one"), CAKE, json!({"n": "Lemon", "b": bakery}))
            .await,
        "createCake",
    );
    app.data(
        Some("price"),
        "mutation($c: Int!) { updateCake(id: $c, price: \"5.00\") { price } }",
        json!({"c": cake}),
    )
    .await;
    app.data(
        Some("later"),
        "mutation($c: Int!) { updateCake(id: $c, name: \"Lime\") { name } }",
        json!({"c": cake}),
    )
    .await;

    let refused = app
        .send(
            None,
            "mutation { revertAssignation(id: \"price\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "REVERT_CONFLICT"
    );
    assert_eq!(
        refused["errors"][0]["extensions"]["conflicts"],
        json!([{"entity": "CAKE", "objectId": cake.to_string(), "assignationId": "later"}])
    );
    let still = cake::Entity::find_by_id(i32::try_from(cake).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.price, "5".parse::<rust_decimal::Decimal>().unwrap());

    app.data(
        None,
        "mutation { revertAssignation(id: \"price\", force: true) { id } }",
        json!({}),
    )
    .await;
    let forced = cake::Entity::find_by_id(i32::try_from(cake).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        forced.price,
        "4.5".parse::<rust_decimal::Decimal>().unwrap()
    );
    // The cake goes back to its state before "price" whole: the later rename is overwritten.
    assert_eq!(forced.name, "Lemon");
}

async fn a_cake_name_taken_since_is_a_conflict_force_cannot_override(app: Bakery) {
    let bakery = id(
        &app.data(None, BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    let old = id(
        &app.data(None, CAKE, json!({"n": "Lemon", "b": bakery}))
            .await,
        "createCake",
    );
    app.data(
        Some("drop"),
        "mutation($c: Int!) { deleteCake(id: $c) }",
        json!({"c": old}),
    )
    .await;
    let new = id(
        &app.data(Some("again"), CAKE, json!({"n": "Lemon", "b": bakery}))
            .await,
        "createCake",
    );

    for force in [false, true] {
        let refused = app
            .send(
                None,
                "mutation($f: Boolean!) { revertAssignation(id: \"drop\", force: $f) { id } }",
                json!({"f": force}),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "REVERT_CONFLICT",
            "{refused}"
        );
        assert_eq!(
            refused["errors"][0]["extensions"]["conflicts"][0]["objectId"],
            new.to_string()
        );
    }
    let preview = app
        .data(None, "{ previewRevert(id: \"drop\") { conflicts { entity objectId assignationId reason overridable } } }", json!({}))
        .await;
    assert_eq!(
        preview["previewRevert"]["conflicts"],
        json!([{"entity": "CAKE", "objectId": new.to_string(), "assignationId": "again", "reason": "UNIQUE_TAKEN", "overridable": false}])
    );
    assert_eq!(app.count::<cake::Entity>().await, 1);
}

async fn a_leaving_manager_leaves_reports_without_one_and_a_revert_brings_them_back(app: Bakery) {
    let bakery = id(
        &app.data(None, BAKERY, json!({"n": "Rye"})).await,
        "createBakery",
    );
    let boss = id(
        &app.data(None, BAKER, json!({"n": "Boss", "b": bakery}))
            .await,
        "createBaker",
    );
    let mut reports = Vec::new();
    for name in ["Ann", "Ben"] {
        reports.push(id(
            &app.data(None, BAKER, json!({"n": name, "b": bakery, "m": boss}))
                .await,
            "createBaker",
        ));
    }
    app.data(
        Some("leave"),
        "mutation($b: Int!) { deleteBaker(id: $b) }",
        json!({"b": boss}),
    )
    .await;
    for report in &reports {
        let row = baker::Entity::find_by_id(i32::try_from(*report).unwrap())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.manager_id, None);
    }
    let left = app
        .data(None, "{ assignation(id: \"leave\") { records { edges { node { entity objectId kind } } } } }", json!({}))
        .await;
    let kinds: Vec<&str> = left["assignation"]["records"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["UPDATE", "UPDATE", "DELETE"]);

    // The revert re-inserts the manager before it points the reports at them again.
    app.data(
        None,
        "mutation { revertAssignation(id: \"leave\") { id } }",
        json!({}),
    )
    .await;
    for report in &reports {
        let row = baker::Entity::find_by_id(i32::try_from(*report).unwrap())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.manager_id, Some(i32::try_from(boss).unwrap()));
    }
    assert!(
        baker::Entity::find_by_id(i32::try_from(boss).unwrap())
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_manager_and_report_deleted_together_come_back_manager_first(app: Bakery) {
    let bakery = id(
        &app.data(None, BAKERY, json!({"n": "Spelt"})).await,
        "createBakery",
    );
    let boss = id(
        &app.data(None, BAKER, json!({"n": "Boss", "b": bakery}))
            .await,
        "createBaker",
    );
    let report = id(
        &app.data(None, BAKER, json!({"n": "Cy", "b": bakery, "m": boss}))
            .await,
        "createBaker",
    );
    for gone in [report, boss] {
        app.data(
            Some("both"),
            "mutation($b: Int!) { deleteBaker(id: $b) }",
            json!({"b": gone}),
        )
        .await;
    }
    assert_eq!(app.count::<baker::Entity>().await, 0);
    // Both come back as new rows of one table, one pointing at the other: the manager goes first.
    app.data(
        None,
        "mutation { revertAssignation(id: \"both\") { id } }",
        json!({}),
    )
    .await;
    let row = baker::Entity::find_by_id(i32::try_from(report).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.manager_id, Some(i32::try_from(boss).unwrap()));
    assert_eq!(app.count::<baker::Entity>().await, 2);
}
