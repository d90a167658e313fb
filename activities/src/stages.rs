//! The activities: one per stage, each pick (read its inputs from the blob store) -> execute (a
//! pure function from `via-circuits`) -> save (write its output under its deterministic key), with
//! the job records and metrics updated around it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use plonky2::plonk::proof::ProofWithPublicInputs;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use via_circuits::aggregation::node::AggregatedProof;
use via_circuits::aggregation::{Proof, aggregation_common_data};
use via_circuits::basic::CircuitId;
use via_circuits::witness_generator::{BasicWitness, generate_basic_witnesses};
use via_schemas::l2::{BatchPublicData, WitnessInputData};
use via_schemas::prover_interface::{L1BatchProofForL1, ProofBytes, SubmitProofRequest};

use crate::blob_store::{BlobError, BlobKey, BlobStore, ProofSlot, keys};
use crate::circuit_store::{CircuitStore, Circuits};
use crate::core_client::{CoreClient, Submitted};
use crate::jobs::{BatchRef, CORRUPT_INPUT, CorruptInput, ProofJob, WitnessSummary};
use crate::metrics::Metrics;
use crate::records::{JobKey, JobRecords};

/// A stage's failure, decided once whether a retry can fix it.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The input is wrong; nothing but new input helps.
    #[error("{0}")]
    BadInput(String),
    /// An input blob failed its integrity check; its producer must run again.
    #[error("{reason}")]
    CorruptInput { input: CorruptInput, reason: String },
    /// No keys for the protocol version (an operator must provide them).
    #[error("protocol version {version}: {reason}")]
    UnknownProtocolVersion { version: String, reason: String },
    /// A transient failure: storage, records, the network.
    #[error("{0}")]
    Transient(String),
}

impl StageError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transient(_) => true,
            Self::BadInput(_) | Self::CorruptInput { .. } | Self::UnknownProtocolVersion { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "BadInput",
            Self::CorruptInput { .. } => CORRUPT_INPUT,
            Self::UnknownProtocolVersion { .. } => "UnknownProtocolVersion",
            Self::Transient(_) => "Transient",
        }
    }
}

/// The activity failure a stage error becomes: non-retryable where retrying cannot help, typed so
/// the workflow can tell a corrupt input (with details naming it) from the rest.
fn activity_error(e: StageError) -> ActivityError {
    {
        let non_retryable = !e.is_retryable();
        let kind = e.kind().to_owned();
        let details = match &e {
            StageError::CorruptInput { input, .. } => Some(serde_json::to_value(input).expect("serializes")),
            _ => None,
        };
        let builder = ApplicationFailure::builder(Box::new(e) as Box<dyn std::error::Error + Send + Sync>).type_name(kind).non_retryable(non_retryable);
        match details {
            Some(details) => ActivityError::application(builder.details(details).build()),
            None => ActivityError::application(builder.build()),
        }
    }
}

/// Maps a blob failure on an input to the stage error that says who must run again.
fn input_error(input: CorruptInput) -> impl FnOnce(BlobError) -> StageError {
    move |e| match e {
        BlobError::NotFound { .. } | BlobError::Corrupt { .. } => StageError::CorruptInput { input, reason: e.to_string() },
        BlobError::Store { .. } | BlobError::Config { .. } => StageError::Transient(e.to_string()),
    }
}

fn transient(e: impl std::fmt::Display) -> StageError {
    StageError::Transient(e.to_string())
}

/// Everything the activities share in one worker process.
#[derive(Clone)]
pub struct ProverActivities {
    pub store: BlobStore,
    pub records: JobRecords,
    pub circuits: Arc<CircuitStore>,
    pub metrics: Metrics,
    /// The core's client, for the gateway's submission activity.
    pub core: Option<CoreClient>,
    /// Names this worker in the job records.
    pub worker: String,
    /// One proof at a time: a second concurrent job computes its witness vector meanwhile.
    prove_lock: Arc<std::sync::Mutex<()>>,
}

impl ProverActivities {
    pub fn new(store: BlobStore, records: JobRecords, circuits: Arc<CircuitStore>, metrics: Metrics, core: Option<CoreClient>, worker: String) -> Self {
        Self { store, records, circuits, metrics, core, worker, prove_lock: Arc::new(std::sync::Mutex::new(())) }
    }

