#![doc = include_str!("../README.md")]

pub mod api;
pub mod generator;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use via_l2::batch::{BatchError, BatchHeader, batch_commitment, execute_batch, touched_accounts};
use via_circuits::keys::{KeyError, load_final_verifier, read_manifest_unchecked};
use via_circuits::verifier::FinalVerifier;
use via_l2::state::{State, TxError};
use via_schemas::WireVersion;
use via_schemas::config::CoreDevnetConfig;
use via_schemas::l2::{Account, WitnessInputData};
use via_schemas::primitives::Hash;
use via_schemas::prover_interface::{L1BatchNumber, L1BatchProofForL1, L1VerifierConfig, ProofGenerationData, SubmitProofRequest};

use crate::generator::{TxGenerator, account_key};
use crate::store::{BatchRecord, BatchStatus, Genesis, Store, StoreError};

/// A failure of the core itself (as opposed to a bad request).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database was created with genesis {stored:?}, but the configuration asks for {configured:?}; use another database_url or the original seed, chain id and fee account")]
    GenesisMismatch { stored: Genesis, configured: Genesis },
    #[error("stored accounts hash to root {computed}, but batch {batch} ended at {expected}")]
    StateMismatch { batch: L1BatchNumber, computed: via_schemas::primitives::Hash, expected: via_schemas::primitives::Hash },
    #[error("transaction generator produced an invalid transaction: {0}")]
    Generator(TxError),
    #[error("sealing produced an invalid batch: {0}")]
    Execution(BatchError),
    #[error("cannot serve HTTP: {0}")]
    Serve(std::io::Error),
    #[error("verification keys: {0} (or set core_devnet.verify_proofs = false to check commitments only)")]
    Keys(#[from] KeyError),
    #[error("the keys in {dir} are for protocol version {keys}, the core seals {configured}")]
    KeysVersion { dir: String, keys: String, configured: String },
    #[error("l1_verifier_config.scheduler_vk_hash is {configured}, the keys' scheduler key hash is {keys}")]
    VerifierConfigMismatch { configured: via_schemas::primitives::Hash, keys: via_schemas::primitives::Hash },
}

/// Why a submitted proof was refused. Nothing changes in the core when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("batch {0} does not exist")]
    UnknownBatch(L1BatchNumber),
    #[error("batch {number} is already {status}", status = match .status { BatchStatus::Skipped => "skipped", _ => "proven" })]
    AlreadyFinished { number: L1BatchNumber, status: BatchStatus },
    #[error("batch {number} was sealed under protocol version {expected}, the proof is for {got}")]
    ProtocolVersionMismatch { number: L1BatchNumber, expected: String, got: String },
    #[error("batch {number} commits to {expected}, the proof's public input is {got}")]
    CommitmentMismatch { number: L1BatchNumber, expected: via_schemas::primitives::Hash, got: via_schemas::primitives::Hash },
    #[error("batch {0}: the proof is empty")]
    EmptyProof(L1BatchNumber),
    #[error("batch {0}: this core requires a proof for every batch (allow_skipped_proofs is off)")]
    SkipNotAllowed(L1BatchNumber),
    #[error("batch {number}: {reason}")]
    InvalidProof { number: L1BatchNumber, reason: String },
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// The devnet core: L2 state, the sealing of batches, and the prover interface.
pub struct CoreDevnet {
    config: CoreDevnetConfig,
    store: Store,
    generator: TxGenerator,
    /// The state as of the last sealed batch. Held across a whole seal, which also serialises
    /// sealing with itself.
    state: Mutex<State>,
    /// Serialises handing out batches, so two provers never pick the same one at once.
    picking: Mutex<()>,
    /// Verifies submitted proofs, when `verify_proofs` is on.
    verifier: Option<FinalVerifier>,
    /// What batches are sealed under: the configured one, its key hash from the keys if zero.
    l1_verifier_config: L1VerifierConfig,
}

/// Loads the final verifier of the core's protocol version, and the L1 verifier configuration
/// that goes with it.
fn load_verifier(config: &CoreDevnetConfig) -> Result<(Option<FinalVerifier>, L1VerifierConfig), CoreError> {
    if !config.verify_proofs {
        return Ok((None, config.l1_verifier_config));
    }
    let dir = config.keys_dir.join(config.protocol_version.to_string());
    let manifest = read_manifest_unchecked(&dir)?;
    if manifest.protocol_version != config.protocol_version {
        return Err(CoreError::KeysVersion { dir: dir.display().to_string(), keys: manifest.protocol_version.to_string(), configured: config.protocol_version.to_string() });
    }
    let configured = config.l1_verifier_config.scheduler_vk_hash;
    if configured != Hash::ZERO && configured != manifest.scheduler_vk_hash {
        return Err(CoreError::VerifierConfigMismatch { configured, keys: manifest.scheduler_vk_hash });
    }
    let verifier = load_final_verifier(&dir, &manifest)?;
    info!(dir = %dir.display(), scheduler_vk_hash = %manifest.scheduler_vk_hash, "verifying proofs with the protocol version's keys");
    Ok((Some(verifier), L1VerifierConfig { scheduler_vk_hash: manifest.scheduler_vk_hash }))
}

