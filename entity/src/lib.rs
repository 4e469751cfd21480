//! Chronicle's sea-orm entities and the history capture behind them.
//!
//! # Layout
//! - [`context`]: the change context (user, app, assignation, reason) the hooks read.
//! - [`history`]: what every shadow table shares, the one history writer, the `historized!` hook macro
//!   and the bulk `*_with_history` helpers.
//! - [`project`], [`task`], [`label`], [`task_label`], [`comment`]: the domain, each historized.
//! - `*_history`: their shadow tables, one `shadow_table!` line each.
//! - [`assignation`]: one row per correlation id.
//! - [`audit_event`]: the audit trail (mutations, refused logins and requests, custom events).
//! - [`prune_anchor`]: where hash-chain verification resumes after `chronicle prune --history`.

pub mod assignation;
pub mod audit_event;
pub mod comment;
pub mod comment_history;
pub mod context;
pub mod history;
pub mod label;
pub mod label_history;
pub mod project;
pub mod project_history;
pub mod prune_anchor;
pub mod task;
pub mod task_history;
pub mod task_label;
pub mod task_label_history;

#[doc(hidden)]
pub use async_trait;
