//! Batches for circuit tests, built with the L2 model directly.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use plonky2::field::types::Field;
use via_circuits::basic::CircuitId;
use via_circuits::prover::BasicCircuit;
use via_l2::batch::touched_accounts;
use via_l2::hash::F;
use via_l2::schnorr::SecretKey;
use via_l2::state::{ExecutionContext, State};
use via_l2::tx::{transfer_message, withdraw_message};
use via_schemas::WireVersion;
use via_schemas::config::BasicCircuitsConfig;
use via_schemas::l2::*;
use via_schemas::primitives::Bytes32;
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

pub const CHAIN: L2ChainId = L2ChainId(270);
pub const FEES: AccountId = AccountId(0);
pub const CONFIG: BasicCircuitsConfig = BasicCircuitsConfig::SMALL;

/// Every basic circuit at the small shape, built once per test binary.
pub static CIRCUITS: LazyLock<BTreeMap<CircuitId, BasicCircuit>> =
    LazyLock::new(|| CircuitId::ALL.into_iter().map(|id| (id, BasicCircuit::build(id, &CONFIG))).collect());

pub fn key(i: u32) -> SecretKey {
    SecretKey::derive(&[F::from_canonical_u32(i)])
}

pub fn deposit(to: u32, amount: u64) -> L2Transaction {
    L2Transaction::Deposit(Deposit { l1_tx_id: Bytes32([to as u8; 32]), to: AccountId(to), public_key: key(to).public_key(), amount })
}

pub fn transfer(from: u32, to: u32, amount: u64, fee: u64, nonce: u32) -> L2Transaction {
    let tx = Transfer { from: AccountId(from), to: AccountId(to), amount, fee, nonce };
    L2Transaction::Transfer(Signed { tx, signature: key(from).sign(transfer_message(CHAIN, &tx)) })
}

pub fn withdraw(from: u32, amount: u64, fee: u64, nonce: u32) -> L2Transaction {
    let tx = Withdraw { from: AccountId(from), to_l1: Bytes32([0x5a; 32]), amount, fee, nonce };
    L2Transaction::Withdraw(Signed { tx, signature: key(from).sign(withdraw_message(CHAIN, &tx)) })
}

/// The fee account (0) and accounts 1 and 2, funded.
pub fn genesis() -> State {
    let mut s = State::from_accounts([(FEES, Account { public_key: key(0).public_key(), balance: 0, nonce: 0 })]);
    let ctx = ExecutionContext { chain_id: CHAIN, fee_account: FEES };
    for tx in [deposit(1, 1_000_000), deposit(2, 500)] {
        s.apply(&ctx, &tx).unwrap();
    }
    s
}

/// The witness input of a batch of `txs` on top of `state`, as the core would serve it.
pub fn witness_input(state: &State, txs: Vec<L2Transaction>) -> WitnessInputData {
    let accounts = touched_accounts(FEES, &txs).into_iter().map(|id| state.witness(id)).collect();
    WitnessInputData {
        version: WireVersion::CURRENT,
        l1_batch_number: L1BatchNumber(7),
        chain_id: CHAIN,
        protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
        fee_account: FEES,
        previous_state_root: state.root(),
        transactions: txs,
        accounts,
    }
}

/// A batch with every kind of transaction, a new account, and the fee account as a recipient.
pub fn mixed_batch() -> WitnessInputData {
    witness_input(
        &genesis(),
        vec![
            deposit(3, 7_000),
            transfer(1, 2, 1_000, 10, 0),
            withdraw(2, 300, 5, 0),
            transfer(1, 0, 50, 1, 1),
            transfer(3, 1, 6_000, 0, 0),
        ],
    )
}