    async fn circuits(&self, batch: &BatchRef) -> Result<Arc<Circuits>, StageError> {
        self.circuits.get(batch.protocol_version).await.map_err(|e| {
            if e.is_retryable() { transient(e) } else { StageError::UnknownProtocolVersion { version: batch.protocol_version.to_string(), reason: e.to_string() } }
        })
    }

    /// Records, times, counts and logs a stage around `work`, in a span naming the batch and,
    /// for a proof job, its round, circuit id, depth and sequence.
    async fn observe<T>(&self, ctx: &ActivityContext, stage: &str, job: Option<JobKey>, batch: &BatchRef, work: impl Future<Output = Result<(T, Option<(BlobKey, usize)>), StageError>>) -> Result<T, StageError> {
        use tracing::field::Empty;
        let span = tracing::info_span!("job", stage, batch = batch.batch.0, protocol_version = %batch.protocol_version, round = Empty, circuit_id = Empty, depth = Empty, sequence = Empty);
        if let Some(job) = job {
            let (round, circuit_id, depth, sequence) = job.columns();
            span.record("round", round).record("circuit_id", circuit_id).record("depth", depth).record("sequence", sequence);
        }
        tracing::Instrument::instrument(self.observed(ctx, stage, job, batch, work), span).await
    }

    async fn observed<T>(&self, ctx: &ActivityContext, stage: &str, job: Option<JobKey>, batch: &BatchRef, work: impl Future<Output = Result<(T, Option<(BlobKey, usize)>), StageError>>) -> Result<T, StageError> {
        tracing::info!(attempt = ctx.info().attempt, workflow_id = ctx.info().workflow_id.as_deref().unwrap_or_default(), "job started");
        if let Some(scheduled) = ctx.info().current_attempt_scheduled_time {
            let lag = SystemTime::now().duration_since(scheduled).unwrap_or_default();
            self.metrics.queue_lag_seconds.with_label_values(&[stage]).observe(lag.as_secs_f64());
        }
        if let Some(job) = job {
            self.records.job_started(job, batch.protocol_version, &self.worker).await.map_err(transient)?;
        }
        let started = Instant::now();
        // Heartbeat for the whole job, loading circuits included: a silent job is presumed lost.
        let heartbeat = async {
            let mut beat = tokio::time::interval(Duration::from_secs(2));
            loop {
                beat.tick().await;
                // A lost heartbeat is retried by the next tick; the job goes on.
                let _ = ctx.record_heartbeat(()).await;
            }
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            never = heartbeat => never,
        };
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(_) => tracing::info!(seconds, "job finished"),
            Err(e) => tracing::warn!(seconds, retryable = e.is_retryable(), error = %e, "job failed"),
        }
        self.metrics.job_seconds.with_label_values(&[stage]).observe(seconds);
        self.metrics.jobs.with_label_values(&[stage, if outcome.is_ok() { "ok" } else { "failed" }]).inc();
        if let Some(job) = job {
            let recorded = match &outcome {
                Ok((_, blob)) => {
                    let (key, bytes) = blob.clone().unwrap_or((BlobKey(String::new()), 0));
                    self.records.job_finished(job, Ok((&key, bytes))).await
                }
                Err(e) => self.records.job_finished(job, Err(&e.to_string())).await,
            };
            recorded.map_err(transient)?;
        }
        outcome.map(|(value, _)| value)
    }

    /// Runs CPU-bound work on a blocking thread (the async side keeps heartbeating).
    async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, StageError> {
        // The job's span follows the work onto its thread.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|e| StageError::Transient(format!("the proving thread failed: {e}")))
    }

    async fn read_proof(&self, batch: &BatchRef, slot: ProofSlot, common: &plonky2::plonk::circuit_data::CommonCircuitData<via_circuits::config::F, 2>) -> Result<Proof, StageError> {
        let key = keys::proof(batch.protocol_version, batch.batch, slot);
        let bytes = self.store.get(&key).await.map_err(input_error(CorruptInput::Proof(slot)))?;
        ProofWithPublicInputs::from_bytes(bytes, common).map_err(|e| StageError::CorruptInput { input: CorruptInput::Proof(slot), reason: format!("blob {key} is not a proof: {e:?}") })
    }

    /// Reads a leaf or node proof, stored as `is_node (1 byte) || proof`.
    async fn read_aggregated(&self, batch: &BatchRef, slot: ProofSlot) -> Result<AggregatedProof, StageError> {
        let key = keys::proof(batch.protocol_version, batch.batch, slot);
        let bytes = self.store.get(&key).await.map_err(input_error(CorruptInput::Proof(slot)))?;
        let (flag, proof) = bytes.split_first().ok_or_else(|| StageError::CorruptInput { input: CorruptInput::Proof(slot), reason: format!("blob {key} is empty") })?;
        let proof = ProofWithPublicInputs::from_bytes(proof.to_vec(), aggregation_common_data()).map_err(|e| StageError::CorruptInput { input: CorruptInput::Proof(slot), reason: format!("blob {key} is not a proof: {e:?}") })?;
        Ok(AggregatedProof { is_node: *flag == 1, proof })
    }

    /// Reads a job's leaf-or-node inputs, in order.
    async fn read_aggregated_inputs(&self, batch: &BatchRef, slots: &[ProofSlot]) -> Result<Vec<AggregatedProof>, StageError> {
        let mut proofs = Vec::with_capacity(slots.len());
        for slot in slots {
            proofs.push(self.read_aggregated(batch, *slot).await?);
        }
        Ok(proofs)
    }

    async fn save(&self, batch: &BatchRef, slot: ProofSlot, bytes: Vec<u8>) -> Result<Option<(BlobKey, usize)>, StageError> {
        let key = keys::proof(batch.protocol_version, batch.batch, slot);
        let len = bytes.len();
        self.store.put(&key, &bytes).await.map_err(transient)?;
        Ok(Some((key, len)))
    }
}

