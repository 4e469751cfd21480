//! Declaring an entity historized, and what the engine knows of it.
//!
//! [`historized!`](crate::historized) in an entity's module is the one declaration: it implements
//! [`Historized`] (with the options of a [`Declaration`]) and the `ActiveModelBehavior` hooks that write
//! history. Everything else comes from sea-orm's own metadata and becomes an [`EntityInfo`]: the table,
//! the columns and their types (snapshots), the primary key (object ids, composite keys included), the
//! `belongs_to` relations (parents, and with them dependents and the order of a revert), unique
//! columns (clashes a revert must report).

use std::fmt;
use std::sync::Arc;

use sea_orm::sea_query::{ColumnType, Expr, ForeignKeyAction};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IdenStatic, Iterable, ModelTrait,
    PrimaryKeyToColumn, RelationTrait, TryIntoModel,
};
use serde_json::{Map, Value as Json};

use crate::error::HistoryError;
use crate::snapshot::{self, camel_case, value_to_json};

/// A historized sea-orm entity. Implemented by [`historized!`](crate::historized), never by hand.
pub trait Historized: EntityTrait {
    /// The options of the declaration.
    fn declare() -> Declaration<Self>;
}

/// Where the records of an entity belong for timelines (their `scope_id`).
enum ScopeOption<E: EntityTrait> {
    None,
    Root,
    Via(E::Relation),
}

/// The options of [`historized!`](crate::historized), each a method: `historized!(touch =
/// [Column::UpdatedAt], scope = Relation::Bakery)`.
pub struct Declaration<E: EntityTrait> {
    name: Option<String>,
    touch: Vec<E::Column>,
    scope: ScopeOption<E>,
    unique: Vec<Vec<E::Column>>,
}

impl<E: EntityTrait> Default for Declaration<E> {
    fn default() -> Self {
        Self {
            name: None,
            touch: Vec::new(),
            scope: ScopeOption::None,
            unique: Vec::new(),
        }
    }
}

impl<E: EntityTrait> Declaration<E> {
    /// A declaration with every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entity's name in history records and in the API (default: the table's name in upper case,
    /// `cakes_bakers` → `CAKES_BAKERS`).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Columns that say when a row last changed (`updated_at`): a revert sets them to its own time
    /// rather than back to their old values, and a revert whose other columns already hold the target
    /// values changes nothing.
    #[must_use]
    pub fn touch(mut self, columns: impl IntoIterator<Item = E::Column>) -> Self {
        self.touch.extend(columns);
        self
    }

    /// Records of this entity belong to the scope of the parent `via` points to (a `belongs_to`
    /// relation), for timelines: a cake's records belong to its bakery's scope.
    #[must_use]
    pub fn scope(mut self, via: E::Relation) -> Self {
        self.scope = ScopeOption::Via(via);
        self
    }

    /// With `true`, each object is a scope of its own (a bakery is its own timeline).
    #[must_use]
    pub fn scope_root(mut self, root: bool) -> Self {
        if root {
            self.scope = ScopeOption::Root;
        }
        self
    }

    /// A unique key of several columns (one-column unique keys come from sea-orm's `unique`
    /// attribute), so that a revert reports a value taken since as a conflict.
    #[must_use]
    pub fn unique(mut self, columns: impl IntoIterator<Item = E::Column>) -> Self {
        self.unique.push(columns.into_iter().collect());
        self
    }
}

/// Rewrites an expression for one column (enum casts on PostgreSQL).
type Cast = Arc<dyn Fn(Expr) -> Expr + Send + Sync>;

/// One column of a historized table.
#[derive(Clone)]
pub struct ColumnInfo {
    /// The column's name in the table.
    pub name: String,
    /// Its field in snapshots (the name in camelCase).
    pub field: String,
    /// Its type.
    pub ty: ColumnType,
    /// Whether it may hold NULL.
    pub nullable: bool,
    pub(crate) save_as: Cast,
    pub(crate) select_as: Cast,
}

impl fmt::Debug for ColumnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ColumnInfo")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .finish_non_exhaustive()
    }
}

