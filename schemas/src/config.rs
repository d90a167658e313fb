//! The prover's one typed configuration. Every field has a default fit for a local run; a TOML
//! file and `PROVER_`-prefixed environment variables override them (the loader lives with the
//! binaries). The README documents every knob.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::l2::{AccountId, L2ChainId};
use crate::primitives::Hash;
use crate::prover_interface::{L1VerifierConfig, ProtocolSemanticVersion};

/// The whole configuration, one section per role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub core_devnet: CoreDevnetConfig,
    pub prover: ProverConfig,
    pub basic_circuits: BasicCircuitsConfig,
    pub aggregation: AggregationConfig,
}

/// The shape of rounds 1 to 5 for a protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationConfig {
    /// Basic proofs one leaf aggregates (round 1). A leaf must fit the node circuit's size, so
    /// this stays small.
    pub basic_proofs_per_leaf: usize,
    /// Shrink layers after the scheduler (round 5). The first already reaches the smallest
    /// plonky2 verifier circuit (2^12), so a second one costs a proof without shrinking further.
    pub compression_layers: usize,
}

impl Default for AggregationConfig {
    fn default() -> Self {
        Self { basic_proofs_per_leaf: 3, compression_layers: 1 }
    }
}

/// What every prover role shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProverConfig {
    /// The protocol version this prover proves; it only takes that version's work.
    pub protocol_version: ProtocolSemanticVersion,
    /// Where setup data (circuit keys) lives, one subdirectory per protocol version.
    pub keys_dir: std::path::PathBuf,
}

impl Default for ProverConfig {
    fn default() -> Self {
        Self { protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 }, keys_dir: ".devnet/keys".into() }
    }
}

/// How much each basic circuit instance holds: the shape of round 0 for a protocol version. Keys
/// are generated for one shape; changing it means new keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicCircuitsConfig {
    /// Transactions per TxExecution instance.
    pub txs_per_tx_execution: usize,
    /// Storage accesses (Merkle reads and writes) per StorageApplication instance.
    pub accesses_per_storage_application: usize,
    /// SHA-256 blocks (one per transaction's pubdata record) per PubdataHasher instance.
    pub blocks_per_pubdata_hasher: usize,
    /// Signatures per SignatureVerifier instance.
    pub signatures_per_signature_verifier: usize,
}

impl BasicCircuitsConfig {
    /// The production shape: each instance between 2^14 and 2^16 gates, within 4 GiB to prove.
    pub const PRODUCTION: Self = Self {
        txs_per_tx_execution: 128,
        accesses_per_storage_application: 128,
        blocks_per_pubdata_hasher: 16,
        signatures_per_signature_verifier: 4,
    };

    /// A small shape for tests and laptops: every instance proves in seconds.
    pub const SMALL: Self = Self {
        txs_per_tx_execution: 2,
        accesses_per_storage_application: 4,
        blocks_per_pubdata_hasher: 1,
        signatures_per_signature_verifier: 1,
    };
}

impl Default for BasicCircuitsConfig {
    fn default() -> Self {
        Self::SMALL
    }
}

/// The devnet core: a real L2 sequencer for local runs and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreDevnetConfig {
    /// Where the core's HTTP API listens.
    pub listen_addr: SocketAddr,
    /// The core's state database: `sqlite://PATH` (created if missing) or `postgres://...`.
    pub database_url: String,
    /// Seeds the deterministic transaction stream and the devnet's keys.
    pub seed: u64,
    pub chain_id: L2ChainId,
    /// Transactions sealed into each batch.
    pub txs_per_batch: usize,
    /// Pause between two seals.
    pub batch_interval_ms: u64,
    /// Sealing pauses while this many batches await a proof, so an idle prover does not let the
    /// devnet grow without bound.
    pub max_unproven_batches: u32,
    /// User accounts the transaction stream opens with deposits (the fee account comes on top).
    pub user_accounts: u32,
    /// Receives every fee; created at genesis.
    pub fee_account: AccountId,
    /// The protocol version batches are sealed under.
    pub protocol_version: ProtocolSemanticVersion,
    /// Published with every batch; proofs must commit to its key hash. A zero hash means "take
    /// it from the verification keys".
    pub l1_verifier_config: L1VerifierConfig,
    /// Verify every submitted proof cryptographically (needs the protocol version's keys in
    /// `keys_dir`). Off, a proof is checked against the batch commitment only.
    pub verify_proofs: bool,
    /// Where the protocol versions' keys are, as `prover keys generate` writes them.
    pub keys_dir: std::path::PathBuf,
    /// Accept `SkippedProofGeneration` (the prover sampled the batch out) instead of a proof.
    pub allow_skipped_proofs: bool,
    /// A batch handed to a prover is offered again if no proof arrives within this time.
    pub proof_generation_timeout_s: u64,
}

impl Default for CoreDevnetConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 3320)),
            database_url: "sqlite://.devnet/core.db".to_owned(),
            seed: 1,
            chain_id: L2ChainId(25_223),
            txs_per_batch: 8,
            batch_interval_ms: 2_000,
            max_unproven_batches: 4,
            user_accounts: 8,
            fee_account: AccountId(0),
            protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
            l1_verifier_config: L1VerifierConfig { scheduler_vk_hash: Hash::ZERO },
            allow_skipped_proofs: false,
            proof_generation_timeout_s: 1_800,
            verify_proofs: true,
            keys_dir: ".devnet/keys".into(),
        }
    }
}
