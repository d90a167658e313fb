//! Every rule of the state transition function: a valid case is accepted and its invalid twin is
//! rejected with the rule's error, leaving the state untouched.

use plonky2::field::types::Field;
use via_l2::batch::{BatchHeader, batch_commitment, execute_batch, touched_accounts};
use via_l2::hash::F;
use via_l2::schnorr::{SecretKey, SignatureError};
use via_l2::state::{ExecutionContext, MAX_BALANCE, State, TxError, WitnessError};
use via_l2::tx::{transfer_message, withdraw_message};
use via_schemas::l2::*;
use via_schemas::primitives::{Bytes32, Hash};
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

const CHAIN: L2ChainId = L2ChainId(270);
const FEES: AccountId = AccountId(0);
const ALICE: AccountId = AccountId(1);
const BOB: AccountId = AccountId(2);
const NOBODY: AccountId = AccountId(9);

fn key(i: u64) -> SecretKey {
    SecretKey::derive(&[F::from_canonical_u64(i)])
}

fn ctx() -> ExecutionContext {
    ExecutionContext { chain_id: CHAIN, fee_account: FEES }
}

fn deposit(to: AccountId, key_index: u64, amount: u64) -> L2Transaction {
    L2Transaction::Deposit(Deposit { l1_tx_id: Bytes32([7; 32]), to, public_key: key(key_index).public_key(), amount })
}

fn transfer_by(signer: u64, from: AccountId, to: AccountId, amount: u64, fee: u64, nonce: u32) -> L2Transaction {
    let tx = Transfer { from, to, amount, fee, nonce };
    L2Transaction::Transfer(Signed { tx, signature: key(signer).sign(transfer_message(CHAIN, &tx)) })
}

fn transfer(from: AccountId, to: AccountId, amount: u64, fee: u64, nonce: u32) -> L2Transaction {
    transfer_by(u64::from(from.0), from, to, amount, fee, nonce)
}

fn withdraw(from: AccountId, amount: u64, fee: u64, nonce: u32) -> L2Transaction {
    let tx = Withdraw { from, to_l1: Bytes32([0xb7; 32]), amount, fee, nonce };
    L2Transaction::Withdraw(Signed { tx, signature: key(u64::from(from.0)).sign(withdraw_message(CHAIN, &tx)) })
}

/// Fee account 0 and Alice (1) with 1000 and Bob (2) with 10, each keyed by its id.
fn state() -> State {
    let mut s = State::new();
    for tx in [deposit(FEES, 0, 1), deposit(ALICE, 1, 1000), deposit(BOB, 2, 10)] {
        s.apply(&ctx(), &tx).unwrap();
    }
    s
}

fn balance(s: &State, id: AccountId) -> u64 {
    s.account(id).unwrap().balance
}

/// Applies `tx`, expects `err`, and checks that nothing changed.
fn rejects(mut s: State, tx: L2Transaction, err: TxError) {
    let root = s.root();
    assert_eq!(s.apply(&ctx(), &tx), Err(err));
    assert_eq!(s.root(), root, "a rejected transaction must leave the state untouched");
}

#[test]
fn deposit_creates_and_credits_accounts() {
    let mut s = state();
    assert_eq!(s.account(BOB), Some(&Account { public_key: key(2).public_key(), balance: 10, nonce: 0 }));
    s.apply(&ctx(), &deposit(BOB, 2, 5)).unwrap();
    assert_eq!(balance(&s, BOB), 15);
}

#[test]
fn deposit_with_invalid_public_key_is_rejected() {
    let mut tx = deposit(NOBODY, 9, 5);
    if let L2Transaction::Deposit(d) = &mut tx {
        d.public_key = Default::default(); // the neutral element: nobody could ever sign
    }
    rejects(state(), tx, TxError::InvalidPublicKey(NOBODY));
}

#[test]
fn deposit_with_another_key_is_rejected() {
    rejects(state(), deposit(BOB, 3, 5), TxError::PublicKeyMismatch(BOB));
}

#[test]
fn deposit_overflow_is_rejected() {
    let mut s = state();
    s.apply(&ctx(), &deposit(BOB, 2, MAX_BALANCE - 10)).unwrap();
    assert_eq!(balance(&s, BOB), MAX_BALANCE);
    rejects(s, deposit(BOB, 2, 1), TxError::BalanceOverflow { account: BOB, balance: MAX_BALANCE, amount: 1 });
    rejects(state(), deposit(BOB, 2, MAX_BALANCE + 1), TxError::AmountOutOfRange { field: "amount", value: MAX_BALANCE + 1 });
}

#[test]
fn transfer_moves_amount_and_fee() {
    let mut s = state();
    s.apply(&ctx(), &transfer(ALICE, BOB, 100, 3, 0)).unwrap();
    assert_eq!((balance(&s, ALICE), balance(&s, BOB), balance(&s, FEES)), (897, 110, 4));
    assert_eq!(s.account(ALICE).unwrap().nonce, 1);
    assert_eq!(s.account(BOB).unwrap().nonce, 0);
}

