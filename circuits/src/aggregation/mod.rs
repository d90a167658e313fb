//! Rounds 1 to 5: a batch's basic proofs aggregated into one small proof.
//!
//! - [`leaf`] (round 1) verifies up to L basic proofs of one circuit type, in order, checks that
//!   they chain, and exposes the type, context, first state in, last state out and count.
//! - [`node`] (round 2) verifies two or three leaf-or-node proofs of one type and merges their ranges;
//!   applied level by level until one proof per type remains. Leaves and nodes share one
//!   [`CommonCircuitData`], so one node circuit verifies either, and node levels repeat without
//!   new keys: a node fixes each leaf's verifier data as a constant and its own through its public
//!   inputs (plonky2's cyclic recursion), which whoever verifies a node checks.
//! - [`recursion_tip`] (round 3) verifies the one root proof of each circuit type.
//! - [`scheduler`] (round 4) verifies the recursion tip and checks every queue and state against
//!   the batch's public data, which it exposes.
//! - [`compression`] (round 5) shrinks the proof; its first layer, which fixes the scheduler's
//!   verifier data as a constant, turns the public data into the batch commitment
//!   `H(public data || scheduler key hash)`, the final proof's one public input.
//!
//! Every aggregation circuit fixes the verifier data of what it verifies as constants, so a proof
//! made with any other key is refused.

pub mod compression;
pub mod leaf;
pub mod node;
pub mod recursion_tip;
pub mod scheduler;

use std::sync::LazyLock;

use plonky2::fri::FriConfig;
use plonky2::fri::reduction_strategies::FriReductionStrategy;
use plonky2::gates::exponentiation::ExponentiationGate;
use plonky2::gates::gate::GateRef;
use plonky2::gates::noop::NoopGate;
use plonky2::hash::hash_types::{HashOutTarget, MerkleCapTarget};
use plonky2::iop::target::Target;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData, CommonCircuitData, VerifierCircuitTarget};
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::basic::CircuitId;
use crate::config::{C, D, F, FinalC, circuit_config};

/// A proof of any round.
pub type Proof = ProofWithPublicInputs<F, C, D>;

/// The degree every leaf and node circuit is padded to: a node verifying two proofs of this
/// degree fits in it, which is what lets nodes verify nodes.
pub const AGGREGATION_DEGREE_BITS: usize = 14;

/// Routed wires of leaf, node and scheduler circuits (the standard configuration has 80). See
/// [`aggregation_config`].
pub const AGGREGATION_ROUTED_WIRES: usize = 48;

/// The configuration of leaf, node and scheduler circuits: the standard one with fewer routed
/// wires ([`AGGREGATION_ROUTED_WIRES`]) and FRI folded down to a final polynomial of up to 2^7
/// coefficients (the standard stops at 2^5). Both make a proof cheaper to verify in a circuit:
/// each query opens a sigma column per routed wire and partial products with them, and each FRI
/// step costs a Merkle path and a coset's interpolation per query. That is what lets the
/// recursion tip verify four leaves or nodes in 2^14 rows rather than 2^15, and the final wrap
/// verify the scheduler in 2^12 rows with no shrink layer between them. A leaf still verifies
/// three basic proofs (standard configuration) in its 2^14 rows.
pub fn aggregation_config() -> CircuitConfig {
    let standard = circuit_config();
    let fri_config = FriConfig { reduction_strategy: FriReductionStrategy::ConstantArityBits(4, 7), ..standard.fri_config };
    CircuitConfig { num_routed_wires: AGGREGATION_ROUTED_WIRES, fri_config, ..standard }
}

/// Widest basic context (TxExecution's chain id and fee account).
pub const CONTEXT_WIDTH: usize = 2;
/// Widest basic state (PubdataHasher's).
pub const STATE_WIDTH: usize = 21;
/// A leaf's or node's public inputs before its verifier data:
/// `circuit id || context (2) || first state in (21) || last state out (21) || count`, each part
/// zero-padded to the widest circuit.
pub const PAYLOAD_LEN: usize = 1 + CONTEXT_WIDTH + 2 * STATE_WIDTH + 1;

