//! Compression (round 5): layers after the scheduler. Each verifies the previous proof under a
//! constant key in a circuit with a higher FRI rate and fewer queries (the same 100-bit
//! conjectured security), which makes proofs smaller and cheaper to verify. By default one layer,
//! the final wrap, verifies the scheduler's proof in 2^12 rows; further layers put shrink layers
//! before it (see [`compression_config`]). The last layer commits with Keccak ([`FinalC`]): its
//! proof is verified only natively, and Keccak's 25-byte digests shorten every Merkle path in it,
//! for a final proof of about 48 KB (a Poseidon wrap's is about 5 KB larger).
//!
//! The first layer fixes the scheduler's verifier data as a constant, so it can hash the
//! scheduler's key into the batch commitment `H(public data fields || scheduler key hash)`; from
//! then on that commitment is the only public input.

use plonky2::field::types::PrimeField64;
use plonky2::fri::FriConfig;
use plonky2::fri::reduction_strategies::FriReductionStrategy;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData, VerifierCircuitData, VerifierOnlyCircuitData};
use plonky2::plonk::config::GenericHashOut;
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};
use via_circuit_prover::prover::ProverConfig;
use via_schemas::primitives::Hash;

use super::{AggregationError, Proof};
use crate::config::{C, D, F, FinalC, circuit_config};

/// Routed wires of a final wrap over a shrink layer: enough for a Poseidon gate's inputs,
/// outputs and swap (25) and for interpolating one FRI coset of eight (21). With 31 or fewer its
/// verifier of a shrink layer no longer fits 2^12 rows (measured at 28 to 31), which costs more
/// than the columns save.
const WRAP_ROUTED_WIRES: usize = 32;

/// Routed wires of a final wrap over the scheduler (the default, one layer). Its verifier of the
/// scheduler's proof (28 queries, FRI folded by sixteen) takes 3,978 rows with 64; with 56, 4,037
/// (too close to 2^12 to survive a change to the public data), with 48, 4,257 (2^13). Each routed
/// wire costs the final proof a sigma value per query.
const WRAP_OVER_SCHEDULER_ROUTED_WIRES: usize = 64;

/// A compression layer's configuration. Each sums to 100 bits of conjectured security, as the
/// standard configuration's 3 x 28 + 16 bits of grinding.
/// - The final wrap (the last layer): rate 1/256 and 10 queries (8 x 10 + 20 bits of grinding),
///   folding by at most eight at each FRI step (arities chosen for the smallest proof), fewer
///   routed wires than the standard 80 (each query opens a sigma column per routed wire, and
///   partial products shrink with them): [`WRAP_OVER_SCHEDULER_ROUTED_WIRES`] as layer 0,
///   [`WRAP_ROUTED_WIRES`] over a shrink layer. Cap height 0: with this few queries the paths'
///   top levels are shared, and a cap would cost more than it saves.
/// - A shrink layer (each before the last, `compression_layers` above 1): rate 1/64, 13 queries
///   and 22 bits of grinding (6 x 13 + 22), folding by at most eight, so that the wrap's verifier
///   needs only 21 routed wires to interpolate a coset (folding by sixteen needs 37) and fits
///   2^12 rows (with 14 queries at 16 bits it does not). It makes the final proof about 3 KB
///   smaller than a wrap over the scheduler does, for one proof more (about 3 s, and the
///   grinding's four million Poseidon permutations expected).
pub fn compression_config(layer: usize, is_final: bool) -> CircuitConfig {
    let standard = circuit_config();
    if is_final {
        let fri_config = FriConfig { rate_bits: 8, num_query_rounds: 10, proof_of_work_bits: 20, cap_height: 0, reduction_strategy: FriReductionStrategy::MinSize(Some(3)) };
        let num_routed_wires = if layer == 0 { WRAP_OVER_SCHEDULER_ROUTED_WIRES } else { WRAP_ROUTED_WIRES };
        CircuitConfig { num_routed_wires, fri_config, ..standard }
    } else {
        let fri_config = FriConfig { rate_bits: 6, num_query_rounds: 13, proof_of_work_bits: 22, cap_height: 0, reduction_strategy: FriReductionStrategy::MinSize(Some(3)) };
        CircuitConfig { fri_config, ..standard }
    }
}

/// A proof of the last compression layer: the final proof.
pub type FinalProof = ProofWithPublicInputs<F, FinalC, D>;

/// The circuit digest of a circuit as a wire hash: the verification key hash. (A Keccak digest
/// is its 25 bytes as four elements of seven bytes or fewer, as plonky2 observes it.)
pub fn vk_hash<CC: ProverConfig>(verifier_only: &VerifierOnlyCircuitData<CC, D>) -> Hash {
    let elements = verifier_only.circuit_digest.to_vec();
    Hash::from_limbs_reduced(std::array::from_fn(|i| elements.get(i).map_or(0, |e| e.to_canonical_u64())))
}