/// What the database does to a row when the row its foreign key points to is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    /// The delete is refused while the row exists (`RESTRICT`, `NO ACTION`, or nothing said).
    Restrict,
    /// The row is deleted too.
    Cascade,
    /// The foreign key is set to NULL.
    SetNull,
}

/// A `belongs_to` relation: columns of this table pointing at another table's columns.
#[derive(Clone, Debug)]
pub struct ForeignKey {
    /// Indexes into [`EntityInfo::columns`] of the referencing columns.
    pub columns: Vec<usize>,
    /// The referenced table.
    pub parent_table: String,
    /// The referenced columns.
    pub parent_columns: Vec<String>,
    /// What a delete of the parent does to this row.
    pub on_delete: OnDelete,
}

/// Where an entity's records belong for timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeRule {
    /// Nowhere (shared objects).
    None,
    /// Each object is its own scope.
    Root,
    /// The scope of the parent of this foreign key (an index into [`EntityInfo::parents`]).
    Via(usize),
}

/// Everything the engine knows about one historized entity.
#[derive(Clone, Debug)]
pub struct EntityInfo {
    /// Its name in records and in the API (`CAKES_BAKERS`).
    pub name: String,
    /// The base table.
    pub table: String,
    /// The history table (`<table>_history`).
    pub history_table: String,
    /// Every column, in the entity's order.
    pub columns: Vec<ColumnInfo>,
    /// The primary key: indexes into `columns`.
    pub key: Vec<usize>,
    /// The `belongs_to` relations.
    pub parents: Vec<ForeignKey>,
    /// Columns a revert sets to its own time (see [`Declaration::touch`]).
    pub touch: Vec<usize>,
    /// Where records belong for timelines.
    pub scope: ScopeRule,
    /// Unique keys besides the primary key: indexes into `columns`.
    pub unique: Vec<Vec<usize>>,
}

/// The action sea-orm records for a relation, as the engine acts on it.
fn on_delete(action: Option<&ForeignKeyAction>) -> OnDelete {
    match action {
        Some(ForeignKeyAction::Cascade) => OnDelete::Cascade,
        Some(ForeignKeyAction::SetNull) => OnDelete::SetNull,
        _ => OnDelete::Restrict,
    }
}

fn iden_names(identity: &sea_orm::Identity) -> Vec<String> {
    identity.iter().map(ToString::to_string).collect()
}

fn table_of(table: &sea_orm::sea_query::TableRef) -> String {
    match table {
        sea_orm::sea_query::TableRef::Table(name, _) => name.1.to_string(),
        other => format!("{other:?}"),
    }
}