/// Offsets into the payload.
pub(crate) mod payload {
    use super::{CONTEXT_WIDTH, STATE_WIDTH};
    pub const CIRCUIT_ID: usize = 0;
    pub const CONTEXT: usize = 1;
    pub const FIRST_IN: usize = CONTEXT + CONTEXT_WIDTH;
    pub const LAST_OUT: usize = FIRST_IN + STATE_WIDTH;
    pub const COUNT: usize = LAST_OUT + STATE_WIDTH;
}

/// Why a step of aggregation refused its inputs (each names the offending proof; none is fixed
/// by retrying) or failed on the prover's backend (which a retry may fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregationError {
    #[error("{what}: no proofs to aggregate")]
    Empty { what: String },
    #[error("{what}: {count} proofs, at most {max} fit")]
    TooMany { what: String, count: usize, max: usize },
    #[error("{what}: proof {index} does not verify under the {circuit} key: {reason}")]
    WrongKey { what: String, index: usize, circuit: String, reason: String },
    #[error("{what}: proof {index} is of {got}, expected {expected}")]
    WrongCircuit { what: String, index: usize, got: String, expected: String },
    #[error("{what}: proof {index} belongs to another batch (its context differs from proof 0's)")]
    OtherBatch { what: String, index: usize },
    #[error("{what}: proof {index} does not continue where proof {previous} ends (out of order, missing or repeated)")]
    Unchained { what: String, index: usize, previous: usize },
    #[error("{what}: {reason}")]
    Inconsistent { what: String, reason: String },
    #[error("{what}: proving failed: {reason}")]
    Proving { what: String, reason: String },
    #[error("{what}: the prover's backend failed: {reason}")]
    Backend { what: String, reason: String },
}

impl AggregationError {
    /// A proof of `what` that failed: the backend's fault, or its inputs'.
    pub fn proving(what: String, error: anyhow::Error) -> Self {
        match crate::proving::is_backend_fault(&error) {
            true => Self::Backend { what, reason: error.to_string() },
            false => Self::Proving { what, reason: error.to_string() },
        }
    }

    /// Bad inputs are not fixed by retrying; a backend's failure may be.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Empty { .. }
            | Self::TooMany { .. }
            | Self::WrongKey { .. }
            | Self::WrongCircuit { .. }
            | Self::OtherBatch { .. }
            | Self::Unchained { .. }
            | Self::Inconsistent { .. }
            | Self::Proving { .. } => false,
            Self::Backend { .. } => true,
        }
    }
}

/// Verifier data as the flat list `digest || cap`, the order plonky2 registers it as public
/// inputs.
pub(crate) fn verifier_data_elements(vd: &VerifierCircuitTarget) -> Vec<Target> {
    let mut out = vd.circuit_digest.elements.to_vec();
    for h in &vd.constants_sigmas_cap.0 {
        out.extend(h.elements);
    }
    out
}

/// The inverse of [`verifier_data_elements`].
pub(crate) fn verifier_data_from_elements(elements: &[Target]) -> VerifierCircuitTarget {
    let digest = HashOutTarget { elements: elements[..4].try_into().expect("4 digest elements") };
    let cap = elements[4..].chunks_exact(4).map(|c| HashOutTarget { elements: c.try_into().expect("4 elements") }).collect();
    VerifierCircuitTarget { constants_sigmas_cap: MerkleCapTarget(cap), circuit_digest: digest }
}

/// The common data that every leaf and node circuit has, found the way plonky2's cyclic
/// recursion finds it: a circuit verifying two proofs of a circuit verifying a proof, with the
/// aggregation's public inputs, padded to [`AGGREGATION_DEGREE_BITS`]. The node circuit checks
/// that it reproduces it.
pub fn aggregation_common_data() -> &'static CommonCircuitData<F, D> {
    static COMMON: LazyLock<CommonCircuitData<F, D>> = LazyLock::new(|| {
        let trivial = CircuitBuilder::<F, D>::new(aggregation_config()).build::<C>();
        let mut builder = CircuitBuilder::<F, D>::new(aggregation_config());
        let proof = builder.add_virtual_proof_with_pis(&trivial.common);
        let vd = builder.add_virtual_verifier_data(trivial.common.config.fri_config.cap_height);
        builder.verify_proof::<C>(&proof, &vd, &trivial.common);
        let one_level = builder.build::<C>();

        let mut builder = CircuitBuilder::<F, D>::new(aggregation_config());
        for _ in 0..2 {
            let proof = builder.add_virtual_proof_with_pis(&one_level.common);
            let vd = builder.add_virtual_verifier_data(one_level.common.config.fri_config.cap_height);
            builder.verify_proof::<C>(&proof, &vd, &one_level.common);
        }
        // A leaf verifying basic proofs whose LDE has more than 2^(routed wires / 4) rows (a
        // 2^17 basic circuit's has 2^20) computes each query's point with an exponentiation
        // gate rather than arithmetic gates; every leaf and node has it in its gate set.
        builder.add_gate_to_gate_set(GateRef::new(ExponentiationGate::new_from_config(&builder.config)));
        let payload = builder.add_virtual_targets(PAYLOAD_LEN);
        builder.register_public_inputs(&payload);
        builder.add_verifier_data_public_inputs();
        pad_to_aggregation_degree(&mut builder);
        builder.build::<C>().common
    });
    &COMMON
}

