//! Node aggregation (round 2): two or three leaf-or-node proofs of one circuit type, each
//! starting where the one before ends, merged into one range. (Three verifications of 2^14
//! proofs fit the node's own 2^14 rows, so a level needs a third fewer nodes than with pairs.)
//! An unused third slot verifies a copy of the second child and is otherwise ignored.
//!
//! A child that is a leaf is verified under that type's leaf key (a constant, chosen by the
//! child's circuit id); a child that is a node under this circuit's own key, which the node reads
//! from its own public inputs and requires the child to carry too. Whoever verifies a node (the
//! recursion tip, or [`NodeCircuit::verify`]) checks those public inputs against the real node
//! key, which closes the cycle.

use std::collections::BTreeMap;

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, VerifierCircuitData, VerifierOnlyCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;
use plonky2::recursion::cyclic_recursion::check_cyclic_proof_verifier_data;

use super::leaf::LeafCircuit;
use super::{AggregationError, PAYLOAD_LEN, Proof, aggregation_common_data, aggregation_config, build_with_aggregation_common_data, circuit_id_of, payload, verifier_data_elements, verifier_data_from_elements};
use crate::basic::CircuitId;
use crate::config::{C, D, F};

/// A leaf or node proof, and which it is (the verifier needs to know which key to use).
#[derive(Clone, Debug)]
pub struct AggregatedProof {
    pub is_node: bool,
    pub proof: Proof,
}

impl AggregatedProof {
    /// The basic circuit type the proof aggregates.
    pub fn circuit_id(&self) -> Option<CircuitId> {
        circuit_id_of(&self.proof)
    }

    fn payload(&self) -> Vec<u64> {
        self.proof.public_inputs[..PAYLOAD_LEN].iter().map(|x| x.to_canonical_u64()).collect()
    }
}

/// The one node circuit, shared by every circuit type.
pub struct NodeCircuit {
    pub data: CircuitData<F, C, D>,
    leaf_keys: BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>,
    targets: NodeTargets,
}

/// Children a node merges at most.
pub const NODE_ARITY: usize = 3;

/// How one level of a type's proofs is grouped into nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeGrouping {
    /// Each full group of [`NODE_ARITY`] becomes a node and the remainder moves up unchanged, to
    /// be merged at the next level with the nodes made here; a level of at most `NODE_ARITY`
    /// proofs is merged whole. Every node of three takes two proofs off the count and only the
    /// last node can be of two, so a type's tree has the fewest nodes there can be,
    /// `ceil((leaves - 1) / 2)` (five leaves: two nodes, not three).
    FewestNodes,
    /// Groups of `NODE_ARITY` in order, a pair at the end merged and a lone proof moved up: the
    /// grouping before [`Self::FewestNodes`], kept so workflows started under it replay.
    Chunks,
}

impl NodeGrouping {
    /// The next level up from `items` (in order): each group `merge`d into a node, in order, then
    /// the proofs moved up unchanged.
    pub fn level<T: Clone, E>(self, items: &[T], mut merge: impl FnMut(&[T]) -> Result<T, E>) -> Result<Vec<T>, E> {
        let grouped = match self {
            Self::FewestNodes if items.len() > NODE_ARITY => items.len() / NODE_ARITY * NODE_ARITY,
            _ => items.len(),
        };
        let mut next = Vec::with_capacity(grouped / NODE_ARITY + NODE_ARITY);
        for group in items[..grouped].chunks(NODE_ARITY) {
            next.push(match group {
                [single] => single.clone(),
                children => merge(children)?,
            });
        }
        next.extend_from_slice(&items[grouped..]);
        Ok(next)
    }

    /// The root over `items` (at least one, in order): levels of nodes until one proof remains.
    pub fn root<T: Clone, E>(self, mut items: Vec<T>, mut merge: impl FnMut(&[T]) -> Result<T, E>) -> Result<T, E> {
        while items.len() > 1 {
            items = self.level(&items, &mut merge)?;
        }
        Ok(items.pop().expect("a root over at least one proof"))
    }
}

