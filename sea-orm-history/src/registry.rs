//! The one list of an application's historized entities. [`registry!`](macro@crate::registry) declares it
//! as an enum (`HistoryEntity`, the API's enum too); everything that needs "all entities" reads it:
//! the parents-first order of a revert, dependents, verify, prune, assignation listings.
//!
//! Building a registry checks it: names and tables are unique; a foreign key whose `ON DELETE` would
//! make the database change a historized row (`CASCADE`, `SET NULL`) points at a historized table (the
//! engine then makes that change itself, with history); the entities' parents form no cycle other than
//! an entity pointing at itself. [`Registry::check_declared`] also checks that every entity declared
//! with [`historized!`](crate::historized) in the program is registered, so that a forgotten
//! registration line stops the program at start-up rather than go unnoticed.

use std::collections::BTreeSet;

use crate::entity::{EntityInfo, ForeignKey, Historized, OnDelete};
use crate::error::HistoryError;

/// An entity declared with [`historized!`](crate::historized), collected at link time.
#[doc(hidden)]
pub struct Declared {
    table: fn() -> &'static str,
}

impl Declared {
    #[doc(hidden)]
    pub const fn new(table: fn() -> &'static str) -> Self {
        Self { table }
    }
}

inventory::collect!(Declared);

/// The historized entities of an application, parents first.
#[derive(Debug)]
pub struct Registry {
    entities: Vec<EntityInfo>,
}

/// Collects the entities of a [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    entities: Vec<Result<EntityInfo, HistoryError>>,
}

impl RegistryBuilder {
    /// Adds `E`.
    #[must_use]
    pub fn entity<E>(mut self) -> Self
    where
        E: Historized,
        E::Column: Send + Sync + 'static,
    {
        self.entities.push(EntityInfo::of::<E>());
        self
    }

    /// The registry, checked: names and tables unique, a cascade only from a historized table, no
    /// cycle of parents between tables, no table or column whose name starts with `_h_` (as the
    /// history writer's own names do).
    ///
    /// # Errors
    /// [`HistoryError::Registry`] naming what is wrong.
    pub fn build(self) -> Result<Registry, HistoryError> {
        let entities = self.entities.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut names = BTreeSet::new();
        let mut tables = BTreeSet::new();
        for e in &entities {
            if !names.insert(e.name.clone()) {
                return Err(HistoryError::Registry(format!(
                    "two entities are named {}",
                    e.name
                )));
            }
            if !tables.insert(e.table.clone()) {
                return Err(HistoryError::Registry(format!(
                    "{} is registered twice",
                    e.table
                )));
            }
            if let Some(name) = std::iter::once(&e.table)
                .chain(e.columns.iter().map(|c| &c.name))
                .find(|name| name.starts_with(RESERVED_PREFIX))
            {
                return Err(HistoryError::Registry(format!(
                    "{}: the name {name} starts with {RESERVED_PREFIX}, which the history writer keeps \
                     for the names in its own statements; rename it",
                    e.table
                )));
            }
        }
        for e in &entities {
            for fk in &e.parents {
                if fk.on_delete != OnDelete::Restrict && !tables.contains(&fk.parent_table) {
                    return Err(HistoryError::Registry(format!(
                        "{}: its foreign key to {} has ON DELETE {:?}, so deleting a row of {} (which \
                         is not historized) would change {} rows without history; historize {} too, or \
                         make the key RESTRICT",
                        e.table,
                        fk.parent_table,
                        fk.on_delete,
                        fk.parent_table,
                        e.table,
                        fk.parent_table
                    )));
                }
            }
        }
        Ok(Registry {
            entities: parents_first(entities)?,
        })
    }
}

/// The prefix of the names the history writer gives its statements' parts (common table expressions,
/// the columns of its outcome, the markers of table names); a historized table or column named with
/// it could be taken for one of them, so the registry refuses it.
pub(crate) const RESERVED_PREFIX: &str = "_h_";

