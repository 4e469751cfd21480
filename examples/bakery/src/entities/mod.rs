//! sea-orm's bakery schema, as its test suite and docs have it (auto-increment integer keys,
//! decimals, a JSON column, a composite key, `ON DELETE CASCADE` and `SET NULL`), plus a baker's
//! manager (a key to the same table). Each entity is historized by its one `historized!` line, and
//! [`HistoryEntity`] lists them.

pub mod baker;
pub mod bakery;
pub mod cake;
pub mod cakes_bakers;
pub mod customer;
pub mod lineitem;
pub mod order;

sea_orm_history::registry! {
    /// Every historized entity of the bakery.
    #[derive(async_graphql::Enum)]
    pub enum HistoryEntity {
        /// A bakery.
        Bakery => bakery::Entity,
        /// A baker.
        Baker => baker::Entity,
        /// A cake.
        Cake => cake::Entity,
        /// A cake–baker link (object id `"<cakeId>:<bakerId>"`).
        CakesBakers => cakes_bakers::Entity,
        /// A customer.
        Customer => customer::Entity,
        /// An order.
        Order => order::Entity,
        /// A line item.
        Lineitem => lineitem::Entity,
    }
}
