//! Goldilocks arithmetic on eight lanes of an AVX-512 register, shared by the Poseidon
//! permutation and the NTT. Values are kept below 2^64 but not necessarily below p; every
//! operation is correct modulo p for such inputs, and [`avx512::canonical`] makes a value
//! canonical.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use core::arch::x86_64::*;

    pub const LANES: usize = 8;
    pub const P: u64 = 0xFFFF_FFFF_0000_0001;
    /// 2^64 mod p, and the low-32-bit mask.
    pub const EPSILON: u64 = 0xFFFF_FFFF;

    pub type V = __m512i;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn splat(x: u64) -> V {
        _mm512_set1_epi64(x as i64)
    }

    /// `a + b` modulo p.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn add(a: V, b: V) -> V {
        let eps = splat(EPSILON);
        let s = _mm512_add_epi64(a, b);
        // A wrap past 2^64 loses 2^64 = EPSILON (mod p): add it back, and once more if that
        // wrapped too (only possible for non-canonical inputs).
        let wrapped = _mm512_cmplt_epu64_mask(s, a);
        let s = _mm512_mask_add_epi64(s, wrapped, s, eps);
        let wrapped_again = wrapped & _mm512_cmplt_epu64_mask(s, eps);
        _mm512_mask_add_epi64(s, wrapped_again, s, eps)
    }

    /// The 128-bit product `a * b` as `(high, low)` 64-bit halves, from four 32x32-bit products.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn mul_wide(a: V, b: V) -> (V, V) {
        let mask = splat(EPSILON);
        let (a_hi, b_hi) = (_mm512_srli_epi64(a, 32), _mm512_srli_epi64(b, 32));
        let ll = _mm512_mul_epu32(a, b);
        let lh = _mm512_mul_epu32(a, b_hi);
        let hl = _mm512_mul_epu32(a_hi, b);
        let hh = _mm512_mul_epu32(a_hi, b_hi);
        // Neither sum can wrap: (2^32 - 1)^2 + 2^32 - 1 < 2^64.
        let t = _mm512_add_epi64(hl, _mm512_srli_epi64(ll, 32));
        let u = _mm512_add_epi64(lh, _mm512_and_si512(t, mask));
        let lo = _mm512_or_si512(_mm512_slli_epi64(u, 32), _mm512_and_si512(ll, mask));
        let hi = _mm512_add_epi64(_mm512_add_epi64(hh, _mm512_srli_epi64(t, 32)), _mm512_srli_epi64(u, 32));
        (hi, lo)
    }

    /// `hi * 2^64 + lo` modulo p, using 2^64 = 2^32 - 1 and 2^96 = -1 (mod p).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn reduce128(hi: V, lo: V) -> V {
        let eps = splat(EPSILON);
        let hi_hi = _mm512_srli_epi64(hi, 32);
        let hi_lo = _mm512_and_si512(hi, eps);
        // lo - hi_hi; a borrow took 2^64 = EPSILON too many.
        let borrow = _mm512_cmplt_epu64_mask(lo, hi_hi);
        let t0 = _mm512_sub_epi64(lo, hi_hi);
        let t0 = _mm512_mask_sub_epi64(t0, borrow, t0, eps);
        // hi_lo * EPSILON < 2^64.
        let t1 = _mm512_sub_epi64(_mm512_slli_epi64(hi_lo, 32), hi_lo);
        let s = _mm512_add_epi64(t0, t1);
        let wrapped = _mm512_cmplt_epu64_mask(s, t0);
        _mm512_mask_add_epi64(s, wrapped, s, eps)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn mul(a: V, b: V) -> V {
        let (hi, lo) = mul_wide(a, b);
        reduce128(hi, lo)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn canonical(x: V) -> V {
        let p = splat(P);
        let over = _mm512_cmpge_epu64_mask(x, p);
        _mm512_mask_sub_epi64(x, over, x, p)
    }

    /// `a - b` modulo p.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn sub(a: V, b: V) -> V {
        let eps = splat(EPSILON);
        let d = _mm512_sub_epi64(a, b);
        // A borrow added 2^64 = EPSILON too much: take it off, and once more if that borrowed too
        // (only possible for non-canonical inputs).
        let borrowed = _mm512_cmplt_epu64_mask(a, b);
        let d2 = _mm512_mask_sub_epi64(d, borrowed, d, eps);
        let borrowed_again = borrowed & _mm512_cmplt_epu64_mask(d, eps);
        _mm512_mask_sub_epi64(d2, borrowed_again, d2, eps)
    }
}
