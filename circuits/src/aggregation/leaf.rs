//! Leaf aggregation (round 1): up to L basic proofs of one circuit type, in order.
//!
//! Slot 0 is always used; the used slots are a prefix (a slot is used only if the one before
//! is). Each used slot after the first must have proof 0's context and start where the previous
//! used slot ends. Unused slots verify a copy of the last used proof and are ignored otherwise,
//! so any count from 1 to L is sound: no proof can be dropped, repeated or reordered without
//! breaking the chain this leaf or its neighbours expose.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, VerifierCircuitData, VerifierCircuitTarget};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;

use super::{AggregationError, CONTEXT_WIDTH, Proof, STATE_WIDTH, aggregation_config, build_with_aggregation_common_data};
use crate::basic::CircuitId;
use crate::config::{C, D, F};
use crate::prover::BasicCircuit;

/// The leaf circuit of one basic circuit type.
pub struct LeafCircuit {
    pub circuit_id: CircuitId,
    pub capacity: usize,
    pub data: CircuitData<F, C, D>,
    basic: VerifierCircuitData<F, C, D>,
    targets: LeafTargets,
}

/// A leaf's witness targets.
pub struct LeafTargets {
    proofs: Vec<ProofWithPublicInputsTarget<D>>,
    /// Whether slots 1.. are used (slot 0 always is).
    used: Vec<BoolTarget>,
    own_verifier_data: VerifierCircuitTarget,
}

/// Lays out the leaf for `basic`'s proofs, `capacity` slots.
pub fn define(builder: &mut CircuitBuilder<F, D>, basic: &VerifierCircuitData<F, C, D>, circuit_id: CircuitId, capacity: usize) -> LeafTargets {
    let (context_len, state_len) = circuit_id.public_input_layout();
    let basic_vd = builder.constant_verifier_data::<C>(&basic.verifier_only);
    let proofs: Vec<_> = (0..capacity)
        .map(|_| {
            let proof = builder.add_virtual_proof_with_pis(&basic.common);
            builder.verify_proof::<C>(&proof, &basic_vd, &basic.common);
            proof
        })
        .collect();
    let context = |p: &ProofWithPublicInputsTarget<D>| p.public_inputs[..context_len].to_vec();
    let state_in = |p: &ProofWithPublicInputsTarget<D>| p.public_inputs[context_len..context_len + state_len].to_vec();
    let state_out = |p: &ProofWithPublicInputsTarget<D>| p.public_inputs[context_len + state_len..context_len + 2 * state_len].to_vec();

    let mut used = Vec::with_capacity(capacity.saturating_sub(1));
    let mut previous_used = builder._true();
    let mut last_out = state_out(&proofs[0]);
    let mut count = builder.one();
    for i in 1..capacity {
        let u = builder.add_virtual_bool_target_safe();
        // A prefix: used only after a used slot.
        let previous_unused = builder.not(previous_used);
        let gap = builder.mul(u.target, previous_unused.target);
        builder.assert_zero(gap);
        for (a, b) in context(&proofs[i]).into_iter().zip(context(&proofs[0])) {
            builder.conditional_assert_eq(u.target, a, b);
        }
        for (a, b) in state_in(&proofs[i]).into_iter().zip(state_out(&proofs[i - 1])) {
            builder.conditional_assert_eq(u.target, a, b);
        }
        let out = state_out(&proofs[i]);
        last_out = last_out.iter().zip(out).map(|(l, o)| builder.select(u, o, *l)).collect();
        count = builder.add(count, u.target);
        previous_used = u;
        used.push(u);
    }

    let zero = builder.zero();
    let padded = |mut v: Vec<Target>, width: usize| {
        v.resize(width, zero);
        v
    };
    let mut payload = vec![builder.constant(F::from_canonical_u8(circuit_id.id()))];
    payload.extend(padded(context(&proofs[0]), CONTEXT_WIDTH));
    payload.extend(padded(state_in(&proofs[0]), STATE_WIDTH));
    payload.extend(padded(last_out, STATE_WIDTH));
    payload.push(count);
    builder.register_public_inputs(&payload);
    let own_verifier_data = builder.add_verifier_data_public_inputs();
    LeafTargets { proofs, used, own_verifier_data }
}

