//! `task_label`: the link between a task and a label, historized like any entity in
//! `task_label_history` with the object id `"<taskId>:<labelId>"`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::{Historized, HistoryEntity};

/// A task–label link. Serialized (camelCase) as its history snapshot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "task_label")]
#[serde(rename_all = "camelCase")]
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
        to = "super::task::Column::Id"
    )]
    Task,
    /// The linked label.
    #[sea_orm(
        belongs_to = "super::label::Entity",
        from = "Column::LabelId",
        to = "super::label::Column::Id"
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

impl Historized for Entity {
    const ENTITY: HistoryEntity = HistoryEntity::TaskLabel;

    fn object_id(model: &Model) -> String {
        format!("{}:{}", model.task_id, model.label_id)
    }

    fn object_condition(object_id: &str) -> Option<sea_orm::Condition> {
        let (task, label) = object_id.split_once(':')?;
        Some(
            sea_orm::Condition::all()
                .add(Column::TaskId.eq(Uuid::parse_str(task).ok()?))
                .add(Column::LabelId.eq(Uuid::parse_str(label).ok()?)),
        )
    }
}

crate::historized!();
