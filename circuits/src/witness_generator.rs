//! The basic witness generator: a batch's [`WitnessInputData`] in, every basic circuit instance
//! out, each with its witness and the public inputs it must produce.
//!
//! It first replays the batch with the L2 model's own rules (so a transaction that breaks one is
//! refused with the rule and its index, and Merkle paths that do not lead to the stated root are
//! refused before anything else), then lays the same execution out as circuit slots, and finally
//! checks that the queues it built end where the batch's public data says they must.

use plonky2::field::types::PrimeField64;
use serde::{Deserialize, Serialize};
use via_l2::batch::{BatchError, BatchHeader, execute_batch};
use via_l2::hash::{Digest, F, ZERO_DIGEST, chain, fe, from_wire, to_wire};
use via_l2::smt::SparseMerkleTree;
use via_l2::state::{ExecutionContext, State, WitnessError};
use via_l2::tx::{TxKind, account_leaf, priority_op_item, pubdata_words, transfer_message, withdraw_message, withdrawal_item};
use via_schemas::config::BasicCircuitsConfig;
use via_schemas::l2::{Account, AccountId, BatchPublicData, L2Transaction, WitnessInputData};
use via_schemas::primitives::{Bytes32, Signature};

use crate::basic::CircuitId;
use crate::basic::items;
use crate::basic::pubdata_hasher::{HasherState, PubdataHasherWitness, RecordSlot, padding_block};
use crate::basic::signature_verifier::{SignatureSlot, SignatureVerifierWitness};
use crate::basic::storage_application::{AccessSlot, StorageApplicationWitness};
use crate::basic::tx_execution::{AccountSnapshot, QUEUES, TxExecutionWitness, TxSlot};
use crate::gadgets::sha256::IV;

/// Why a batch cannot be turned into circuit witnesses. None of these is fixed by retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessGenerationError {
    #[error("witness input does not match the previous state root: {0}")]
    Witness(#[from] WitnessError),
    #[error("batch breaks a rule: {0}")]
    Transaction(#[from] BatchError),
    #[error("basic circuit configuration: {0} must be at least 1")]
    EmptyCircuit(&'static str),
    #[error("internal: {what} ends at {got}, the batch's public data says {expected}")]
    Inconsistent { what: &'static str, got: String, expected: String },
}

impl WitnessGenerationError {
    /// Whether running the generator again could succeed. Every variant names bad input or a
    /// bug, so none is; the match makes a new variant decide.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Witness(_) | Self::Transaction(_) | Self::EmptyCircuit(_) | Self::Inconsistent { .. } => false,
        }
    }
}

/// The witness of one basic circuit instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BasicWitness {
    TxExecution(TxExecutionWitness),
    StorageApplication(StorageApplicationWitness),
    PubdataHasher(PubdataHasherWitness),
    SignatureVerifier(SignatureVerifierWitness),
}

impl BasicWitness {
    /// The circuit this witness is for.
    pub fn circuit_id(&self) -> CircuitId {
        match self {
            Self::TxExecution(_) => CircuitId::TxExecution,
            Self::StorageApplication(_) => CircuitId::StorageApplication,
            Self::PubdataHasher(_) => CircuitId::PubdataHasher,
            Self::SignatureVerifier(_) => CircuitId::SignatureVerifier,
        }
    }
}

/// One instance: which circuit, its position among the batch's instances of that circuit, its
/// witness, and the public inputs (`context || state_in || state_out`) its proof must carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicCircuitInstance {
    pub circuit_id: CircuitId,
    pub sequence: usize,
    pub witness: BasicWitness,
    pub public_inputs: Vec<u64>,
}

/// Everything round 0 proves for a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicWitnesses {
    /// The public data the instances, chained, attest to.
    pub public_data: BatchPublicData,
    /// Instances grouped by circuit id, each group in chaining order.
    pub instances: Vec<BasicCircuitInstance>,
}

fn limbs(d: Digest) -> [u64; 4] {
    d.elements.map(|e| e.to_canonical_u64())
}

