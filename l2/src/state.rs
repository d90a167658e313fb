//! The L2 state and its state transition function: every rule a transaction must obey, each
//! broken rule a typed error.

use std::collections::{BTreeMap, BTreeSet};

use via_schemas::l2::{Account, AccountId, AccountWitness, Deposit, L2ChainId, L2Transaction, Signed, Transfer, Withdraw};
use via_schemas::primitives::Hash;

use crate::curve::Point;
use crate::hash::{Digest, ZERO_DIGEST, from_wire, to_wire};
use crate::schnorr::{self, SignatureError};
use crate::smt::{SparseMerkleTree, WrongPathLength, root_from_path};
use crate::tx::{account_leaf, transfer_message, withdraw_message};

/// The largest balance (and amount, and fee) an account can hold: 2^60 - 1 satoshis, far above
/// Bitcoin's supply, and small enough that a sum of two never wraps in the Goldilocks field,
/// so a circuit can range-check balances with 60-bit decompositions.
pub const MAX_BALANCE: u64 = (1 << 60) - 1;

/// A rule a transaction broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("{field} {value} exceeds the maximum {MAX_BALANCE}")]
    AmountOutOfRange { field: &'static str, value: u64 },
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("account {0} transfers to itself")]
    TransferToSelf(AccountId),
    #[error("account {account} expects nonce {expected}, the transaction carries {got}")]
    NonceMismatch { account: AccountId, expected: u32, got: u32 },
    #[error("account {0} has used every nonce")]
    NonceOverflow(AccountId),
    #[error("account {account} holds {balance}, the transaction needs {needed}")]
    InsufficientBalance { account: AccountId, balance: u64, needed: u128 },
    #[error("account {account} would exceed the maximum balance: {balance} + {amount}")]
    BalanceOverflow { account: AccountId, balance: u64, amount: u64 },
    #[error("deposit to account {0} names a public key other than the account's")]
    PublicKeyMismatch(AccountId),
    #[error("deposit creating account {0} names an invalid public key")]
    InvalidPublicKey(AccountId),
    #[error("signature of account {account}: {source}")]
    InvalidSignature { account: AccountId, source: SignatureError },
    #[error("account {0} is touched but missing from the witness input")]
    NotInWitness(AccountId),
}

/// Why a witness input's accounts cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("account {account}: {source}")]
    PathLength { account: AccountId, source: WrongPathLength },
    #[error("account {account}: Merkle path leads to {computed}, not the previous state root {expected}")]
    RootMismatch { account: AccountId, computed: Hash, expected: Hash },
    #[error("account {0} appears twice")]
    Duplicate(AccountId),
}

/// The context a transaction executes in.
#[derive(Clone, Copy, Debug)]
pub struct ExecutionContext {
    pub chain_id: L2ChainId,
    /// Receives the fees.
    pub fee_account: AccountId,
}

/// Accounts and their tree: either the whole state (the core's) or the part a batch touches,
/// rebuilt from a witness input (the witness generator's). The same rules run on both.
#[derive(Clone, Debug, Default)]
pub struct State {
    accounts: BTreeMap<AccountId, Account>,
    /// For a partial state, the accounts its witness covers; touching any other is an error.
    witnessed: Option<BTreeSet<AccountId>>,
    tree: SparseMerkleTree,
}

impl State {
    /// The empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole state, from every account.
    pub fn from_accounts(accounts: impl IntoIterator<Item = (AccountId, Account)>) -> Self {
        let mut state = Self::new();
        for (id, account) in accounts {
            state.set(id, account);
        }
        state
    }

    /// The part of a state that a batch touches, from its witness: each account's path is checked
    /// against `root` before it is trusted.
    pub fn from_witness(root: Hash, witnesses: &[AccountWitness]) -> Result<Self, WitnessError> {
        let mut state = Self::new();
        let mut seen = BTreeSet::new();
        for w in witnesses {
            let account = w.account_id;
            if !seen.insert(account) {
                return Err(WitnessError::Duplicate(account));
            }
            let leaf = w.account.as_ref().map_or(ZERO_DIGEST, account_leaf);
            let path: Vec<Digest> = w.merkle_path.iter().copied().map(from_wire).collect();
            let computed = root_from_path(account.0, leaf, &path).map_err(|source| WitnessError::PathLength { account, source })?;
            if computed != from_wire(root) {
                return Err(WitnessError::RootMismatch { account, computed: to_wire(computed), expected: root });
            }
            state.tree.insert_path(account.0, leaf, &path).map_err(|source| WitnessError::PathLength { account, source })?;
            if let Some(a) = w.account {
                state.accounts.insert(account, a);
            }
        }
        state.witnessed = Some(seen);
        Ok(state)
    }

    /// The state root.
    pub fn root(&self) -> Hash {
        to_wire(self.tree.root())
    }

