//! The Prometheus metrics every worker serves: jobs by stage and outcome, how long they take,
//! how long they waited in their task queue, and how much of the time the basic prover was busy.

use prometheus::{Counter, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// A worker's metrics, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// `via_prover_jobs_total{stage, outcome}`.
    pub jobs: IntCounterVec,
    /// `via_prover_job_seconds{stage}`.
    pub job_seconds: HistogramVec,
    /// `via_prover_queue_lag_seconds{stage}`: from scheduled to started.
    pub queue_lag_seconds: HistogramVec,
    /// `via_prover_basic_proving_seconds_total`: time the worker's basic prover spent proving
    /// (witness vectors are generated beside it); one minus its rate is the prover's idle share.
    pub basic_proving_seconds: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let jobs = IntCounterVec::new(Opts::new("via_prover_jobs_total", "Jobs finished, by stage and outcome"), &["stage", "outcome"]).expect("valid metric");
        let buckets = vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0];
        let job_seconds = HistogramVec::new(HistogramOpts::new("via_prover_job_seconds", "Job duration, by stage").buckets(buckets.clone()), &["stage"]).expect("valid metric");
        let queue_lag_seconds = HistogramVec::new(HistogramOpts::new("via_prover_queue_lag_seconds", "Time from scheduling to start, by stage").buckets(buckets), &["stage"]).expect("valid metric");
        let basic_proving_seconds = Counter::new("via_prover_basic_proving_seconds_total", "Time the basic prover spent proving").expect("valid metric");
        let collectors = [Box::new(jobs.clone()) as Box<dyn prometheus::core::Collector>, Box::new(job_seconds.clone()), Box::new(queue_lag_seconds.clone()), Box::new(basic_proving_seconds.clone())];
        for collector in collectors {
            registry.register(collector).expect("metric names are unique");
        }
        Self { registry, jobs, job_seconds, queue_lag_seconds, basic_proving_seconds }
    }
}

impl Metrics {
    /// The registry in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out).expect("metrics encode");
        out
    }
}
