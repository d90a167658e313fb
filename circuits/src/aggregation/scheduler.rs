//! The scheduler (round 4): verifies the recursion tip and checks every producer's final queue
//! state against its consumer's, every initial state, and the state roots and hashes against the
//! batch's public data, which it exposes (as `via_l2::batch::public_data_fields`).
//!
//! The checks are one table, [`checks`], evaluated in the circuit and natively (the native pass
//! runs first, so a batch that cannot pass is refused with the name of the failing check).

use plonky2::field::types::{Field, PrimeField64};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, VerifierCircuitData};
use plonky2::plonk::proof::ProofWithPublicInputsTarget;
use via_l2::batch::{PUBLIC_DATA_FIELDS, public_data_fields};
use via_schemas::l2::BatchPublicData;
use via_schemas::prover_interface::ProtocolSemanticVersion;

use super::recursion_tip::{PER_TYPE, RecursionTipCircuit};
use super::{AggregationError, CONTEXT_WIDTH, Proof, STATE_WIDTH, aggregation_config};
use crate::basic::CircuitId;
use crate::config::{C, D, F};
use crate::gadgets::sha256::IV;

/// Where a checked value comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A circuit type's context, first state in, or last state out, at an index.
    Tip(CircuitId, Part, usize),
    /// A public data field.
    Field(usize),
    Const(u64),
}

#[derive(Clone, Copy, Debug)]
enum Part {
    Context,
    In,
    Out,
}

/// One equality the scheduler enforces.
struct Check {
    what: &'static str,
    left: Vec<Source>,
    right: Vec<Source>,
}

fn tip(id: CircuitId, part: Part, range: std::ops::Range<usize>) -> Vec<Source> {
    range.map(|i| Source::Tip(id, part, i)).collect()
}

fn field(range: std::ops::Range<usize>) -> Vec<Source> {
    range.map(Source::Field).collect()
}

fn zeros(n: usize) -> Vec<Source> {
    vec![Source::Const(0); n]
}

/// Offsets of [`public_data_fields`].
mod fields {
    pub const CONTEXT: std::ops::Range<usize> = 1..3;
    pub const PREVIOUS_ROOT: std::ops::Range<usize> = 3..7;
    pub const NEW_ROOT: std::ops::Range<usize> = 7..11;
    pub const PRIORITY_OPS: std::ops::Range<usize> = 11..15;
    pub const WITHDRAWALS: std::ops::Range<usize> = 15..19;
    pub const PUBDATA_SHA256: std::ops::Range<usize> = 19..27;
    pub const PROTOCOL_VERSION: std::ops::Range<usize> = 27..29;
}

/// Every check, in the order they are reported.
fn checks(protocol_version: ProtocolSemanticVersion) -> Vec<Check> {
    use CircuitId::*;
    use Part::*;
    vec![
        Check { what: "the protocol version is this scheduler's", left: field(fields::PROTOCOL_VERSION), right: vec![Source::Const(protocol_version.minor.into()), Source::Const(protocol_version.patch.into())] },
        Check { what: "TxExecution ran with the batch's chain id and fee account", left: tip(TxExecution, Context, 0..2), right: field(fields::CONTEXT) },
        Check { what: "TxExecution starts from empty queues", left: tip(TxExecution, In, 0..20), right: zeros(20) },
        Check { what: "StorageApplication starts from an empty access log", left: tip(StorageApplication, In, 0..4), right: zeros(4) },
        Check { what: "StorageApplication starts at the previous state root", left: tip(StorageApplication, In, 4..8), right: field(fields::PREVIOUS_ROOT) },
        Check { what: "StorageApplication consumed TxExecution's access log", left: tip(StorageApplication, Out, 0..4), right: tip(TxExecution, Out, 0..4) },
        Check { what: "StorageApplication ends at the new state root", left: tip(StorageApplication, Out, 4..8), right: field(fields::NEW_ROOT) },
        Check { what: "PubdataHasher starts from an empty queue", left: tip(PubdataHasher, In, 0..4), right: zeros(4) },
        Check { what: "PubdataHasher starts from SHA-256's initial state", left: tip(PubdataHasher, In, 4..13), right: IV.iter().map(|w| Source::Const(u64::from(*w))).chain([Source::Const(0)]).collect() },
        Check { what: "PubdataHasher consumed TxExecution's pubdata", left: tip(PubdataHasher, Out, 0..4), right: tip(TxExecution, Out, 4..8) },
        Check { what: "the pubdata SHA-256 is the batch's", left: tip(PubdataHasher, Out, 13..21), right: field(fields::PUBDATA_SHA256) },
        Check { what: "SignatureVerifier starts from an empty queue", left: tip(SignatureVerifier, In, 0..4), right: zeros(4) },
        Check { what: "SignatureVerifier checked every signature TxExecution requested", left: tip(SignatureVerifier, Out, 0..4), right: tip(TxExecution, Out, 8..12) },
        Check { what: "the priority-operations hash is the batch's", left: tip(TxExecution, Out, 12..16), right: field(fields::PRIORITY_OPS) },
        Check { what: "the withdrawals hash is the batch's", left: tip(TxExecution, Out, 16..20), right: field(fields::WITHDRAWALS) },
    ]
}

