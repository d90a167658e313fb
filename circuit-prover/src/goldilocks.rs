//! Goldilocks arithmetic on the lanes of a SIMD register (eight with AVX-512, four with AVX2),
//! shared by the Poseidon permutation and the NTT. Values are kept below 2^64 but not
//! necessarily below p; every operation is correct modulo p for such inputs, and `canonical`
//! makes a value canonical.
//!
//! Each instruction set supplies a few lane primitives (wrapping 64-bit adds, 32x32-bit
//! multiplies, shifts, unsigned compares giving a lane mask, masked adds); the field operations
//! are written once on top of them ([`field_ops`]) and expanded per instruction set, with that
//! set's target feature, so everything inlines into the caller's vector code.
//!
//! Also [`ProductSum`], for sums of many products (dot products) reduced once.

/// The field operations from the lane primitives in scope, every function compiled with target
/// feature `$feature`.
macro_rules! field_ops {
    ($feature:literal) => {
        pub const P: u64 = 0xFFFF_FFFF_0000_0001;
        /// 2^64 mod p, and the low-32-bit mask.
        pub const EPSILON: u64 = 0xFFFF_FFFF;

        /// `a + b` modulo p.
        #[inline]
        #[target_feature(enable = $feature)]
        pub fn add(a: V, b: V) -> V {
            let eps = splat(EPSILON);
            let s = add64(a, b);
            // A wrap past 2^64 loses 2^64 = EPSILON (mod p): add it back, and once more if that
            // wrapped too (only possible for non-canonical inputs).
            let wrapped = lt(s, a);
            let s = mask_add(s, wrapped, eps);
            let wrapped_again = mask_and(wrapped, lt(s, eps));
            mask_add(s, wrapped_again, eps)
        }

        /// `a - b` modulo p.
        #[inline]
        #[target_feature(enable = $feature)]
        pub fn sub(a: V, b: V) -> V {
            let eps = splat(EPSILON);
            let d = sub64(a, b);
            // A borrow added 2^64 = EPSILON too much: take it off, and once more if that
            // borrowed too (only possible for non-canonical inputs).
            let borrowed = lt(a, b);
            let d2 = mask_sub(d, borrowed, eps);
            let borrowed_again = mask_and(borrowed, lt(d, eps));
            mask_sub(d2, borrowed_again, eps)
        }

        /// The 128-bit product `a * b` as `(high, low)` 64-bit halves, from four 32x32-bit
        /// products.
        #[inline]
        #[target_feature(enable = $feature)]
        pub fn mul_wide(a: V, b: V) -> (V, V) {
            let mask = splat(EPSILON);
            let (a_hi, b_hi) = (shr32(a), shr32(b));
            let ll = mul32(a, b);
            let lh = mul32(a, b_hi);
            let hl = mul32(a_hi, b);
            let hh = mul32(a_hi, b_hi);
            // Neither sum can wrap: (2^32 - 1)^2 + 2^32 - 1 < 2^64.
            let t = add64(hl, shr32(ll));
            let u = add64(lh, and64(t, mask));
            let lo = or64(shl::<32>(u), and64(ll, mask));
            let hi = add64(add64(hh, shr32(t)), shr32(u));
            (hi, lo)
        }

        /// `hi * 2^64 + lo` modulo p, using 2^64 = 2^32 - 1 and 2^96 = -1 (mod p).
        #[inline]
        #[target_feature(enable = $feature)]
        pub fn reduce128(hi: V, lo: V) -> V {
            let eps = splat(EPSILON);
            let hi_hi = shr32(hi);
            let hi_lo = and64(hi, eps);
            // lo - hi_hi; a borrow took 2^64 = EPSILON too many.
            let t0 = mask_sub(sub64(lo, hi_hi), lt(lo, hi_hi), eps);
            // hi_lo * EPSILON < 2^64.
            let t1 = sub64(shl::<32>(hi_lo), hi_lo);
            let s = add64(t0, t1);
            mask_add(s, lt(s, t0), eps)
        }

        #[inline]
        #[target_feature(enable = $feature)]
        pub fn mul(a: V, b: V) -> V {
            let (hi, lo) = mul_wide(a, b);
            reduce128(hi, lo)
        }

        #[inline]
        #[target_feature(enable = $feature)]
        pub fn canonical(x: V) -> V {
            let p = splat(P);
            mask_sub(x, not_lt(x, p), p)
        }
    };
}

