//! The randomized model test of capture and revert: random rounds of mutations by several users, each
//! round its own assignation, checked against a simple in-memory model of the data. After random
//! reverts of the latest round (the data must equal the model before it), redos (equal after it), and
//! reverts of older rounds whose objects were changed since (`REVERT_CONFLICT`, nothing written), the
//! database equals the model, versions are gapless and every live row equals its latest snapshot.
//!
//! `CHRONICLE_MODEL_ROUNDS` sets the number of rounds (default 800 on SQLite, 120 elsewhere) and
//! `CHRONICLE_MODEL_SEED` the seed (printed on failure).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{As, Backend, TestApp, assert_history_consistent};

crate::on_every_database!(random_mutations_reverts_and_redos_match_an_in_memory_model);

/// A small deterministic generator (xorshift64*), so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).expect("fits")
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}

/// The data as the model predicts it (timestamps left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct World {
    projects: BTreeMap<String, String>,
    tasks: BTreeMap<String, (String, String, i64)>,
    labels: BTreeMap<String, String>,
    links: BTreeSet<(String, String)>,
    comments: BTreeMap<String, (String, String)>,
}

impl World {
    /// Removes a task with its comments and links; returns the objects touched.
    fn drop_task(&mut self, task: &str) -> Vec<String> {
        let mut touched = vec![format!("T:{task}")];
        let comments: Vec<String> = self
            .comments
            .iter()
            .filter(|(_, (t, _))| t == task)
            .map(|(id, _)| id.clone())
            .collect();
        for id in comments {
            self.comments.remove(&id);
            touched.push(format!("C:{id}"));
        }
        let links: Vec<(String, String)> = self
            .links
            .iter()
            .filter(|(t, _)| t == task)
            .cloned()
            .collect();
        for link in links {
            touched.push(format!("TL:{}:{}", link.0, link.1));
            self.links.remove(&link);
        }
        self.tasks.remove(task);
        touched
    }

    /// The state of one object key, for deciding which objects a revert rewrites.
    fn object(&self, key: &str) -> Option<String> {
        let (kind, id) = key.split_once(':')?;
        match kind {
            "P" => self.projects.get(id).cloned(),
            "T" => self.tasks.get(id).map(|t| format!("{t:?}")),
            "L" => self.labels.get(id).cloned(),
            "C" => self.comments.get(id).map(|c| format!("{c:?}")),
            "TL" => {
                let (t, l) = id.split_once(':')?;
                self.links
                    .contains(&(t.to_owned(), l.to_owned()))
                    .then(String::new)
            }
            _ => None,
        }
    }
}

async fn database_world(app: &TestApp) -> World {
    let mut world = World::default();
    for p in entity::project::Entity::find()
        .all(&app.db)
        .await
        .expect("projects")
    {
        world.projects.insert(p.id.to_string(), p.name);
    }
    for t in entity::task::Entity::find()
        .all(&app.db)
        .await
        .expect("tasks")
    {
        world.tasks.insert(
            t.id.to_string(),
            (t.project_id.to_string(), t.title, i64::from(t.priority)),
        );
    }
    for l in entity::label::Entity::find()
        .all(&app.db)
        .await
        .expect("labels")
    {
        world.labels.insert(l.id.to_string(), l.name);
    }
    for l in entity::task_label::Entity::find()
        .all(&app.db)
        .await
        .expect("links")
    {
        world
            .links
            .insert((l.task_id.to_string(), l.label_id.to_string()));
    }
    for c in entity::comment::Entity::find()
        .all(&app.db)
        .await
        .expect("comments")
    {
        world
            .comments
            .insert(c.id.to_string(), (c.task_id.to_string(), c.body));
    }
    world
}

/// One round: who made it, the model before and after it, and the objects it wrote records for.
struct Round {
    id: String,
    user: &'static str,
    before: World,
    after: World,
    touched: BTreeSet<String>,
    reverted: bool,
}

fn id_of(reply: &crate::helpers::Reply, field: &str) -> String {
    reply.data()[field]["id"].as_str().expect("id").to_owned()
}