/// Pads a leaf or node circuit to the aggregation degree, leaving room for the gates `build`
/// adds (constants, public inputs).
pub(crate) fn pad_to_aggregation_degree(builder: &mut CircuitBuilder<F, D>) {
    while builder.num_gates() < (1 << AGGREGATION_DEGREE_BITS) - 64 {
        builder.add_gate(NoopGate, vec![]);
    }
}

/// Builds a leaf or node circuit so its common data is [`aggregation_common_data`]: every gate
/// of that common data in the gate set, padded to its degree. A circuit too big to fit is refused.
pub(crate) fn build_with_aggregation_common_data(mut builder: CircuitBuilder<F, D>, what: &str) -> Result<CircuitData<F, C, D>, AggregationError> {
    let goal = aggregation_common_data();
    tracing::debug!(circuit = what, gates = builder.num_gates(), "aggregation circuit before padding");
    if builder.num_gates() > (1 << AGGREGATION_DEGREE_BITS) - 64 {
        return Err(AggregationError::Inconsistent {
            what: what.into(),
            reason: format!("{} gates do not fit the aggregation degree 2^{AGGREGATION_DEGREE_BITS}; aggregate fewer proofs per leaf", builder.num_gates()),
        });
    }
    for gate in &goal.gates {
        builder.add_gate_to_gate_set(gate.clone());
    }
    pad_to_aggregation_degree(&mut builder);
    let data = builder.build::<C>();
    if data.common != *goal {
        return Err(AggregationError::Inconsistent { what: what.into(), reason: "its common data differs from the aggregation common data".into() });
    }
    Ok(data)
}

/// The circuit id a payload names.
pub(crate) fn circuit_id_of(proof: &Proof) -> Option<CircuitId> {
    use plonky2::field::types::PrimeField64;
    let id = proof.public_inputs.first()?.to_canonical_u64();
    CircuitId::ALL.into_iter().find(|c| u64::from(c.id()) == id)
}

/// Every aggregation circuit of one protocol version, built over its basic circuits.
pub struct AggregationCircuits {
    pub leaves: std::collections::BTreeMap<CircuitId, leaf::LeafCircuit>,
    pub node: node::NodeCircuit,
    pub tip: recursion_tip::RecursionTipCircuit,
    pub scheduler: scheduler::SchedulerCircuit,
    /// The compression layers before the last (Poseidon: the next layer verifies each).
    pub compression: Vec<compression::CompressionCircuit>,
    /// The last compression layer (Keccak), whose proofs are final.
    pub final_layer: compression::CompressionCircuit<FinalC>,
}