fn aggregated_bytes(proof: &AggregatedProof) -> Vec<u8> {
    let mut out = vec![u8::from(proof.is_node)];
    out.extend(proof.proof.to_bytes());
    out
}

#[activities]
impl ProverActivities {
    /// Round 0's first half: the batch's witness input into every basic circuit's witness.
    #[activity]
    pub async fn generate_witnesses(self: Arc<Self>, ctx: ActivityContext, batch: BatchRef) -> Result<WitnessSummary, ActivityError> {
        let work = async {
            let pv = batch.protocol_version;
            let input_key = keys::witness_input(pv, batch.batch);
            self.records.batch_status(batch.batch, pv, "witness_generation", &input_key, None).await.map_err(transient)?;
            let input: WitnessInputData = self.store.get_json(&input_key).await.map_err(|e| StageError::BadInput(format!("witness input: {e}")))?;
            if input.l1_batch_number != batch.batch || input.protocol_version != pv {
                return Err(StageError::BadInput(format!(
                    "the witness input is of batch {} under {}, the job is batch {} under {pv}",
                    input.l1_batch_number, input.protocol_version, batch.batch
                )));
            }
            let circuits = self.circuits(&batch).await?;
            let config = circuits.manifest.basic_circuits;
            let witnesses = Self::blocking(move || generate_basic_witnesses(&input, &config)).await?.map_err(|e| StageError::BadInput(e.to_string()))?;
            self.store.put_json(&keys::public_data(pv, batch.batch), &witnesses.public_data).await.map_err(transient)?;
            let mut counts: BTreeMap<CircuitId, usize> = BTreeMap::new();
            for instance in &witnesses.instances {
                let key = keys::basic_witness(pv, batch.batch, instance.circuit_id, instance.sequence);
                self.store.put_json(&key, &instance.witness).await.map_err(transient)?;
                *counts.entry(instance.circuit_id).or_default() += 1;
            }
            let summary = WitnessSummary { instances: counts.into_iter().collect(), basic_proofs_per_leaf: circuits.manifest.aggregation.basic_proofs_per_leaf };
            self.records.batch_status(batch.batch, pv, "proving", &input_key, None).await.map_err(transient)?;
            Ok((summary, None))
        };
        let outcome = self.observe(&ctx, "witness_generation", None, &batch, work).await;
        if let Err(e) = &outcome {
            let key = keys::witness_input(batch.protocol_version, batch.batch);
            let _ = self.records.batch_status(batch.batch, batch.protocol_version, "failed", &key, Some(&e.to_string())).await;
        }
        outcome.map_err(activity_error)
    }

