//! The SHA-256 compression function over 32-bit words held as field elements, each split into
//! bits where bitwise logic needs them (XOR as `x + y - 2xy`, rotations as rewiring).

use plonky2::field::types::Field;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::config::{D, F};

/// SHA-256's initial hash value.
pub const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// SHA-256's round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// A word as its value and little-endian bits.
#[derive(Clone, Debug)]
struct Word {
    value: Target,
    bits: Vec<BoolTarget>,
}

/// A bit of a derived word: shifts bring in constant zeros, which cost nothing.
#[derive(Clone, Copy)]
enum Bit {
    Zero,
    Var(BoolTarget),
}

fn word(builder: &mut CircuitBuilder<F, D>, value: Target) -> Word {
    let bits = builder.split_le(value, 32);
    Word { value, bits }
}

fn from_bits(builder: &mut CircuitBuilder<F, D>, bits: Vec<BoolTarget>) -> Word {
    Word { value: builder.le_sum(bits.iter()), bits }
}

fn rotr(w: &Word, r: usize) -> Vec<Bit> {
    (0..32).map(|i| Bit::Var(w.bits[(i + r) % 32])).collect()
}

fn shr(w: &Word, r: usize) -> Vec<Bit> {
    (0..32).map(|i| if i + r < 32 { Bit::Var(w.bits[i + r]) } else { Bit::Zero }).collect()
}

fn xor2(builder: &mut CircuitBuilder<F, D>, x: Bit, y: Bit) -> Bit {
    match (x, y) {
        (Bit::Zero, b) | (b, Bit::Zero) => b,
        (Bit::Var(x), Bit::Var(y)) => {
            let sum = builder.add(x.target, y.target);
            Bit::Var(BoolTarget::new_unsafe(builder.arithmetic(-F::TWO, F::ONE, x.target, y.target, sum)))
        }
    }
}

/// `x ⊕ y ⊕ z` bitwise, as a word.
fn xor3(builder: &mut CircuitBuilder<F, D>, x: Vec<Bit>, y: Vec<Bit>, z: Vec<Bit>) -> Word {
    let bits = (0..32)
        .map(|i| {
            let xy = xor2(builder, x[i], y[i]);
            match xor2(builder, xy, z[i]) {
                Bit::Var(b) => b,
                Bit::Zero => builder._false(),
            }
        })
        .collect();
    from_bits(builder, bits)
}

/// `(e ∧ f) ⊕ (¬e ∧ g)` = `g + e(f - g)`.
fn ch(builder: &mut CircuitBuilder<F, D>, e: &Word, f: &Word, g: &Word) -> Word {
    let bits = (0..32)
        .map(|i| {
            let diff = builder.sub(f.bits[i].target, g.bits[i].target);
            BoolTarget::new_unsafe(builder.arithmetic(F::ONE, F::ONE, e.bits[i].target, diff, g.bits[i].target))
        })
        .collect();
    from_bits(builder, bits)
}

/// Majority = `ab + c(a ⊕ b)` (the two terms are never both 1).
fn maj(builder: &mut CircuitBuilder<F, D>, a: &Word, b: &Word, c: &Word) -> Word {
    let bits = (0..32)
        .map(|i| {
            let ab = builder.mul(a.bits[i].target, b.bits[i].target);
            let Bit::Var(a_xor_b) = xor2(builder, Bit::Var(a.bits[i]), Bit::Var(b.bits[i])) else { unreachable!("both operands are variables") };
            BoolTarget::new_unsafe(builder.arithmetic(F::ONE, F::ONE, c.bits[i].target, a_xor_b.target, ab))
        })
        .collect();
    from_bits(builder, bits)
}

