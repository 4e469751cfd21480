//! The bakery's GraphQL API: a few queries and mutations of its own, each mutation one transaction
//! opened with `sea_orm_history::begin`, and `sea-orm-history`'s history queries and revert
//! mutations merged in beside them. Nothing here writes history: the entities' hooks do.

use async_graphql::{
    ComplexObject, Context, EmptySubscription, ErrorExtensions, InputObject, Json, MergedObject,
    Object, Schema, SimpleObject,
};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Set, SqlErr,
};
use sea_orm_history::graphql::pagination::ListConnection;
use sea_orm_history::graphql::scalars::Timestamp;
use sea_orm_history::graphql::types::{HistoryRecord, object_history};
use sea_orm_history::graphql::{ChangeContextExtension, HistoryMutation, HistoryQuery};
use sea_orm_history::{EntitySet, HistoryError, query};

use crate::entities::{
    HistoryEntity, baker, bakery, cake, cakes_bakers, customer, lineitem, order,
};

/// The bakery's schema.
pub type BakerySchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema over `db`.
pub fn build(db: DatabaseConnection) -> BakerySchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .extension(ChangeContextExtension)
        .data(db)
        .finish()
}

/// A database error as the API's: a unique value taken or a missing reference is the caller's
/// mistake, anything else internal.
fn refused(e: DbErr) -> async_graphql::Error {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            HistoryError::BadInput("a value that must be unique is taken".into()).extend()
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            HistoryError::BadInput("a referenced row does not exist".into()).extend()
        }
        _ => HistoryError::from(e).extend(),
    }
}

fn db<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a DatabaseConnection> {
    sea_orm_history::graphql::database(ctx)
}

fn not_found(what: &str) -> async_graphql::Error {
    HistoryError::NotFound(what.to_owned()).extend()
}

fn decimal(field: &str, value: &str) -> async_graphql::Result<Decimal> {
    value
        .parse()
        .map_err(|_| HistoryError::BadInput(format!("{field} is not a decimal")).extend())
}

/// A bakery.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Bakery {
    /// Its key.
    pub id: i32,
    /// Its name.
    pub name: String,
    /// Its profit margin.
    pub profit_margin: f64,
}

#[ComplexObject]
impl Bakery {
    /// Its history, newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListConnection<HistoryRecord<HistoryEntity>>> {
        object_history(
            ctx,
            HistoryEntity::Bakery,
            &self.id.to_string(),
            first,
            after,
        )
        .await
    }
}

impl From<bakery::Model> for Bakery {
    fn from(m: bakery::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            profit_margin: m.profit_margin,
        }
    }
}

/// A baker.
#[derive(SimpleObject)]
pub struct Baker {
    /// Its key.
    pub id: i32,
    /// Their name.
    pub name: String,
    /// How to reach them.
    pub contact_details: Json<serde_json::Value>,
    /// Where they work.
    pub bakery_id: Option<i32>,
    /// Who manages them.
    pub manager_id: Option<i32>,
}

impl From<baker::Model> for Baker {
    fn from(m: baker::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            contact_details: Json(m.contact_details),
            bakery_id: m.bakery_id,
            manager_id: m.manager_id,
        }
    }
}

/// A cake.
#[derive(SimpleObject)]
pub struct Cake {
    /// Its key.
    pub id: i32,
    /// Unique.
    pub name: String,
    /// Its price, exact.
    pub price: String,
    /// Its bakery.
    pub bakery_id: Option<i32>,
    /// Whether it is gluten free.
    pub gluten_free: bool,
    /// Its serial number.
    pub serial: String,
}

impl From<cake::Model> for Cake {
    fn from(m: cake::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            price: m.price.to_string(),
            bakery_id: m.bakery_id,
            gluten_free: m.gluten_free,
            serial: m.serial.to_string(),
        }
    }
}

/// An order.
#[derive(SimpleObject)]
pub struct Order {
    /// Its key.
    pub id: i32,
    /// What it costs.
    pub total: String,
    /// The bakery.
    pub bakery_id: i32,
    /// The customer.
    pub customer_id: i32,
}

/// One line of a new order.
#[derive(InputObject)]
pub struct LineInput {
    /// The cake.
    pub cake_id: i32,
    /// The price of one.
    pub price: String,
    /// How many.
    pub quantity: i32,
}

/// The bakery's own queries.
#[derive(Default)]
pub struct BakeryQuery;

