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
/// 32-bit words in one pubdata record.
pub const PUBDATA_RECORD_WORDS: usize = PUBDATA_RECORD_BYTES / 4;

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

/// The 64-byte pubdata record of a transaction, from which a DA reader replays the state: sixteen
/// big-endian 32-bit words, zero-padded, so a circuit handles whole words and never bytes.
/// 64-bit values take two words (high first).
///
/// - deposit: `1 | to | public key (5 x 2) | amount (2)`
/// - transfer: `2 | from | to | amount (2) | fee (2)`
/// - withdraw: `3 | from | to_l1 (8) | amount (2) | fee (2)`
pub fn pubdata_words(tx: &L2Transaction) -> [u32; PUBDATA_RECORD_WORDS] {
    fn split(value: u64) -> [u32; 2] {
        [(value >> 32) as u32, value as u32]
    }
    let mut words = Vec::with_capacity(PUBDATA_RECORD_WORDS);
    match tx {
        L2Transaction::Deposit(d) => {
            words.extend([TxKind::Deposit as u32, d.to.0]);
            words.extend(d.public_key.limbs().into_iter().flat_map(split));
            words.extend(split(d.amount));
        }
        L2Transaction::Transfer(t) => {
            words.extend([TxKind::Transfer as u32, t.tx.from.0, t.tx.to.0]);
            words.extend(split(t.tx.amount));
            words.extend(split(t.tx.fee));
        }
        L2Transaction::Withdraw(w) => {
            words.extend([TxKind::Withdraw as u32, w.tx.from.0]);
            words.extend(w.tx.to_l1.0.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes"))));
            words.extend(split(w.tx.amount));
            words.extend(split(w.tx.fee));
        }
    }
    let mut out = [0u32; PUBDATA_RECORD_WORDS];
    out[..words.len()].copy_from_slice(&words);
    out
}

/// The pubdata record as bytes.
pub fn pubdata_record(tx: &L2Transaction) -> [u8; PUBDATA_RECORD_BYTES] {
    let mut out = [0u8; PUBDATA_RECORD_BYTES];
    for (chunk, word) in out.chunks_exact_mut(4).zip(pubdata_words(tx)) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
