//! TxExecution (circuit id 1), the "main VM": the rules of every transaction kind, for a fixed
//! number of transaction slots per instance.
//!
//! Each slot touches up to three accounts ("lanes": the first account, the transfer's recipient,
//! the fee account) and emits one access-log item per lane it uses. The accounts' previous values
//! are witnesses here; StorageApplication checks them against the state tree, so a lie about an
//! account fails there. A padded slot emits nothing and changes nothing.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use via_l2::tx::TxKind;

use super::{items, set_all};
use crate::config::{D, F};
use crate::gadgets::curve;
use crate::gadgets::fp5::Fp5Target;
use crate::gadgets::queue::push_if;
use crate::gadgets::range::split_words_64;

/// `chain_id || fee_account`.
pub const CONTEXT_LEN: usize = 2;
/// The five queues this circuit produces, in this order.
pub const QUEUES: [&str; 5] = ["access log", "pubdata", "signature requests", "priority operations", "withdrawals"];
/// Five queue states of four elements.
pub const STATE_LEN: usize = 20;

/// An account as a lane sees it before the slot writes to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// False for an empty leaf (the other fields are then zero).
    pub exists: bool,
    pub public_key: [u64; 5],
    pub balance: u64,
    pub nonce: u32,
}

/// One transaction slot; all zero for padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSlot {
    /// 0 for padding, else a [`TxKind`] tag.
    pub kind: u8,
    /// The deposit's recipient, or the sender.
    pub account_a: u32,
    /// The transfer's recipient.
    pub account_b: u32,
    pub amount: u64,
    pub fee: u64,
    pub nonce: u32,
    /// The deposit's public key.
    pub public_key: [u64; 5],
    pub l1_tx_id: [u32; 8],
    pub to_l1: [u32; 8],
    pub signature_r: [u64; 5],
    /// The signature's `s`, ten 32-bit words, most significant first.
    pub signature_s: [u32; 10],
    /// Lanes before the slot: first account, recipient, fee account.
    pub lanes: [AccountSnapshot; 3],
}

/// The witness of one TxExecution instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxExecutionWitness {
    pub chain_id: u32,
    pub fee_account: u32,
    /// The five queue states before the instance.
    pub state_in: [[u64; 4]; 5],
    /// Exactly as many as the instance holds.
    pub slots: Vec<TxSlot>,
}

struct LaneTargets {
    exists: BoolTarget,
    public_key: [Target; 5],
    balance: Target,
    nonce: Target,
}

struct SlotTargets {
    deposit: BoolTarget,
    transfer: BoolTarget,
    withdraw: BoolTarget,
    account_a: Target,
    account_b: Target,
    amount: Target,
    fee: Target,
    nonce: Target,
    public_key: Fp5Target,
    l1_tx_id: [Target; 8],
    to_l1: [Target; 8],
    signature_r: [Target; 5],
    signature_s: [Target; 10],
    lanes: [LaneTargets; 3],
}

/// The instance's witness targets.
pub struct TxExecutionTargets {
    chain_id: Target,
    fee_account: Target,
    state_in: [HashOutTarget; 5],
    slots: Vec<SlotTargets>,
}

#[cfg(feature = "test-utils")]
impl TxExecutionTargets {
    /// The deposit, transfer and withdraw flags of a slot, for tests that write wires the
    /// witness type cannot express (two kinds in one slot).
    pub fn kind_flags(&self, slot: usize) -> [BoolTarget; 3] {
        let s = &self.slots[slot];
        [s.deposit, s.transfer, s.withdraw]
    }
}

fn leaf(builder: &mut CircuitBuilder<F, D>, public_key: &[Target; 5], balance: Target, nonce: Target) -> HashOutTarget {
    let mut input = public_key.to_vec();
    input.extend([balance, nonce]);
    builder.hash_n_to_hash_no_pad::<PoseidonHash>(input)
}

