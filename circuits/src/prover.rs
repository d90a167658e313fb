//! Building, proving and verifying the basic circuits, with witness vector generation (running
//! the circuit's generators to the full assignment) as its own step, so a worker can compute the
//! next circuit's witness vector on the CPU while the previous one is being proved.

use plonky2::iop::witness::{PartialWitness, PartitionWitness};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitData;
use plonky2::plonk::proof::ProofWithPublicInputs;
use via_circuit_prover::witness::generate_witness;
use via_schemas::config::BasicCircuitsConfig;

use crate::basic::{CircuitId, pubdata_hasher, signature_verifier, storage_application, tx_execution};
use crate::config::{C, D, F, circuit_config};
use crate::witness_generator::BasicWitness;

/// A basic circuit's targets, which the witness fills.
pub enum BasicTargets {
    TxExecution(tx_execution::TxExecutionTargets),
    StorageApplication(storage_application::StorageApplicationTargets),
    PubdataHasher(pubdata_hasher::PubdataHasherTargets),
    SignatureVerifier(signature_verifier::SignatureVerifierTargets),
}

/// Why a basic proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BasicProveError {
    #[error("a {witness} witness cannot fill the {circuit} circuit")]
    WrongCircuit { circuit: CircuitId, witness: CircuitId },
    #[error("{circuit}: the witness does not satisfy the circuit: {reason}")]
    Unsatisfied { circuit: CircuitId, reason: String },
    #[error("{circuit}: the prover's backend failed: {reason}")]
    Backend { circuit: CircuitId, reason: String },
}

impl BasicProveError {
    /// Neither a mismatched nor an unsatisfiable witness improves on a retry; a backend's
    /// failure (a GPU that computed wrongly, say) may.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::WrongCircuit { .. } | Self::Unsatisfied { .. } => false,
            Self::Backend { .. } => true,
        }
    }

    /// A proof of `circuit` that failed: the backend's fault, or the witness's.
    pub fn proving(circuit: CircuitId, error: anyhow::Error) -> Self {
        match crate::proving::is_backend_fault(&error) {
            true => Self::Backend { circuit, reason: error.to_string() },
            false => Self::Unsatisfied { circuit, reason: error.to_string() },
        }
    }
}

/// Lays out a basic circuit in `builder`, for the instance shape in `config`. Cheap: it records
/// gates without computing anything, so loading setup data replays it to recover the targets.
pub fn define(builder: &mut CircuitBuilder<F, D>, id: CircuitId, config: &BasicCircuitsConfig) -> BasicTargets {
    match id {
        CircuitId::TxExecution => BasicTargets::TxExecution(tx_execution::define(builder, config.txs_per_tx_execution)),
        CircuitId::StorageApplication => BasicTargets::StorageApplication(storage_application::define(builder, config.accesses_per_storage_application)),
        CircuitId::PubdataHasher => BasicTargets::PubdataHasher(pubdata_hasher::define(builder, config.blocks_per_pubdata_hasher)),
        CircuitId::SignatureVerifier => BasicTargets::SignatureVerifier(signature_verifier::define(builder, config.signatures_per_signature_verifier)),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "witness generation panicked".into())
}

/// A built basic circuit: its setup data and the targets its witnesses fill.
pub struct BasicCircuit {
    pub id: CircuitId,
    pub data: CircuitData<F, C, D>,
    pub targets: BasicTargets,
}

impl BasicCircuit {
    /// Builds the circuit (as costly as a proof: this is what setup data saves).
    pub fn build(id: CircuitId, config: &BasicCircuitsConfig) -> Self {
        let mut builder = CircuitBuilder::new(circuit_config());
        let targets = define(&mut builder, id, config);
        Self { id, data: builder.build::<C>(), targets }
    }

    /// The circuit witness as plonky2's partial witness (what `CircuitData::prove` takes).
    pub fn partial_witness(&self, witness: &BasicWitness) -> Result<PartialWitness<F>, BasicProveError> {
        let mut pw = PartialWitness::new();
        let unsatisfied = |e: anyhow::Error| BasicProveError::Unsatisfied { circuit: self.id, reason: e.to_string() };
        match (&self.targets, witness) {
            (BasicTargets::TxExecution(t), BasicWitness::TxExecution(w)) => tx_execution::assign(t, w, &mut pw),
            (BasicTargets::StorageApplication(t), BasicWitness::StorageApplication(w)) => storage_application::assign(t, w, &mut pw),
            (BasicTargets::PubdataHasher(t), BasicWitness::PubdataHasher(w)) => pubdata_hasher::assign(t, w, &mut pw),
            (BasicTargets::SignatureVerifier(t), BasicWitness::SignatureVerifier(w)) => signature_verifier::assign(t, w, &mut pw),
            _ => return Err(BasicProveError::WrongCircuit { circuit: self.id, witness: witness.circuit_id() }),
        }
        .map_err(unsatisfied)?;
        Ok(pw)
    }

    /// The witness vector: every wire's value, from the circuit witness.
    pub fn witness_vector(&self, witness: &BasicWitness) -> Result<PartitionWitness<'_, F>, BasicProveError> {
        let pw = self.partial_witness(witness)?;
        // Some of plonky2's generators assert on out-of-range values instead of returning an
        // error; a bad witness must fail its job, not the worker.
        let generated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| generate_witness(pw, &self.data.prover_only, &self.data.common)));
        match generated {
            Ok(vector) => vector.map_err(|e| BasicProveError::Unsatisfied { circuit: self.id, reason: e.to_string() }),
            Err(panic) => Err(BasicProveError::Unsatisfied { circuit: self.id, reason: panic_message(&panic) }),
        }
    }

    /// Proves from a witness vector.
    pub fn prove_witness_vector(&self, witness_vector: PartitionWitness<'_, F>) -> Result<ProofWithPublicInputs<F, C, D>, BasicProveError> {
        crate::proving::prove_witness_vector(&self.data, witness_vector)
            .map_err(|e| BasicProveError::proving(self.id, e))
    }

    /// Witness vector and proof in one call.
    pub fn prove(&self, witness: &BasicWitness) -> Result<ProofWithPublicInputs<F, C, D>, BasicProveError> {
        let vector = self.witness_vector(witness)?;
        self.prove_witness_vector(vector)
    }

    /// Checks a proof against this circuit's verification key.
    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}

#[cfg(test)]
mod tests {
    use via_circuit_prover::prover::ProveError;

    use super::*;
    use crate::aggregation::AggregationError;

    #[test]
    fn a_backend_failure_is_retried_and_a_bad_witness_is_not() {
        let rejected = || ProveError::Rejected("a Merkle proof fails".into()).into();
        let broken = || ProveError::CopyConstraint { challenge: 0 }.into();
        let basic = BasicProveError::proving(CircuitId::TxExecution, rejected());
        assert!(matches!(basic, BasicProveError::Backend { .. }) && basic.is_retryable(), "{basic}");
        let basic = BasicProveError::proving(CircuitId::TxExecution, broken());
        assert!(matches!(basic, BasicProveError::Unsatisfied { .. }) && !basic.is_retryable(), "{basic}");
        let aggregation = AggregationError::proving("node".into(), rejected());
        assert!(matches!(aggregation, AggregationError::Backend { .. }) && aggregation.is_retryable(), "{aggregation}");
        let aggregation = AggregationError::proving("node".into(), broken());
        assert!(matches!(aggregation, AggregationError::Proving { .. }) && !aggregation.is_retryable(), "{aggregation}");
    }
}
