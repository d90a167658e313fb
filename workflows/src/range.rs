//! One circuit type's share of a batch: basic proofs `start..end`, their leaves (each started as
//! soon as its basic proofs are in), then nodes level by level to one root. A range larger than
//! `max_basic_per_range` is split into child ranges whose roots are joined here, so a batch of
//! any size keeps every workflow small.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ChildWorkflowOptions, WorkflowContext, WorkflowResult};
use via_activities::blob_store::ProofSlot;
use via_activities::jobs::{BatchRef, ProofJob};
use via_circuits::aggregation::node::NodeGrouping;
use via_circuits::basic::CircuitId;

use crate::jobs::{self, Scheduling};
use crate::plan::{TreeProof, leaves, node_level, partitions};

/// A range workflow's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeInput {
    pub batch: BatchRef,
    pub circuit_id: CircuitId,
    pub start: usize,
    pub end: usize,
    pub per_leaf: usize,
    pub max_basic_per_range: usize,
    pub scheduling: Scheduling,
}

/// What a range workflow leaves behind: its root, and the job that made it, so a consumer that
/// finds the root corrupt can have it made again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRoot {
    pub proof: TreeProof,
    pub job: ProofJob,
}

/// The patch marking range workflows that group nodes for the fewest nodes.
const FEWEST_NODES_PATCH: &str = "fewest-nodes";

#[workflow]
#[derive(Default)]
pub struct RangeWorkflow;

/// Runs one level of node jobs concurrently.
async fn run_all<W>(ctx: &WorkflowContext<W>, scheduling: &Scheduling, level: &[ProofJob], producers: &BTreeMap<ProofSlot, ProofJob>) -> Result<(), temporalio_sdk::ActivityExecutionError> {
    futures::future::try_join_all(level.iter().map(|job| jobs::run(ctx, scheduling, job, producers))).await?;
    Ok(())
}

/// Joins `items` (each made by its job in `producers`) with nodes, level by level, into one root.
async fn join<W>(ctx: &WorkflowContext<W>, input: &RangeInput, mut items: Vec<TreeProof>, producers: &mut BTreeMap<ProofSlot, ProofJob>) -> Result<RangeRoot, temporalio_sdk::ActivityExecutionError> {
    // Workflows started before the fewest-nodes grouping replay the grouping they ran.
    let grouping = if ctx.patched(FEWEST_NODES_PATCH) { NodeGrouping::FewestNodes } else { NodeGrouping::Chunks };
    while items.len() > 1 {
        let (level, next) = node_level(input.batch, input.circuit_id, &items, grouping);
        run_all(ctx, &input.scheduling, &level, producers).await?;
        producers.extend(level.into_iter().map(|j| (j.slot, j)));
        items = next;
    }
    let proof = items.pop().expect("a range has at least one proof");
    Ok(RangeRoot { proof, job: producers[&proof.slot].clone() })
}

#[workflow_methods]
impl RangeWorkflow {
    #[run(name = "CircuitRange")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: RangeInput) -> WorkflowResult<RangeRoot> {
        // Shared from here on: concurrent jobs each hold the context.
        let ctx: &WorkflowContext<Self> = ctx;
        let mut producers: BTreeMap<ProofSlot, ProofJob> = BTreeMap::new();
        if input.end - input.start > input.max_basic_per_range {
            let mut children = Vec::new();
            for range in partitions(input.end - input.start, input.max_basic_per_range, input.per_leaf) {
                let child = RangeInput { start: input.start + range.start, end: input.start + range.end, ..input.clone() };
                let options = ChildWorkflowOptions::builder()
                    .workflow_id(format!("{}-from-{}", ctx.workflow_id(), child.start))
                    .task_queue(input.scheduling.queues.workflows.clone())
                    .static_summary(format!("{}: basic proofs {}..{}", input.circuit_id, child.start, child.end))
                    .build();
                children.push(async move {
                    let started = ctx.start_child_workflow(RangeWorkflow::run, child, options).await?;
                    Ok::<_, temporalio_sdk::WorkflowTermination>(started.result().await?)
                });
            }
            let roots = futures::future::try_join_all(children).await?;
            producers.extend(roots.iter().map(|r| (r.proof.slot, r.job.clone())));
            return Ok(join(ctx, &input, roots.into_iter().map(|r| r.proof).collect(), &mut producers).await?);
        }

        let planned = leaves(input.batch, input.circuit_id, input.start..input.end, input.per_leaf);
        let basic: BTreeMap<ProofSlot, ProofJob> = (input.start..input.end)
            .map(|sequence| {
                let slot = ProofSlot::Basic { circuit_id: input.circuit_id, sequence };
                (slot, ProofJob { batch: input.batch, slot, inputs: vec![] })
            })
            .collect();
        // Each leaf starts as soon as its own basic proofs are in.
        let scheduling = &input.scheduling;
        let basic_ref = &basic;
        let leaf_runs = planned.iter().map(|(leaf, _)| async move {
            futures::future::try_join_all(leaf.inputs.iter().map(|slot| jobs::run(ctx, scheduling, &basic_ref[slot], basic_ref))).await?;
            jobs::run(ctx, scheduling, leaf, basic_ref).await
        });
        futures::future::try_join_all(leaf_runs).await?;
        producers.extend(basic);
        let (leaf_jobs, items): (Vec<ProofJob>, Vec<TreeProof>) = planned.into_iter().unzip();
        producers.extend(leaf_jobs.into_iter().map(|j| (j.slot, j)));
        Ok(join(ctx, &input, items, &mut producers).await?)
    }
}