impl EntityInfo {
    /// What sea-orm's metadata and the declaration say about `E`.
    ///
    /// # Errors
    /// [`HistoryError::Registry`] for a column type snapshots cannot hold.
    pub fn of<E>() -> Result<Self, HistoryError>
    where
        E: Historized,
        E::Column: Send + Sync + 'static,
    {
        let declaration = E::declare();
        let table = E::default().table_name().to_owned();
        let all: Vec<E::Column> = E::Column::iter().collect();
        let index = |column: &E::Column| all.iter().position(|c| c.as_str() == column.as_str());
        let mut columns = Vec::with_capacity(all.len());
        for column in &all {
            let def = column.def();
            let ty = def.get_column_type().clone();
            if !snapshot::supported(&ty) {
                return Err(HistoryError::Registry(format!(
                    "{table}.{}: columns of type {ty:?} cannot be historized",
                    column.as_str()
                )));
            }
            let (save, select) = (*column, *column);
            columns.push(ColumnInfo {
                name: column.as_str().to_owned(),
                field: camel_case(column.as_str()),
                ty,
                nullable: def.is_null(),
                save_as: Arc::new(move |e| save.save_as(e)),
                select_as: Arc::new(move |e| select.select_as(e)),
            });
        }
        let key = E::PrimaryKey::iter()
            .filter_map(|k| index(&k.into_column()))
            .collect();
        let mut parents = Vec::new();
        let mut scope = match declaration.scope {
            ScopeOption::None => ScopeRule::None,
            ScopeOption::Root => ScopeRule::Root,
            ScopeOption::Via(_) => ScopeRule::None,
        };
        for relation in E::Relation::iter() {
            let def = relation.def();
            // A `belongs_to`: this table holds the key (sea-orm marks the other side as the owner).
            if def.is_owner || table_of(&def.from_tbl) != table {
                continue;
            }
            let from = iden_names(&def.from_col);
            let columns_of: Vec<usize> = from
                .iter()
                .filter_map(|name| all.iter().position(|c| c.as_str() == name))
                .collect();
            if columns_of.len() != from.len() {
                return Err(HistoryError::Registry(format!(
                    "{table}: a relation names columns it does not have ({from:?})"
                )));
            }
            if let ScopeOption::Via(via) = &declaration.scope
                && format!("{via:?}") == format!("{relation:?}")
            {
                scope = ScopeRule::Via(parents.len());
            }
            parents.push(ForeignKey {
                columns: columns_of,
                parent_table: table_of(&def.to_tbl),
                parent_columns: iden_names(&def.to_col),
                on_delete: on_delete(def.on_delete.as_ref()),
            });
        }
        if matches!(declaration.scope, ScopeOption::Via(_)) && scope == ScopeRule::None {
            return Err(HistoryError::Registry(format!(
                "{table}: `scope` must name a belongs_to relation of the entity"
            )));
        }
        let mut unique: Vec<Vec<usize>> = all
            .iter()
            .enumerate()
            .filter(|(_, c)| c.def().is_unique())
            .map(|(i, _)| vec![i])
            .collect();
        unique.extend(
            declaration
                .unique
                .iter()
                .map(|key| key.iter().filter_map(index).collect::<Vec<_>>()),
        );
        let touch: Vec<usize> = declaration.touch.iter().filter_map(index).collect();
        for &i in &touch {
            let column = &columns[i];
            if !matches!(
                column.ty,
                ColumnType::DateTime
                    | ColumnType::Timestamp
                    | ColumnType::TimestampWithTimeZone
                    | ColumnType::Date
            ) {
                return Err(HistoryError::Registry(format!(
                    "{table}: the touch column {} is a {:?}; a revert can only stamp its time on a date \
                     or time column",
                    column.field, column.ty
                )));
            }
        }
        let name = declaration
            .name
            .unwrap_or_else(|| table.to_ascii_uppercase());
        Ok(Self {
            history_table: format!("{table}_history"),
            name,
            table,
            columns,
            key,
            parents,
            touch,
            scope,
            unique,
        })
    }

    /// The snapshot of `model`.
    ///
    /// # Errors
    /// A value of a type snapshots cannot hold.
    pub fn snapshot_of<M: ModelTrait>(&self, model: &M) -> Result<Json, HistoryError> {
        let mut fields = Map::new();
        for column in <M::Entity as EntityTrait>::Column::iter() {
            fields.insert(
                camel_case(column.as_str()),
                value_to_json(model.get(column))?,
            );
        }
        Ok(Json::Object(fields))
    }

    /// The snapshot of the row `active` would write, when every column holds a value (set or
    /// unchanged); `None` when one is not set.
    ///
    /// # Errors
    /// [`HistoryError::Malformed`] for a value no snapshot can hold.
    pub(crate) fn snapshot_of_active<A: ActiveModelTrait>(
        &self,
        active: &A,
    ) -> Result<Option<Json>, HistoryError> {
        let mut fields = Map::new();
        for column in <A::Entity as EntityTrait>::Column::iter() {
            let Some(value) = active.get(column).into_value() else {
                return Ok(None);
            };
            fields.insert(camel_case(column.as_str()), value_to_json(value)?);
        }
        Ok(Some(Json::Object(fields)))
    }