/// Lays out a compression layer over `inner`'s proofs.
fn define(builder: &mut CircuitBuilder<F, D>, layer: usize, inner: &VerifierCircuitData<F, C, D>) -> ProofWithPublicInputsTarget<D> {
    let proof = builder.add_virtual_proof_with_pis(&inner.common);
    let inner_vd = builder.constant_verifier_data::<C>(&inner.verifier_only);
    builder.verify_proof::<C>(&proof, &inner_vd, &inner.common);
    if layer == 0 {
        let mut input = proof.public_inputs.clone();
        input.extend(builder.constant_hash(inner.verifier_only.circuit_digest).elements);
        let commitment = builder.hash_n_to_hash_no_pad::<PoseidonHash>(input);
        builder.register_public_inputs(&commitment.elements);
    } else {
        builder.register_public_inputs(&proof.public_inputs);
    }
    proof
}

/// One compression layer, committing with `CC`'s hash: Poseidon ([`C`]) for a layer that a
/// further layer verifies, Keccak ([`FinalC`]) for the last.
pub struct CompressionCircuit<CC: ProverConfig = C> {
    pub layer: usize,
    pub data: CircuitData<F, CC, D>,
    inner: VerifierCircuitData<F, C, D>,
    proof: ProofWithPublicInputsTarget<D>,
}

impl<CC: ProverConfig + 'static> CompressionCircuit<CC> {
    /// Whether this is the last layer: the only one committed with [`FinalC`]'s Keccak.
    fn is_final() -> bool {
        std::any::TypeId::of::<CC>() == std::any::TypeId::of::<FinalC>()
    }

    /// Layer 0 verifies the scheduler and commits to its key; later layers verify the layer
    /// before.
    pub fn build(layer: usize, inner: VerifierCircuitData<F, C, D>) -> Self {
        let mut builder = CircuitBuilder::<F, D>::new(compression_config(layer, Self::is_final()));
        let proof = define(&mut builder, layer, &inner);
        Self { layer, data: builder.build::<CC>(), inner, proof }
    }

    /// A layer from its setup data, its targets recovered by laying the circuit out again.
    pub fn from_data(data: CircuitData<F, CC, D>, layer: usize, inner: VerifierCircuitData<F, C, D>) -> Self {
        let mut builder = CircuitBuilder::<F, D>::new(compression_config(layer, Self::is_final()));
        let proof = define(&mut builder, layer, &inner);
        Self { layer, data, inner, proof }
    }

    /// Shrinks the previous layer's proof (the scheduler's for layer 0).
    pub fn prove(&self, inner: &Proof) -> Result<ProofWithPublicInputs<F, CC, D>, AggregationError> {
        let what = || format!("compression layer {}", self.layer);
        self.inner.verify(inner.clone()).map_err(|e| AggregationError::WrongKey { what: what(), index: 0, circuit: if self.layer == 0 { "scheduler".into() } else { format!("compression layer {}", self.layer - 1) }, reason: e.to_string() })?;
        let proving = |e: anyhow::Error| AggregationError::proving(what(), e);
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.proof, inner).map_err(proving)?;
        crate::proving::prove(&self.data, pw).map_err(proving)
    }
}

/// The `layers` compression layers over the scheduler: each layer before the last shrinks the
/// proof before it, the last wraps it into the final proof. Panics if `layers` is 0
/// ([`super::AggregationCircuits::build`] refuses that configuration first).
pub fn build_layers(layers: usize, scheduler: VerifierCircuitData<F, C, D>) -> (Vec<CompressionCircuit>, CompressionCircuit<FinalC>) {
    let last = layers.checked_sub(1).expect("at least one compression layer");
    let built = chain_layers::<std::convert::Infallible>(last, scheduler, |layer, inner| Ok(CompressionCircuit::build(layer, inner)), |layer, inner| Ok(CompressionCircuit::build(layer, inner)));
    built.unwrap_or_else(|never| match never {})
}

/// Layers `0..=last` over the scheduler, each made from its index and the verifier data of the
/// proof it takes (the scheduler's, then the layer before's): by `shrink` up to `last`, by
/// `final_layer` at `last`. One walk for building the layers and for loading them from keys.
pub fn chain_layers<E>(
    last: usize,
    scheduler: VerifierCircuitData<F, C, D>,
    mut shrink: impl FnMut(usize, VerifierCircuitData<F, C, D>) -> Result<CompressionCircuit, E>,
    final_layer: impl FnOnce(usize, VerifierCircuitData<F, C, D>) -> Result<CompressionCircuit<FinalC>, E>,
) -> Result<(Vec<CompressionCircuit>, CompressionCircuit<FinalC>), E> {
    let mut shrunk = Vec::with_capacity(last);
    let mut inner = scheduler;
    for layer in 0..last {
        let circuit = shrink(layer, inner)?;
        inner = circuit.data.verifier_data();
        shrunk.push(circuit);
    }
    Ok((shrunk, final_layer(last, inner)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conjectured security bits of a FRI configuration: queries times rate bits, plus grinding.
    fn security_bits(config: &FriConfig) -> usize {
        config.num_query_rounds * config.rate_bits + config.proof_of_work_bits as usize
    }

    #[test]
    fn every_layer_keeps_the_standard_configurations_security() {
        let standard = security_bits(&circuit_config().fri_config);
        assert_eq!(standard, 100);
        for (layer, is_final) in [(0, false), (0, true), (1, false), (1, true)] {
            assert!(security_bits(&compression_config(layer, is_final).fri_config) >= standard, "layer {layer}, final {is_final}");
        }
    }
}