fn snapshot(account: Option<Account>) -> AccountSnapshot {
    account.map_or_else(AccountSnapshot::default, |a| AccountSnapshot { exists: true, public_key: a.public_key.limbs(), balance: a.balance, nonce: a.nonce })
}

fn leaf_of(account: Option<&Account>) -> Digest {
    account.map_or(ZERO_DIGEST, account_leaf)
}

fn words32(bytes: &Bytes32) -> [u32; 8] {
    std::array::from_fn(|i| u32::from_be_bytes(bytes.0[4 * i..4 * i + 4].try_into().expect("4 bytes")))
}

fn signature_words(signature: &Signature) -> [u32; 10] {
    std::array::from_fn(|i| u32::from_be_bytes(signature.s.0[4 * i..4 * i + 4].try_into().expect("4 bytes")))
}

/// The five queues TxExecution produces, as native hash chains.
#[derive(Clone, Copy, Default)]
struct Queues([Digest; 5]);

impl Queues {
    const ACCESS: usize = 0;
    const PUBDATA: usize = 1;
    const SIGNATURES: usize = 2;
    const PRIORITY: usize = 3;
    const WITHDRAWALS: usize = 4;

    fn push(&mut self, queue: usize, item: &[F]) {
        self.0[queue] = chain(self.0[queue], item);
    }

    fn limbs(&self) -> [[u64; 4]; 5] {
        self.0.map(limbs)
    }
}

/// What the transactions produce, item by item, before it is cut into instances.
#[derive(Default)]
struct Execution {
    tx_slots: Vec<TxSlot>,
    /// Queue states after each transaction.
    queues_after: Vec<Queues>,
    accesses: Vec<(u32, Digest, Digest)>,
    records: Vec<[u32; 16]>,
    signatures: Vec<SignatureSlot>,
}

