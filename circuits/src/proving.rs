//! Which prover makes this process's proofs: ours on a backend (by default the CUDA backend where
//! there is a GPU, else the CPU backend with SIMD Poseidon Merkle trees) or plonky2's own
//! `prove`. Every circuit, basic and aggregation, proves through [`prove`] or
//! [`prove_witness_vector`].
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
use via_circuit_prover::cuda::{CudaBackend, CudaError};
use via_circuit_prover::prover::{ProveError, ProverConfig};
use via_circuit_prover::witness::generate_witness;
use via_schemas::config::ProverBackendKind;

use crate::config::{D, F};

/// A prover.
#[derive(Clone)]
pub enum Prover {
    /// plonky2's own prover: the reference, and the baseline benchmarks compare against.
    Plonky2,
    /// Our prover (`via_circuit_prover::prover`) on a backend.
    Ours(Arc<dyn ProverBackend>),
}

impl Prover {
    /// The prover a configured backend kind names on this machine. `Auto` takes the GPU where
    /// there is one and says why not where there is none; `Cuda` fails without one.
    pub fn of_kind(kind: ProverBackendKind) -> Result<Self, CudaError> {
        let cuda = || {
            let backend = CudaBackend::new()?;
            tracing::info!(device = backend.device(), "proving on the GPU");
            Ok::<_, CudaError>(Self::Ours(Arc::new(backend)))
        };
        Ok(match kind {
            ProverBackendKind::Plonky2 => Self::Plonky2,
            ProverBackendKind::Cpu => Self::Ours(Arc::new(CpuBackend::detect())),
            ProverBackendKind::Cuda => cuda()?,
            ProverBackendKind::Auto => cuda().unwrap_or_else(|reason| {
                tracing::info!(%reason, "no GPU to prove on; proving on the CPU");
                Self::Ours(Arc::new(CpuBackend::detect()))
            }),
        })
    }

    pub fn name(&self) -> String {
        match self {
            Self::Plonky2 => "plonky2".into(),
            Self::Ours(backend) => format!("ours, {}", backend.name()),
        }
    }

    /// How long this prover's device has been busy since it was made (`None` without a device):
    /// one minus its rate is the device's idle share.
    pub fn device_busy(&self) -> Option<std::time::Duration> {
        match self {
            Self::Plonky2 => None,
            Self::Ours(backend) => backend.device_busy(),
        }
    }

    /// Runs the circuit's generators on `inputs`, then proves: plonky2's prover runs them as
    /// plonky2's own `prove` does (its generator loop), so that a baseline measured with it is
    /// plonky2's; ours runs them in parallel waves.
    pub fn prove<C: ProverConfig>(&self, data: &CircuitData<F, C, D>, inputs: PartialWitness<F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let witness_vector = match self {
            Self::Plonky2 => generate_partial_witness(inputs, &data.prover_only, &data.common)?,
            Self::Ours(_) => generate_witness(inputs, &data.prover_only, &data.common)?,
        };
        self.prove_witness_vector(data, witness_vector)
    }

    /// Proves from a witness vector (the generators already run).
    pub fn prove_witness_vector<C: ProverConfig>(&self, data: &CircuitData<F, C, D>, witness_vector: PartitionWitness<'_, F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
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

/// The prover this process proves with: the one last chosen, else (chosen now, once) the one
/// `auto` picks.
pub fn current() -> Prover {
    if let Some(prover) = chosen() {
        return prover;
    }
    let mut slot = PROVER.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| Prover::of_kind(ProverBackendKind::Auto).expect("auto falls back to the CPU")).clone()
}

/// The prover this process has chosen, if it has (unlike [`current`], this chooses none).
pub fn chosen() -> Option<Prover> {
    PROVER.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs the circuit's generators on `inputs` and proves with this process's prover.
pub fn prove<C: ProverConfig>(data: &CircuitData<F, C, D>, inputs: PartialWitness<F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
    current().prove(data, inputs)
}

/// Whether a proof failed for its backend's sake rather than its witness's: plonky2's verifier
/// rejected it though the witness holds (a device computed wrongly), or committed rows could not
/// be fetched from the device. Another try may succeed, so the job is retried.
pub fn is_backend_fault(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<ProveError>(), Some(ProveError::Rejected(_) | ProveError::Fetch(_)))
}

/// Proves from a witness vector with this process's prover.
pub fn prove_witness_vector<C: ProverConfig>(data: &CircuitData<F, C, D>, witness_vector: PartitionWitness<'_, F>) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
    current().prove_witness_vector(data, witness_vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plonky2s_prover_runs_plonky2s_generators() {
        use plonky2::field::types::Field;
        use plonky2::iop::witness::WitnessWrite;
        use via_circuit_prover::witness::WitnessError;
        let mut builder = plonky2::plonk::circuit_builder::CircuitBuilder::<F, D>::new(plonky2::plonk::circuit_data::CircuitConfig::standard_recursion_config());
        let x = builder.add_virtual_target();
        let square = builder.mul(x, x);
        builder.register_public_input(square);
        let data = builder.build::<crate::config::C>();
        let ours = Prover::Ours(Arc::new(CpuBackend::detect()));
        for prover in [Prover::Plonky2, ours.clone()] {
            let mut inputs = PartialWitness::new();
            inputs.set_target(x, F::from_canonical_u64(7)).unwrap();
            let proof = prover.prove(&data, inputs).unwrap();
            assert_eq!(proof.public_inputs, [F::from_canonical_u64(49)], "{}", prover.name());
            data.verify(proof).unwrap();
        }
        // With the input missing, each loop says so in its own words.
        let plonky2s = Prover::Plonky2.prove(&data, PartialWitness::new()).unwrap_err();
        assert!(plonky2s.downcast_ref::<WitnessError>().is_none() && plonky2s.to_string().contains("weren't run"), "{plonky2s}");
        let ours = ours.prove(&data, PartialWitness::new()).unwrap_err();
        assert!(matches!(ours.downcast_ref::<WitnessError>(), Some(WitnessError::Stalled(_))), "{ours}");
    }

    #[test]
    fn backend_faults_are_told_from_bad_witnesses() {
        assert!(is_backend_fault(&ProveError::Rejected("a Merkle proof fails".into()).into()));
        assert!(is_backend_fault(&ProveError::Fetch(via_circuit_prover::FetchError("device lost".into())).into()));
        assert!(!is_backend_fault(&ProveError::CopyConstraint { challenge: 0 }.into()));
        assert!(!is_backend_fault(&anyhow::anyhow!("the witness does not satisfy the circuit")));
    }

    #[test]
    fn auto_takes_the_gpu_where_there_is_one_and_the_cpu_otherwise() {
        let auto = Prover::of_kind(ProverBackendKind::Auto).expect("auto always finds a prover");
        match CudaBackend::new() {
            Ok(_) => {
                assert_eq!(auto.name(), "ours, cuda");
                assert!(Prover::of_kind(ProverBackendKind::Cuda).is_ok());
            }
            Err(no_gpu) => {
                assert_eq!(auto.name(), Prover::of_kind(ProverBackendKind::Cpu).unwrap().name());
                // Asking for the GPU where there is none names what is missing.
                let err = Prover::of_kind(ProverBackendKind::Cuda).err().expect("no GPU, no CUDA prover");
                assert_eq!(err.to_string(), no_gpu.to_string());
            }
        }
    }
}
