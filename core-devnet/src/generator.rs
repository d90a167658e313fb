//! The devnet's deterministic transaction stream: the same seed and state always yield the same
//! batch, and every transaction it yields is valid (it is checked against the state transition
//! function as it is made).

use plonky2::field::types::Field;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use via_l2::batch::BatchHeader;
use via_l2::hash::F;
use via_l2::schnorr::SecretKey;
use via_l2::state::{ExecutionContext, State, TxError};
use via_l2::tx::{transfer_message, withdraw_message};
use via_schemas::l2::{AccountId, Deposit, L2Transaction, Signed, Transfer, Withdraw};
use via_schemas::primitives::Bytes32;

/// The signing key of a devnet account, derived from the devnet's seed.
pub fn account_key(seed: u64, account: AccountId) -> SecretKey {
    SecretKey::derive(&[
        F::from_canonical_u32(seed as u32),
        F::from_canonical_u32((seed >> 32) as u32),
        F::from_canonical_u32(account.0),
    ])
}

/// Makes batches of valid transactions for the devnet's user accounts.
#[derive(Clone, Debug)]
pub struct TxGenerator {
    seed: u64,
    users: Vec<AccountId>,
    /// Keys of `users`, in the same order (signing dominates generation; derive each key once).
    keys: Vec<SecretKey>,
}

impl TxGenerator {
    /// A generator for `user_accounts` accounts: the lowest ids other than the fee account.
    pub fn new(seed: u64, user_accounts: u32, fee_account: AccountId) -> Self {
        let users: Vec<AccountId> = (0..).map(AccountId).filter(|id| *id != fee_account).take(user_accounts as usize).collect();
        let keys = users.iter().map(|id| account_key(seed, *id)).collect();
        Self { seed, users, keys }
    }

    /// `count` transactions for the batch `header` names, valid in order against `state`.
    /// Accounts open with deposits first; then deposits, transfers and withdrawals mix.
    pub fn batch(&self, state: &State, header: &BatchHeader, count: usize) -> Result<Vec<L2Transaction>, TxError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ u64::from(header.l1_batch_number.0).rotate_left(32));
        let ctx = ExecutionContext { chain_id: header.chain_id, fee_account: header.fee_account };
        let mut scratch = state.clone();
        let mut txs = Vec::with_capacity(count);
        for i in 0..count {
            let tx = self.next(&scratch, header, &mut rng, i);
            scratch.apply(&ctx, &tx)?;
            txs.push(tx);
        }
        Ok(txs)
    }

    fn next(&self, state: &State, header: &BatchHeader, rng: &mut ChaCha8Rng, index: usize) -> L2Transaction {
        if let Some(user) = (0..self.users.len()).find(|u| state.account(self.users[*u]).is_none()) {
            return self.deposit(user, header, rng, index);
        }
        // Users that can pay at least 2 satoshis (an amount and a fee).
        let payers: Vec<usize> = (0..self.users.len()).filter(|u| state.account(self.users[*u]).is_some_and(|a| a.balance >= 2)).collect();
        let roll = rng.gen_range(0..100);
        if payers.is_empty() || roll < 15 || (self.users.len() < 2 && roll < 80) {
            let user = rng.gen_range(0..self.users.len());
            return self.deposit(user, header, rng, index);
        }
        let payer = payers[rng.gen_range(0..payers.len())];
        let from = self.users[payer];
        let account = state.account(from).expect("payers exist");
        let fee = rng.gen_range(1..=account.balance.min(100) / 2);
        let amount = rng.gen_range(1..=(account.balance - fee).div_ceil(4));
        if roll < 80 {
            let mut to = rng.gen_range(0..self.users.len() - 1);
            if to >= payer {
                to += 1;
            }
            let tx = Transfer { from, to: self.users[to], amount, fee, nonce: account.nonce };
            let signature = self.keys[payer].sign(transfer_message(header.chain_id, &tx));
            L2Transaction::Transfer(Signed { tx, signature })
        } else {
            let tx = Withdraw { from, to_l1: Bytes32(rng.r#gen()), amount, fee, nonce: account.nonce };
            let signature = self.keys[payer].sign(withdraw_message(header.chain_id, &tx));
            L2Transaction::Withdraw(Signed { tx, signature })
        }
    }

    fn deposit(&self, user: usize, header: &BatchHeader, rng: &mut ChaCha8Rng, index: usize) -> L2Transaction {
        // A recognisable stand-in for the Bitcoin txid: batch number and position, then noise.
        let mut l1_tx_id: [u8; 32] = rng.r#gen();
        l1_tx_id[..4].copy_from_slice(&header.l1_batch_number.0.to_be_bytes());
        l1_tx_id[4..8].copy_from_slice(&(index as u32).to_be_bytes());
        L2Transaction::Deposit(Deposit {
            l1_tx_id: Bytes32(l1_tx_id),
            to: self.users[user],
            public_key: self.keys[user].public_key(),
            amount: rng.gen_range(10_000..1_000_000),
        })
    }
}

#[cfg(test)]
mod tests {
    use via_l2::batch::execute_batch;
    use via_schemas::l2::{Account, L2ChainId};
    use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

    use super::*;

    fn header(n: u32) -> BatchHeader {
        BatchHeader {
            l1_batch_number: L1BatchNumber(n),
            chain_id: L2ChainId(1),
            fee_account: AccountId(0),
            protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
        }
    }

    #[test]
    fn stream_is_deterministic_valid_and_mixed() {
        let generator = TxGenerator::new(7, 4, AccountId(0));
        let genesis = State::from_accounts([(AccountId(0), Account { public_key: account_key(7, AccountId(0)).public_key(), balance: 0, nonce: 0 })]);
        let mut state = genesis.clone();
        let mut kinds = [0usize; 3];
        for n in 1..=6 {
            let txs = generator.batch(&state, &header(n), 8).unwrap();
            assert_eq!(txs, generator.batch(&state, &header(n), 8).unwrap(), "same seed, same batch");
            for tx in &txs {
                kinds[match tx {
                    L2Transaction::Deposit(_) => 0,
                    L2Transaction::Transfer(_) => 1,
                    L2Transaction::Withdraw(_) => 2,
                }] += 1;
            }
            execute_batch(&mut state, &header(n), &txs).unwrap();
        }
        assert!(kinds.iter().all(|k| *k > 0), "every kind appears: {kinds:?}");
        let other = TxGenerator::new(8, 4, AccountId(0)).batch(&genesis, &header(1), 8).unwrap();
        assert_ne!(other, generator.batch(&genesis, &header(1), 8).unwrap(), "another seed, another stream");
    }
}
