//! Running proof jobs from a workflow: the activity options each stage gets, and the one rule of
//! recovery: a job that finds an input corrupt gets that input's producer run again, then runs
//! once more.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::error::{ActivityExecutionError, IncomingError};
use temporalio_sdk::{ActivityOptions, WorkflowContext};
use temporalio_workflow::RetryPolicy;
use via_activities::blob_store::ProofSlot;
use via_activities::jobs::{BatchRef, CORRUPT_INPUT, CorruptInput, ProofJob};
use via_activities::stages::ProverActivities;

use crate::naming::TaskQueues;

/// How long a job may take and how often it must heartbeat, chosen by the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTimeouts {
    /// A job silent for this long is presumed dead (its worker crashed) and runs elsewhere.
    pub heartbeat_s: u64,
    /// The longest one attempt of one job may take.
    pub job_s: u64,
}

/// What every job of a batch needs to know to be scheduled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduling {
    pub queues: TaskQueues,
    pub timeouts: JobTimeouts,
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(5)
        .non_retryable_error_types(["BadInput", "UnknownProtocolVersion", CORRUPT_INPUT])
        .build()
}

/// Options for a job on `queue`, with a summary that reads well in the Temporal UI.
pub fn options(queue: &str, timeouts: JobTimeouts, summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(timeouts.job_s))
        .heartbeat_timeout(Duration::from_secs(timeouts.heartbeat_s))
        .task_queue(queue.to_owned())
        .retry_policy(retry_policy())
        .summary(summary)
        .build()
}

/// Options for submitting to the core: retried with backoff for as long as the core is down.
pub fn submission_options(queue: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .task_queue(queue.to_owned())
        .retry_policy(RetryPolicy::builder().initial_interval(Duration::from_secs(1)).backoff_coefficient(2.0).maximum_interval(Duration::from_secs(30)).non_retryable_error_types(["BadInput", "UnknownProtocolVersion"]).build())
        .summary("submit the final proof to the core".to_owned())
        .build()
}

fn describe(slot: &ProofSlot) -> String {
    match slot {
        ProofSlot::Basic { circuit_id, sequence } => format!("basic proof {circuit_id} #{sequence}"),
        ProofSlot::Leaf { circuit_id, index } => format!("leaf {index} of {circuit_id}"),
        ProofSlot::Node { circuit_id, level, index } => format!("node {level}/{index} of {circuit_id}"),
        ProofSlot::RecursionTip => "recursion tip".into(),
        ProofSlot::Scheduler => "scheduler".into(),
        ProofSlot::Final => "compression".into(),
    }
}

/// The queue a proof job runs on.
fn queue<'a>(scheduling: &'a Scheduling, slot: &ProofSlot) -> &'a str {
    let q = &scheduling.queues;
    match *slot {
        ProofSlot::Basic { circuit_id, .. } => q.prover(0, Some(circuit_id.id())),
        ProofSlot::Leaf { circuit_id, .. } => q.prover(1, Some(circuit_id.id())),
        ProofSlot::Node { circuit_id, .. } => q.prover(2, Some(circuit_id.id())),
        ProofSlot::RecursionTip => q.prover(3, None),
        ProofSlot::Scheduler => q.prover(4, None),
        ProofSlot::Final => &q.compressor,
    }
}

/// The corrupt input a failed job names, if that is why it failed.
fn corrupt_input(e: &ActivityExecutionError) -> Option<CorruptInput> {
    match e.cause() {
        Some(IncomingError::Application(failure)) if failure.type_name() == Some(CORRUPT_INPUT) => {
            failure.details::<serde_json::Value>().ok().flatten().and_then(|v| serde_json::from_value(v).ok())
        }
        _ => None,
    }
}

async fn execute<W>(ctx: &WorkflowContext<W>, scheduling: &Scheduling, job: &ProofJob) -> Result<(), ActivityExecutionError> {
    let opts = options(queue(scheduling, &job.slot), scheduling.timeouts, describe(&job.slot));
    let job = job.clone();
    match job.slot {
        ProofSlot::Basic { .. } => ctx.execute_activity(ProverActivities::prove_basic, job, opts).await,
        ProofSlot::Leaf { .. } => ctx.execute_activity(ProverActivities::prove_leaf, job, opts).await,
        ProofSlot::Node { .. } => ctx.execute_activity(ProverActivities::prove_node, job, opts).await,
        ProofSlot::RecursionTip => ctx.execute_activity(ProverActivities::prove_recursion_tip, job, opts).await,
        ProofSlot::Scheduler => ctx.execute_activity(ProverActivities::prove_scheduler, job, opts).await,
        ProofSlot::Final => ctx.execute_activity(ProverActivities::compress, job, opts).await,
    }
}

/// Regenerates the basic witnesses (and public data) of a batch.
pub async fn generate_witnesses<W>(ctx: &WorkflowContext<W>, scheduling: &Scheduling, batch: BatchRef) -> Result<via_activities::jobs::WitnessSummary, ActivityExecutionError> {
    let opts = options(&scheduling.queues.witness_generator, scheduling.timeouts, "basic witness generation".into());
    ctx.execute_activity(ProverActivities::generate_witnesses, batch, opts).await
}

/// Runs `job`. If it finds an input corrupt, runs that input's producer again (from `producers`,
/// the jobs this workflow ran, or witness generation) and then the job once more.
pub async fn run<W>(ctx: &WorkflowContext<W>, scheduling: &Scheduling, job: &ProofJob, producers: &BTreeMap<ProofSlot, ProofJob>) -> Result<(), ActivityExecutionError> {
    match execute(ctx, scheduling, job).await {
        Err(e) => match corrupt_input(&e) {
            Some(CorruptInput::Witness) => {
                generate_witnesses(ctx, scheduling, job.batch).await?;
                execute(ctx, scheduling, job).await
            }
            Some(CorruptInput::Proof(slot)) if producers.contains_key(&slot) => {
                Box::pin(run(ctx, scheduling, &producers[&slot], producers)).await?;
                execute(ctx, scheduling, job).await
            }
            _ => Err(e),
        },
        ok => ok,
    }
}