/// The leaf of a lane's account: `H(pk || balance || nonce)`, or zero for an empty leaf.
fn lane_leaf(builder: &mut CircuitBuilder<F, D>, lane: &LaneTargets) -> HashOutTarget {
    let h = leaf(builder, &lane.public_key, lane.balance, lane.nonce);
    HashOutTarget { elements: h.elements.map(|e| builder.mul(lane.exists.target, e)) }
}

/// Asserts `value < 2^bits` where `active` (a zero is checked where not).
fn range_check_if(builder: &mut CircuitBuilder<F, D>, active: Target, value: Target, bits: usize) {
    let gated = builder.mul(active, value);
    builder.range_check(gated, bits);
}

fn and(builder: &mut CircuitBuilder<F, D>, a: Target, b: Target) -> BoolTarget {
    BoolTarget::new_unsafe(builder.mul(a, b))
}

fn not(builder: &mut CircuitBuilder<F, D>, a: BoolTarget) -> BoolTarget {
    builder.not(a)
}

/// Lays out the circuit for `capacity` slots.
pub fn define(builder: &mut CircuitBuilder<F, D>, capacity: usize) -> TxExecutionTargets {
    let chain_id = builder.add_virtual_target();
    let fee_account = builder.add_virtual_target();
    builder.register_public_inputs(&[chain_id, fee_account]);
    builder.range_check(fee_account, 32);
    let state_in: [HashOutTarget; 5] = std::array::from_fn(|_| builder.add_virtual_hash());
    for s in &state_in {
        builder.register_public_inputs(&s.elements);
    }
    let [mut access, mut pubdata, mut sigs, mut prio, mut withdrawals] = state_in;
    let one = builder.one();
    let zero = builder.zero();

    let mut slots = Vec::with_capacity(capacity);
    for _ in 0..capacity {
        let lanes: [LaneTargets; 3] = std::array::from_fn(|_| LaneTargets {
            exists: builder.add_virtual_bool_target_safe(),
            public_key: builder.add_virtual_target_arr(),
            balance: builder.add_virtual_target(),
            nonce: builder.add_virtual_target(),
        });
        let t = SlotTargets {
            deposit: builder.add_virtual_bool_target_safe(),
            transfer: builder.add_virtual_bool_target_safe(),
            withdraw: builder.add_virtual_bool_target_safe(),
            account_a: builder.add_virtual_target(),
            account_b: builder.add_virtual_target(),
            amount: builder.add_virtual_target(),
            fee: builder.add_virtual_target(),
            nonce: builder.add_virtual_target(),
            public_key: Fp5Target::new_virtual(builder),
            l1_tx_id: builder.add_virtual_target_arr(),
            to_l1: builder.add_virtual_target_arr(),
            signature_r: builder.add_virtual_target_arr(),
            signature_s: builder.add_virtual_target_arr(),
            lanes,
        };
        let (dep, tra, wd) = (t.deposit, t.transfer, t.withdraw);
        // At most one kind: `any` is itself a bit.
        let any = builder.add_many([dep.target, tra.target, wd.target]);
        builder.assert_bool(BoolTarget::new_unsafe(any));
        let spends = builder.add(tra.target, wd.target);
        let [lane_a, lane_b, lane_f] = &t.lanes;

        // Field ranges: ids are tree indices, amounts and fees at most MAX_BALANCE, nonces 32 bits.
        builder.range_check(t.account_a, 32);
        builder.range_check(t.account_b, 32);
        builder.range_check(t.nonce, 32);
        let amount_bits = builder.split_le(t.amount, 60);
        let fee_bits = builder.split_le(t.fee, 60);
        for w in t.to_l1 {
            builder.range_check(w, 32);
        }
        let amount_words = [builder.le_sum(amount_bits[32..].iter()), builder.le_sum(amount_bits[..32].iter())];
        let fee_words = [builder.le_sum(fee_bits[32..].iter()), builder.le_sum(fee_bits[..32].iter())];

        // Lane A: the deposit's recipient, or the sender.
        let exists_a = lane_a.exists;
        let creating = {
            let absent = not(builder, exists_a);
            and(builder, dep.target, absent.target)
        };
        let deposit_to_existing = and(builder, dep.target, exists_a.target);
        // A new account's key must be a valid, non-neutral point; an existing one's must match.
        curve::decode(builder, t.public_key, creating);
        for i in 0..5 {
            builder.conditional_assert_eq(deposit_to_existing.target, t.public_key.0[i], lane_a.public_key[i]);
        }
        // Spending: the sender exists, the nonce is the account's, and the next nonce fits.
        builder.conditional_assert_eq(spends, exists_a.target, one);
        builder.conditional_assert_eq(spends, t.nonce, lane_a.nonce);
        let kept_balance = builder.mul(exists_a.target, lane_a.balance);
        let credited = builder.add(kept_balance, t.amount);
        let debited = {
            let after_amount = builder.sub(lane_a.balance, t.amount);
            builder.sub(after_amount, t.fee)
        };
        let balance_a = builder.select(dep, credited, debited);
        range_check_if(builder, any, balance_a, 60);
        let kept_nonce = builder.mul(exists_a.target, lane_a.nonce);
        let next_nonce = builder.add(lane_a.nonce, one);
        let nonce_a = builder.select(dep, kept_nonce, next_nonce);
        range_check_if(builder, spends, nonce_a, 32);
        let key_a: [Target; 5] = std::array::from_fn(|i| builder.select(dep, t.public_key.0[i], lane_a.public_key[i]));
        let old_a = lane_leaf(builder, lane_a);
        let new_a = leaf(builder, &key_a, balance_a, nonce_a);
        let any_bit = BoolTarget::new_unsafe(any);
        access = push_if(builder, access, &items::access_target(t.account_a, old_a, new_a), any_bit);

        // Lane B: the transfer's recipient, another existing account.
        let same = builder.is_equal(t.account_a, t.account_b);
        builder.conditional_assert_eq(tra.target, same.target, zero);
        builder.conditional_assert_eq(tra.target, lane_b.exists.target, one);
        let balance_b = builder.add(lane_b.balance, t.amount);
        range_check_if(builder, tra.target, balance_b, 60);
        let old_b = lane_leaf(builder, lane_b);
        let new_b = leaf(builder, &lane_b.public_key, balance_b, lane_b.nonce);
        access = push_if(builder, access, &items::access_target(t.account_b, old_b, new_b), tra);

        // Lane F: the fee account collects the fee.
        builder.conditional_assert_eq(spends, lane_f.exists.target, one);
        let balance_f = builder.add(lane_f.balance, t.fee);
        range_check_if(builder, spends, balance_f, 60);
        let old_f = lane_leaf(builder, lane_f);
        let new_f = leaf(builder, &lane_f.public_key, balance_f, lane_f.nonce);
        let spends_bit = BoolTarget::new_unsafe(spends);
        access = push_if(builder, access, &items::access_target(fee_account, old_f, new_f), spends_bit);

        // The signed message and the request for SignatureVerifier, under the sender's stored key.
        let tag = |builder: &mut CircuitBuilder<F, D>, k: TxKind| builder.constant(F::from_canonical_u8(k as u8));
        let transfer_tag = tag(builder, TxKind::Transfer);
        let withdraw_tag = tag(builder, TxKind::Withdraw);
        let transfer_message = builder.hash_n_to_hash_no_pad::<PoseidonHash>(vec![
            transfer_tag,
            chain_id,
            t.account_a,
            t.account_b,
            t.amount,
            t.fee,
            t.nonce,
        ]);
        let mut withdraw_input = vec![withdraw_tag, chain_id, t.account_a, t.amount, t.fee, t.nonce];
        withdraw_input.extend(t.to_l1);
        let withdraw_message = builder.hash_n_to_hash_no_pad::<PoseidonHash>(withdraw_input);
        let message: [Target; 4] = std::array::from_fn(|i| builder.select(tra, transfer_message.elements[i], withdraw_message.elements[i]));
        let mut request = lane_a.public_key.to_vec();
        request.extend(message);
        request.extend(t.signature_r);
        request.extend(t.signature_s);
        sigs = push_if(builder, sigs, &request, spends_bit);

        // Priority operations (deposits) and withdrawals, as the core hashes them.
        let deposit_tag = tag(builder, TxKind::Deposit);
        let mut prio_item = vec![deposit_tag];
        prio_item.extend(t.l1_tx_id);
        prio_item.push(t.account_a);
        prio_item.extend(t.public_key.0);
        prio_item.push(t.amount);
        prio = push_if(builder, prio, &prio_item, dep);
        let mut withdrawal_item = vec![t.account_a];
        withdrawal_item.extend(t.to_l1);
        withdrawal_item.push(t.amount);
        withdrawals = push_if(builder, withdrawals, &withdrawal_item, wd);

        // The pubdata record: sixteen words, the kind's layout selected by its flag.
        let key_words: Vec<Target> = t.public_key.0.iter().flat_map(|limb| split_words_64(builder, *limb)).collect();
        let mut deposit_words = vec![deposit_tag, t.account_a];
        deposit_words.extend(&key_words);
        deposit_words.extend(amount_words);
        let mut transfer_words = vec![transfer_tag, t.account_a, t.account_b];
        transfer_words.extend(amount_words);
        transfer_words.extend(fee_words);
        let mut withdraw_words = vec![withdraw_tag, t.account_a];
        withdraw_words.extend(t.to_l1);
        withdraw_words.extend(amount_words);
        withdraw_words.extend(fee_words);
        let record: Vec<Target> = (0..16)
            .map(|w| {
                let d = deposit_words.get(w).copied().unwrap_or(zero);
                let tr = transfer_words.get(w).copied().unwrap_or(zero);
                let wi = withdraw_words.get(w).copied().unwrap_or(zero);
                let sum = builder.mul(dep.target, d);
                let sum = builder.mul_add(tra.target, tr, sum);
                builder.mul_add(wd.target, wi, sum)
            })
            .collect();
        pubdata = push_if(builder, pubdata, &record, any_bit);
        slots.push(t);
    }
    for s in [access, pubdata, sigs, prio, withdrawals] {
        builder.register_public_inputs(&s.elements);
    }
    TxExecutionTargets { chain_id, fee_account, state_in, slots }
}

