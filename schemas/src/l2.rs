//! The data of our L2 model: accounts, transactions, a batch's witness input and public data.
//!
//! The rules that act on this data (hashing, signatures, the state transition function) live in
//! `via-l2`; here are only the shapes both sides of the wire agree on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::WireVersion;
use crate::primitives::{Bytes32, Hash, PublicKey, Signature};
use crate::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

/// An account's index in the state tree (the tree has 2^32 leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u32);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The identifier of an L2 chain, part of every signed message so signatures do not replay
/// across chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct L2ChainId(pub u32);

/// A leaf of the state tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The key that signs the account's transactions.
    pub public_key: PublicKey,
    /// Balance in satoshis.
    pub balance: u64,
    /// The nonce the account's next transaction must carry.
    pub nonce: u32,
}

/// An L1 priority operation: bitcoin locked in the bridge, credited on L2. Creates the account if
/// its leaf is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// The Bitcoin transaction that locked the funds.
    pub l1_tx_id: Bytes32,
    /// The credited account.
    pub to: AccountId,
    /// The key of the credited account; must match it if the account exists.
    pub public_key: PublicKey,
    /// Satoshis credited.
    pub amount: u64,
}

/// A transfer between two L2 accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: u64,
    /// Paid to the batch's fee account.
    pub fee: u64,
    pub nonce: u32,
}

/// A withdrawal to Bitcoin: debits L2 and emits an L2 -> L1 message that the bridge pays out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdraw {
    pub from: AccountId,
    /// The Bitcoin output key (x-only, as in a taproot output) that receives the funds.
    pub to_l1: Bytes32,
    pub amount: u64,
    /// Paid to the batch's fee account.
    pub fee: u64,
    pub nonce: u32,
}

/// A transaction together with its sender's signature over the transaction's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    #[serde(flatten)]
    pub tx: T,
    pub signature: Signature,
}

/// One transaction of a batch, in execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum L2Transaction {
    Deposit(Deposit),
    Transfer(Signed<Transfer>),
    Withdraw(Signed<Withdraw>),
}

/// An account the batch touches, as it stood before the batch, with its path to the previous
/// state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountWitness {
    pub account_id: AccountId,
    /// `None` for an empty leaf (an account a deposit creates).
    pub account: Option<Account>,
    /// The sibling hashes from the leaf up to the root: 32 entries, leaf level first.
    pub merkle_path: Vec<Hash>,
}

/// Everything the basic witness generator needs to prove one batch.
///
/// Deposits (the batch's priority operations) appear in `transactions` in the order the core
/// executed them; their order fixes the priority-operations hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessInputData {
    pub version: WireVersion,
    pub l1_batch_number: L1BatchNumber,
    pub chain_id: L2ChainId,
    pub protocol_version: ProtocolSemanticVersion,
    /// Receives every transaction fee of the batch.
    pub fee_account: AccountId,
    pub previous_state_root: Hash,
    pub transactions: Vec<L2Transaction>,
    /// Every account the transactions touch (the fee account included), each once, in
    /// ascending id order.
    pub accounts: Vec<AccountWitness>,
}

/// The public data of a sealed batch: what the final proof attests to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPublicData {
    pub l1_batch_number: L1BatchNumber,
    /// The chain whose signatures the batch accepted (signed messages include it).
    pub chain_id: L2ChainId,
    /// The account that received the batch's fees (pubdata records name only the payers).
    pub fee_account: AccountId,
    pub previous_state_root: Hash,
    pub new_state_root: Hash,
    /// Poseidon hash chain over the batch's deposits.
    pub priority_ops_hash: Hash,
    /// Poseidon hash chain over the batch's L2 -> L1 withdrawal messages.
    pub withdrawals_hash: Hash,
    /// SHA-256 of the batch's pubdata, so a Bitcoin script or a DA reader can recompute it.
    pub pubdata_sha256: Bytes32,
    pub protocol_version: ProtocolSemanticVersion,
}
