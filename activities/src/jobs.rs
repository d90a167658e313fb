//! What the workflows hand each activity: small, serializable descriptions of work. Blobs are
//! named by deterministic keys derived from these, never passed inline.

use serde::{Deserialize, Serialize};
use via_circuits::basic::CircuitId;
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

use crate::blob_store::ProofSlot;

/// A batch under one protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    pub batch: L1BatchNumber,
    pub protocol_version: ProtocolSemanticVersion,
}

/// What basic witness generation produced: instance counts per circuit type, in id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessSummary {
    pub instances: Vec<(CircuitId, usize)>,
    /// How many basic proofs a leaf takes under this protocol version.
    pub basic_proofs_per_leaf: usize,
}

/// One proof to make: where it goes, and what it is made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofJob {
    pub batch: BatchRef,
    pub slot: ProofSlot,
    /// The proofs this one aggregates (empty for basic proofs, made from their witness).
    pub inputs: Vec<ProofSlot>,
}

/// An input that failed its integrity check: its producer must run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorruptInput {
    /// A proof, made by the job for its slot.
    Proof(ProofSlot),
    /// A basic witness (or the public data), made by witness generation.
    Witness,
}

/// The application failure type a corrupt input reports, with a [`CorruptInput`] as details.
pub const CORRUPT_INPUT: &str = "CorruptInput";