/// The public inputs `context || state in || state out` of a basic proof, split.
pub(crate) fn basic_parts(circuit_id: CircuitId, proof: &Proof) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let (c, s) = circuit_id.public_input_layout();
    let pis: Vec<u64> = proof.public_inputs.iter().map(|x| x.to_canonical_u64()).collect();
    (pis[..c].to_vec(), pis[c..c + s].to_vec(), pis[c + s..c + 2 * s].to_vec())
}

impl LeafCircuit {
    /// Builds the leaf of `basic`'s circuit type.
    pub fn build(basic: &BasicCircuit, capacity: usize) -> Result<Self, AggregationError> {
        Self::build_for(basic.data.verifier_data(), basic.id, capacity)
    }

    /// Builds the leaf for a basic circuit known by its verifier data.
    pub fn build_for(basic: VerifierCircuitData<F, C, D>, circuit_id: CircuitId, capacity: usize) -> Result<Self, AggregationError> {
        let what = format!("leaf of {circuit_id}");
        if capacity == 0 {
            return Err(AggregationError::Empty { what });
        }
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &basic, circuit_id, capacity);
        let data = build_with_aggregation_common_data(builder, &what)?;
        Ok(Self { circuit_id, capacity, data, basic, targets })
    }

    /// A leaf from its setup data, its targets recovered by laying the circuit out again.
    pub fn from_data(data: CircuitData<F, C, D>, basic: VerifierCircuitData<F, C, D>, circuit_id: CircuitId, capacity: usize) -> Self {
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &basic, circuit_id, capacity);
        Self { circuit_id, capacity, data, basic, targets }
    }

    fn what(&self) -> String {
        format!("leaf of {}", self.circuit_id)
    }

    /// Checks the basic proofs natively, naming the first offender: each verifies under this
    /// type's key, shares proof 0's context and continues the previous proof's state.
    pub fn check(&self, proofs: &[Proof]) -> Result<(), AggregationError> {
        let what = self.what();
        if proofs.is_empty() {
            return Err(AggregationError::Empty { what });
        }
        if proofs.len() > self.capacity {
            return Err(AggregationError::TooMany { what, count: proofs.len(), max: self.capacity });
        }
        for (index, proof) in proofs.iter().enumerate() {
            self.basic.verify(proof.clone()).map_err(|e| AggregationError::WrongKey { what: what.clone(), index, circuit: self.circuit_id.to_string(), reason: e.to_string() })?;
        }
        let (context0, _, _) = basic_parts(self.circuit_id, &proofs[0]);
        for (index, pair) in proofs.windows(2).enumerate() {
            let (context, state_in, _) = basic_parts(self.circuit_id, &pair[1]);
            let (_, _, previous_out) = basic_parts(self.circuit_id, &pair[0]);
            if context != context0 {
                return Err(AggregationError::OtherBatch { what, index: index + 1 });
            }
            if state_in != previous_out {
                return Err(AggregationError::Unchained { what, index: index + 1, previous: index });
            }
        }
        Ok(())
    }

    /// Aggregates 1 to `capacity` consecutive basic proofs of this type.
    pub fn prove(&self, proofs: &[Proof]) -> Result<Proof, AggregationError> {
        self.check(proofs)?;
        self.prove_checked(proofs)
    }

    /// Proves without the native checks, so a test can show the circuit itself refuses.
    #[cfg(feature = "test-utils")]
    pub fn prove_unchecked(&self, proofs: &[Proof]) -> Result<Proof, AggregationError> {
        self.prove_checked(proofs)
    }

    fn prove_checked(&self, proofs: &[Proof]) -> Result<Proof, AggregationError> {
        let proving = |e: anyhow::Error| AggregationError::proving(self.what(), e);
        let mut pw = PartialWitness::new();
        let last = proofs.last().ok_or_else(|| AggregationError::Empty { what: self.what() })?;
        for (i, target) in self.targets.proofs.iter().enumerate() {
            pw.set_proof_with_pis_target(target, proofs.get(i).unwrap_or(last)).map_err(proving)?;
        }
        for (i, used) in self.targets.used.iter().enumerate() {
            pw.set_bool_target(*used, i + 1 < proofs.len()).map_err(proving)?;
        }
        pw.set_verifier_data_target(&self.targets.own_verifier_data, &self.data.verifier_only).map_err(proving)?;
        crate::proving::prove(&self.data, pw).map_err(proving)
    }
}