/// A node's witness targets.
pub struct NodeTargets {
    children: [ProofWithPublicInputsTarget<D>; NODE_ARITY],
    is_node: [BoolTarget; NODE_ARITY],
    /// Whether the third child is used.
    third_used: BoolTarget,
    own_verifier_data: plonky2::plonk::circuit_data::VerifierCircuitTarget,
}

/// Lays out the node over the leaf keys of every circuit type.
pub fn define(builder: &mut CircuitBuilder<F, D>, leaf_keys: &BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>) -> NodeTargets {
    let common = aggregation_common_data();
    let children: [ProofWithPublicInputsTarget<D>; NODE_ARITY] = std::array::from_fn(|_| builder.add_virtual_proof_with_pis(common));
    let is_node: [BoolTarget; NODE_ARITY] = std::array::from_fn(|_| builder.add_virtual_bool_target_safe());
    let third_used = builder.add_virtual_bool_target_safe();
    let part = |c: &ProofWithPublicInputsTarget<D>, at: usize, len: usize| c.public_inputs[at..at + len].to_vec();
    let always = builder._true();

    // The merged range: same type and context, each child continuing the one before.
    for (i, used) in [(1, always), (2, third_used)] {
        let (previous, child) = (&children[i - 1], &children[i]);
        let same = |at: usize, len: usize| part(child, at, len).into_iter().zip(part(&children[0], at, len));
        for (a, b) in same(payload::CIRCUIT_ID, 1).chain(same(payload::CONTEXT, super::CONTEXT_WIDTH)) {
            builder.conditional_assert_eq(used.target, a, b);
        }
        for (a, b) in part(previous, payload::LAST_OUT, super::STATE_WIDTH).into_iter().zip(part(child, payload::FIRST_IN, super::STATE_WIDTH)) {
            builder.conditional_assert_eq(used.target, a, b);
        }
    }
    let mut merged = part(&children[0], 0, payload::LAST_OUT);
    let last_out: Vec<Target> = part(&children[2], payload::LAST_OUT, super::STATE_WIDTH)
        .into_iter()
        .zip(part(&children[1], payload::LAST_OUT, super::STATE_WIDTH))
        .map(|(third, second)| builder.select(third_used, third, second))
        .collect();
    merged.extend(last_out);
    let two = builder.add(children[0].public_inputs[payload::COUNT], children[1].public_inputs[payload::COUNT]);
    merged.push(builder.mul_add(third_used.target, children[2].public_inputs[payload::COUNT], two));
    builder.register_public_inputs(&merged);
    let own_verifier_data = builder.add_verifier_data_public_inputs();
    let own = verifier_data_elements(&own_verifier_data);

    let leaf_keys: Vec<(F, Vec<Target>)> = leaf_keys
        .iter()
        .map(|(id, key)| {
            let vd = builder.constant_verifier_data::<C>(key);
            (F::from_canonical_u8(id.id()), verifier_data_elements(&vd))
        })
        .collect();
    for (child, node) in children.iter().zip(is_node) {
        // The leaf key of the child's type: exactly one type matches.
        let id = child.public_inputs[payload::CIRCUIT_ID];
        let zero = builder.zero();
        let mut matches = zero;
        let mut leaf_key = vec![zero; own.len()];
        for (type_id, key) in &leaf_keys {
            let id_const = builder.constant(*type_id);
            let is_type = builder.is_equal(id, id_const);
            matches = builder.add(matches, is_type.target);
            leaf_key = leaf_key.iter().zip(key).map(|(acc, k)| builder.mul_add(is_type.target, *k, *acc)).collect();
        }
        builder.assert_one(matches);
        let key: Vec<Target> = own.iter().zip(&leaf_key).map(|(o, l)| builder.select(node, *o, *l)).collect();
        builder.verify_proof::<C>(child, &verifier_data_from_elements(&key), common);
        // A node child carries this circuit's key in its public inputs.
        for (carried, o) in child.public_inputs[PAYLOAD_LEN..].iter().zip(&own) {
            builder.conditional_assert_eq(node.target, *carried, *o);
        }
    }
    NodeTargets { children, is_node, third_used, own_verifier_data }
}

