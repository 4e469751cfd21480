//! What operators read besides the audit trail: [`access`], the middleware that writes one
//! combined-format access-log line per request and counts it, and [`metrics`], the Prometheus registry
//! served at `/metrics` (requests, latencies, mutations, history records written, reverts, conflicts).
//! Scheduled pruning, one of the things `serve` does on its own, is in [`schedule`]; the verifiable
//! log's sequencer and checkpoints, the other, in [`sequencer`]. [`trace`] gives every request its
//! span of a W3C trace.

pub mod access;
pub mod metrics;
pub mod schedule;
pub mod sequencer;
pub mod trace;
