//! `prover gateway`: between the core and the proving workflows. It polls the core for batches,
//! stores each witness input, starts the batch's workflow (`batch-{n}`, so a batch offered twice
//! is proved once), and runs the gateway pool: the workflows themselves and the submission of
//! final proofs back to the core. While the core is unreachable it backs off, doubling its pause
//! up to `max_backoff_ms`, and catches up when the core returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_client::errors::WorkflowStartError;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use via_activities::blob_store::{BlobStore, keys};
use via_activities::core_client::CoreClient;
use via_activities::jobs::BatchRef;
use via_activities::metrics::Metrics;
use via_activities::records::JobRecords;
use via_schemas::config::Config;
use via_schemas::prover_interface::{ProofGenerationData, SubmitProofRequest};
use via_workflows::batch::{BatchInput, BatchProvingWorkflow};
use via_workflows::jobs::{JobTimeouts, Scheduling};
use via_workflows::naming::{GATEWAY_POOL, TaskQueues, batch_workflow_id};

use crate::pipeline::{pool_queue, prover_activities, run_pools, serve_metrics, temporal_client};

/// Whether a batch is proved under sampling: a deterministic draw from its number, so a retried
/// decision is the same decision.
fn sampled(batch: u32, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let draw = (u64::from(batch).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    draw < rate
}

pub struct Gateway {
    config: Config,
    client: Client,
    core: CoreClient,
    store: BlobStore,
    records: JobRecords,
    in_flight: Arc<AtomicUsize>,
    /// Batches taken into proving so far, and how many to take before idling (None: no end).
    taken: usize,
    limit: Option<usize>,
}

impl Gateway {
    /// A gateway between `core` and the workflows, storing through `activities`.
    pub fn new(config: &Config, client: Client, core: CoreClient, activities: &via_activities::stages::ProverActivities) -> Self {
        Self { config: config.clone(), client, core, store: activities.store.clone(), records: activities.records.clone(), in_flight: Arc::new(AtomicUsize::new(0)), taken: 0, limit: None }
    }

    /// Takes no more than `batches` batches into proving, then only idles (for `prover dev
    /// --batches N`, so no batch is left half-proven when it stops).
    pub fn with_limit(mut self, batches: Option<usize>) -> Self {
        self.limit = batches;
        self
    }

    /// Takes one batch from the core into the pipeline. Returns whether it is now being proved.
    async fn accept(&self, data: ProofGenerationData) -> anyhow::Result<bool> {
        let pv = self.config.prover.protocol_version;
        let n = data.l1_batch_number;
        if data.protocol_version != pv {
            warn!(batch = n.0, protocol_version = %data.protocol_version, serves = %pv, "batch is for another protocol version; leaving it to its gateway");
            return Ok(false);
        }
        if !sampled(n.0, self.config.gateway.proof_sampling_rate) {
            let submitted = self.core.submit_proof(n, &SubmitProofRequest::SkippedProofGeneration).await?;
            info!(batch = n.0, ?submitted, "batch sampled out: submitted SkippedProofGeneration");
            return Ok(false);
        }
        let input_key = keys::witness_input(pv, n);
        self.store.put_json(&input_key, &data.witness_input_data).await?;
        self.records.batch_status(n, pv, "received", &input_key, None).await?;
        let deployment = &self.config.temporal.deployment;
        let scheduling = Scheduling {
            queues: TaskQueues::new(deployment, pv, &self.config.prover.prover_groups),
            timeouts: JobTimeouts { heartbeat_s: self.config.gateway.heartbeat_timeout_s, job_s: self.config.gateway.job_timeout_s },
        };
        let input = BatchInput { batch: BatchRef { batch: n, protocol_version: pv }, scheduling: scheduling.clone(), max_basic_per_range: self.config.gateway.max_basic_per_range };
        let id = format!("{deployment}{}", batch_workflow_id(n));
        let options = WorkflowStartOptions::new(scheduling.queues.workflows.as_str(), id.as_str())
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .build();
        match self.client.start_workflow(BatchProvingWorkflow::run, input, options).await {
            Ok(handle) => {
                info!(batch = n.0, workflow_id = %id, "started proving");
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                let in_flight = self.in_flight.clone();
                tokio::spawn(async move {
                    match handle.get_result(WorkflowGetResultOptions::default()).await {
                        Ok(_) => info!(batch = n.0, "batch proven and submitted"),
                        Err(e) => warn!(batch = n.0, error = %e, "batch workflow ended without a proof"),
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(WorkflowStartError::AlreadyStarted { .. }) => info!(batch = n.0, workflow_id = %id, "batch already has a workflow"),
            Err(e) => return Err(e).context("starting the batch workflow"),
        }
        Ok(true)
    }

    /// Polls the core until shutdown.
    pub async fn poll(mut self, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.config.gateway.poll_interval_ms.max(1));
        let max_backoff = Duration::from_millis(self.config.gateway.max_backoff_ms.max(1));
        let mut backoff = interval;
        loop {
            let busy = self.in_flight.load(Ordering::SeqCst) >= self.config.gateway.max_batches_in_flight;
            let pause = if busy || self.limit.is_some_and(|limit| self.taken >= limit) {
                interval
            } else {
                match self.core.proof_generation_data().await {
                    Ok(Some(data)) => {
                        backoff = interval;
                        let n = data.l1_batch_number;
                        match self.accept(data).await {
                            Ok(taken) => self.taken += usize::from(taken),
                            Err(e) => warn!(batch = n.0, error = %e, "could not take the batch; the core will offer it again"),
                        }
                        Duration::ZERO
                    }
                    Ok(None) => {
                        backoff = interval;
                        interval
                    }
                    Err(e) => {
                        warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the core is unreachable; backing off");
                        let pause = backoff;
                        backoff = (backoff * 2).min(max_backoff);
                        pause
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = temporal_client(&config.temporal).await?;
    let core = CoreClient::new(&config.gateway.core_url);
    let metrics = Metrics::default();
    let activities = prover_activities(&config, Some(core.clone()), metrics.clone()).await?;
    let metrics_addr = serve_metrics(config.worker.metrics_addr, metrics, shutdown.clone()).await?;
    info!(%metrics_addr, core = %config.gateway.core_url, "gateway");
    let gateway = Gateway::new(&config, client.clone(), core, &activities);
    let polling = tokio::spawn(gateway.poll(shutdown.clone()));
    let queue = pool_queue(&config.temporal.deployment, config.prover.protocol_version, GATEWAY_POOL)?;
    let served = run_pools(client, vec![queue], activities, 64, shutdown).await;
    let _ = polling.await;
    served
}

#[cfg(test)]
mod tests {
    use super::sampled;

    #[test]
    fn sampling_is_deterministic_and_near_its_rate() {
        assert!((1..1000).all(|n| sampled(n, 1.0)));
        let kept = (1..10_001).filter(|n| sampled(*n, 0.3)).count();
        assert!((2_500..3_500).contains(&kept), "{kept}");
        assert_eq!((1..100).map(|n| sampled(n, 0.5)).collect::<Vec<_>>(), (1..100).map(|n| sampled(n, 0.5)).collect::<Vec<_>>());
    }
}
