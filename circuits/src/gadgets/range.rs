//! Range checks and canonical decompositions of field elements.

use plonky2::field::types::Field;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::config::{D, F};

/// The little-endian bits of `x` as an integer in `[0, p)`.
///
/// A plain 64-bit split is ambiguous: for `x < 2^32 - 1` both `x` and `x + p` fit in 64 bits.
/// The second one has its top 32 bits all set and its low 32 bits not all zero, which no
/// canonical value below `p` has; refusing that shape leaves one decomposition.
pub fn split_canonical_64(builder: &mut CircuitBuilder<F, D>, x: Target) -> Vec<BoolTarget> {
    let bits = builder.split_le(x, 64);
    let low = builder.le_sum(bits[..32].iter());
    let high = builder.le_sum(bits[32..].iter());
    let max = builder.constant(F::from_canonical_u32(u32::MAX));
    let high_is_max = builder.is_equal(high, max);
    let bad = builder.mul(high_is_max.target, low);
    builder.assert_zero(bad);
    bits
}

/// `x` as two canonical 32-bit words, high first.
pub fn split_words_64(builder: &mut CircuitBuilder<F, D>, x: Target) -> [Target; 2] {
    let bits = split_canonical_64(builder, x);
    [builder.le_sum(bits[32..].iter()), builder.le_sum(bits[..32].iter())]
}

/// A value below 2^bits, `bits <= 32`, as two words `[0, x]`, having checked the range.
pub fn words_of_small(builder: &mut CircuitBuilder<F, D>, x: Target, bits: usize) -> [Target; 2] {
    debug_assert!(bits <= 32);
    builder.range_check(x, bits);
    [builder.zero(), x]
}

/// Asserts `x != 0` by exhibiting its inverse.
pub fn assert_nonzero(builder: &mut CircuitBuilder<F, D>, x: Target) {
    let _ = builder.inverse(x);
}

/// Asserts `x != 0` where `condition` holds: `condition · (x · w - 1) = 0` for a witness `w`,
/// which the caller derives from the native witness.
pub fn conditional_assert_nonzero(builder: &mut CircuitBuilder<F, D>, condition: BoolTarget, x: Target, inverse_hint: Target) {
    let one = builder.one();
    let product = builder.mul(x, inverse_hint);
    builder.conditional_assert_eq(condition.target, product, one);
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::{Field64, PrimeField64};
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};

    use super::*;
    use crate::gadgets::testing::{builder, prove};

    #[test]
    fn canonical_split_accepts_values_and_refuses_the_alias() {
        for value in [0u64, 1, 5, u32::MAX as u64, F::ORDER - 1] {
            let mut b = builder();
            let x = b.add_virtual_target();
            let words = split_words_64(&mut b, x);
            let mut pw = PartialWitness::new();
            pw.set_target(x, F::from_canonical_u64(value)).unwrap();
            let hi = b.constant(F::from_canonical_u64(value >> 32));
            let lo = b.constant(F::from_canonical_u64(value & 0xffff_ffff));
            b.connect(words[0], hi);
            b.connect(words[1], lo);
            prove(b, pw).unwrap();
        }

        // x = 5 also reads as the 64-bit integer 5 + p; force that decomposition.
        let mut b = builder();
        let x = b.add_virtual_target();
        let bits = split_canonical_64(&mut b, x);
        let mut pw = PartialWitness::new();
        pw.set_target(x, F::from_canonical_u64(5)).unwrap();
        let alias = 5u64 + F::ORDER;
        for (i, bit) in bits.iter().enumerate() {
            pw.set_bool_target(*bit, (alias >> i) & 1 == 1).unwrap();
        }
        assert!(prove(b, pw).is_err());
        assert_eq!(F::from_noncanonical_u64(alias).to_canonical_u64(), 5);
    }
}