    /// Round 0: one basic proof from its witness.
    #[activity]
    pub async fn prove_basic(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let ProofSlot::Basic { circuit_id, sequence } = job.slot else {
            return Err(activity_error(StageError::BadInput(format!("prove_basic was given {:?}", job.slot))));
        };
        let batch = job.batch;
        let work = async {
            // Until it is proved, the prover idling counts as waiting on this job's inputs.
            let in_hand = self.metrics.basic_prover.job_in_hand();
            let witness: BasicWitness = self.store.get_json(&keys::basic_witness(batch.protocol_version, batch.batch, circuit_id, sequence)).await.map_err(input_error(CorruptInput::Witness))?;
            let circuits = self.circuits(&batch).await?;
            let lock = self.prove_lock.clone();
            let prover_time = self.metrics.basic_prover.clone();
            let proof = Self::blocking(move || {
                let circuit = &circuits.basic[&circuit_id];
                // The next job's witness vector is generated here while this lock's holder
                // proves, so the prover does not wait for it.
                let vector = circuit.witness_vector(&witness)?;
                let _one_proof_at_a_time = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                prover_time.proving(|| circuit.prove_witness_vector(vector))
            })
            .await?
            .map_err(|e| StageError::BadInput(e.to_string()))?;
            drop(in_hand);
            let saved = self.save(&batch, job.slot, proof.to_bytes()).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "basic", Some(JobKey { batch: batch.batch, slot: job.slot }), &batch, work).await.map_err(activity_error)
    }

    /// Round 1: a leaf over consecutive basic proofs of one type.
    #[activity]
    pub async fn prove_leaf(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let ProofSlot::Leaf { circuit_id, .. } = job.slot else {
            return Err(activity_error(StageError::BadInput(format!("prove_leaf was given {:?}", job.slot))));
        };
        let batch = job.batch;
        let work = async {
            let circuits = self.circuits(&batch).await?;
            let mut proofs = Vec::with_capacity(job.inputs.len());
            for slot in &job.inputs {
                proofs.push(self.read_proof(&batch, *slot, &circuits.basic[&circuit_id].data.common).await?);
            }
            let leaf = Self::blocking(move || circuits.aggregation.leaves[&circuit_id].prove(&proofs)).await?.map_err(|e| StageError::BadInput(e.to_string()))?;
            let saved = self.save(&batch, job.slot, aggregated_bytes(&AggregatedProof { is_node: false, proof: leaf })).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "leaf", Some(JobKey { batch: batch.batch, slot: job.slot }), &batch, work).await.map_err(activity_error)
    }

    /// Round 2: a node over two or three adjacent leaf-or-node proofs of one type.
    #[activity]
    pub async fn prove_node(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let batch = job.batch;
        let work = async {
            let circuits = self.circuits(&batch).await?;
            let children = self.read_aggregated_inputs(&batch, &job.inputs).await?;
            let node = Self::blocking(move || circuits.aggregation.node.prove(&children)).await?.map_err(|e| StageError::BadInput(e.to_string()))?;
            let saved = self.save(&batch, job.slot, aggregated_bytes(&node)).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "node", Some(JobKey { batch: batch.batch, slot: job.slot }), &batch, work).await.map_err(activity_error)
    }

    /// Round 3: the recursion tip over each type's root, in circuit id order.
    #[activity]
    pub async fn prove_recursion_tip(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let batch = job.batch;
        let work = async {
            let circuits = self.circuits(&batch).await?;
            let roots = self.read_aggregated_inputs(&batch, &job.inputs).await?;
            let tip = Self::blocking(move || circuits.aggregation.tip.prove(&circuits.aggregation.node, &roots)).await?.map_err(|e| StageError::BadInput(e.to_string()))?;
            let saved = self.save(&batch, job.slot, tip.to_bytes()).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "recursion_tip", Some(JobKey { batch: batch.batch, slot: job.slot }), &batch, work).await.map_err(activity_error)
    }