    /// An account, if it exists.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        self.accounts.iter().map(|(id, a)| (*id, a))
    }

    /// The account at `id` (or `None` for an empty leaf) with its Merkle path.
    pub fn witness(&self, id: AccountId) -> AccountWitness {
        AccountWitness {
            account_id: id,
            account: self.accounts.get(&id).copied(),
            merkle_path: self.tree.merkle_path(id.0).into_iter().map(to_wire).collect(),
        }
    }

    fn set(&mut self, id: AccountId, account: Account) {
        self.tree.set_leaf(id.0, account_leaf(&account));
        self.accounts.insert(id, account);
    }

    /// Reads an account for a transaction; in a partial state, an account outside the witness is
    /// an error rather than an empty leaf.
    fn lookup(&self, id: AccountId) -> Result<Option<Account>, TxError> {
        if self.witnessed.as_ref().is_some_and(|w| !w.contains(&id)) {
            return Err(TxError::NotInWitness(id));
        }
        Ok(self.accounts.get(&id).copied())
    }

    /// Applies one transaction, or leaves the state untouched and names the broken rule.
    pub fn apply(&mut self, ctx: &ExecutionContext, tx: &L2Transaction) -> Result<(), TxError> {
        let updates = match tx {
            L2Transaction::Deposit(d) => self.deposit(d)?,
            L2Transaction::Transfer(t) => self.transfer(ctx, t)?,
            L2Transaction::Withdraw(w) => self.withdraw(ctx, w)?,
        };
        for (id, account) in updates {
            self.set(id, account);
        }
        Ok(())
    }

    fn deposit(&self, d: &Deposit) -> Result<Updates, TxError> {
        check_amount("amount", d.amount)?;
        let mut updates = Overlay::new(self);
        match updates.get(d.to)? {
            None => {
                let valid = Point::from_wire(&d.public_key).is_ok_and(|p| !p.is_neutral());
                if !valid {
                    return Err(TxError::InvalidPublicKey(d.to));
                }
                updates.put(d.to, Account { public_key: d.public_key, balance: d.amount, nonce: 0 });
            }
            Some(account) => {
                if account.public_key != d.public_key {
                    return Err(TxError::PublicKeyMismatch(d.to));
                }
                updates.credit(d.to, d.amount)?;
            }
        }
        Ok(updates.into_changes())
    }

    fn transfer(&self, ctx: &ExecutionContext, t: &Signed<Transfer>) -> Result<Updates, TxError> {
        let tx = &t.tx;
        check_amount("amount", tx.amount)?;
        check_amount("fee", tx.fee)?;
        if tx.from == tx.to {
            return Err(TxError::TransferToSelf(tx.from));
        }
        let mut updates = Overlay::new(self);
        updates.existing(tx.to)?;
        updates.authorize(tx.from, tx.nonce, transfer_message(ctx.chain_id, tx), &t.signature)?;
        updates.debit(tx.from, tx.amount, tx.fee)?;
        updates.credit(tx.to, tx.amount)?;
        updates.credit(ctx.fee_account, tx.fee)?;
        Ok(updates.into_changes())
    }

    fn withdraw(&self, ctx: &ExecutionContext, w: &Signed<Withdraw>) -> Result<Updates, TxError> {
        let tx = &w.tx;
        check_amount("amount", tx.amount)?;
        check_amount("fee", tx.fee)?;
        let mut updates = Overlay::new(self);
        updates.authorize(tx.from, tx.nonce, withdraw_message(ctx.chain_id, tx), &w.signature)?;
        updates.debit(tx.from, tx.amount, tx.fee)?;
        updates.credit(ctx.fee_account, tx.fee)?;
        Ok(updates.into_changes())
    }
}

fn check_amount(field: &'static str, value: u64) -> Result<(), TxError> {
    if value > MAX_BALANCE { Err(TxError::AmountOutOfRange { field, value }) } else { Ok(()) }
}

/// The account changes of one transaction, in the order they apply.
type Updates = Vec<(AccountId, Account)>;

/// A transaction's view of the state: reads see its own earlier writes, and nothing reaches the
/// state until every rule has passed.
struct Overlay<'a> {
    state: &'a State,
    changes: BTreeMap<AccountId, Account>,
    order: Vec<AccountId>,
}

impl<'a> Overlay<'a> {
    fn new(state: &'a State) -> Self {
        Self { state, changes: BTreeMap::new(), order: Vec::new() }
    }

    fn get(&self, id: AccountId) -> Result<Option<Account>, TxError> {
        match self.changes.get(&id) {
            Some(a) => Ok(Some(*a)),
            None => self.state.lookup(id),
        }
    }

    fn existing(&self, id: AccountId) -> Result<Account, TxError> {
        self.get(id)?.ok_or(TxError::UnknownAccount(id))
    }

    fn put(&mut self, id: AccountId, account: Account) {
        if self.changes.insert(id, account).is_none() {
            self.order.push(id);
        }
    }

    /// Checks the sender's nonce and signature, and spends the nonce.
    fn authorize(&mut self, id: AccountId, nonce: u32, message: Digest, signature: &via_schemas::primitives::Signature) -> Result<(), TxError> {
        let mut account = self.existing(id)?;
        if nonce != account.nonce {
            return Err(TxError::NonceMismatch { account: id, expected: account.nonce, got: nonce });
        }
        schnorr::verify(&account.public_key, message, signature).map_err(|source| TxError::InvalidSignature { account: id, source })?;
        account.nonce = account.nonce.checked_add(1).ok_or(TxError::NonceOverflow(id))?;
        self.put(id, account);
        Ok(())
    }

    fn debit(&mut self, id: AccountId, amount: u64, fee: u64) -> Result<(), TxError> {
        let mut account = self.existing(id)?;
        let needed = u128::from(amount) + u128::from(fee);
        if u128::from(account.balance) < needed {
            return Err(TxError::InsufficientBalance { account: id, balance: account.balance, needed });
        }
        account.balance -= amount + fee;
        self.put(id, account);
        Ok(())
    }

    fn credit(&mut self, id: AccountId, amount: u64) -> Result<(), TxError> {
        let mut account = self.existing(id)?;
        let balance = account.balance;
        account.balance = balance
            .checked_add(amount)
            .filter(|b| *b <= MAX_BALANCE)
            .ok_or(TxError::BalanceOverflow { account: id, balance, amount })?;
        self.put(id, account);
        Ok(())
    }

    fn into_changes(mut self) -> Updates {
        self.order.iter().map(|id| (*id, self.changes.remove(id).expect("every ordered id was put"))).collect()
    }
}
