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
    fn names_read_as_documented() {
        let v = ProtocolSemanticVersion { minor: 3, patch: 1 };
        assert_eq!(batch_workflow_id(L1BatchNumber(42)), "batch-42");
        assert_eq!(task_queue(v, &Pool::WitnessGenerator), "0.3.1/witness-generator");
        assert_eq!(task_queue(v, &Pool::ProverGroup("0".into())), "0.3.1/prover-group-0");
        assert_eq!(task_queue(v, &Pool::Compressor), "0.3.1/compressor");
        assert_ne!(task_queue(v, &Pool::Compressor), task_queue(ProtocolSemanticVersion { minor: 3, patch: 2 }, &Pool::Compressor));
    }
}