    /// Round 4: the scheduler over the recursion tip and the batch's public data.
    #[activity]
    pub async fn prove_scheduler(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let batch = job.batch;
        let work = async {
            let circuits = self.circuits(&batch).await?;
            let tip = self.read_proof(&batch, ProofSlot::RecursionTip, &circuits.aggregation.tip.data.common).await?;
            let public_data: BatchPublicData = self.store.get_json(&keys::public_data(batch.protocol_version, batch.batch)).await.map_err(input_error(CorruptInput::Witness))?;
            let proof = Self::blocking(move || circuits.aggregation.scheduler.prove(&tip, &public_data)).await?.map_err(|e| StageError::BadInput(e.to_string()))?;
            let saved = self.save(&batch, job.slot, proof.to_bytes()).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "scheduler", Some(JobKey { batch: batch.batch, slot: job.slot }), &batch, work).await.map_err(activity_error)
    }

    /// Round 5: the scheduler's proof compressed into the final proof, checked before it is
    /// stored.
    #[activity]
    pub async fn compress(self: Arc<Self>, ctx: ActivityContext, job: ProofJob) -> Result<(), ActivityError> {
        let batch = job.batch;
        let work = async {
            let circuits = self.circuits(&batch).await?;
            let scheduler = self.read_proof(&batch, ProofSlot::Scheduler, &circuits.aggregation.scheduler.data.common).await?;
            let public_data: BatchPublicData = self.store.get_json(&keys::public_data(batch.protocol_version, batch.batch)).await.map_err(input_error(CorruptInput::Witness))?;
            let bytes = Self::blocking(move || -> Result<Vec<u8>, StageError> {
                let proof = circuits.aggregation.compress(&scheduler).map_err(|e| StageError::BadInput(e.to_string()))?;
                let bytes = circuits.aggregation.final_proof_bytes(proof).map_err(|e| StageError::BadInput(e.to_string()))?;
                circuits.aggregation.final_verifier().verify(&bytes, &public_data).map_err(|e| StageError::BadInput(format!("the final proof does not verify: {e}")))?;
                Ok(bytes)
            })
            .await??;
            let saved = self.save(&batch, ProofSlot::Final, bytes).await?;
            Ok(((), saved))
        };
        self.observe(&ctx, "compression", Some(JobKey { batch: batch.batch, slot: ProofSlot::Final }), &batch, work).await.map_err(activity_error)
    }

    /// The gateway's last step: the final proof to the core. Safe to retry: a batch the core
    /// already has a proof of counts as submitted.
    #[activity]
    pub async fn submit_proof(self: Arc<Self>, ctx: ActivityContext, batch: BatchRef) -> Result<(), ActivityError> {
        let work = async {
            let core = self.core.as_ref().ok_or_else(|| StageError::BadInput("this worker has no core client (submission runs on the gateway)".into()))?;
            let pv = batch.protocol_version;
            let proof = self.store.get(&keys::proof(pv, batch.batch, ProofSlot::Final)).await.map_err(input_error(CorruptInput::Proof(ProofSlot::Final)))?;
            let public_data: BatchPublicData = self.store.get_json(&keys::public_data(pv, batch.batch)).await.map_err(input_error(CorruptInput::Witness))?;
            let circuits = self.circuits(&batch).await?;
            let commitment = via_l2::batch::batch_commitment(&public_data, circuits.manifest.scheduler_vk_hash);
            let request = SubmitProofRequest::Proof(Box::new(L1BatchProofForL1 { version: Default::default(), protocol_version: pv, batch_commitment: commitment, proof: ProofBytes(proof) }));
            let submitted = core.submit_proof(batch.batch, &request).await.map_err(|e| if e.is_retryable() { transient(e) } else { StageError::BadInput(e.to_string()) })?;
            self.records.submitted(batch.batch).await.map_err(transient)?;
            let input_key = keys::witness_input(pv, batch.batch);
            self.records.batch_status(batch.batch, pv, "proven", &input_key, None).await.map_err(transient)?;
            tracing::info!(batch = batch.batch.0, already = submitted == Submitted::AlreadyProven, "proof submitted");
            Ok(((), None))
        };
        self.observe(&ctx, "submission", None, &batch, work).await.map_err(activity_error)
    }
}
