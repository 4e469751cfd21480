//! Reading history back, independent of GraphQL: one object's records, an assignation's records in
//! step order across every shadow table, assignations by filter, and an object as of an instant.
//! Capture lives in `entity::history`; [`revert`] plans and applies reverts; [`verify`] checks the hash
//! chains.

pub mod query;
pub mod revert;
pub mod verify;

pub use query::{
    AssignationFilter, Page, as_of, assignation_records, find_assignation, list_assignations,
    object_history,
};