#[test]
fn replayed_nonce_is_rejected() {
    let mut s = state();
    let tx = transfer(ALICE, BOB, 100, 3, 0);
    s.apply(&ctx(), &tx).unwrap();
    rejects(s.clone(), tx, TxError::NonceMismatch { account: ALICE, expected: 1, got: 0 });
    rejects(s, transfer(ALICE, BOB, 1, 0, 2), TxError::NonceMismatch { account: ALICE, expected: 1, got: 2 });
}

#[test]
fn spending_the_whole_balance_is_allowed_one_more_is_not() {
    let mut s = state();
    s.apply(&ctx(), &transfer(ALICE, BOB, 990, 10, 0)).unwrap();
    assert_eq!(balance(&s, ALICE), 0);
    rejects(state(), transfer(ALICE, BOB, 991, 10, 0), TxError::InsufficientBalance { account: ALICE, balance: 1000, needed: 1001 });
}

#[test]
fn amounts_and_fees_above_the_maximum_are_rejected() {
    rejects(state(), transfer(ALICE, BOB, 1, MAX_BALANCE + 1, 0), TxError::AmountOutOfRange { field: "fee", value: MAX_BALANCE + 1 });
    rejects(state(), transfer(ALICE, BOB, u64::MAX, 0, 0), TxError::AmountOutOfRange { field: "amount", value: u64::MAX });
}

#[test]
fn transfer_credit_overflow_is_rejected() {
    let mut s = state();
    s.apply(&ctx(), &deposit(BOB, 2, MAX_BALANCE - 10)).unwrap();
    rejects(s, transfer(ALICE, BOB, 1, 0, 0), TxError::BalanceOverflow { account: BOB, balance: MAX_BALANCE, amount: 1 });
}

#[test]
fn fee_account_overflow_is_rejected() {
    let mut s = state();
    s.apply(&ctx(), &deposit(FEES, 0, MAX_BALANCE - 1)).unwrap();
    s.apply(&ctx(), &transfer(ALICE, BOB, 1, 0, 0)).unwrap();
    rejects(s, transfer(ALICE, BOB, 1, 1, 1), TxError::BalanceOverflow { account: FEES, balance: MAX_BALANCE, amount: 1 });
}

#[test]
fn unknown_accounts_are_rejected() {
    rejects(state(), transfer(ALICE, NOBODY, 1, 0, 0), TxError::UnknownAccount(NOBODY));
    rejects(state(), transfer_by(9, NOBODY, ALICE, 1, 0, 0), TxError::UnknownAccount(NOBODY));
    rejects(state(), withdraw(NOBODY, 1, 0, 0), TxError::UnknownAccount(NOBODY));
}

#[test]
fn transfer_to_self_is_rejected() {
    rejects(state(), transfer(ALICE, ALICE, 1, 0, 0), TxError::TransferToSelf(ALICE));
}

#[test]
fn signature_by_another_key_is_rejected() {
    rejects(
        state(),
        transfer_by(2, ALICE, BOB, 100, 0, 0),
        TxError::InvalidSignature { account: ALICE, source: SignatureError::Mismatch },
    );
}

#[test]
fn tampered_transaction_is_rejected() {
    let mut tx = transfer(ALICE, BOB, 100, 0, 0);
    if let L2Transaction::Transfer(t) = &mut tx {
        t.tx.amount = 999;
    }
    rejects(state(), tx, TxError::InvalidSignature { account: ALICE, source: SignatureError::Mismatch });
    let mut tx = withdraw(ALICE, 100, 0, 0);
    if let L2Transaction::Withdraw(w) = &mut tx {
        w.tx.to_l1 = Bytes32([1; 32]);
    }
    rejects(state(), tx, TxError::InvalidSignature { account: ALICE, source: SignatureError::Mismatch });
}

#[test]
fn signature_from_another_chain_is_rejected() {
    let tx = Transfer { from: ALICE, to: BOB, amount: 1, fee: 0, nonce: 0 };
    let signature = key(1).sign(transfer_message(L2ChainId(271), &tx));
    rejects(
        state(),
        L2Transaction::Transfer(Signed { tx, signature }),
        TxError::InvalidSignature { account: ALICE, source: SignatureError::Mismatch },
    );
}

#[test]
fn withdraw_debits_and_pays_fee() {
    let mut s = state();
    s.apply(&ctx(), &withdraw(ALICE, 500, 5, 0)).unwrap();
    assert_eq!((balance(&s, ALICE), balance(&s, FEES)), (495, 6));
    rejects(s, withdraw(ALICE, 495, 1, 1), TxError::InsufficientBalance { account: ALICE, balance: 495, needed: 496 });
}

