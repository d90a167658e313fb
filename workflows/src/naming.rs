//! Names shared by the gateway, the workflows and every worker pool.

use std::fmt;

use temporalio_common::search_attributes::SearchAttributeKey;
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

/// The batch a workflow proves.
pub const BATCH_NUMBER: SearchAttributeKey<i64> = SearchAttributeKey::int("BatchNumber");
/// The protocol version the batch is proven under, as `0.{minor}.{patch}`.
pub const PROTOCOL_VERSION: SearchAttributeKey<String> = SearchAttributeKey::keyword("ProtocolVersion");
/// The stage the batch has reached (a round's name), upserted as the batch advances.
pub const PROVING_STAGE: SearchAttributeKey<String> = SearchAttributeKey::keyword("ProvingStage");

/// The workflow id of a batch's proving workflow. One id per batch makes starting it idempotent:
/// an existing id means the batch is already being proved.
pub fn batch_workflow_id(batch: L1BatchNumber) -> String {
    format!("batch-{batch}")
}

/// A pool of workers, each pool polling its own task queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    /// CPU workers that turn witness inputs into circuit witnesses.
    WitnessGenerator,
    /// Provers of one prover group (a set of `(aggregation_round, circuit_id)` pairs from config).
    ProverGroup(String),
    /// Workers that compress scheduler proofs into the final proof.
    Compressor,
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WitnessGenerator => f.write_str("witness-generator"),
            Self::ProverGroup(group) => write!(f, "prover-group-{group}"),
            Self::Compressor => f.write_str("compressor"),
        }
    }
}

/// The task queue of a pool for one protocol version: `{protocol_version}/{pool}`. A worker
/// polls only its own version's queues, so two versions' fleets never take each other's work.
pub fn task_queue(protocol_version: ProtocolSemanticVersion, pool: &Pool) -> String {
    format!("{protocol_version}/{pool}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_go_to_their_groups_queue() {
        use via_schemas::config::{ProverGroup, RoundCircuit};
        let v = ProtocolSemanticVersion { minor: 1, patch: 0 };
        let groups = vec![
            ProverGroup { id: "sigs".into(), circuits: vec![RoundCircuit { round: 0, circuit_id: Some(4) }] },
            ProverGroup { id: "basic".into(), circuits: vec![RoundCircuit { round: 0, circuit_id: None }] },
            ProverGroup { id: "agg".into(), circuits: vec![RoundCircuit { round: 1, circuit_id: None }, RoundCircuit { round: 2, circuit_id: None }, RoundCircuit { round: 3, circuit_id: None }, RoundCircuit { round: 4, circuit_id: None }] },
        ];
        let q = TaskQueues::new("", v, &groups);
        assert_eq!(q.prover(0, Some(4)), "0.1.0/prover-group-sigs");
        assert_eq!(q.prover(0, Some(1)), "0.1.0/prover-group-basic");
        assert_eq!(q.prover(2, Some(1)), "0.1.0/prover-group-agg");
        assert_eq!(q.prover(4, None), "0.1.0/prover-group-agg");
        assert_eq!(q.witness_generator, "0.1.0/witness-generator");
        let other = TaskQueues::new("", ProtocolSemanticVersion { minor: 2, patch: 0 }, &groups);
        assert_eq!(TaskQueues::new("ci-7/", v, &groups).prover(0, Some(4)), "ci-7/0.1.0/prover-group-sigs");
        assert_ne!(other.prover(0, Some(4)), q.prover(0, Some(4)), "versions never share a queue");
    }

    #[test]
    fn names_read_as_documented() {
        let v = ProtocolSemanticVersion { minor: 3, patch: 1 };
        assert_eq!(batch_workflow_id(L1BatchNumber(42)), "batch-42");
        assert_eq!(task_queue(v, &Pool::WitnessGenerator), "0.3.1/witness-generator");
        assert_eq!(task_queue(v, &Pool::ProverGroup("0".into())), "0.3.1/prover-group-0");
        assert_eq!(task_queue(v, &Pool::Compressor), "0.3.1/compressor");
        assert_ne!(task_queue(v, &Pool::Compressor), task_queue(ProtocolSemanticVersion { minor: 3, patch: 2 }, &Pool::Compressor));
    }
}

/// The task queue of every job of a protocol version, from its prover groups.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskQueues {
    pub witness_generator: String,
    pub compressor: String,
    /// Where proofs are submitted from (the gateway's own queue).
    pub gateway: String,
    /// Where the workflows themselves run.
    pub workflows: String,
    /// `(round, circuit id or every circuit, queue)`, first match wins.
    pub provers: Vec<(u8, Option<u8>, String)>,
}

/// The gateway's pool, which runs the workflows and submits proofs.
pub const GATEWAY_POOL: &str = "gateway";

impl TaskQueues {
    /// The queues of protocol version `pv` under these prover groups, each behind `deployment`.
    pub fn new(deployment: &str, pv: ProtocolSemanticVersion, groups: &[via_schemas::config::ProverGroup]) -> Self {
        let mut provers = Vec::new();
        for group in groups {
            let queue = format!("{deployment}{}", task_queue(pv, &Pool::ProverGroup(group.id.clone())));
            for c in &group.circuits {
                provers.push((c.round, c.circuit_id, queue.clone()));
            }
        }
        Self {
            witness_generator: format!("{deployment}{}", task_queue(pv, &Pool::WitnessGenerator)),
            compressor: format!("{deployment}{}", task_queue(pv, &Pool::Compressor)),
            gateway: format!("{deployment}{pv}/{GATEWAY_POOL}"),
            workflows: format!("{deployment}{pv}/{GATEWAY_POOL}"),
            provers,
        }
    }

    /// The queue of a `round` job for `circuit_id` (rounds 3 and 4 have none). A round no group
    /// takes goes to the first group, so nothing waits on a queue nobody polls.
    pub fn prover(&self, round: u8, circuit_id: Option<u8>) -> &str {
        self.provers
            .iter()
            .find(|(r, c, _)| *r == round && (c.is_none() || *c == circuit_id))
            .or(self.provers.first())
            .map_or(self.compressor.as_str(), |(_, _, q)| q.as_str())
    }
}
