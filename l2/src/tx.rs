//! How transactions become field elements and bytes: the message each signature covers, the
//! items of the priority-operation and withdrawal queues, and the 64-byte pubdata records.

use plonky2::field::types::Field;
use via_schemas::l2::{Account, Deposit, L2ChainId, L2Transaction, Transfer, Withdraw};

use crate::hash::{Digest, F, bytes32_words, fe, hash};

/// Transaction kind tags, shared by signed messages, queue items and pubdata records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TxKind {
    Deposit = 1,
    Transfer = 2,
    Withdraw = 3,
}

impl TxKind {
    fn fe(self) -> F {
        F::from_canonical_u8(self as u8)
    }
}

/// Bytes in one pubdata record: one SHA-256 block per transaction.
pub const PUBDATA_RECORD_BYTES: usize = 64;

/// The digest a transfer's signature covers.
pub fn transfer_message(chain_id: L2ChainId, tx: &Transfer) -> Digest {
    hash(&[
        TxKind::Transfer.fe(),
        fe(chain_id.0.into()),
        fe(tx.from.0.into()),
        fe(tx.to.0.into()),
        fe(tx.amount),
        fe(tx.fee),
        fe(tx.nonce.into()),
    ])
}

/// The digest a withdrawal's signature covers.
pub fn withdraw_message(chain_id: L2ChainId, tx: &Withdraw) -> Digest {
    let mut input = vec![
        TxKind::Withdraw.fe(),
        fe(chain_id.0.into()),
        fe(tx.from.0.into()),
        fe(tx.amount),
        fe(tx.fee),
        fe(tx.nonce.into()),
    ];
    input.extend(bytes32_words(&tx.to_l1));
    hash(&input)
}

/// A deposit as an item of the priority-operations queue.
pub fn priority_op_item(deposit: &Deposit) -> Vec<F> {
    let mut item = vec![TxKind::Deposit.fe()];
    item.extend(bytes32_words(&deposit.l1_tx_id));
    item.push(fe(deposit.to.0.into()));
    item.extend(deposit.public_key.limbs().map(fe));
    item.push(fe(deposit.amount));
    item
}

/// A withdrawal as an item of the L2 -> L1 message queue: who pays whom how much.
pub fn withdrawal_item(tx: &Withdraw) -> Vec<F> {
    let mut item = vec![fe(tx.from.0.into())];
    item.extend(bytes32_words(&tx.to_l1));
    item.push(fe(tx.amount));
    item
}

/// The state-tree leaf of an account: `H(pk || balance || nonce)`.
pub fn account_leaf(account: &Account) -> Digest {
    let mut input: Vec<F> = account.public_key.limbs().map(fe).to_vec();
    input.push(fe(account.balance));
    input.push(fe(account.nonce.into()));
    hash(&input)
}

/// The 64-byte pubdata record of a transaction, from which a DA reader replays the state:
/// kind tag, then big-endian fields, zero-padded.
///
/// - deposit: `to (4) || public key (5 x 8) || amount (8)`
/// - transfer: `from (4) || to (4) || amount (8) || fee (8)`
/// - withdraw: `from (4) || to_l1 (32) || amount (8) || fee (8)`
pub fn pubdata_record(tx: &L2Transaction) -> [u8; PUBDATA_RECORD_BYTES] {
    let mut record = Vec::with_capacity(PUBDATA_RECORD_BYTES);
    match tx {
        L2Transaction::Deposit(d) => {
            record.push(TxKind::Deposit as u8);
            record.extend(d.to.0.to_be_bytes());
            for limb in d.public_key.limbs() {
                record.extend(limb.to_be_bytes());
            }
            record.extend(d.amount.to_be_bytes());
        }
        L2Transaction::Transfer(t) => {
            record.push(TxKind::Transfer as u8);
            record.extend(t.tx.from.0.to_be_bytes());
            record.extend(t.tx.to.0.to_be_bytes());
            record.extend(t.tx.amount.to_be_bytes());
            record.extend(t.tx.fee.to_be_bytes());
        }
        L2Transaction::Withdraw(w) => {
            record.push(TxKind::Withdraw as u8);
            record.extend(w.tx.from.0.to_be_bytes());
            record.extend(w.tx.to_l1.0);
            record.extend(w.tx.amount.to_be_bytes());
            record.extend(w.tx.fee.to_be_bytes());
        }
    }
    let mut out = [0u8; PUBDATA_RECORD_BYTES];
    out[..record.len()].copy_from_slice(&record);
    out
}