/// Orders `entities` so that every entity comes after the entities it points to (ties keep the
/// registration order).
fn parents_first(mut pending: Vec<EntityInfo>) -> Result<Vec<EntityInfo>, HistoryError> {
    let mut ordered: Vec<EntityInfo> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let tables: BTreeSet<&str> = pending.iter().map(|e| e.table.as_str()).collect();
        let ready = pending.iter().position(|e| {
            e.parents
                .iter()
                .all(|fk| fk.parent_table == e.table || !tables.contains(fk.parent_table.as_str()))
        });
        let Some(ready) = ready else {
            let cycle: Vec<&str> = tables.into_iter().collect();
            return Err(HistoryError::Registry(format!(
                "the foreign keys of {cycle:?} form a cycle: the engine needs parents it can restore \
                 before their children"
            )));
        };
        ordered.push(pending.remove(ready));
    }
    Ok(ordered)
}

impl Registry {
    /// A builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Every entity, parents before children.
    pub fn entities(&self) -> &[EntityInfo] {
        &self.entities
    }

    /// The entity named `name` (`CAKES_BAKERS`).
    pub fn get(&self, name: &str) -> Option<&EntityInfo> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// The entity of `table`.
    pub fn by_table(&self, table: &str) -> Option<&EntityInfo> {
        self.entities.iter().find(|e| e.table == table)
    }

    /// The entity `E`.
    ///
    /// # Errors
    /// [`HistoryError::NotRegistered`] when `E` is not in this registry.
    pub fn of<E: sea_orm::EntityName>(&self) -> Result<&EntityInfo, HistoryError> {
        let table = E::default().table_name();
        self.by_table(table)
            .ok_or_else(|| HistoryError::NotRegistered(table.to_owned()))
    }

    /// The entities with a foreign key to `table`, with that key, children-first (the reverse of
    /// [`Registry::entities`]: the order deletes go in).
    pub fn dependents_of<'a>(
        &'a self,
        table: &'a str,
    ) -> impl Iterator<Item = (&'a EntityInfo, &'a ForeignKey)> + 'a {
        self.entities.iter().rev().flat_map(move |e| {
            e.parents
                .iter()
                .filter(move |fk| fk.parent_table == table)
                .map(move |fk| (e, fk))
        })
    }

    /// Checks that every entity declared with [`historized!`](crate::historized) in this program is in
    /// this registry.
    ///
    /// # Errors
    /// [`HistoryError::Registry`] naming the tables declared but not registered.
    pub fn check_declared(&self) -> Result<(), HistoryError> {
        let missing: BTreeSet<&str> = inventory::iter::<Declared>
            .into_iter()
            .map(|d| (d.table)())
            .filter(|t| self.by_table(t).is_none())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            let tables: Vec<&str> = missing.into_iter().collect();
            Err(HistoryError::Registry(match tables.as_slice() {
                [table] => format!(
                    "the entity of table {table} is declared historized but not registered: add it \
                     to the registry"
                ),
                _ => format!(
                    "the entities of tables {} are declared historized but not registered: add \
                     them to the registry",
                    tables.join(", ")
                ),
            }))
        }
    }

    /// The registry for the rest of the program (the [`ChangeContext`](crate::ChangeContext) holds a
    /// `'static` reference).
    pub fn leak(self) -> &'static Registry {
        Box::leak(Box::new(self))
    }
}

/// An application's set of historized entities as an enum, declared with
/// [`registry!`](macro@crate::registry): the registry it stands for, and each variant's entity.
pub trait EntitySet: Copy + Eq + Send + Sync + 'static {
    /// Every variant, in declaration order.
    const ALL: &'static [Self];

    /// The registry of these entities, built and checked on first use (the checks include
    /// [`Registry::check_declared`]).
    ///
    /// # Errors
    /// [`HistoryError::Registry`] when it does not check.
    fn registry() -> Result<&'static Registry, HistoryError>;

    /// The entity's name in records and in the API (`CAKES_BAKERS`).
    fn name(self) -> &'static str;

    /// The variant of an entity's name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }
}