#[Object]
impl BakeryQuery {
    /// A bakery, now or as it was at `asOf`.
    async fn bakery(
        &self,
        ctx: &Context<'_>,
        id: i32,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Bakery>> {
        let db = db(ctx)?;
        let found = match as_of {
            Some(at) => {
                let registry = HistoryEntity::registry().map_err(|e| e.extend())?;
                query::model_as_of::<bakery::Entity, _>(db, registry, &id.to_string(), at.utc())
                    .await
                    .map_err(|e| e.extend())?
            }
            None => bakery::Entity::find_by_id(id)
                .one(db)
                .await
                .map_err(refused)?,
        };
        Ok(found.map(Bakery::from))
    }

    /// A cake, now or as it was at `asOf`.
    async fn cake(
        &self,
        ctx: &Context<'_>,
        id: i32,
        as_of: Option<Timestamp>,
    ) -> async_graphql::Result<Option<Cake>> {
        let db = db(ctx)?;
        let found = match as_of {
            Some(at) => {
                let registry = HistoryEntity::registry().map_err(|e| e.extend())?;
                query::model_as_of::<cake::Entity, _>(db, registry, &id.to_string(), at.utc())
                    .await
                    .map_err(|e| e.extend())?
            }
            None => cake::Entity::find_by_id(id)
                .one(db)
                .await
                .map_err(refused)?,
        };
        Ok(found.map(Cake::from))
    }

    /// A baker.
    async fn baker(&self, ctx: &Context<'_>, id: i32) -> async_graphql::Result<Option<Baker>> {
        Ok(baker::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .map(Baker::from))
    }
}

/// The bakery's own mutations.
#[derive(Default)]
pub struct BakeryMutation;

/// Runs `work` in one transaction of the request's change context and commits it.
async fn change<T, F>(ctx: &Context<'_>, work: F) -> async_graphql::Result<T>
where
    F: AsyncFnOnce(&sea_orm::DatabaseTransaction) -> Result<T, DbErr>,
{
    let txn = sea_orm_history::begin(db(ctx)?)
        .await
        .map_err(|e| e.extend())?;
    let value = work(&txn).await.map_err(refused)?;
    txn.commit().await.map_err(refused)?;
    Ok(value)
}

#[Object]
impl BakeryMutation {
    /// Opens a bakery.
    async fn create_bakery(
        &self,
        ctx: &Context<'_>,
        name: String,
        profit_margin: f64,
    ) -> async_graphql::Result<Bakery> {
        change(ctx, async |txn| {
            bakery::ActiveModel {
                name: Set(name),
                profit_margin: Set(profit_margin),
                ..Default::default()
            }
            .insert(txn)
            .await
        })
        .await
        .map(Bakery::from)
    }

    /// Renames a bakery.
    async fn rename_bakery(
        &self,
        ctx: &Context<'_>,
        id: i32,
        name: String,
    ) -> async_graphql::Result<Bakery> {
        let found = bakery::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .ok_or_else(|| not_found("bakery"))?;
        change(ctx, async |txn| {
            let mut active = found.into_active_model();
            active.name = Set(name);
            active.update(txn).await
        })
        .await
        .map(Bakery::from)
    }

    /// Closes a bakery: its cakes (with their bakers' links and line items) and orders go, its bakers
    /// stay without a bakery — as the foreign keys say, each with history.
    async fn delete_bakery(&self, ctx: &Context<'_>, id: i32) -> async_graphql::Result<i32> {
        let found = bakery::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .ok_or_else(|| not_found("bakery"))?;
        // Through the ActiveModel, whose hooks write history (`delete_by_id` would skip them).
        change(ctx, async |txn| {
            found.into_active_model().delete(txn).await.map(|_| ())
        })
        .await?;
        Ok(id)
    }

    /// Hires a baker.
    async fn create_baker(
        &self,
        ctx: &Context<'_>,
        name: String,
        bakery_id: Option<i32>,
        manager_id: Option<i32>,
        contact_details: Option<Json<serde_json::Value>>,
    ) -> async_graphql::Result<Baker> {
        change(ctx, async |txn| {
            baker::ActiveModel {
                name: Set(name),
                bakery_id: Set(bakery_id),
                manager_id: Set(manager_id),
                contact_details: Set(contact_details.map_or(serde_json::json!({}), |j| j.0)),
                ..Default::default()
            }
            .insert(txn)
            .await
        })
        .await
        .map(Baker::from)
    }

    /// A baker leaves: their reports stay, without a manager; their cake links go.
    async fn delete_baker(&self, ctx: &Context<'_>, id: i32) -> async_graphql::Result<i32> {
        let found = baker::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .ok_or_else(|| not_found("baker"))?;
        change(ctx, async |txn| {
            found.into_active_model().delete(txn).await.map(|_| ())
        })
        .await?;
        Ok(id)
    }

    /// Adds a cake.
    async fn create_cake(
        &self,
        ctx: &Context<'_>,
        name: String,
        price: String,
        bakery_id: Option<i32>,
        #[graphql(default = false)] gluten_free: bool,
    ) -> async_graphql::Result<Cake> {
        let price = decimal("price", &price)?;
        change(ctx, async |txn| {
            cake::ActiveModel {
                name: Set(name),
                price: Set(price),
                bakery_id: Set(bakery_id),
                gluten_free: Set(gluten_free),
                serial: Set(uuid::Uuid::now_v7()),
                ..Default::default()
            }
            .insert(txn)
            .await
        })
        .await
        .map(Cake::from)
    }

    /// Changes a cake's name or price.
    async fn update_cake(
        &self,
        ctx: &Context<'_>,
        id: i32,
        name: Option<String>,
        price: Option<String>,
    ) -> async_graphql::Result<Cake> {
        let price = price.map(|p| decimal("price", &p)).transpose()?;
        let found = cake::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .ok_or_else(|| not_found("cake"))?;
        change(ctx, async |txn| {
            let mut active = found.into_active_model();
            if let Some(name) = name {
                active.name = Set(name);
            }
            if let Some(price) = price {
                active.price = Set(price);
            }
            active.update(txn).await
        })
        .await
        .map(Cake::from)
    }

    /// Removes a cake, with its bakers' links and line items.
    async fn delete_cake(&self, ctx: &Context<'_>, id: i32) -> async_graphql::Result<i32> {
        let found = cake::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(refused)?
            .ok_or_else(|| not_found("cake"))?;
        change(ctx, async |txn| {
            found.into_active_model().delete(txn).await.map(|_| ())
        })
        .await?;
        Ok(id)
    }

    /// Says that a baker bakes a cake.
    async fn add_baker(
        &self,
        ctx: &Context<'_>,
        cake_id: i32,
        baker_id: i32,
    ) -> async_graphql::Result<bool> {
        change(ctx, async |txn| {
            cakes_bakers::ActiveModel {
                cake_id: Set(cake_id),
                baker_id: Set(baker_id),
            }
            .insert(txn)
            .await
            .map(|_| true)
        })
        .await
    }

    /// Registers a customer.
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        name: String,
        notes: Option<String>,
    ) -> async_graphql::Result<i32> {
        change(ctx, async |txn| {
            customer::ActiveModel {
                name: Set(name),
                notes: Set(notes),
                ..Default::default()
            }
            .insert(txn)
            .await
            .map(|c| c.id)
        })
        .await
    }

    /// Places an order with its lines, in one transaction.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        bakery_id: i32,
        customer_id: i32,
        lines: Vec<LineInput>,
    ) -> async_graphql::Result<Order> {
        let mut priced = Vec::with_capacity(lines.len());
        let mut total = Decimal::ZERO;
        for line in lines {
            let price = decimal("price", &line.price)?;
            total += price * Decimal::from(line.quantity);
            priced.push((line, price));
        }
        let placed_at = chrono::Utc::now().naive_utc().with_nanosecond_zeroed();
        let created = change(ctx, async |txn| {
            let created = order::ActiveModel {
                total: Set(total),
                bakery_id: Set(bakery_id),
                customer_id: Set(customer_id),
                placed_at: Set(placed_at),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            for (line, price) in priced {
                lineitem::ActiveModel {
                    price: Set(price),
                    quantity: Set(line.quantity),
                    order_id: Set(created.id),
                    cake_id: Set(line.cake_id),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
            }
            Ok(created)
        })
        .await?;
        Ok(Order {
            id: created.id,
            total: created.total.to_string(),
            bakery_id: created.bakery_id,
            customer_id: created.customer_id,
        })
    }
}

/// Seconds only: every backend keeps them exactly.
trait WholeSeconds {
    fn with_nanosecond_zeroed(self) -> Self;
}

impl WholeSeconds for chrono::NaiveDateTime {
    fn with_nanosecond_zeroed(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// Every query: the bakery's and the history library's.
#[derive(MergedObject, Default)]
pub struct Query(BakeryQuery, HistoryQuery<HistoryEntity>);

/// Every mutation: the bakery's and the history library's reverts.
#[derive(MergedObject, Default)]
pub struct Mutation(BakeryMutation, HistoryMutation<HistoryEntity>);