/// Replays the batch lane by lane.
fn execute(input: &WitnessInputData, header: &BatchHeader) -> Result<Execution, WitnessGenerationError> {
    let ctx = ExecutionContext { chain_id: header.chain_id, fee_account: header.fee_account };
    let mut state = State::from_witness(input.previous_state_root, &input.accounts)?;
    let mut queues = Queues::default();
    let mut out = Execution::default();
    let fee_account = header.fee_account;
    for (index, tx) in input.transactions.iter().enumerate() {
        let (kind, a, b) = match tx {
            L2Transaction::Deposit(d) => (TxKind::Deposit, d.to, None),
            L2Transaction::Transfer(t) => (TxKind::Transfer, t.tx.from, Some(t.tx.to)),
            L2Transaction::Withdraw(w) => (TxKind::Withdraw, w.tx.from, None),
        };
        let pre_a = state.account(a).copied();
        let pre_b = b.and_then(|b| state.account(b).copied());
        let pre_f = state.account(fee_account).copied();
        // The rules already held in the first replay; applying again moves the state on.
        state.apply(&ctx, tx).map_err(|source| BatchError { index, source })?;

        let mut slot = TxSlot { kind: kind as u8, account_a: a.0, ..TxSlot::default() };
        // Lanes see the account as the earlier lanes of the same slot left it.
        let post = |id: AccountId| state.account(id).copied();
        let lane_f_pre = |after_a: Option<Account>, after_b: Option<Account>| {
            if fee_account == a { after_a } else if Some(fee_account) == b { after_b } else { pre_f }
        };
        let spend = |slot: &mut TxSlot, amount: u64, fee: u64, nonce: u32, signature: &Signature| {
            slot.amount = amount;
            slot.fee = fee;
            slot.nonce = nonce;
            slot.signature_r = signature.r.limbs();
            slot.signature_s = signature_words(signature);
        };
        match tx {
            L2Transaction::Deposit(d) => {
                slot.amount = d.amount;
                slot.public_key = d.public_key.limbs();
                slot.l1_tx_id = words32(&d.l1_tx_id);
                slot.lanes[0] = snapshot(pre_a);
                out.accesses.push((a.0, leaf_of(pre_a.as_ref()), leaf_of(post(a).as_ref())));
                queues.push(Queues::PRIORITY, &priority_op_item(d));
            }
            L2Transaction::Transfer(t) => {
                spend(&mut slot, t.tx.amount, t.tx.fee, t.tx.nonce, &t.signature);
                slot.account_b = t.tx.to.0;
                let pre = pre_a.expect("the sender exists: the rules held");
                let after_a = Account { nonce: pre.nonce + 1, balance: pre.balance - t.tx.amount - t.tx.fee, ..pre };
                let pre_to = pre_b.expect("the recipient exists: the rules held");
                let after_b = Account { balance: pre_to.balance + t.tx.amount, ..pre_to };
                let before_f = lane_f_pre(Some(after_a), Some(after_b)).expect("the fee account exists: the rules held");
                let after_f = Account { balance: before_f.balance + t.tx.fee, ..before_f };
                slot.lanes = [snapshot(Some(pre)), snapshot(Some(pre_to)), snapshot(Some(before_f))];
                out.accesses.push((a.0, account_leaf(&pre), account_leaf(&after_a)));
                out.accesses.push((t.tx.to.0, account_leaf(&pre_to), account_leaf(&after_b)));
                out.accesses.push((fee_account.0, account_leaf(&before_f), account_leaf(&after_f)));
                let message = transfer_message(header.chain_id, &t.tx);
                out.signatures.push(signature_slot(&pre, message, &t.signature));
            }
            L2Transaction::Withdraw(w) => {
                spend(&mut slot, w.tx.amount, w.tx.fee, w.tx.nonce, &w.signature);
                slot.to_l1 = words32(&w.tx.to_l1);
                let pre = pre_a.expect("the sender exists: the rules held");
                let after_a = Account { nonce: pre.nonce + 1, balance: pre.balance - w.tx.amount - w.tx.fee, ..pre };
                let before_f = lane_f_pre(Some(after_a), None).expect("the fee account exists: the rules held");
                let after_f = Account { balance: before_f.balance + w.tx.fee, ..before_f };
                slot.lanes[0] = snapshot(Some(pre));
                slot.lanes[2] = snapshot(Some(before_f));
                out.accesses.push((a.0, account_leaf(&pre), account_leaf(&after_a)));
                out.accesses.push((fee_account.0, account_leaf(&before_f), account_leaf(&after_f)));
                let message = withdraw_message(header.chain_id, &w.tx);
                out.signatures.push(signature_slot(&pre, message, &w.signature));
                queues.push(Queues::WITHDRAWALS, &withdrawal_item(&w.tx));
            }
        }
        let accesses_of_tx = match kind {
            TxKind::Deposit => 1,
            TxKind::Transfer => 3,
            TxKind::Withdraw => 2,
        };
        for (account, old, new) in &out.accesses[out.accesses.len() - accesses_of_tx..] {
            queues.push(Queues::ACCESS, &items::access(*account, *old, *new));
        }
        if kind != TxKind::Deposit {
            let s = out.signatures.last().expect("just pushed");
            queues.push(Queues::SIGNATURES, &items::signature_request(s.public_key.map(fe), Digest { elements: s.message.map(fe) }, s.r.map(fe), s.s.map(|w| fe(w.into()))));
        }
        let record = pubdata_words(tx);
        queues.push(Queues::PUBDATA, &record.map(|w| fe(w.into())));
        out.records.push(record);
        out.tx_slots.push(slot);
        out.queues_after.push(queues);
    }
    Ok(out)
}

fn signature_slot(signer: &Account, message: Digest, signature: &Signature) -> SignatureSlot {
    SignatureSlot { active: true, public_key: signer.public_key.limbs(), message: limbs(message), r: signature.r.limbs(), s: signature_words(signature) }
}

fn sha256_compress(state: [u32; 8], block: &[u32; 16]) -> [u32; 8] {
    let mut state = state;
    let bytes: Vec<u8> = block.iter().flat_map(|w| w.to_be_bytes()).collect();
    sha2::compress256(&mut state, &[*sha2::digest::generic_array::GenericArray::from_slice(&bytes)]);
    state
}

