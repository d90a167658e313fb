//! The recursion tip (round 3): the one root proof of each basic circuit type (a leaf, or the
//! node at the top of that type's tree), verified under constant keys, exposing each type's
//! context, first state in and last state out for the scheduler.

use std::collections::BTreeMap;

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::target::BoolTarget;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, VerifierOnlyCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;

use super::node::{AggregatedProof, NodeCircuit};
use super::{AggregationError, CONTEXT_WIDTH, PAYLOAD_LEN, Proof, STATE_WIDTH, aggregation_common_data, payload, verifier_data_elements, verifier_data_from_elements};
use crate::basic::CircuitId;
use crate::config::{C, D, F, circuit_config};

/// Public inputs per circuit type: `context (2) || first state in (21) || last state out (21)`.
pub const PER_TYPE: usize = CONTEXT_WIDTH + 2 * STATE_WIDTH;

/// The recursion tip circuit.
pub struct RecursionTipCircuit {
    pub data: CircuitData<F, C, D>,
    targets: TipTargets,
}

/// The tip's witness targets, one root per type in [`CircuitId::ALL`] order.
pub struct TipTargets {
    roots: Vec<ProofWithPublicInputsTarget<D>>,
    is_node: Vec<BoolTarget>,
}

/// Lays out the tip over the leaf keys and the node key.
pub fn define(builder: &mut CircuitBuilder<F, D>, leaf_keys: &BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>, node_key: &VerifierOnlyCircuitData<C, D>) -> TipTargets {
    let common = aggregation_common_data();
    let node_vd = builder.constant_verifier_data::<C>(node_key);
    let node = verifier_data_elements(&node_vd);
    let mut roots = Vec::new();
    let mut is_node = Vec::new();
    for id in CircuitId::ALL {
        let root = builder.add_virtual_proof_with_pis(common);
        let flag = builder.add_virtual_bool_target_safe();
        let leaf_vd = builder.constant_verifier_data::<C>(&leaf_keys[&id]);
        let leaf = verifier_data_elements(&leaf_vd);
        let key: Vec<_> = node.iter().zip(&leaf).map(|(n, l)| builder.select(flag, *n, *l)).collect();
        builder.verify_proof::<C>(&root, &verifier_data_from_elements(&key), common);
        // A node root must carry the real node key (closing the node's cyclic recursion).
        for (carried, n) in root.public_inputs[PAYLOAD_LEN..].iter().zip(&node) {
            builder.conditional_assert_eq(flag.target, *carried, *n);
        }
        let expected_id = builder.constant(F::from_canonical_u8(id.id()));
        builder.connect(root.public_inputs[payload::CIRCUIT_ID], expected_id);
        builder.register_public_inputs(&root.public_inputs[payload::CONTEXT..payload::COUNT]);
        roots.push(root);
        is_node.push(flag);
    }
    TipTargets { roots, is_node }
}

impl RecursionTipCircuit {
    /// Builds the tip over the leaf keys and the node circuit.
    pub fn build(leaf_keys: &BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>, node: &NodeCircuit) -> Self {
        let mut builder = CircuitBuilder::new(circuit_config());
        let targets = define(&mut builder, leaf_keys, &node.data.verifier_only);
        Self { data: builder.build::<C>(), targets }
    }

    /// The tip from its setup data, its targets recovered by laying the circuit out again.
    pub fn from_data(data: CircuitData<F, C, D>, leaf_keys: &BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>, node: &NodeCircuit) -> Self {
        let mut builder = CircuitBuilder::new(circuit_config());
        let targets = define(&mut builder, leaf_keys, &node.data.verifier_only);
        Self { data, targets }
    }

    /// Proves from the root of each circuit type, in [`CircuitId::ALL`] order.
    pub fn prove(&self, node: &NodeCircuit, roots: &[AggregatedProof]) -> Result<Proof, AggregationError> {
        let what = "recursion tip".to_string();
        if roots.len() != CircuitId::ALL.len() {
            return Err(AggregationError::Inconsistent { what, reason: format!("{} roots, one per circuit type ({}) expected", roots.len(), CircuitId::ALL.len()) });
        }
        for (index, (root, id)) in roots.iter().zip(CircuitId::ALL).enumerate() {
            if root.circuit_id() != Some(id) {
                return Err(AggregationError::WrongCircuit { what, index, got: format!("{:?}", root.circuit_id()), expected: id.to_string() });
            }
            node.verify(root).map_err(|e| AggregationError::WrongKey { what: what.clone(), index, circuit: id.to_string(), reason: e.to_string() })?;
        }
        let proving = |e: anyhow::Error| AggregationError::proving("recursion tip".into(), e);
        let mut pw = PartialWitness::new();
        for ((target, flag), root) in self.targets.roots.iter().zip(&self.targets.is_node).zip(roots) {
            pw.set_proof_with_pis_target(target, &root.proof).map_err(proving)?;
            pw.set_bool_target(*flag, root.is_node).map_err(proving)?;
        }
        crate::proving::prove(&self.data, pw).map_err(proving)
    }
}

/// The tip's public inputs for one circuit type: `(context, first in, last out)`.
pub fn per_type(tip_public_inputs: &[F], id: CircuitId) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let index = CircuitId::ALL.iter().position(|c| *c == id).expect("every id is listed");
    let slice: Vec<u64> = tip_public_inputs[index * PER_TYPE..(index + 1) * PER_TYPE].iter().map(|x| x.to_canonical_u64()).collect();
    (slice[..CONTEXT_WIDTH].to_vec(), slice[CONTEXT_WIDTH..CONTEXT_WIDTH + STATE_WIDTH].to_vec(), slice[CONTEXT_WIDTH + STATE_WIDTH..].to_vec())
}
