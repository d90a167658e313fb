//! The shape of a circuit type's aggregation tree, as pure functions the workflows follow: which
//! basic proofs each leaf takes, and how nodes of up to three gather leaves and nodes, level by
//! level, until one root remains (`NodeGrouping`). Every proof gets a distinct slot (a node is named by its level
//! and its first leaf), so partitions of one type never write over each other.

use std::ops::Range;

use via_activities::blob_store::ProofSlot;
use via_activities::jobs::{BatchRef, ProofJob};
use via_circuits::aggregation::node::NodeGrouping;
use via_circuits::basic::CircuitId;

/// A proof in a tree being built: its slot, its level (0 for leaves), its first leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeProof {
    pub slot: ProofSlot,
    pub level: usize,
    pub first_leaf: usize,
}

/// The jobs that turn basic proofs `range` of one type into leaves.
pub fn leaves(batch: BatchRef, circuit_id: CircuitId, range: Range<usize>, per_leaf: usize) -> Vec<(ProofJob, TreeProof)> {
    assert!(per_leaf > 0 && range.start.is_multiple_of(per_leaf), "ranges start on a leaf boundary");
    range
        .clone()
        .step_by(per_leaf)
        .map(|first| {
            let index = first / per_leaf;
            let slot = ProofSlot::Leaf { circuit_id, index };
            let inputs = (first..(first + per_leaf).min(range.end)).map(|sequence| ProofSlot::Basic { circuit_id, sequence }).collect();
            (ProofJob { batch, slot, inputs }, TreeProof { slot, level: 0, first_leaf: index })
        })
        .collect()
}

/// One level of nodes over `items` (in order), grouped by `grouping`. Returns the jobs to run and
/// the next level's items.
pub fn node_level(batch: BatchRef, circuit_id: CircuitId, items: &[TreeProof], grouping: NodeGrouping) -> (Vec<ProofJob>, Vec<TreeProof>) {
    let mut jobs = Vec::new();
    let next = grouping
        .level(items, |children| {
            let level = children.iter().map(|c| c.level).max().unwrap_or(0) + 1;
            let first_leaf = children[0].first_leaf;
            let slot = ProofSlot::Node { circuit_id, level, index: first_leaf };
            jobs.push(ProofJob { batch, slot, inputs: children.iter().map(|c| c.slot).collect() });
            Ok::<_, std::convert::Infallible>(TreeProof { slot, level, first_leaf })
        })
        .unwrap_or_else(|never| match never {});
    (jobs, next)
}

/// Splits `0..count` into partitions of at most `max` basic proofs, each starting on a leaf
/// boundary.
pub fn partitions(count: usize, max: usize, per_leaf: usize) -> Vec<Range<usize>> {
    let size = (max / per_leaf).max(1) * per_leaf;
    (0..count).step_by(size).map(|start| start..(start + size).min(count)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use via_circuits::aggregation::node::NODE_ARITY;
    use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

    use super::*;

    fn batch() -> BatchRef {
        BatchRef { batch: L1BatchNumber(1), protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 } }
    }

    /// Builds the whole tree the way the workflows do, through partitions of `max`.
    fn tree(count: usize, per_leaf: usize, max: usize) -> (Vec<ProofJob>, TreeProof) {
        tree_grouped(count, per_leaf, max, NodeGrouping::FewestNodes)
    }

    fn tree_grouped(count: usize, per_leaf: usize, max: usize, grouping: NodeGrouping) -> (Vec<ProofJob>, TreeProof) {
        let id = CircuitId::SignatureVerifier;
        let mut jobs = Vec::new();
        let mut roots = Vec::new();
        for range in partitions(count, max, per_leaf) {
            let (leaf_jobs, mut items): (Vec<_>, Vec<_>) = leaves(batch(), id, range, per_leaf).into_iter().unzip();
            jobs.extend(leaf_jobs);
            while items.len() > 1 {
                let (level_jobs, next) = node_level(batch(), id, &items, grouping);
                jobs.extend(level_jobs);
                items = next;
            }
            roots.push(items[0]);
        }
        while roots.len() > 1 {
            let (level_jobs, next) = node_level(batch(), id, &roots, grouping);
            jobs.extend(level_jobs);
            roots = next;
        }
        (jobs, roots[0])
    }

    #[test]
    fn every_basic_proof_is_aggregated_once_and_slots_are_distinct() {
        for (count, per_leaf, max) in [(1, 3, 600), (2, 3, 600), (7, 3, 600), (28, 3, 9), (100, 2, 12), (1000, 3, 600)] {
            let (jobs, root) = tree(count, per_leaf, max);
            let slots: BTreeSet<_> = jobs.iter().map(|j| format!("{:?}", j.slot)).collect();
            assert_eq!(slots.len(), jobs.len(), "distinct slots for {count}");
            let basics: Vec<_> = jobs.iter().flat_map(|j| j.inputs.iter()).filter(|s| matches!(s, ProofSlot::Basic { .. })).collect();
            assert_eq!(basics.len(), count, "each basic proof in exactly one leaf");
            let produced: BTreeSet<_> = jobs.iter().map(|j| format!("{:?}", j.slot)).collect();
            for job in &jobs {
                assert!((1..=NODE_ARITY).contains(&job.inputs.len()));
                for input in job.inputs.iter().filter(|s| !matches!(s, ProofSlot::Basic { .. })) {
                    assert!(produced.contains(&format!("{input:?}")), "{input:?} is produced before it is used");
                }
            }
            let consumed: BTreeSet<_> = jobs.iter().flat_map(|j| j.inputs.iter()).map(|s| format!("{s:?}")).collect();
            assert!(!consumed.contains(&format!("{:?}", root.slot)), "the root is nobody's input");
            assert_eq!(produced.iter().filter(|p| !consumed.contains(*p)).count(), 1, "one root for {count}");
        }
    }

    /// The leaves in the order a node's inputs reach them: the order of the basic proofs.
    fn leaves_under(slot: ProofSlot, jobs: &[ProofJob]) -> Vec<usize> {
        match slot {
            ProofSlot::Leaf { index, .. } => vec![index],
            _ => jobs.iter().find(|j| j.slot == slot).map(|j| j.inputs.iter().flat_map(|&input| leaves_under(input, jobs)).collect()).unwrap_or_default(),
        }
    }

    #[test]
    fn fewest_nodes_and_the_leaves_in_order() {
        let nodes = |jobs: &[ProofJob]| jobs.iter().filter(|j| matches!(j.slot, ProofSlot::Node { .. })).count();
        for leaves in 1..=40 {
            let (jobs, root) = tree(leaves * 3, 3, 600);
            assert_eq!(nodes(&jobs), leaves.saturating_sub(1).div_ceil(2), "{leaves} leaves");
            assert_eq!(leaves_under(root.slot, &jobs), (0..leaves).collect::<Vec<_>>(), "{leaves} leaves: every leaf once, in order");
            // The grouping running workflows started under: never fewer nodes.
            let (old, old_root) = tree_grouped(leaves * 3, 3, 600, NodeGrouping::Chunks);
            assert!(nodes(&old) >= nodes(&jobs));
            assert_eq!(leaves_under(old_root.slot, &old), (0..leaves).collect::<Vec<_>>());
        }
        // Five leaves: a node of three, then one of that node and the last two (not three nodes).
        let (jobs, _) = tree(15, 3, 600);
        assert_eq!(nodes(&jobs), 2);
        assert_eq!(nodes(&tree_grouped(15, 3, 600, NodeGrouping::Chunks).0), 3);
    }
}