fn tip_index(id: CircuitId, part: Part, i: usize) -> usize {
    let base = CircuitId::ALL.iter().position(|c| *c == id).expect("listed") * PER_TYPE;
    base + match part {
        Part::Context => i,
        Part::In => CONTEXT_WIDTH + i,
        Part::Out => CONTEXT_WIDTH + STATE_WIDTH + i,
    }
}

/// The scheduler circuit of one protocol version.
pub struct SchedulerCircuit {
    pub protocol_version: ProtocolSemanticVersion,
    pub data: CircuitData<F, C, D>,
    tip: VerifierCircuitData<F, C, D>,
    targets: SchedulerTargets,
}

/// The scheduler's witness targets.
pub struct SchedulerTargets {
    tip_proof: ProofWithPublicInputsTarget<D>,
    fields: Vec<Target>,
}

/// Lays out the scheduler over the tip's key.
pub fn define(builder: &mut CircuitBuilder<F, D>, tip: &VerifierCircuitData<F, C, D>, protocol_version: ProtocolSemanticVersion) -> SchedulerTargets {
    let tip_proof = builder.add_virtual_proof_with_pis(&tip.common);
    let tip_vd = builder.constant_verifier_data::<C>(&tip.verifier_only);
    builder.verify_proof::<C>(&tip_proof, &tip_vd, &tip.common);
    let fields = builder.add_virtual_targets(PUBLIC_DATA_FIELDS);
    builder.register_public_inputs(&fields);
    for check in checks(protocol_version) {
        for (l, r) in check.left.iter().zip(&check.right) {
            let mut value = |s: &Source| match *s {
                Source::Tip(id, part, i) => tip_proof.public_inputs[tip_index(id, part, i)],
                Source::Field(i) => fields[i],
                Source::Const(c) => builder.constant(F::from_canonical_u64(c)),
            };
            let (l, r) = (value(l), value(r));
            builder.connect(l, r);
        }
    }
    SchedulerTargets { tip_proof, fields }
}

impl SchedulerCircuit {
    /// Builds the scheduler of `protocol_version` over the recursion tip.
    pub fn build(tip: &RecursionTipCircuit, protocol_version: ProtocolSemanticVersion) -> Self {
        let tip = tip.data.verifier_data();
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &tip, protocol_version);
        Self { protocol_version, data: builder.build::<C>(), tip, targets }
    }

    /// The scheduler from its setup data, its targets recovered by laying the circuit out again.
    pub fn from_data(data: CircuitData<F, C, D>, tip: &RecursionTipCircuit, protocol_version: ProtocolSemanticVersion) -> Self {
        let tip = tip.data.verifier_data();
        let mut builder = CircuitBuilder::new(aggregation_config());
        let targets = define(&mut builder, &tip, protocol_version);
        Self { protocol_version, data, tip, targets }
    }

    /// Proves the batch's public data from the recursion tip's proof.
    pub fn prove(&self, tip_proof: &Proof, public_data: &BatchPublicData) -> Result<Proof, AggregationError> {
        let what = || "scheduler".to_string();
        self.tip.verify(tip_proof.clone()).map_err(|e| AggregationError::WrongKey { what: what(), index: 0, circuit: "recursion tip".into(), reason: e.to_string() })?;
        let tip_values: Vec<u64> = tip_proof.public_inputs.iter().map(|x| x.to_canonical_u64()).collect();
        let field_values: Vec<u64> = public_data_fields(public_data).iter().map(|x| x.to_canonical_u64()).collect();
        for check in checks(self.protocol_version) {
            let value = |s: &Source| match *s {
                Source::Tip(id, part, i) => tip_values[tip_index(id, part, i)],
                Source::Field(i) => field_values[i],
                Source::Const(c) => c,
            };
            let left: Vec<u64> = check.left.iter().map(value).collect();
            let right: Vec<u64> = check.right.iter().map(value).collect();
            if left != right {
                return Err(AggregationError::Inconsistent { what: what(), reason: format!("{} does not hold: {left:?} != {right:?}", check.what) });
            }
        }
        self.prove_checked(tip_proof, public_data)
    }

    /// Proves without the native checks, so a test can show the circuit itself refuses.
    #[cfg(feature = "test-utils")]
    pub fn prove_unchecked(&self, tip_proof: &Proof, public_data: &BatchPublicData) -> Result<Proof, AggregationError> {
        self.prove_checked(tip_proof, public_data)
    }

    fn prove_checked(&self, tip_proof: &Proof, public_data: &BatchPublicData) -> Result<Proof, AggregationError> {
        let what = || "scheduler".to_string();
        let proving = |e: anyhow::Error| AggregationError::proving(what(), e);
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.targets.tip_proof, tip_proof).map_err(proving)?;
        for (t, v) in self.targets.fields.iter().zip(public_data_fields(public_data)) {
            pw.set_target(*t, v).map_err(proving)?;
        }
        crate::proving::prove(&self.data, pw).map_err(proving)
    }
}
