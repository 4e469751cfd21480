//! Chronicle's sea-orm entities. Each domain entity is historized by one `historized!` line beside it
//! (see `sea-orm-history`), and [`HistoryEntity`] lists them: the one list every part of the server
//! that needs "all historized entities" reads (revert, verify, prune, timelines, the API's enum).
//!
//! # Layout
//! - [`project`], [`task`], [`label`], [`task_label`], [`comment`]: the domain, each historized.
//! - [`audit_event`]: the audit trail (mutations, refused logins and requests, custom events).
//! - [`provenance_token`]: the provenance tokens' `jti`s seen (replay protection).

pub mod audit_event;
pub mod comment;
pub mod label;
pub mod project;
pub mod provenance_token;
pub mod task;
pub mod task_label;

sea_orm_history::registry! {
    /// Which kind of object a history record is about.
    #[derive(async_graphql::Enum)]
    pub enum HistoryEntity {
        /// A project.
        Project => project::Entity,
        /// A label.
        Label => label::Entity,
        /// A task.
        Task => task::Entity,
        /// A task–label link (object id `"<taskId>:<labelId>"`).
        TaskLabel => task_label::Entity,
        /// A comment.
        Comment => comment::Entity,
    }
}