impl NodeCircuit {
    /// Builds the node over the given leaves (one per circuit type).
    pub fn build(leaves: &BTreeMap<CircuitId, LeafCircuit>) -> Result<Self, AggregationError> {
        let leaf_keys: BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>> = leaves.iter().map(|(id, leaf)| (*id, leaf.data.verifier_only.clone())).collect();
        Self::build_with_keys(leaf_keys)
    }

    /// Builds the node from the leaves' verifier keys.
    pub fn build_with_keys(leaf_keys: BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>) -> Result<Self, AggregationError> {
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &leaf_keys);
        let data = build_with_aggregation_common_data(builder, "node")?;
        Ok(Self { data, leaf_keys, targets })
    }

    /// The node from its setup data, its targets recovered by laying the circuit out again.
    pub fn from_data(data: CircuitData<F, C, D>, leaf_keys: BTreeMap<CircuitId, VerifierOnlyCircuitData<C, D>>) -> Self {
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &leaf_keys);
        Self { data, leaf_keys, targets }
    }

    /// Verifies a leaf or node proof natively, including a node's carried key.
    pub fn verify(&self, proof: &AggregatedProof) -> anyhow::Result<()> {
        let common = aggregation_common_data();
        if proof.is_node {
            check_cyclic_proof_verifier_data(&proof.proof, &self.data.verifier_only, common)?;
            self.data.verify(proof.proof.clone())
        } else {
            let id = proof.circuit_id().ok_or_else(|| anyhow::anyhow!("no basic circuit has the id {}", proof.proof.public_inputs[0]))?;
            let key = self.leaf_keys.get(&id).ok_or_else(|| anyhow::anyhow!("no leaf key for {id}"))?;
            VerifierCircuitData { verifier_only: key.clone(), common: common.clone() }.verify(proof.proof.clone())
        }
    }

    /// Merges two or three adjacent ranges of one circuit type.
    pub fn prove(&self, children: &[AggregatedProof]) -> Result<AggregatedProof, AggregationError> {
        let what = "node".to_string();
        if !(2..=NODE_ARITY).contains(&children.len()) {
            return Err(AggregationError::Inconsistent { what, reason: format!("{} children, a node merges 2 to {NODE_ARITY}", children.len()) });
        }
        for (index, child) in children.iter().enumerate() {
            self.verify(child).map_err(|e| AggregationError::WrongKey {
                what: what.clone(),
                index,
                circuit: if child.is_node { "node".into() } else { "leaf".into() },
                reason: e.to_string(),
            })?;
        }
        let first = children[0].payload();
        for (index, pair) in children.windows(2).enumerate() {
            let (previous, child) = (pair[0].payload(), pair[1].payload());
            let index = index + 1;
            if child[payload::CIRCUIT_ID] != first[payload::CIRCUIT_ID] {
                return Err(AggregationError::WrongCircuit { what, index, got: format!("{:?}", pair[1].circuit_id()), expected: format!("{:?}", children[0].circuit_id()) });
            }
            if child[payload::CONTEXT..payload::FIRST_IN] != first[payload::CONTEXT..payload::FIRST_IN] {
                return Err(AggregationError::OtherBatch { what, index });
            }
            if previous[payload::LAST_OUT..payload::COUNT] != child[payload::FIRST_IN..payload::LAST_OUT] {
                return Err(AggregationError::Unchained { what, index, previous: index - 1 });
            }
        }
        let proving = |e: anyhow::Error| AggregationError::proving("node".into(), e);
        let mut pw = PartialWitness::new();
        let last = children.last().expect("at least two");
        for (i, (target, flag)) in self.targets.children.iter().zip(self.targets.is_node).enumerate() {
            let child = children.get(i).unwrap_or(last);
            pw.set_proof_with_pis_target(target, &child.proof).map_err(proving)?;
            pw.set_bool_target(flag, child.is_node).map_err(proving)?;
        }
        pw.set_bool_target(self.targets.third_used, children.len() == NODE_ARITY).map_err(proving)?;
        pw.set_verifier_data_target(&self.targets.own_verifier_data, &self.data.verifier_only).map_err(proving)?;
        Ok(AggregatedProof { is_node: true, proof: crate::proving::prove(&self.data, pw).map_err(proving)? })
    }
}
