//! Which prover makes this process's proofs: ours on a backend (by default the CPU backend, with
//! SIMD Poseidon Merkle trees) or plonky2's own `prove`. Every circuit, basic and aggregation,
//! proves through [`prove`] or [`prove_witness_vector`].
//!
//! The choice is process-wide because it follows the machine (its CPU's SIMD, its GPU), not the
//! circuit: a worker makes it once at start from `[prover].backend` or `--backend`.

use std::sync::{Arc, RwLock};

use plonky2::iop::generator::generate_partial_witness;
use plonky2::iop::witness::{PartialWitness, PartitionWitness};
use plonky2::plonk::circuit_data::CircuitData;
use plonky2::plonk::proof::ProofWithPublicInputs;
use via_circuit_prover::ProverBackend;
use via_circuit_prover::cpu::CpuBackend;
use via_schemas::config::ProverBackendKind;

use crate::config::{C, D, F};

/// A prover.
#[derive(Clone)]
pub enum Prover {
    /// plonky2's own prover: the reference, and the baseline benchmarks compare against.
    Plonky2,
    /// Our prover (`via_circuit_prover::prover`) on a backend.
    Ours(Arc<dyn ProverBackend>),
}

impl Prover {
    /// The prover a configured backend kind names on this machine.
    pub fn of_kind(kind: ProverBackendKind) -> Self {
        match kind {
            ProverBackendKind::Plonky2 => Self::Plonky2,
            ProverBackendKind::Cpu | ProverBackendKind::Auto => Self::Ours(Arc::new(CpuBackend::detect())),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Plonky2 => "plonky2".into(),
            Self::Ours(backend) => backend.name(),
        }
    }

    /// Proves from a witness vector (the generators already run).
    pub fn prove_witness_vector(&self, data: &CircuitData<F, C, D>, witness_vector: PartitionWitness<'_, F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        match self {
            Self::Plonky2 => plonky2::plonk::prover::prove_with_partition_witness(&data.prover_only, &data.common, witness_vector, &mut Default::default()),
            Self::Ours(backend) => Ok(via_circuit_prover::prover::prove_with_partition_witness(backend.as_ref(), &data.prover_only, &data.common, witness_vector)?),
        }
    }
}

static PROVER: RwLock<Option<Prover>> = RwLock::new(None);

/// Makes `prover` the one this process proves with from now on.
pub fn use_prover(prover: Prover) {
    *PROVER.write().unwrap_or_else(|e| e.into_inner()) = Some(prover);
}

/// The prover this process proves with: the one last chosen, else our prover on the CPU backend.
pub fn current() -> Prover {
    PROVER.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_else(|| Prover::of_kind(ProverBackendKind::Auto))
}

/// Runs the circuit's generators on `inputs` and proves with this process's prover.
pub fn prove(data: &CircuitData<F, C, D>, inputs: PartialWitness<F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
    let witness_vector = generate_partial_witness(inputs, &data.prover_only, &data.common)?;
    prove_witness_vector(data, witness_vector)
}

/// Proves from a witness vector with this process's prover.
pub fn prove_witness_vector(data: &CircuitData<F, C, D>, witness_vector: PartitionWitness<'_, F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
    current().prove_witness_vector(data, witness_vector)
}
