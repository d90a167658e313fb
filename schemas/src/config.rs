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
    pub storage: StorageConfig,
    pub records: RecordsConfig,
    pub temporal: TemporalConfig,
    pub gateway: GatewayConfig,
    pub worker: WorkerConfig,
}

/// Where blobs (witness inputs, witnesses, proofs) live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `file://PATH` (a directory, created if missing) or `s3://BUCKET[/PREFIX]`.
    pub url: String,
    /// S3 endpoint for S3-compatible servers (path-style requests are used then).
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    /// Allow plain HTTP to the S3 endpoint (local servers).
    pub s3_allow_http: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { url: "file://.devnet/blobs".into(), s3_endpoint: None, s3_region: "us-east-1".into(), s3_access_key_id: None, s3_secret_access_key: None, s3_allow_http: false }
    }
}

/// Where job records (what SREs and dashboards query) live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    pub database_url: String,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self { database_url: "sqlite://.devnet/prover.db".into() }
    }
}

/// The Temporal service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalConfig {
    /// The frontend's gRPC address.
    pub address: String,
    pub namespace: String,
    /// Where operators look (printed by `prover dev`).
    pub ui_address: String,
    /// Prefixes workflow ids and task queues, so several deployments (or test runs) can share one
    /// namespace without taking each other's work. Empty for a namespace of its own.
    pub deployment: String,
    /// The Temporal CLI `prover dev` starts a dev server with when none answers at `address`
    /// (`infra/install.sh` puts it here).
    pub cli: std::path::PathBuf,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:7233".into(),
            namespace: "default".into(),
            ui_address: "http://127.0.0.1:8233".into(),
            deployment: String::new(),
            cli: ".stack/venv/bin/temporal".into(),
        }
    }
}

/// The gateway between the core and the proving workflows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The core's prover interface.
    pub core_url: String,
    /// Pause between polls when the core has no batch.
    pub poll_interval_ms: u64,
    /// The longest pause between attempts while the core is unreachable (backoff doubles up to it).
    pub max_backoff_ms: u64,
    /// Batches being proved at once; the gateway stops asking the core for more beyond it.
    pub max_batches_in_flight: usize,
    /// Share of batches proved; the rest are submitted as `SkippedProofGeneration` (the core
    /// must allow it). 1.0 proves every batch.
    pub proof_sampling_rate: f64,
    /// A job silent for this long (no heartbeat) is presumed lost with its worker and runs again
    /// elsewhere.
    pub heartbeat_timeout_s: u64,
    /// The longest one attempt of one job may run.
    pub job_timeout_s: u64,
    /// A circuit type's child workflow proves at most this many basic proofs itself and splits
    /// larger ranges into child workflows.
    pub max_basic_per_range: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            core_url: "http://127.0.0.1:3320".into(),
            poll_interval_ms: 1_000,
            max_backoff_ms: 30_000,
            max_batches_in_flight: 2,
            proof_sampling_rate: 1.0,
            heartbeat_timeout_s: 30,
            job_timeout_s: 3_600,
            max_basic_per_range: 600,
        }
    }
}

/// A prover worker process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Jobs a worker runs at once per pool. With 2, the next basic proof's witness vector is
    /// computed while the current one is proved (one proof at a time).
    pub max_concurrent_jobs: usize,
    /// Where the worker serves Prometheus metrics (`/metrics`); port 0 picks a free one.
    pub metrics_addr: SocketAddr,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { max_concurrent_jobs: 2, metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)) }
    }
}

/// One aggregation round and, optionally, one circuit type within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundCircuit {
    /// 0 basic, 1 leaf, 2 node, 3 recursion tip, 4 scheduler.
    pub round: u8,
    /// A basic circuit id; absent for every circuit of the round.
    pub circuit_id: Option<u8>,
}

/// A prover group: the `(round, circuit id)` pairs one pool of provers takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverGroup {
    /// The pool's name, part of its task queue `{protocol_version}/prover-group-{id}`.
    pub id: String,
    pub circuits: Vec<RoundCircuit>,
}

impl ProverGroup {
    /// Whether this group proves `circuit_id` (if any) of `round`.
    pub fn takes(&self, round: u8, circuit_id: Option<u8>) -> bool {
        self.circuits.iter().any(|c| c.round == round && (c.circuit_id.is_none() || c.circuit_id == circuit_id))
    }
}

/// The shape of rounds 1 to 5 for a protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationConfig {
    /// Basic proofs one leaf aggregates (round 1). A leaf must fit the node circuit's size, so
    /// this stays small.
    pub basic_proofs_per_leaf: usize,
    /// Compression layers after the scheduler (round 5). The last wraps the proof before it
    /// into the final proof (committed with Keccak); one layer (the default) wraps the
    /// scheduler's proof (about 48 KB). Each layer before the last shrinks the proof it verifies:
    /// two layers make a final proof about 3 KB smaller for one proof more (about 5 s on two
    /// cores); a third costs a proof and shrinks nothing.
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
    /// The prover groups, each a pool with its own task queue. Every `(round, circuit)` must
    /// belong to one group; the first group that takes it wins.
    pub prover_groups: Vec<ProverGroup>,
    /// What makes the proofs (`--backend` overrides it).
    pub backend: ProverBackendKind,
}

/// What makes a process's proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProverBackendKind {
    /// The fastest this machine has: the CUDA backend where a GPU (driver, NVRTC and a device)
    /// is found, else the CPU backend.
    #[default]
    Auto,
    /// Our prover on the CPU backend (SIMD Poseidon where the CPU has it).
    Cpu,
    /// Our prover on the CUDA backend; starting fails if there is no GPU.
    Cuda,
    /// plonky2's own prover, the reference.
    Plonky2,
}

impl std::str::FromStr for ProverBackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "plonky2" => Ok(Self::Plonky2),
            other => Err(format!("unknown prover backend {other:?} (expected auto, cpu, cuda or plonky2)")),
        }
    }
}

impl Default for ProverConfig {
    fn default() -> Self {
        let all = |rounds: std::ops::RangeInclusive<u8>| rounds.map(|round| RoundCircuit { round, circuit_id: None }).collect();
        Self {
            protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
            keys_dir: ".devnet/keys".into(),
            prover_groups: vec![ProverGroup { id: "basic".into(), circuits: all(0..=0) }, ProverGroup { id: "aggregation".into(), circuits: all(1..=4) }],
            backend: ProverBackendKind::Auto,
        }
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
    /// The production shape: each instance between 2^14 and 2^17 gates, within 4 GiB to prove
    /// (a 2^17 proof peaks at 3.7-3.8 GiB in `bench basic`). Larger instances mean fewer basic
    /// proofs to aggregate, whose cost is per proof.
    pub const PRODUCTION: Self = Self {
        txs_per_tx_execution: 128,
        accesses_per_storage_application: 128,
        blocks_per_pubdata_hasher: 32,
        signatures_per_signature_verifier: 8,
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