#[test]
fn nonce_overflow_is_rejected() {
    let mut s = State::from_accounts([
        (FEES, Account { public_key: key(0).public_key(), balance: 0, nonce: 0 }),
        (ALICE, Account { public_key: key(1).public_key(), balance: 10, nonce: u32::MAX - 1 }),
        (BOB, Account { public_key: key(2).public_key(), balance: 0, nonce: 0 }),
    ]);
    s.apply(&ctx(), &transfer(ALICE, BOB, 1, 0, u32::MAX - 1)).unwrap();
    rejects(s, transfer(ALICE, BOB, 1, 0, u32::MAX), TxError::NonceOverflow(ALICE));
}

fn header() -> BatchHeader {
    BatchHeader {
        l1_batch_number: L1BatchNumber(5),
        chain_id: CHAIN,
        fee_account: FEES,
        protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
    }
}

fn batch_txs() -> Vec<L2Transaction> {
    vec![deposit(AccountId(3), 3, 50), transfer(ALICE, BOB, 100, 2, 0), withdraw(BOB, 20, 1, 0), transfer(ALICE, AccountId(3), 1, 0, 1)]
}

#[test]
fn witness_state_replays_the_batch_like_the_full_state() {
    let mut full = state();
    let txs = batch_txs();
    let touched = touched_accounts(FEES, &txs);
    assert_eq!(touched.iter().copied().collect::<Vec<_>>(), vec![FEES, ALICE, BOB, AccountId(3)]);
    let witnesses: Vec<_> = touched.iter().map(|id| full.witness(*id)).collect();
    let mut partial = State::from_witness(full.root(), &witnesses).unwrap();
    assert_eq!(partial.root(), full.root());

    let a = execute_batch(&mut full, &header(), &txs).unwrap();
    let b = execute_batch(&mut partial, &header(), &txs).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.pubdata.len(), 4 * 64);
    assert_ne!(a.public_data.priority_ops_hash, Hash::ZERO);
    assert_ne!(a.public_data.withdrawals_hash, Hash::ZERO);
    assert_eq!(partial.root(), full.root());

    // An account outside the witness cannot be conjured up as empty.
    let mut partial = State::from_witness(state().root(), &witnesses[..2]).unwrap();
    assert_eq!(partial.apply(&ctx(), &transfer(ALICE, BOB, 1, 0, 0)), Err(TxError::NotInWitness(BOB)));
}

#[test]
fn witness_with_a_wrong_path_is_rejected() {
    let s = state();
    let mut w = s.witness(ALICE);
    w.merkle_path[3] = Hash::from_limbs([1, 2, 3, 4]).unwrap();
    assert!(matches!(State::from_witness(s.root(), &[w.clone()]), Err(WitnessError::RootMismatch { account: ALICE, .. })));
    let mut lying = s.witness(BOB);
    lying.account.as_mut().unwrap().balance = 1_000_000;
    assert!(matches!(State::from_witness(s.root(), &[lying]), Err(WitnessError::RootMismatch { account: BOB, .. })));
    let dup = vec![s.witness(ALICE), s.witness(ALICE)];
    assert_eq!(State::from_witness(s.root(), &dup).err(), Some(WitnessError::Duplicate(ALICE)));
}

#[test]
fn batch_error_names_the_transaction() {
    let mut txs = batch_txs();
    txs.push(transfer(ALICE, BOB, 1, 0, 0)); // nonce 0 again
    let err = execute_batch(&mut state(), &header(), &txs).unwrap_err();
    assert_eq!(err.index, 4);
    assert_eq!(err.to_string(), "transaction 4: account #1 expects nonce 2, the transaction carries 0");
}

#[test]
fn commitment_binds_every_public_field() {
    let exec = execute_batch(&mut state(), &header(), &batch_txs()).unwrap();
    let vk = Hash::from_limbs([9, 9, 9, 9]).unwrap();
    let base = batch_commitment(&exec.public_data, vk);
    let h = Hash::from_limbs([1, 1, 1, 1]).unwrap();
    let p = exec.public_data;
    let variants = [
        BatchPublicData { l1_batch_number: L1BatchNumber(6), ..p },
        BatchPublicData { chain_id: L2ChainId(1), ..p },
        BatchPublicData { fee_account: AccountId(1), ..p },
        BatchPublicData { previous_state_root: h, ..p },
        BatchPublicData { new_state_root: h, ..p },
        BatchPublicData { priority_ops_hash: h, ..p },
        BatchPublicData { withdrawals_hash: h, ..p },
        BatchPublicData { pubdata_sha256: Bytes32([1; 32]), ..p },
        BatchPublicData { protocol_version: ProtocolSemanticVersion { minor: 1, patch: 1 }, ..p },
    ];
    for v in variants {
        assert_ne!(batch_commitment(&v, vk), base, "{v:?}");
    }
    assert_ne!(batch_commitment(&p, h), base);
    assert_eq!(batch_commitment(&p, vk), base);
}
