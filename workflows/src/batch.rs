//! The per-batch workflow (`batch-{n}`): witness generation, one child per circuit type for basic
//! proving and aggregation, then the recursion tip, the scheduler, compression and submission.
//! Each stage is upserted as the `ProvingStage` search attribute, so the Temporal UI shows where
//! every batch stands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ChildWorkflowOptions, WorkflowContext, WorkflowResult};
use via_activities::blob_store::ProofSlot;
use via_activities::jobs::{BatchRef, ProofJob};
use via_activities::stages::ProverActivities;
use via_circuits::basic::CircuitId;

use crate::jobs::{self, Scheduling, submission_options};
use crate::naming::{BATCH_NUMBER, PROTOCOL_VERSION, PROVING_STAGE};
use crate::range::{RangeInput, RangeWorkflow};

/// The batch workflow's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInput {
    pub batch: BatchRef,
    pub scheduling: Scheduling,
    /// A child workflow proves at most this many basic proofs itself and partitions beyond it,
    /// so no workflow nears Temporal's pending-activity and history limits.
    pub max_basic_per_range: usize,
}

/// What a proven batch leaves behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    pub batch: BatchRef,
    /// Basic proofs per circuit type.
    pub instances: Vec<(CircuitId, usize)>,
}

/// The stages a batch passes through, as the `ProvingStage` search attribute names them.
pub mod stage {
    pub const WITNESS_GENERATION: &str = "witness_generation";
    pub const BASIC_AND_AGGREGATION: &str = "basic_and_aggregation";
    pub const RECURSION_TIP: &str = "recursion_tip";
    pub const SCHEDULER: &str = "scheduler";
    pub const COMPRESSION: &str = "compression";
    pub const SUBMISSION: &str = "submission";
    pub const PROVEN: &str = "proven";
}

#[workflow]
#[derive(Default)]
pub struct BatchProvingWorkflow;

fn set_stage<W>(ctx: &WorkflowContext<W>, stage: &str) {
    ctx.upsert_search_attributes([PROVING_STAGE.value_set(stage.to_owned())]);
}

#[workflow_methods]
impl BatchProvingWorkflow {
    #[run(name = "BatchProving")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: BatchInput) -> WorkflowResult<BatchOutcome> {
        // Shared from here on: concurrent jobs each hold the context.
        let ctx: &WorkflowContext<Self> = ctx;
        let batch = input.batch;
        let scheduling = input.scheduling.clone();
        ctx.upsert_search_attributes([
            BATCH_NUMBER.value_set(i64::from(batch.batch.0)),
            PROTOCOL_VERSION.value_set(batch.protocol_version.to_string()),
            PROVING_STAGE.value_set(stage::WITNESS_GENERATION.to_owned()),
        ]);
        let summary = jobs::generate_witnesses(ctx, &scheduling, batch).await?;

        set_stage(ctx, stage::BASIC_AND_AGGREGATION);
        let mut children = Vec::new();
        for id in CircuitId::ALL {
            let count = summary.instances.iter().find(|(c, _)| *c == id).map_or(0, |(_, n)| *n);
            let range = RangeInput {
                batch,
                circuit_id: id,
                start: 0,
                end: count,
                per_leaf: summary.basic_proofs_per_leaf,
                max_basic_per_range: input.max_basic_per_range,
                scheduling: scheduling.clone(),
            };
            let options = ChildWorkflowOptions::builder()
                .workflow_id(format!("{}-circuit-{}", ctx.workflow_id(), id.id()))
                .task_queue(scheduling.queues.workflows.clone())
                .static_summary(format!("{id}: basic proofs and aggregation"))
                .build();
            children.push(async move {
                let started = ctx.start_child_workflow(RangeWorkflow::run, range, options).await?;
                Ok::<_, temporalio_sdk::WorkflowTermination>(started.result().await?)
            });
        }
        let roots = futures::future::try_join_all(children).await?;

        // A root found corrupt by the tip is made again by its own job.
        let producers: BTreeMap<ProofSlot, ProofJob> = roots.iter().map(|r| (r.proof.slot, r.job.clone())).collect();
        set_stage(ctx, stage::RECURSION_TIP);
        let tip = ProofJob { batch, slot: ProofSlot::RecursionTip, inputs: roots.iter().map(|r| r.proof.slot).collect() };
        jobs::run(ctx, &scheduling, &tip, &producers).await?;
        set_stage(ctx, stage::SCHEDULER);
        let scheduler = ProofJob { batch, slot: ProofSlot::Scheduler, inputs: vec![ProofSlot::RecursionTip] };
        let producers = BTreeMap::from([(ProofSlot::RecursionTip, tip)]);
        jobs::run(ctx, &scheduling, &scheduler, &producers).await?;
        set_stage(ctx, stage::COMPRESSION);
        let compression = ProofJob { batch, slot: ProofSlot::Final, inputs: vec![ProofSlot::Scheduler] };
        let producers = BTreeMap::from([(ProofSlot::Scheduler, scheduler)]);
        jobs::run(ctx, &scheduling, &compression, &producers).await?;
        set_stage(ctx, stage::SUBMISSION);
        ctx.execute_activity(ProverActivities::submit_proof, batch, submission_options(&scheduling.queues.gateway)).await?;
        set_stage(ctx, stage::PROVEN);
        Ok(BatchOutcome { batch, instances: summary.instances })
    }
}