impl CoreDevnet {
    /// Opens the core's database, creating genesis (the fee account) on first use, and rebuilds
    /// the state tree from the stored accounts.
    pub async fn open(config: CoreDevnetConfig) -> Result<Arc<Self>, CoreError> {
        let store = Store::open(&config.database_url).await?;
        let configured = Genesis { seed: config.seed, chain_id: config.chain_id.0, fee_account: config.fee_account.0 };
        match store.genesis().await? {
            Some(stored) if stored != configured => return Err(CoreError::GenesisMismatch { stored, configured }),
            Some(_) => {}
            None => {
                let fee_account = Account { public_key: account_key(config.seed, config.fee_account).public_key(), balance: 0, nonce: 0 };
                store.init_genesis(&configured, &[(config.fee_account, fee_account)]).await?;
                info!(seed = config.seed, chain_id = config.chain_id.0, "created devnet genesis");
            }
        }
        let state = State::from_accounts(store.accounts().await?);
        if let Some(last) = store.last_batch().await? {
            let record = store.batch(last).await?.ok_or_else(|| StoreError::Corrupt { what: format!("batch {last}"), reason: "missing".into() })?;
            if record.public_data.new_state_root != state.root() {
                return Err(CoreError::StateMismatch { batch: last, computed: state.root(), expected: record.public_data.new_state_root });
            }
            info!(last_batch = last.0, root = %state.root(), "reopened devnet state");
        }
        let generator = TxGenerator::new(config.seed, config.user_accounts, config.fee_account);
        let (verifier, l1_verifier_config) = load_verifier(&config)?;
        Ok(Arc::new(Self { config, store, generator, state: Mutex::new(state), picking: Mutex::new(()), verifier, l1_verifier_config }))
    }

    /// The configuration the core runs with.
    pub fn config(&self) -> &CoreDevnetConfig {
        &self.config
    }

    /// What batches are sealed under (the key hash proofs must commit to).
    pub fn l1_verifier_config(&self) -> L1VerifierConfig {
        self.l1_verifier_config
    }

    /// Seals the next batch, unless `max_unproven_batches` batches already await a proof.
    pub async fn seal_batch(&self) -> Result<Option<L1BatchNumber>, CoreError> {
        let mut state = self.state.lock().await;
        if self.store.unproven_batches().await? >= self.config.max_unproven_batches {
            return Ok(None);
        }
        let number = L1BatchNumber(self.store.last_batch().await?.map_or(1, |n| n.0 + 1));
        let header = BatchHeader {
            l1_batch_number: number,
            chain_id: self.config.chain_id,
            fee_account: self.config.fee_account,
            protocol_version: self.config.protocol_version,
        };
        let transactions = self.generator.batch(&state, &header, self.config.txs_per_batch).map_err(CoreError::Generator)?;
        let touched = touched_accounts(header.fee_account, &transactions);
        let accounts = touched.iter().map(|id| state.witness(*id)).collect();
        let mut next = state.clone();
        let execution = execute_batch(&mut next, &header, &transactions).map_err(CoreError::Execution)?;
        let commitment = batch_commitment(&execution.public_data, self.l1_verifier_config.scheduler_vk_hash);
        let data = ProofGenerationData {
            l1_batch_number: number,
            chain_id: self.config.chain_id,
            batch_sealed_at: Utc::now(),
            witness_input_data: WitnessInputData {
                version: WireVersion::CURRENT,
                l1_batch_number: number,
                chain_id: self.config.chain_id,
                protocol_version: self.config.protocol_version,
                fee_account: self.config.fee_account,
                previous_state_root: state.root(),
                transactions,
                accounts,
            },
            protocol_version: self.config.protocol_version,
            l1_verifier_config: self.l1_verifier_config,
        };
        let changed: Vec<_> = touched.iter().filter_map(|id| next.account(*id).map(|a| (*id, *a))).collect();
        self.store.insert_batch(&data, &execution.public_data, commitment, &changed).await?;
        *state = next;
        info!(batch = number.0, txs = data.witness_input_data.transactions.len(), root = %execution.public_data.new_state_root, "sealed batch");
        Ok(Some(number))
    }