fn check_capacity(config: &BasicCircuitsConfig) -> Result<(), WitnessGenerationError> {
    for (name, value) in [
        ("txs_per_tx_execution", config.txs_per_tx_execution),
        ("accesses_per_storage_application", config.accesses_per_storage_application),
        ("blocks_per_pubdata_hasher", config.blocks_per_pubdata_hasher),
        ("signatures_per_signature_verifier", config.signatures_per_signature_verifier),
    ] {
        if value == 0 {
            return Err(WitnessGenerationError::EmptyCircuit(name));
        }
    }
    Ok(())
}

/// Splits `len` items into chunks of `capacity`, at least one (an empty batch still proves each
/// circuit once, all padding, so the scheduler always has every circuit type to check).
fn chunks(len: usize, capacity: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let count = len.div_ceil(capacity).max(1);
    (0..count).map(move |i| i * capacity..((i + 1) * capacity).min(len))
}

fn flat(parts: &[&[u64]]) -> Vec<u64> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

fn ensure_eq(what: &'static str, got: impl std::fmt::Display, expected: impl std::fmt::Display) -> Result<(), WitnessGenerationError> {
    let (got, expected) = (got.to_string(), expected.to_string());
    if got == expected { Ok(()) } else { Err(WitnessGenerationError::Inconsistent { what, got, expected }) }
}