/// Fills the instance's witness targets.
pub fn assign(targets: &TxExecutionTargets, witness: &TxExecutionWitness, pw: &mut PartialWitness<F>) -> anyhow::Result<()> {
    anyhow::ensure!(witness.slots.len() == targets.slots.len(), "TxExecution holds {} slots, the witness has {}", targets.slots.len(), witness.slots.len());
    pw.set_target(targets.chain_id, F::from_canonical_u32(witness.chain_id))?;
    pw.set_target(targets.fee_account, F::from_canonical_u32(witness.fee_account))?;
    for (t, s) in targets.state_in.iter().zip(&witness.state_in) {
        set_all(pw, &t.elements, *s)?;
    }
    for (t, s) in targets.slots.iter().zip(&witness.slots) {
        pw.set_bool_target(t.deposit, s.kind == TxKind::Deposit as u8)?;
        pw.set_bool_target(t.transfer, s.kind == TxKind::Transfer as u8)?;
        pw.set_bool_target(t.withdraw, s.kind == TxKind::Withdraw as u8)?;
        set_all(pw, &[t.account_a, t.account_b, t.amount, t.fee, t.nonce], [s.account_a.into(), s.account_b.into(), s.amount, s.fee, s.nonce.into()])?;
        set_all(pw, &t.public_key.0, s.public_key)?;
        set_all(pw, &t.l1_tx_id, s.l1_tx_id.map(u64::from))?;
        set_all(pw, &t.to_l1, s.to_l1.map(u64::from))?;
        set_all(pw, &t.signature_r, s.signature_r)?;
        set_all(pw, &t.signature_s, s.signature_s.map(u64::from))?;
        for (lane, snap) in t.lanes.iter().zip(&s.lanes) {
            pw.set_bool_target(lane.exists, snap.exists)?;
            set_all(pw, &lane.public_key, snap.public_key)?;
            set_all(pw, &[lane.balance, lane.nonce], [snap.balance, snap.nonce.into()])?;
        }
    }
    Ok(())
}
