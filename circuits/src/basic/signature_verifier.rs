//! SignatureVerifier (circuit id 4): checks the Schnorr signatures that TxExecution requested,
//! exactly as `via_l2::schnorr::verify` does: the key decodes to a non-neutral point, `s < n`,
//! and `s·G - e·pk` encodes to `r` (which is therefore not neutral), with
//! `e = H(r || pk || m)` read as a 256-bit integer.

use num_bigint::BigUint;
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use via_l2::scalar::Scalar;

use super::items::SIGNATURE_REQUEST_LEN;
use super::set_all;
use crate::config::{D, F};
use crate::gadgets::curve;
use crate::gadgets::fp5::Fp5Target;
use crate::gadgets::queue::push_if;
use crate::gadgets::range::split_canonical_64;

/// `signature-request queue state (4)`.
pub const STATE_LEN: usize = 4;

/// One signature request; inactive (and all zero) for padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSlot {
    pub active: bool,
    pub public_key: [u64; 5],
    pub message: [u64; 4],
    pub r: [u64; 5],
    /// `s` as ten 32-bit words, most significant first.
    pub s: [u32; 10],
}

/// The witness of one SignatureVerifier instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureVerifierWitness {
    pub queue_in: [u64; 4],
    pub slots: Vec<SignatureSlot>,
}

struct SlotTargets {
    active: BoolTarget,
    public_key: Fp5Target,
    message: [Target; 4],
    r: Fp5Target,
    s: [Target; 10],
}

/// The instance's witness targets.
pub struct SignatureVerifierTargets {
    queue_in: HashOutTarget,
    slots: Vec<SlotTargets>,
}

/// `n - 1` as ten 32-bit limbs, least significant first.
fn order_minus_one_limbs() -> [u32; 10] {
    let digits = (Scalar::order() - BigUint::from(1u32)).to_u32_digits();
    std::array::from_fn(|i| digits.get(i).copied().unwrap_or(0))
}

/// Asserts `s <= n - 1` for `s` given as 32-bit limbs (least significant first) by subtracting
/// limb by limb: each limb of `(n - 1) - s + 2^32 - borrow` has 33 bits, its top bit says no
/// borrow, and the last limb must not borrow.
fn assert_below_order(builder: &mut CircuitBuilder<F, D>, s_limbs: &[Target]) {
    let mut borrow = builder.zero();
    let mut last_no_borrow = builder._true();
    for (limb, bound) in s_limbs.iter().zip(order_minus_one_limbs()) {
        let base = builder.constant(F::from_canonical_u64(u64::from(bound) + (1 << 32)));
        let minus_limb = builder.sub(base, *limb);
        let t = builder.sub(minus_limb, borrow);
        let bits = builder.split_le(t, 33);
        last_no_borrow = bits[32];
        borrow = builder.not(bits[32]).target;
    }
    builder.assert_one(last_no_borrow.target);
}

/// Lays out the circuit for `capacity` signatures.
pub fn define(builder: &mut CircuitBuilder<F, D>, capacity: usize) -> SignatureVerifierTargets {
    let queue_in = builder.add_virtual_hash();
    builder.register_public_inputs(&queue_in.elements);
    let mut queue = queue_in;
    let mut slots = Vec::with_capacity(capacity);
    for _ in 0..capacity {
        let t = SlotTargets {
            active: builder.add_virtual_bool_target_safe(),
            public_key: Fp5Target::new_virtual(builder),
            message: builder.add_virtual_target_arr(),
            r: Fp5Target::new_virtual(builder),
            s: builder.add_virtual_target_arr(),
        };
        let mut item = t.public_key.0.to_vec();
        item.extend(t.message);
        item.extend(t.r.0);
        item.extend(t.s);
        debug_assert_eq!(item.len(), SIGNATURE_REQUEST_LEN);
        queue = push_if(builder, queue, &item, t.active);

        let mut challenge_input = t.r.0.to_vec();
        challenge_input.extend(t.public_key.0);
        challenge_input.extend(t.message);
        let e = builder.hash_n_to_hash_no_pad::<PoseidonHash>(challenge_input);
        let e_bits: Vec<BoolTarget> = e.elements.iter().flat_map(|limb| split_canonical_64(builder, *limb)).collect();

        // Words are most significant first; bits and limbs least significant first. The 32-bit
        // splits also range-check every word.
        let s_limbs: Vec<Target> = t.s.iter().rev().copied().collect();
        let s_bits: Vec<BoolTarget> = s_limbs.iter().flat_map(|w| builder.split_le(*w, 32)).collect();
        assert_below_order(builder, &s_limbs);

        let public_key = curve::decode(builder, t.public_key, t.active);
        let r = curve::mul_generator_sub(builder, &s_bits, &e_bits, public_key);
        curve::assert_encodes(builder, r, t.r, t.active);
        slots.push(t);
    }
    builder.register_public_inputs(&queue.elements);
    SignatureVerifierTargets { queue_in, slots }
}

/// Fills the instance's witness targets.
pub fn assign(targets: &SignatureVerifierTargets, witness: &SignatureVerifierWitness, pw: &mut PartialWitness<F>) -> anyhow::Result<()> {
    anyhow::ensure!(witness.slots.len() == targets.slots.len(), "SignatureVerifier holds {} signatures, the witness has {}", targets.slots.len(), witness.slots.len());
    set_all(pw, &targets.queue_in.elements, witness.queue_in)?;
    for (t, s) in targets.slots.iter().zip(&witness.slots) {
        pw.set_bool_target(t.active, s.active)?;
        set_all(pw, &t.public_key.0, s.public_key)?;
        set_all(pw, &t.message, s.message)?;
        set_all(pw, &t.r.0, s.r)?;
        set_all(pw, &t.s, s.s.map(u64::from))?;
    }
    Ok(())
}