    /// The next batch for a prover, marked as picked; `None` when none awaits one.
    pub async fn next_proof_generation_data(&self) -> Result<Option<ProofGenerationData>, CoreError> {
        let _one_at_a_time = self.picking.lock().await;
        let now = Utc::now();
        let timeout = chrono::Duration::seconds(i64::try_from(self.config.proof_generation_timeout_s).unwrap_or(i64::MAX / 1000));
        let data = self.store.pick_batch(now, now - timeout).await?;
        if let Some(d) = &data {
            info!(batch = d.l1_batch_number.0, "handed batch to a prover");
        }
        Ok(data)
    }

    /// Takes a proof (or a sampling skip) for a batch, after checking it fits the batch.
    pub async fn submit_proof(&self, number: L1BatchNumber, request: SubmitProofRequest) -> Result<(), SubmitError> {
        let record = self.batch(number).await?.ok_or(SubmitError::UnknownBatch(number))?;
        if matches!(record.status, BatchStatus::Proven | BatchStatus::Skipped) {
            return Err(SubmitError::AlreadyFinished { number, status: record.status });
        }
        let (status, proof) = match &request {
            SubmitProofRequest::SkippedProofGeneration if !self.config.allow_skipped_proofs => return Err(SubmitError::SkipNotAllowed(number)),
            SubmitProofRequest::SkippedProofGeneration => (BatchStatus::Skipped, None),
            SubmitProofRequest::Proof(proof) => {
                check_proof(&record, proof)?;
                if let Some(verifier) = &self.verifier {
                    verifier.verify_commitment(&proof.proof.0, record.commitment).map_err(|e| SubmitError::InvalidProof { number, reason: e.to_string() })?;
                }
                (BatchStatus::Proven, Some(proof.as_ref()))
            }
        };
        if !self.store.finish_batch(number, status, proof, Utc::now()).await.map_err(CoreError::from)? {
            // Another submission finished it between our read and our write.
            let status = self.batch(number).await?.map_or(BatchStatus::Proven, |r| r.status);
            return Err(SubmitError::AlreadyFinished { number, status });
        }
        info!(batch = number.0, ?status, "batch finished");
        Ok(())
    }

    /// A batch's record.
    pub async fn batch(&self, number: L1BatchNumber) -> Result<Option<BatchRecord>, CoreError> {
        Ok(self.store.batch(number).await?)
    }

    /// The proof recorded for a batch.
    pub async fn proof(&self, number: L1BatchNumber) -> Result<Option<L1BatchProofForL1>, CoreError> {
        Ok(self.store.proof(number).await?)
    }

    /// Seals a batch every `batch_interval_ms` until `shutdown` is cancelled.
    pub async fn seal_batches(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(Duration::from_millis(self.config.batch_interval_ms.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut paused = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match self.seal_batch().await {
                Ok(Some(_)) => paused = false,
                Ok(None) if !paused => {
                    paused = true;
                    info!(max_unproven_batches = self.config.max_unproven_batches, "sealing paused until provers catch up");
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "sealing failed; retrying next interval"),
            }
        }
    }

    /// Serves the HTTP API on `listener` until `shutdown` is cancelled.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) -> Result<(), CoreError> {
        let addr = listener.local_addr().map_err(CoreError::Serve)?;
        info!(%addr, "devnet core serving the prover interface");
        axum::serve(listener, api::router(self)).with_graceful_shutdown(shutdown.cancelled_owned()).await.map_err(CoreError::Serve)
    }

    /// Serves the HTTP API and seals batches until `shutdown` is cancelled.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) -> Result<(), CoreError> {
        let sealing = tokio::spawn(self.clone().seal_batches(shutdown.clone()));
        let served = self.serve(listener, shutdown.clone()).await;
        shutdown.cancel();
        let _ = sealing.await;
        served
    }
}

fn check_proof(record: &BatchRecord, proof: &L1BatchProofForL1) -> Result<(), SubmitError> {
    let number = record.number;
    if proof.protocol_version != record.public_data.protocol_version {
        return Err(SubmitError::ProtocolVersionMismatch { number, expected: record.public_data.protocol_version.to_string(), got: proof.protocol_version.to_string() });
    }
    if proof.batch_commitment != record.commitment {
        return Err(SubmitError::CommitmentMismatch { number, expected: record.commitment, got: proof.batch_commitment });
    }
    if proof.proof.0.is_empty() {
        return Err(SubmitError::EmptyProof(number));
    }
    Ok(())
}