impl AggregationCircuits {
    /// Builds rounds 1 to 5 over `basic` (one built basic circuit per type).
    pub fn build(
        basic: &std::collections::BTreeMap<CircuitId, crate::prover::BasicCircuit>,
        config: &via_schemas::config::AggregationConfig,
        protocol_version: via_schemas::prover_interface::ProtocolSemanticVersion,
    ) -> Result<Self, AggregationError> {
        // Refused before any circuit is built (the leaves take minutes at the production shape).
        if config.compression_layers == 0 {
            return Err(AggregationError::Inconsistent { what: "compression".into(), reason: "compression_layers is 0: at least one layer, the final wrap, makes the final proof".into() });
        }
        let mut leaves = std::collections::BTreeMap::new();
        for id in CircuitId::ALL {
            let circuit = basic.get(&id).ok_or_else(|| AggregationError::Inconsistent { what: "aggregation".into(), reason: format!("no basic circuit {id}") })?;
            leaves.insert(id, leaf::LeafCircuit::build(circuit, config.basic_proofs_per_leaf)?);
        }
        let node = node::NodeCircuit::build(&leaves)?;
        let leaf_keys = leaves.iter().map(|(id, l)| (*id, l.data.verifier_only.clone())).collect();
        let tip = recursion_tip::RecursionTipCircuit::build(&leaf_keys, &node);
        let scheduler = scheduler::SchedulerCircuit::build(&tip, protocol_version);
        let (compression, final_layer) = compression::build_layers(config.compression_layers, scheduler.data.verifier_data());
        Ok(Self { leaves, node, tip, scheduler, compression, final_layer })
    }

    /// The protocol version's verification key hash: the scheduler's circuit digest.
    pub fn scheduler_vk_hash(&self) -> via_schemas::primitives::Hash {
        compression::vk_hash(&self.scheduler.data.verifier_only)
    }

    /// A final proof as it travels to L1: plonky2's compressed form (Merkle paths deduplicated
    /// across queries), about 15% smaller.
    pub fn final_proof_bytes(&self, proof: compression::FinalProof) -> Result<Vec<u8>, AggregationError> {
        let compressed = self.final_circuit().data.compress(proof).map_err(|e| AggregationError::Proving { what: "final proof".into(), reason: e.to_string() })?;
        Ok(compressed.to_bytes())
    }

    /// The circuit whose proofs are final.
    pub fn final_circuit(&self) -> &compression::CompressionCircuit<FinalC> {
        &self.final_layer
    }

    /// Round 5: the scheduler's proof through every compression layer to the final proof.
    pub fn compress(&self, scheduler_proof: &Proof) -> Result<compression::FinalProof, AggregationError> {
        let mut proof = std::borrow::Cow::Borrowed(scheduler_proof);
        for layer in &self.compression {
            proof = std::borrow::Cow::Owned(layer.prove(&proof)?);
        }
        self.final_layer.prove(&proof)
    }

    /// One circuit type's basic proofs (in sequence order) up to its root: leaves of
    /// `basic_proofs_per_leaf`, then nodes of up to three, level by level, grouped for the fewest
    /// nodes ([`node::NodeGrouping::FewestNodes`]).
    pub fn aggregate_type(&self, id: CircuitId, basic_proofs: &[Proof]) -> Result<node::AggregatedProof, AggregationError> {
        let leaf = &self.leaves[&id];
        if basic_proofs.is_empty() {
            return Err(AggregationError::Empty { what: format!("leaves of {id}") });
        }
        let leaves: Vec<node::AggregatedProof> = basic_proofs
            .chunks(leaf.capacity)
            .map(|chunk| leaf.prove(chunk).map(|proof| node::AggregatedProof { is_node: false, proof }))
            .collect::<Result<_, _>>()?;
        node::NodeGrouping::FewestNodes.root(leaves, |children| self.node.prove(children))
    }

    /// Every round from the basic proofs (grouped by type, each in sequence order) to the final
    /// proof, in this process.
    pub fn aggregate(&self, basic_proofs: &std::collections::BTreeMap<CircuitId, Vec<Proof>>, public_data: &via_schemas::l2::BatchPublicData) -> Result<compression::FinalProof, AggregationError> {
        let roots = CircuitId::ALL
            .into_iter()
            .map(|id| self.aggregate_type(id, basic_proofs.get(&id).map_or(&[][..], |v| &v[..])))
            .collect::<Result<Vec<_>, _>>()?;
        let tip = self.tip.prove(&self.node, &roots)?;
        let proof = self.scheduler.prove(&tip, public_data)?;
        self.compress(&proof)
    }
}

impl AggregationCircuits {
    /// The verifier of this protocol version's final proofs.
    pub fn final_verifier(&self) -> crate::verifier::FinalVerifier {
        crate::verifier::FinalVerifier { verifier: self.final_circuit().data.verifier_data(), scheduler_vk_hash: self.scheduler_vk_hash() }
    }
}