    /// The model of `E` a snapshot of this entity holds.
    ///
    /// # Errors
    /// [`HistoryError::Malformed`] when the snapshot does not fit the model.
    pub fn model_of<E>(&self, snapshot: &Json) -> Result<E::Model, HistoryError>
    where
        E: EntityTrait,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        let mut active = <E::ActiveModel as ActiveModelTrait>::default();
        for column in E::Column::iter() {
            let info = self.column(column.as_str()).ok_or_else(|| {
                HistoryError::Malformed(format!("{} has no column {}", self.name, column.as_str()))
            })?;
            let value = snapshot::json_to_value(
                &info.ty,
                snapshot.get(&info.field).unwrap_or(&Json::Null),
            )?;
            active
                .try_set(column, value)
                .map_err(|e| HistoryError::Malformed(e.to_string()))?;
        }
        active
            .try_into_model()
            .map_err(|e| HistoryError::Malformed(e.to_string()))
    }

    /// The object id of the row whose snapshot is `snapshot`.
    pub fn object_id(&self, snapshot: &Json) -> String {
        let parts: Vec<Json> = self
            .key
            .iter()
            .map(|&i| {
                snapshot
                    .get(&self.columns[i].field)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        snapshot::object_id(&parts)
    }

    /// The key values of `object_id` as JSON, one per key column, or `None` when it is not an id of
    /// this entity.
    pub fn key_of(&self, object_id: &str) -> Option<Vec<Json>> {
        let parts = snapshot::key_parts(object_id, self.key.len())?;
        self.key
            .iter()
            .zip(parts)
            .map(|(&i, part)| snapshot::key_json(&self.columns[i].ty, &part))
            .collect()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Declares the entity of the module it is called in historized: implements [`Historized`] with the
/// given [`Declaration`] options and the `ActiveModelBehavior` hooks that write a history record, in
/// the change's own transaction, for every `insert`, `update`, `save` and `delete` of an `ActiveModel`.
///
/// ```ignore
/// sea_orm_history::historized!();
/// sea_orm_history::historized!(touch = [Column::UpdatedAt], scope = Relation::Bakery);
/// ```
///
/// An entity with an `ActiveModelBehavior` of its own writes `historized!(@without_behavior ...)` and
/// calls [`crate::capture::before_save`], [`crate::capture::after_save`],
/// [`crate::capture::before_delete`] and [`crate::capture::after_delete`] from its hooks.
///
/// Names starting with `_h_` are the history writer's own: the registry refuses a historized table
/// or column named so.
#[macro_export]
macro_rules! historized {
    (@without_behavior $($option:ident = $value:expr),* $(,)?) => {
        impl $crate::Historized for Entity {
            fn declare() -> $crate::Declaration<Self> {
                $crate::Declaration::new()$(.$option($value))*
            }
        }

        $crate::__private::inventory::submit! {
            $crate::__private::Declared::new(|| $crate::__private::sea_orm::EntityName::table_name(&Entity))
        }
    };
    ($($option:ident = $value:expr),* $(,)?) => {
        $crate::historized!(@without_behavior $($option = $value),*);

        #[$crate::__private::async_trait::async_trait]
        impl $crate::__private::sea_orm::ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(
                self,
                _db: &C,
                _insert: bool,
            ) -> ::std::result::Result<Self, $crate::__private::sea_orm::DbErr>
            where
                C: $crate::__private::sea_orm::ConnectionTrait,
            {
                $crate::capture::before_save::<Entity>()?;
                Ok(self)
            }

            async fn after_save<C>(
                model: Model,
                db: &C,
                insert: bool,
            ) -> ::std::result::Result<Model, $crate::__private::sea_orm::DbErr>
            where
                C: $crate::__private::sea_orm::ConnectionTrait,
            {
                $crate::capture::after_save::<Entity, C>(db, &model, insert).await?;
                Ok(model)
            }

            async fn before_delete<C>(
                self,
                db: &C,
            ) -> ::std::result::Result<Self, $crate::__private::sea_orm::DbErr>
            where
                C: $crate::__private::sea_orm::ConnectionTrait,
            {
                $crate::capture::before_delete::<Entity, Self, C>(db, &self).await?;
                Ok(self)
            }

            async fn after_delete<C>(
                self,
                db: &C,
            ) -> ::std::result::Result<Self, $crate::__private::sea_orm::DbErr>
            where
                C: $crate::__private::sea_orm::ConnectionTrait,
            {
                $crate::capture::after_delete::<Entity, Self, C>(db, &self).await?;
                Ok(self)
            }
        }
    };
}
