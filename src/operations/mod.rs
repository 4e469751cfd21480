//! What operators read besides the audit trail: [`access`], the middleware that writes one
//! combined-format access-log line per request and counts it, and [`metrics`], the Prometheus registry
//! served at `/metrics` (requests, latencies, mutations, history records written, reverts, conflicts).
//! Scheduled pruning, the other thing `serve` does on its own, is in [`schedule`].

pub mod access;
pub mod metrics;
pub mod schedule;
