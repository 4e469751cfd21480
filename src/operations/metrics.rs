//! Prometheus metrics, one registry per server (so servers in one test process do not share counts),
//! rendered in the text exposition format at `/metrics`. Labels are bounded: routes and mutation
//! names come from the schema, never from the request's path or values.

use std::collections::BTreeMap;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Latency buckets, in seconds: from half a millisecond to ten seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    mutations: IntCounterVec,
    history_records: IntCounterVec,
    reverts: IntCounterVec,
    revert_conflicts: IntCounter,
    slow_requests: IntCounterVec,
    documents: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    ///
    /// # Errors
    /// A metric is defined twice (a programming error).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "chronicle_http_requests_total",
                "HTTP requests answered, by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "chronicle_http_request_duration_seconds",
                "Time from request to response, by route",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        let mutations = IntCounterVec::new(
            Opts::new(
                "chronicle_mutations_total",
                "Mutation fields run, by field and status (SUCCESS or FAILURE)",
            ),
            &["field", "status"],
        )?;
        let history_records = IntCounterVec::new(
            Opts::new(
                "chronicle_history_records_written_total",
                "History records written by committed mutations, by entity",
            ),
            &["entity"],
        )?;
        let reverts = IntCounterVec::new(
            Opts::new(
                "chronicle_reverts_total",
                "Reverts asked for, by kind (assignation, object) and outcome (applied, conflict, refused)",
            ),
            &["kind", "outcome"],
        )?;
        let revert_conflicts = IntCounter::new(
            "chronicle_revert_conflicts_total",
            "Objects reported in REVERT_CONFLICT errors",
        )?;
        let slow_requests = IntCounterVec::new(
            Opts::new(
                "chronicle_slow_requests_total",
                "GraphQL requests slower than --slow-request-ms, by operation type",
            ),
            &["operation"],
        )?;
        let documents = IntCounterVec::new(
            Opts::new(
                "chronicle_graphql_documents_total",
                "GraphQL documents of requests past the server's checks, by source (kept: parsed by an earlier request with the same text; parsed: parsed for this one)",
            ),
            &["source"],
        )?;
        registry.register(Box::new(documents.clone()))?;
        registry.register(Box::new(slow_requests.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(mutations.clone()))?;
        registry.register(Box::new(history_records.clone()))?;
        registry.register(Box::new(reverts.clone()))?;
        registry.register(Box::new(revert_conflicts.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            mutations,
            history_records,
            reverts,
            revert_conflicts,
            slow_requests,
            documents,
        })
    }

    /// One answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// One mutation field run; `written` is what its committed transaction recorded, per entity.
    pub fn mutation(&self, field: &str, success: bool, written: &BTreeMap<String, u64>) {
        let status = if success { "SUCCESS" } else { "FAILURE" };
        self.mutations.with_label_values(&[field, status]).inc();
        for (entity, n) in written {
            self.history_records.with_label_values(&[entity]).inc_by(*n);
        }
    }

    /// One revert asked for, with the number of conflicting objects its error reported.
    pub fn revert(&self, kind: &str, outcome: &str, conflicts: u64) {
        self.reverts.with_label_values(&[kind, outcome]).inc();
        self.revert_conflicts.inc_by(conflicts);
    }

    /// One request slower than the threshold (`query` or `mutation`).
    pub fn slow_request(&self, operation: &str) {
        self.slow_requests.with_label_values(&[operation]).inc();
    }

    /// One request's document: `kept` when an earlier request with the same text parsed it.
    pub fn document(&self, kept: bool) {
        let source = if kept { "kept" } else { "parsed" };
        self.documents.with_label_values(&[source]).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// The `route` label of a path: one of the server's routes, or `other`.
pub fn route(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/health" => "/health",
        "/metrics" => "/metrics",
        p if p == "/ui" || p.starts_with("/ui/") => "/ui",
        _ => "other",
    }
}

/// The `method` label: the standard methods, else `OTHER`.
pub fn method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}