/// Eight lanes in an AVX-512 register; lane masks are `__mmask8`.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use core::arch::x86_64::*;

    pub const LANES: usize = 8;
    pub type V = __m512i;
    type Mask = __mmask8;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn splat(x: u64) -> V {
        _mm512_set1_epi64(x as i64)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn zero() -> V {
        _mm512_setzero_si512()
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn load(lanes: &[u64; LANES]) -> V {
        // SAFETY: `lanes` is 64 readable bytes.
        unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store(x: V) -> [u64; LANES] {
        let mut lanes = [0; LANES];
        // SAFETY: `lanes` is 64 writable bytes.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), x) };
        lanes
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn add64(a: V, b: V) -> V {
        _mm512_add_epi64(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn sub64(a: V, b: V) -> V {
        _mm512_sub_epi64(a, b)
    }

    /// Low 32 bits of each lane of `a` times those of `b`, as 64-bit lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn mul32(a: V, b: V) -> V {
        _mm512_mul_epu32(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn shr32(a: V) -> V {
        _mm512_srli_epi64(a, 32)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn shl<const N: u32>(a: V) -> V {
        _mm512_slli_epi64::<N>(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn and64(a: V, b: V) -> V {
        _mm512_and_si512(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn or64(a: V, b: V) -> V {
        _mm512_or_si512(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn xor64(a: V, b: V) -> V {
        _mm512_xor_si512(a, b)
    }

    /// `a ^ b ^ c`, one ternary-logic instruction.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn xor3(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi64::<0x96>(a, b, c)
    }

    /// `a ^ (!b & c)` (Keccak's chi), one ternary-logic instruction.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn xor_andnot(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi64::<0xD2>(a, b, c)
    }

    /// Each lane rotated left by `n` bits.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn rotl(a: V, n: u32) -> V {
        _mm512_rolv_epi64(a, splat(u64::from(n)))
    }

    /// Lanes where `a < b` (unsigned).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn lt(a: V, b: V) -> Mask {
        _mm512_cmplt_epu64_mask(a, b)
    }

    /// Lanes where `a >= b` (unsigned).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn not_lt(a: V, b: V) -> Mask {
        _mm512_cmpge_epu64_mask(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mask_and(a: Mask, b: Mask) -> Mask {
        a & b
    }

    /// `s + x` in the lanes of `m`, `s` elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn mask_add(s: V, m: Mask, x: V) -> V {
        _mm512_mask_add_epi64(s, m, s, x)
    }

    /// `s - x` in the lanes of `m`, `s` elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn mask_sub(s: V, m: Mask, x: V) -> V {
        _mm512_mask_sub_epi64(s, m, s, x)
    }

    field_ops!("avx512f");
}

/// Four lanes in an AVX2 register; lane masks are registers of all-ones or all-zeros lanes.
/// AVX2 compares only signed 64-bit lanes, so unsigned compares flip both sign bits first.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use core::arch::x86_64::*;

    pub const LANES: usize = 4;
    pub type V = __m256i;
    type Mask = __m256i;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn splat(x: u64) -> V {
        _mm256_set1_epi64x(x as i64)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn zero() -> V {
        _mm256_setzero_si256()
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn load(lanes: &[u64; LANES]) -> V {
        // SAFETY: `lanes` is 32 readable bytes.
        unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn store(x: V) -> [u64; LANES] {
        let mut lanes = [0; LANES];
        // SAFETY: `lanes` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), x) };
        lanes
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn add64(a: V, b: V) -> V {
        _mm256_add_epi64(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn sub64(a: V, b: V) -> V {
        _mm256_sub_epi64(a, b)
    }

    /// Low 32 bits of each lane of `a` times those of `b`, as 64-bit lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn mul32(a: V, b: V) -> V {
        _mm256_mul_epu32(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn shr32(a: V) -> V {
        _mm256_srli_epi64(a, 32)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn shl<const N: i32>(a: V) -> V {
        _mm256_slli_epi64::<N>(a)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn and64(a: V, b: V) -> V {
        _mm256_and_si256(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn or64(a: V, b: V) -> V {
        _mm256_or_si256(a, b)
    }

    /// Lanes where `a < b` (unsigned).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn lt(a: V, b: V) -> Mask {
        let sign = splat(1 << 63);
        _mm256_cmpgt_epi64(_mm256_xor_si256(b, sign), _mm256_xor_si256(a, sign))
    }

    /// Lanes where `a >= b` (unsigned).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn not_lt(a: V, b: V) -> Mask {
        _mm256_xor_si256(lt(a, b), splat(u64::MAX))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask_and(a: Mask, b: Mask) -> Mask {
        _mm256_and_si256(a, b)
    }

    /// `s + x` in the lanes of `m`, `s` elsewhere.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn mask_add(s: V, m: Mask, x: V) -> V {
        _mm256_add_epi64(s, _mm256_and_si256(m, x))
    }

    /// `s - x` in the lanes of `m`, `s` elsewhere.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn mask_sub(s: V, m: Mask, x: V) -> V {
        _mm256_sub_epi64(s, _mm256_and_si256(m, x))
    }

    field_ops!("avx2");
}

/// A sum of products of field elements kept as a 128-bit integer and a count of its wraps past
/// 2^128, reduced once when read: a dot product then costs a widening multiply and an add per
/// term, where field arithmetic reduces every product and every sum. Inputs need not be
/// canonical.
#[derive(Clone, Copy, Default)]
pub(crate) struct ProductSum {
    low: u128,
    wraps: u64,
}

impl ProductSum {
    #[inline]
    pub(crate) fn add(&mut self, a: crate::F, b: crate::F) {
        let (sum, wrapped) = self.low.overflowing_add(u128::from(a.0) * u128::from(b.0));
        self.low = sum;
        self.wraps += u64::from(wrapped);
    }

    pub(crate) fn value(self) -> crate::F {
        use plonky2::field::types::Field;
        // 2^128 = (2^64)^2 = (2^32 - 1)^2 modulo p.
        let two_to_128 = crate::F::from_canonical_u64(0xFFFF_FFFE_0000_0001);
        crate::F::from_noncanonical_u128(self.low) + crate::F::from_canonical_u64(self.wraps) * two_to_128
    }
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::{Field, Sample};

    use super::ProductSum;
    use crate::F;

    #[test]
    fn product_sums_equal_field_arithmetic() {
        // Largest values (wrapping the 128-bit sum on every term), unreduced ones, random ones.
        let extremes = [u64::MAX, u64::MAX - 1, 0xFFFF_FFFF_0000_0001, 0xFFFF_FFFF_0000_0000].map(F::from_noncanonical_u64);
        for (a, b) in [(extremes.repeat(300), extremes.repeat(300)), (F::rand_vec(5000), F::rand_vec(5000)), (Vec::new(), Vec::new())] {
            let mut sum = ProductSum::default();
            for (&x, &y) in a.iter().zip(&b) {
                sum.add(x, y);
            }
            let expected: F = a.iter().zip(&b).map(|(&x, &y)| x * y).sum();
            assert_eq!(sum.value(), expected);
        }
    }
}