/// Turns a batch's witness input into every basic circuit instance that proves it.
pub fn generate_basic_witnesses(input: &WitnessInputData, config: &BasicCircuitsConfig) -> Result<BasicWitnesses, WitnessGenerationError> {
    check_capacity(config)?;
    let header = BatchHeader {
        l1_batch_number: input.l1_batch_number,
        chain_id: input.chain_id,
        fee_account: input.fee_account,
        protocol_version: input.protocol_version,
    };
    // The model's own replay: refuses bad paths and broken rules, and fixes the public data.
    let mut replay = State::from_witness(input.previous_state_root, &input.accounts)?;
    let public_data = execute_batch(&mut replay, &header, &input.transactions)?.public_data;
    let execution = execute(input, &header)?;
    let mut instances = Vec::new();

    // TxExecution.
    let context = [u64::from(input.chain_id.0), u64::from(input.fee_account.0)];
    let mut queues_in = Queues::default();
    for (sequence, range) in chunks(execution.tx_slots.len(), config.txs_per_tx_execution).enumerate() {
        let mut slots = execution.tx_slots[range.clone()].to_vec();
        slots.resize(config.txs_per_tx_execution, TxSlot::default());
        let queues_out = if range.is_empty() { queues_in } else { execution.queues_after[range.end - 1] };
        let state_in = queues_in.limbs();
        let state_out = queues_out.limbs();
        instances.push(BasicCircuitInstance {
            circuit_id: CircuitId::TxExecution,
            sequence,
            public_inputs: flat(&[&context, state_in.as_flattened(), state_out.as_flattened()]),
            witness: BasicWitness::TxExecution(TxExecutionWitness { chain_id: input.chain_id.0, fee_account: input.fee_account.0, state_in, slots }),
        });
        queues_in = queues_out;
    }
    let produced = queues_in;

    // StorageApplication: replays the access log against a tree rebuilt from the witness paths.
    let mut tree = SparseMerkleTree::new();
    for w in &input.accounts {
        let path: Vec<Digest> = w.merkle_path.iter().copied().map(from_wire).collect();
        tree.insert_path(w.account_id.0, leaf_of(w.account.as_ref()), &path).map_err(|source| WitnessError::PathLength { account: w.account_id, source })?;
    }
    let mut queue = ZERO_DIGEST;
    for (sequence, range) in chunks(execution.accesses.len(), config.accesses_per_storage_application).enumerate() {
        let (queue_in, root_in) = (queue, tree.root());
        let mut slots = Vec::with_capacity(config.accesses_per_storage_application);
        for &(account, old, new) in &execution.accesses[range] {
            ensure_eq("a storage access's old leaf", to_wire(tree.leaf(account)), to_wire(old))?;
            slots.push(AccessSlot { active: true, account, old_leaf: limbs(old), new_leaf: limbs(new), merkle_path: tree.merkle_path(account).into_iter().map(limbs).collect() });
            tree.set_leaf(account, new);
            queue = chain(queue, &items::access(account, old, new));
        }
        slots.resize(config.accesses_per_storage_application, AccessSlot::default());
        instances.push(BasicCircuitInstance {
            circuit_id: CircuitId::StorageApplication,
            sequence,
            public_inputs: flat(&[&limbs(queue_in), &limbs(root_in), &limbs(queue), &limbs(tree.root())]),
            witness: BasicWitness::StorageApplication(StorageApplicationWitness { queue_in: limbs(queue_in), root_in: limbs(root_in), slots }),
        });
    }
    ensure_eq("the storage root", to_wire(tree.root()), public_data.new_state_root)?;
    ensure_eq("the access log", to_wire(queue), to_wire(produced.0[Queues::ACCESS]))?;

    // PubdataHasher.
    let mut hasher = HasherState { queue: limbs(ZERO_DIGEST), sha256: IV, count: 0, digest: [0; 8] };
    for (sequence, range) in chunks(execution.records.len(), config.blocks_per_pubdata_hasher).enumerate() {
        let state_in = hasher;
        let mut slots = Vec::with_capacity(config.blocks_per_pubdata_hasher);
        let mut queue = Digest { elements: hasher.queue.map(fe) };
        for record in &execution.records[range] {
            slots.push(RecordSlot { active: true, words: *record });
            queue = chain(queue, &record.map(|w| fe(w.into())));
            hasher.sha256 = sha256_compress(hasher.sha256, record);
            hasher.count += 1;
        }
        slots.resize(config.blocks_per_pubdata_hasher, RecordSlot::default());
        hasher.queue = limbs(queue);
        hasher.digest = sha256_compress(hasher.sha256, &padding_block(hasher.count));
        let public = |s: &HasherState| flat(&[&s.queue, &s.sha256.map(u64::from), &[u64::from(s.count)], &s.digest.map(u64::from)]);
        instances.push(BasicCircuitInstance {
            circuit_id: CircuitId::PubdataHasher,
            sequence,
            public_inputs: [public(&state_in), public(&hasher)].concat(),
            witness: BasicWitness::PubdataHasher(PubdataHasherWitness { state_in, slots }),
        });
    }
    let mut digest = Bytes32::default();
    for (chunk, word) in digest.0.chunks_exact_mut(4).zip(hasher.digest) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    ensure_eq("the pubdata SHA-256", digest, public_data.pubdata_sha256)?;
    ensure_eq("the pubdata queue", to_wire(Digest { elements: hasher.queue.map(fe) }), to_wire(produced.0[Queues::PUBDATA]))?;

    // SignatureVerifier.
    let mut queue = ZERO_DIGEST;
    for (sequence, range) in chunks(execution.signatures.len(), config.signatures_per_signature_verifier).enumerate() {
        let queue_in = queue;
        let mut slots = execution.signatures[range].to_vec();
        for s in &slots {
            queue = chain(queue, &items::signature_request(s.public_key.map(fe), Digest { elements: s.message.map(fe) }, s.r.map(fe), s.s.map(|w| fe(w.into()))));
        }
        slots.resize(config.signatures_per_signature_verifier, SignatureSlot::default());
        instances.push(BasicCircuitInstance {
            circuit_id: CircuitId::SignatureVerifier,
            sequence,
            public_inputs: flat(&[&limbs(queue_in), &limbs(queue)]),
            witness: BasicWitness::SignatureVerifier(SignatureVerifierWitness { queue_in: limbs(queue_in), slots }),
        });
    }
    ensure_eq("the signature-request queue", to_wire(queue), to_wire(produced.0[Queues::SIGNATURES]))?;
    ensure_eq(QUEUES[Queues::PRIORITY], to_wire(produced.0[Queues::PRIORITY]), public_data.priority_ops_hash)?;
    ensure_eq(QUEUES[Queues::WITHDRAWALS], to_wire(produced.0[Queues::WITHDRAWALS]), public_data.withdrawals_hash)?;

    Ok(BasicWitnesses { public_data, instances })
}
