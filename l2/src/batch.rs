//! A batch: executing its transactions, the public data it yields, and its commitment.

use std::collections::BTreeSet;

use plonky2::field::types::Field;
use sha2::{Digest as _, Sha256};
use via_schemas::l2::{AccountId, BatchPublicData, L2ChainId, L2Transaction};
use via_schemas::primitives::{Bytes32, Hash};
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

use crate::hash::{F, ZERO_DIGEST, bytes32_words, chain, fe, from_wire, hash, to_wire};
use crate::state::{ExecutionContext, State, TxError};
use crate::tx::{priority_op_item, pubdata_record, withdrawal_item};

/// What a batch is sealed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub l1_batch_number: L1BatchNumber,
    pub chain_id: L2ChainId,
    pub fee_account: AccountId,
    pub protocol_version: ProtocolSemanticVersion,
}

/// A transaction of a batch broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction {index}: {source}")]
pub struct BatchError {
    /// Position of the transaction in the batch.
    pub index: usize,
    pub source: TxError,
}

/// The outcome of executing a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchExecution {
    pub public_data: BatchPublicData,
    /// The pubdata bytes: one 64-byte record per transaction.
    pub pubdata: Vec<u8>,
}

/// The accounts a batch's transactions touch, the fee account included, in id order: the
/// accounts a witness input must carry.
pub fn touched_accounts(fee_account: AccountId, txs: &[L2Transaction]) -> BTreeSet<AccountId> {
    let mut touched = BTreeSet::from([fee_account]);
    for tx in txs {
        match tx {
            L2Transaction::Deposit(d) => touched.insert(d.to),
            L2Transaction::Transfer(t) => touched.insert(t.tx.from) | touched.insert(t.tx.to),
            L2Transaction::Withdraw(w) => touched.insert(w.tx.from),
        };
    }
    touched
}

/// Executes a batch's transactions in order. On error the state holds the transactions before the
/// failing one; callers that must not see a partial batch run it on a copy.
pub fn execute_batch(state: &mut State, header: &BatchHeader, txs: &[L2Transaction]) -> Result<BatchExecution, BatchError> {
    let ctx = ExecutionContext { chain_id: header.chain_id, fee_account: header.fee_account };
    let previous_state_root = state.root();
    let mut priority_ops = ZERO_DIGEST;
    let mut withdrawals = ZERO_DIGEST;
    let mut pubdata = Vec::with_capacity(txs.len() * crate::tx::PUBDATA_RECORD_BYTES);
    for (index, tx) in txs.iter().enumerate() {
        state.apply(&ctx, tx).map_err(|source| BatchError { index, source })?;
        match tx {
            L2Transaction::Deposit(d) => priority_ops = chain(priority_ops, &priority_op_item(d)),
            L2Transaction::Withdraw(w) => withdrawals = chain(withdrawals, &withdrawal_item(&w.tx)),
            L2Transaction::Transfer(_) => {}
        }
        pubdata.extend_from_slice(&pubdata_record(tx));
    }
    let public_data = BatchPublicData {
        l1_batch_number: header.l1_batch_number,
        chain_id: header.chain_id,
        fee_account: header.fee_account,
        previous_state_root,
        new_state_root: state.root(),
        priority_ops_hash: to_wire(priority_ops),
        withdrawals_hash: to_wire(withdrawals),
        pubdata_sha256: Bytes32(Sha256::digest(&pubdata).into()),
        protocol_version: header.protocol_version,
    };
    Ok(BatchExecution { public_data, pubdata })
}

/// The batch's public data as the field elements the scheduler exposes and the commitment hashes:
/// `batch number, chain id, fee account, previous root (4), new root (4), priority-ops hash (4),
/// withdrawals hash (4), pubdata SHA-256 (8 words), protocol minor, protocol patch`.
pub fn public_data_fields(public_data: &BatchPublicData) -> Vec<F> {
    let mut fields: Vec<F> = vec![
        fe(public_data.l1_batch_number.0.into()),
        fe(public_data.chain_id.0.into()),
        fe(public_data.fee_account.0.into()),
    ];
    for h in [public_data.previous_state_root, public_data.new_state_root, public_data.priority_ops_hash, public_data.withdrawals_hash] {
        fields.extend(from_wire(h).elements);
    }
    fields.extend(bytes32_words(&public_data.pubdata_sha256));
    fields.push(F::from_canonical_u16(public_data.protocol_version.minor));
    fields.push(F::from_canonical_u32(public_data.protocol_version.patch));
    fields
}

/// Number of elements in [`public_data_fields`].
pub const PUBLIC_DATA_FIELDS: usize = 29;

/// The batch commitment, the final proof's one public input: a Poseidon hash of the batch's
/// public data fields and the protocol version's scheduler verification key hash.
pub fn batch_commitment(public_data: &BatchPublicData, scheduler_vk_hash: Hash) -> Hash {
    let mut input = public_data_fields(public_data);
    input.extend(from_wire(scheduler_vk_hash).elements);
    to_wire(hash(&input))
}