/// Runs one random mutation as `who`, updating `world`; returns the objects it wrote records for.
async fn random_mutation(
    app: &TestApp,
    rng: &mut Rng,
    who: &As<'_>,
    world: &mut World,
) -> Vec<String> {
    let projects: Vec<String> = world.projects.keys().cloned().collect();
    let tasks: Vec<String> = world.tasks.keys().cloned().collect();
    let labels: Vec<String> = world.labels.keys().cloned().collect();
    let comments: Vec<String> = world.comments.keys().cloned().collect();
    let names = ["red", "green", "blue", "gold", "grey"];
    let words = ["alpha", "beta", "gamma"];
    match rng.below(13) {
        0 | 1 => {
            let name = *rng.pick(&words).expect("word");
            let reply = app
                .send(
                    who,
                    "mutation($n: String!) { createProject(input: {name: $n}) { id } }",
                    json!({"n": name}),
                )
                .await;
            let id = id_of(&reply, "createProject");
            world.projects.insert(id.clone(), name.to_owned());
            vec![format!("P:{id}")]
        }
        2 => {
            let Some(id) = rng.pick(&projects).cloned() else {
                return vec![];
            };
            let name = *rng.pick(&words).expect("word");
            app.send(who, "mutation($id: ID!, $n: String!) { updateProject(id: $id, input: {name: $n}) { id } }", json!({"id": id, "n": name}))
                .await
                .data();
            let old = world.projects.insert(id.clone(), name.to_owned());
            if old.as_deref() == Some(name) {
                vec![]
            } else {
                vec![format!("P:{id}")]
            }
        }
        3 => {
            let Some(id) = rng.pick(&projects).cloned() else {
                return vec![];
            };
            app.send(
                who,
                "mutation($id: ID!) { deleteProject(id: $id) }",
                json!({"id": id}),
            )
            .await
            .data();
            let tasks: Vec<String> = world
                .tasks
                .iter()
                .filter(|(_, t)| t.0 == id)
                .map(|(k, _)| k.clone())
                .collect();
            let mut touched = vec![format!("P:{id}")];
            for task in tasks {
                touched.extend(world.drop_task(&task));
            }
            world.projects.remove(&id);
            touched
        }
        4 | 5 => {
            let Some(project) = rng.pick(&projects).cloned() else {
                return vec![];
            };
            let title = *rng.pick(&words).expect("word");
            let reply = app.send(who, "mutation($p: ID!, $t: String!) { createTask(input: {projectId: $p, title: $t}) { id } }", json!({"p": project, "t": title})).await;
            let id = id_of(&reply, "createTask");
            world
                .tasks
                .insert(id.clone(), (project, title.to_owned(), 0));
            vec![format!("T:{id}")]
        }
        6 => {
            let Some(id) = rng.pick(&tasks).cloned() else {
                return vec![];
            };
            let title = *rng.pick(&words).expect("word");
            let priority = i64::try_from(rng.below(3)).expect("small");
            app.send(who, "mutation($id: ID!, $t: String!, $p: Int!) { updateTask(id: $id, input: {title: $t, priority: $p}) { id } }", json!({"id": id, "t": title, "p": priority}))
                .await
                .data();
            let task = world.tasks.get_mut(&id).expect("modelled task");
            let changed = task.1 != title || task.2 != priority;
            task.1 = title.to_owned();
            task.2 = priority;
            if changed {
                vec![format!("T:{id}")]
            } else {
                vec![]
            }
        }
        7 => {
            let Some(id) = rng.pick(&tasks).cloned() else {
                return vec![];
            };
            app.send(
                who,
                "mutation($id: ID!) { deleteTask(id: $id) }",
                json!({"id": id}),
            )
            .await
            .data();
            world.drop_task(&id)
        }
        8 => {
            let name = *rng.pick(&names).expect("name");
            let reply = app.send(who, "mutation($n: String!) { createLabel(input: {name: $n, color: \"#101010\"}) { id } }", json!({"n": name})).await;
            if world.labels.values().any(|n| n == name) {
                assert_eq!(reply.code(), "BAD_INPUT", "a second label {name}");
                return vec![];
            }
            let id = id_of(&reply, "createLabel");
            world.labels.insert(id.clone(), name.to_owned());
            vec![format!("L:{id}")]
        }
        9 => {
            let Some(id) = rng.pick(&labels).cloned() else {
                return vec![];
            };
            app.send(
                who,
                "mutation($id: ID!) { deleteLabel(id: $id) }",
                json!({"id": id}),
            )
            .await
            .data();
            let mut touched = vec![format!("L:{id}")];
            let links: Vec<(String, String)> = world
                .links
                .iter()
                .filter(|(_, l)| *l == id)
                .cloned()
                .collect();
            for link in links {
                touched.push(format!("TL:{}:{}", link.0, link.1));
                world.links.remove(&link);
            }
            world.labels.remove(&id);
            touched
        }
        10 => {
            let (Some(task), Some(label)) = (rng.pick(&tasks).cloned(), rng.pick(&labels).cloned())
            else {
                return vec![];
            };
            let add = rng.chance(60);
            let query = if add {
                "mutation($t: ID!, $l: ID!) { addLabel(taskId: $t, labelId: $l) { id } }"
            } else {
                "mutation($t: ID!, $l: ID!) { removeLabel(taskId: $t, labelId: $l) { id } }"
            };
            app.send(who, query, json!({"t": task, "l": label}))
                .await
                .data();
            let link = (task.clone(), label.clone());
            let changed = if add {
                world.links.insert(link)
            } else {
                world.links.remove(&link)
            };
            if changed {
                vec![format!("TL:{task}:{label}")]
            } else {
                vec![]
            }
        }
        11 => {
            let Some(task) = rng.pick(&tasks).cloned() else {
                return vec![];
            };
            let body = *rng.pick(&words).expect("word");
            let reply = app.send(who, "mutation($t: ID!, $b: String!) { createComment(input: {taskId: $t, body: $b}) { id } }", json!({"t": task, "b": body})).await;
            let id = id_of(&reply, "createComment");
            world.comments.insert(id.clone(), (task, body.to_owned()));
            vec![format!("C:{id}")]
        }
        _ => {
            let Some(id) = rng.pick(&comments).cloned() else {
                return vec![];
            };
            app.send(
                who,
                "mutation($id: ID!) { deleteComment(id: $id) }",
                json!({"id": id}),
            )
            .await
            .data();
            world.comments.remove(&id);
            vec![format!("C:{id}")]
        }
    }
}