/// `CakesBakers` as `CAKES_BAKERS`: how a variant's name becomes an entity's name.
#[doc(hidden)]
pub fn screaming_snake(variant: &str) -> String {
    inflector::cases::screamingsnakecase::to_screaming_snake_case(variant)
}

/// Builds the registry of `entities`, named after `variants`, and checks each variant's name is its
/// entity's; the error is what [`HistoryError::Registry`] says after its prefix, for the registry to
/// keep and give again.
#[doc(hidden)]
pub fn build_checked(
    builder: RegistryBuilder,
    variants: &[&str],
) -> Result<&'static Registry, String> {
    build_and_check(builder, variants).map_err(|e| match e {
        HistoryError::Registry(message) => message,
        other => other.to_string(),
    })
}

fn build_and_check(
    builder: RegistryBuilder,
    variants: &[&str],
) -> Result<&'static Registry, HistoryError> {
    let names: Vec<String> = builder
        .entities
        .iter()
        .map(|e| e.as_ref().map(|e| e.name.clone()).unwrap_or_default())
        .collect();
    let registry = builder.build()?;
    for (variant, name) in variants.iter().zip(&names) {
        if screaming_snake(variant) != *name {
            return Err(HistoryError::Registry(format!(
                "the variant {variant} stands for the entity named {name}: name the variant after it, or \
                 declare the entity with name = \"{}\"",
                screaming_snake(variant)
            )));
        }
    }
    registry.check_declared()?;
    Ok(registry.leak())
}

/// Declares an application's historized entities as an enum: one variant per entity, named after it
/// (`CakesBakers` for `CAKES_BAKERS`). The enum implements [`EntitySet`]; attributes given to it are
/// kept, so that `#[derive(async_graphql::Enum)]` makes it the API's `HistoryEntity` for the
/// `graphql` feature's types.
///
/// ```ignore
/// sea_orm_history::registry! {
///     /// Every historized entity of the bakery.
///     #[derive(async_graphql::Enum)]
///     pub enum HistoryEntity {
///         /// A bakery.
///         Bakery => bakery::Entity,
///         /// A cake.
///         Cake => cake::Entity,
///     }
/// }
/// ```
#[macro_export]
macro_rules! registry {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $entity:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }
        $crate::__registry_impl!($name { $($variant => $entity),+ });
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __registry_impl {
    ($name:ident { $($variant:ident => $entity:ty),+ }) => {
        impl $crate::EntitySet for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            fn registry() -> ::std::result::Result<&'static $crate::Registry, $crate::HistoryError> {
                static REGISTRY: ::std::sync::OnceLock<
                    ::std::result::Result<&'static $crate::Registry, ::std::string::String>,
                > = ::std::sync::OnceLock::new();
                REGISTRY
                    .get_or_init(|| {
                        $crate::__private::build_checked(
                            $crate::Registry::builder()$(.entity::<$entity>())+,
                            &[$(stringify!($variant)),+],
                        )
                    })
                    .clone()
                    .map_err($crate::HistoryError::Registry)
            }

            fn name(self) -> &'static str {
                static NAMES: ::std::sync::OnceLock<::std::vec::Vec<::std::string::String>> =
                    ::std::sync::OnceLock::new();
                let names = NAMES.get_or_init(|| {
                    ::std::vec![$($crate::__private::screaming_snake(stringify!($variant))),+]
                });
                let index = Self::ALL.iter().position(|v| *v == self).unwrap_or(0);
                names.get(index).map(::std::string::String::as_str).unwrap_or("")
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::screaming_snake;

    #[test]
    fn a_variant_name_becomes_an_entity_name() {
        assert_eq!(screaming_snake("OrderLine"), "ORDER_LINE");
        assert_eq!(screaming_snake("Bakery"), "BAKERY");
        assert_eq!(screaming_snake("CakesBakers"), "CAKES_BAKERS");
        assert_eq!(
            screaming_snake("HTTPLog"),
            "HTTP_LOG",
            "as async-graphql names enum values"
        );
    }
}
