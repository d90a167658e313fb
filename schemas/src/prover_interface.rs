//! The HTTP API between the rollup's core and the prover, in the shape of zkSync's
//! `prover_interface` (externally tagged enums, as serde writes them by default).
//!
//! - `POST /proof_generation_data` with [`ProofGenerationDataRequest`] answers
//!   [`ProofGenerationDataResponse`].
//! - `POST /submit_proof/{l1_batch_number}` with [`SubmitProofRequest`] answers
//!   [`SubmitProofResponse`].

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::WireVersion;
use crate::l2::{L2ChainId, WitnessInputData};
use crate::primitives::Hash;

/// The number of an L1 batch, as the core seals them: 1, 2, 3, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct L1BatchNumber(pub u32);

impl fmt::Display for L1BatchNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A protocol version: `minor` selects the circuits and keys, `patch` a compatible revision of
/// them. Written `0.{minor}.{patch}` for people, as zkSync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProtocolSemanticVersion {
    pub minor: u16,
    pub patch: u32,
}

impl fmt::Display for ProtocolSemanticVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0.{}.{}", self.minor, self.patch)
    }
}

/// What L1 verifies proofs of a protocol version against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1VerifierConfig {
    /// Hash of the scheduler circuit's verification key, which transitively fixes every circuit
    /// below it.
    pub scheduler_vk_hash: Hash,
}

/// A batch the core hands to the prover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofGenerationData {
    pub l1_batch_number: L1BatchNumber,
    pub chain_id: L2ChainId,
    pub batch_sealed_at: DateTime<Utc>,
    pub witness_input_data: WitnessInputData,
    pub protocol_version: ProtocolSemanticVersion,
    pub l1_verifier_config: L1VerifierConfig,
}

/// Body of `POST /proof_generation_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofGenerationDataRequest {}

/// Answer to `POST /proof_generation_data`: `Success(None)` when no batch awaits a proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProofGenerationDataResponse {
    Success(Option<Box<ProofGenerationData>>),
    Error(String),
}

/// The proof of one batch, as submitted for L1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1BatchProofForL1 {
    pub version: WireVersion,
    pub protocol_version: ProtocolSemanticVersion,
    /// The final proof's one public input: the batch's public data and the protocol version's
    /// scheduler key hash, hashed.
    pub batch_commitment: Hash,
    /// The serialized final (compressed) proof.
    pub proof: ProofBytes,
}

/// Body of `POST /submit_proof/{l1_batch_number}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitProofRequest {
    Proof(Box<L1BatchProofForL1>),
    /// The prover sampled this batch out; accepted only where the core allows sampling.
    SkippedProofGeneration,
}

/// Answer to `POST /submit_proof/{l1_batch_number}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitProofResponse {
    Success,
    Error(String),
}

/// Proof bytes, sent as standard base64 (a final proof is tens of kilobytes).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProofBytes(pub Vec<u8>);

impl fmt::Debug for ProofBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProofBytes({} bytes)", self.0.len())
    }
}

impl Serialize for ProofBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for ProofBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format_args!("proof: invalid base64: {e}")))
    }
}