async fn revert(app: &TestApp, user: &str, id: &str) -> crate::helpers::Reply {
    app.send(
        &As::user(user),
        "mutation($id: String!) { revertAssignation(id: $id) { id } }",
        json!({"id": id}),
    )
    .await
}

async fn random_mutations_reverts_and_redos_match_an_in_memory_model(app: TestApp) {
    let rounds: usize = std::env::var("CHRONICLE_MODEL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if app.backend == Backend::Sqlite {
            800
        } else {
            120
        });
    let seed: u64 = std::env::var("CHRONICLE_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c0ff_ee15_b00d);
    println!("model test: {rounds} rounds, seed {seed}");
    let mut rng = Rng(seed);
    let users = ["alice", "bob", "carol"];
    let mut world = World::default();
    let mut history: Vec<Round> = Vec::new();
    let mut last_toucher: HashMap<String, String> = HashMap::new();
    let (mut reverts, mut redos, mut conflicts) = (0, 0, 0);

    for n in 0..rounds {
        let user = *rng.pick(&users).expect("user");
        let id = format!("round-{n}");
        let who = As::user(user).in_assignation(&id);
        let before = world.clone();
        let mut touched = BTreeSet::new();
        for _ in 0..=rng.below(4) {
            touched.extend(random_mutation(&app, &mut rng, &who, &mut world).await);
        }
        for object in &touched {
            last_toucher.insert(object.clone(), id.clone());
        }
        if !touched.is_empty() {
            history.push(Round {
                id,
                user,
                before,
                after: world.clone(),
                touched,
                reverted: false,
            });
        }

        // Revert the latest round, and sometimes redo it.
        if rng.chance(25) && history.last().is_some_and(|r| !r.reverted) {
            let latest = history.last_mut().expect("a round");
            let reply = revert(&app, latest.user, &latest.id).await;
            let undo = id_of(&reply, "revertAssignation");
            latest.reverted = true;
            reverts += 1;
            world = latest.before.clone();
            let rewritten: BTreeSet<String> = latest
                .touched
                .iter()
                .filter(|o| latest.before.object(o) != latest.after.object(o))
                .cloned()
                .collect();
            for object in &rewritten {
                last_toucher.insert(object.clone(), undo.clone());
            }
            assert_eq!(
                database_world(&app).await,
                world,
                "after reverting {} (seed {seed})",
                latest.id
            );
            let again = revert(&app, latest.user, &latest.id).await;
            assert_eq!(again.code(), "ALREADY_REVERTED");
            if !rewritten.is_empty() && rng.chance(50) {
                let (user, before, after) =
                    (latest.user, latest.before.clone(), latest.after.clone());
                let reply = revert(&app, user, &undo).await;
                let redo = id_of(&reply, "revertAssignation");
                redos += 1;
                world = after.clone();
                for object in &rewritten {
                    last_toucher.insert(object.clone(), redo.clone());
                }
                assert_eq!(
                    database_world(&app).await,
                    world,
                    "after redoing {undo} (seed {seed})"
                );
                history.push(Round {
                    id: redo,
                    user,
                    before,
                    after,
                    touched: rewritten,
                    reverted: false,
                });
            }
        }

        // An older round whose objects were changed since: a conflict, and nothing is written.
        if rng.chance(15) {
            let overlapped: Vec<usize> = history
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    !r.reverted && r.touched.iter().any(|o| last_toucher.get(o) != Some(&r.id))
                })
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = rng.pick(&overlapped) {
                let round = &history[i];
                let reply = revert(&app, round.user, &round.id).await;
                assert_eq!(
                    reply.code(),
                    "REVERT_CONFLICT",
                    "reverting {} (seed {seed}): {}",
                    round.id,
                    reply.body
                );
                conflicts += 1;
                let listed = reply.body["errors"][0]["extensions"]["conflicts"]
                    .as_array()
                    .expect("conflicts")
                    .len();
                assert!(listed > 0);
                assert_eq!(
                    database_world(&app).await,
                    world,
                    "a refused revert wrote (seed {seed})"
                );
            }
        }
        if n % 50 == 49 {
            assert_eq!(
                database_world(&app).await,
                world,
                "after round {n} (seed {seed})"
            );
            assert_history_consistent(&app).await;
        }
    }
    println!(
        "{} rounds kept, {reverts} reverts, {redos} redos, {conflicts} refused reverts",
        history.len()
    );
    assert!(
        reverts > 0 && redos > 0 && conflicts > 0,
        "the sequence exercised too little (seed {seed})"
    );
    assert_eq!(
        database_world(&app).await,
        world,
        "at the end (seed {seed})"
    );
    assert_history_consistent(&app).await;
}
