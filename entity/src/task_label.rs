//! `task_label`: the link between a task and a label, historized like any entity in
//! `task_label_history` with the object id `"<taskId>:<labelId>"`.

use sea_orm::entity::prelude::*;

/// A task–label link. Serialized (camelCase) as its history snapshot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_label")]
pub struct Model {
    /// The task.
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: Uuid,
    /// The label.
    #[sea_orm(primary_key, auto_increment = false)]
    pub label_id: Uuid,
}

/// A link belongs to a task and a label.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The linked task.
    #[sea_orm(
        belongs_to = "super::task::Entity",
        from = "Column::TaskId",
        to = "super::task::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
    /// The linked label.
    #[sea_orm(
        belongs_to = "super::label::Entity",
        from = "Column::LabelId",
        to = "super::label::Column::Id",
        on_delete = "Cascade"
    )]
    Label,
}

impl Related<super::task::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl Related<super::label::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Label.def()
    }
}

// History for every change (object id `"<taskId>:<labelId>"`), in the timeline of the task's project.
sea_orm_history::historized!(scope = Relation::Task);