/// The sum of words modulo 2^32.
fn add(builder: &mut CircuitBuilder<F, D>, terms: &[Target], constant: u32) -> Word {
    let mut sum = builder.constant(F::from_canonical_u32(constant));
    for t in terms {
        sum = builder.add(sum, *t);
    }
    let carry_bits = (terms.len() + 1).next_power_of_two().trailing_zeros() as usize;
    let bits = builder.split_le(sum, 32 + carry_bits);
    from_bits(builder, bits[..32].to_vec())
}

/// One SHA-256 compression: the next state from a state and a 16-word block, all 32-bit words.
/// Every input word is range-checked to 32 bits; the output words are too.
pub fn compress(builder: &mut CircuitBuilder<F, D>, state: &[Target; 8], block: &[Target; 16]) -> [Target; 8] {
    let mut w: Vec<Word> = block.iter().map(|v| word(builder, *v)).collect();
    for t in 16..64 {
        let s0 = xor3(builder, rotr(&w[t - 15], 7), rotr(&w[t - 15], 18), shr(&w[t - 15], 3));
        let s1 = xor3(builder, rotr(&w[t - 2], 17), rotr(&w[t - 2], 19), shr(&w[t - 2], 10));
        let next = add(builder, &[s1.value, w[t - 7].value, s0.value, w[t - 16].value], 0);
        w.push(next);
    }
    let initial: Vec<Word> = state.iter().map(|v| word(builder, *v)).collect();
    let mut v = initial.clone();
    for t in 0..64 {
        let (a, b, c, d, e, f, g, h) = (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
        let big_s1 = xor3(builder, rotr(e, 6), rotr(e, 11), rotr(e, 25));
        let choice = ch(builder, e, f, g);
        let big_s0 = xor3(builder, rotr(a, 2), rotr(a, 13), rotr(a, 22));
        let majority = maj(builder, a, b, c);
        let t1 = [h.value, big_s1.value, choice.value, w[t].value];
        let new_e = add(builder, &[d.value, t1[0], t1[1], t1[2], t1[3]], K[t]);
        let new_a = add(builder, &[t1[0], t1[1], t1[2], t1[3], big_s0.value, majority.value], K[t]);
        v = vec![new_a, a.clone(), b.clone(), c.clone(), new_e, e.clone(), f.clone(), g.clone()];
    }
    std::array::from_fn(|i| add(builder, &[initial[i].value, v[i].value], 0).value)
}

#[cfg(test)]
mod tests {
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use rand::Rng;

    use super::*;
    use crate::gadgets::testing::{builder, prove};

    fn native(state: [u32; 8], block: [u32; 16]) -> [u32; 8] {
        let mut s = state;
        let bytes: Vec<u8> = block.iter().flat_map(|w| w.to_be_bytes()).collect();
        sha2::compress256(&mut s, &[*sha2::digest::generic_array::GenericArray::from_slice(&bytes)]);
        s
    }

    fn circuit(state: [u32; 8], block: [u32; 16], claimed: [u32; 8]) -> anyhow::Result<()> {
        let mut b = builder();
        let s: [Target; 8] = b.add_virtual_target_arr();
        let m: [Target; 16] = b.add_virtual_target_arr();
        let out = compress(&mut b, &s, &m);
        for (o, c) in out.iter().zip(claimed) {
            let c = b.constant(F::from_canonical_u32(c));
            b.connect(*o, c);
        }
        let mut pw = PartialWitness::new();
        for (t, v) in s.iter().zip(state) {
            pw.set_target(*t, F::from_canonical_u32(v))?;
        }
        for (t, v) in m.iter().zip(block) {
            pw.set_target(*t, F::from_canonical_u32(v))?;
        }
        prove(b, pw)
    }

    #[test]
    fn compression_matches_sha2() {
        let mut rng = rand::thread_rng();
        let block: [u32; 16] = std::array::from_fn(|_| rng.r#gen());
        let expected = native(IV, block);
        circuit(IV, block, expected).unwrap();
        let mut wrong = expected;
        wrong[3] ^= 1;
        assert!(circuit(IV, block, wrong).is_err());
    }
}
