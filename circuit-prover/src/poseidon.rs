//! Poseidon over Goldilocks (width 12, plonky2's constants and round structure) applied to many
//! states at once. plonky2 1.1 hashes one state at a time with scalar code (its AVX2 version is
//! disabled); a Merkle tree hashes millions of independent states, which vectorize across lanes:
//! with AVX-512, lane `k` of vector `i` holds element `i` of state `k`, eight states per pass.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::poseidon::{Poseidon, SPONGE_WIDTH};

use crate::F;

/// A permutation state, as raw `u64`s (any value below 2^64; outputs are canonical).
pub type State = [u64; SPONGE_WIDTH];

/// How states are permuted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Eight states per pass in AVX-512 registers.
    Avx512,
    /// plonky2's scalar permutation, one state at a time.
    Scalar,
}

impl Simd {
    /// The widest this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Self::Avx512;
        }
        Self::Scalar
    }

    /// Whether this CPU runs `self`.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 => false,
            Self::Scalar => true,
        }
    }
}

/// Permutes every state in place with `simd`, which must be available (see [`Simd::is_available`]).
pub fn permute_all(states: &mut [State], simd: Simd) {
    assert!(simd.is_available(), "{simd:?} is not available on this CPU");
    let mut rest: &mut [State] = states;
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx512 {
        let mut chunks = rest.chunks_exact_mut(crate::goldilocks::avx512::LANES);
        for chunk in &mut chunks {
            // SAFETY: AVX-512F is available (asserted above).
            unsafe { avx512::permute8(chunk.try_into().expect("a chunk of eight")) };
        }
        rest = chunks.into_remainder();
    }
    for state in rest {
        *state = permute_scalar(*state);
    }
}

/// plonky2's own permutation of one state.
pub fn permute_scalar(state: State) -> State {
    let out = F::poseidon(state.map(F::from_noncanonical_u64));
    out.map(|x| x.to_canonical_u64())
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The permutation on eight lanes (see [`crate::goldilocks`] for the arithmetic).

    use core::arch::x86_64::*;

    use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, Poseidon};

    use super::{SPONGE_WIDTH, State};
    use crate::F;
    use crate::goldilocks::avx512::*;

    /// x^7.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sbox(x: V) -> V {
        let x2 = mul(x, x);
        let x4 = mul(x2, x2);
        let x3 = mul(x, x2);
        mul(x3, x4)
    }

    /// The MDS layer: a circulant of small constants plus a diagonal. Each row's products are
    /// summed unreduced in two halves (low and high 32 bits of each input, times constants below
    /// 2^17: 13 terms stay below 2^53) and reduced once.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mds(state: &[V; SPONGE_WIDTH]) -> [V; SPONGE_WIDTH] {
        let high: [V; SPONGE_WIDTH] = std::array::from_fn(|i| _mm512_srli_epi64(state[i], 32));
        std::array::from_fn(|r| {
            let (mut lo_sum, mut hi_sum) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for i in 0..SPONGE_WIDTH {
                let c = splat(<F as Poseidon>::MDS_MATRIX_CIRC[i]);
                let j = (i + r) % SPONGE_WIDTH;
                lo_sum = _mm512_add_epi64(lo_sum, _mm512_mul_epu32(state[j], c));
                hi_sum = _mm512_add_epi64(hi_sum, _mm512_mul_epu32(high[j], c));
            }
            let d = <F as Poseidon>::MDS_MATRIX_DIAG[r];
            if d != 0 {
                let c = splat(d);
                lo_sum = _mm512_add_epi64(lo_sum, _mm512_mul_epu32(state[r], c));
                hi_sum = _mm512_add_epi64(hi_sum, _mm512_mul_epu32(high[r], c));
            }
            // lo_sum + hi_sum * 2^32 as a 128-bit value.
            let lo = _mm512_add_epi64(lo_sum, _mm512_slli_epi64(hi_sum, 32));
            let carry = _mm512_maskz_set1_epi64(_mm512_cmplt_epu64_mask(lo, lo_sum), 1);
            let hi = _mm512_add_epi64(_mm512_srli_epi64(hi_sum, 32), carry);
            reduce128(hi, lo)
        })
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn full_rounds(state: &mut [V; SPONGE_WIDTH], round: &mut usize) {
        for _ in 0..HALF_N_FULL_ROUNDS {
            for (i, x) in state.iter_mut().enumerate() {
                *x = sbox(add(*x, splat(ALL_ROUND_CONSTANTS[i + SPONGE_WIDTH * *round])));
            }
            *state = mds(state);
            *round += 1;
        }
    }

    /// A sum of 64x64-bit products kept unreduced, as a 192-bit value `top·2^128 + hi·2^64 + lo`:
    /// adding a product costs a few adds and compares instead of a reduction, and the sum is
    /// reduced once.
    #[derive(Clone, Copy)]
    struct Sum {
        lo: V,
        hi: V,
        top: V,
    }

    impl Sum {
        /// `x`, a value below 2^64.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn of(x: V) -> Self {
            Self { lo: x, hi: _mm512_setzero_si512(), top: _mm512_setzero_si512() }
        }

        /// Adds `a·b`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn add_product(self, a: V, b: V) -> Self {
            let (hi, lo) = mul_wide(a, b);
            let one = splat(1);
            let sum_lo = _mm512_add_epi64(self.lo, lo);
            // A product's high half is at most 2^64 - 2, so adding the carry cannot wrap.
            let hi = _mm512_mask_add_epi64(hi, _mm512_cmplt_epu64_mask(sum_lo, lo), hi, one);
            let sum_hi = _mm512_add_epi64(self.hi, hi);
            let top = _mm512_mask_add_epi64(self.top, _mm512_cmplt_epu64_mask(sum_hi, hi), self.top, one);
            Self { lo: sum_lo, hi: sum_hi, top }
        }

        /// The sum modulo p (below 2^64), using 2^128 = -2^32 (mod p). Sums of up to 2^32
        /// products keep `top·2^32` below 2^64.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn reduce(self) -> V {
            let r = reduce128(self.hi, self.lo);
            let t = _mm512_slli_epi64(self.top, 32);
            // r - t, and on a borrow + p (= - EPSILON after the wrap); t is tiny, so once suffices.
            let d = _mm512_sub_epi64(r, t);
            _mm512_mask_sub_epi64(d, _mm512_cmplt_epu64_mask(r, t), d, splat(EPSILON))
        }
    }

    /// The partial rounds in plonky2's fast form: one change of basis, then per round an S-box
    /// on the first element and a sparse matrix (first row `w_hat`, first column `v`). Every
    /// dot product is summed unreduced and reduced once.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn partial_rounds(state: &mut [V; SPONGE_WIDTH], round: &mut usize) {
        for (x, c) in state.iter_mut().zip(<F as Poseidon>::FAST_PARTIAL_FIRST_ROUND_CONSTANT) {
            *x = add(*x, splat(c));
        }
        let matrix = <F as Poseidon>::FAST_PARTIAL_ROUND_INITIAL_MATRIX;
        let mut next = *state;
        for (j, y) in next[1..].iter_mut().enumerate() {
            let mut sum = Sum::of(_mm512_setzero_si512());
            for (x, row) in state[1..].iter().zip(&matrix) {
                sum = sum.add_product(*x, splat(row[j]));
            }
            *y = sum.reduce();
        }
        *state = next;
        let mds00 = splat(<F as Poseidon>::MDS_MATRIX_CIRC[0] + <F as Poseidon>::MDS_MATRIX_DIAG[0]);
        for r in 0..N_PARTIAL_ROUNDS {
            let s0 = add(sbox(state[0]), splat(<F as Poseidon>::FAST_PARTIAL_ROUND_CONSTANTS[r]));
            let mut d = Sum::of(_mm512_setzero_si512()).add_product(s0, mds00);
            let sparse = <F as Poseidon>::FAST_PARTIAL_ROUND_W_HATS[r].into_iter().zip(<F as Poseidon>::FAST_PARTIAL_ROUND_VS[r]);
            for (x, (w_hat, v)) in state[1..].iter_mut().zip(sparse) {
                d = d.add_product(*x, splat(w_hat));
                *x = Sum::of(*x).add_product(s0, splat(v)).reduce();
            }
            state[0] = d.reduce();
        }
        *round += N_PARTIAL_ROUNDS;
    }

    /// Permutes eight states.
    #[target_feature(enable = "avx512f")]
    pub fn permute8(states: &mut [State; LANES]) {
        // Transpose into lanes: vector i holds element i of every state.
        let mut state: [V; SPONGE_WIDTH] = std::array::from_fn(|i| {
            let column: [u64; LANES] = std::array::from_fn(|k| states[k][i]);
            // SAFETY: `column` is 64 readable bytes.
            unsafe { _mm512_loadu_si512(column.as_ptr().cast()) }
        });
        let mut round = 0;
        full_rounds(&mut state, &mut round);
        partial_rounds(&mut state, &mut round);
        full_rounds(&mut state, &mut round);
        for (i, x) in state.iter().enumerate() {
            let mut column = [0u64; LANES];
            // SAFETY: `column` is 64 writable bytes.
            unsafe { _mm512_storeu_si512(column.as_mut_ptr().cast(), canonical(*x)) };
            for (k, value) in column.into_iter().enumerate() {
                states[k][i] = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn random_states(n: usize, rng: &mut impl Rng) -> Vec<State> {
        (0..n)
            .map(|i| {
                std::array::from_fn(|j| match (i + j) % 5 {
                    // Edges: zero, p - 1, and values at or above p (non-canonical inputs).
                    0 => 0,
                    1 => 0xFFFF_FFFF_0000_0000,
                    2 => u64::MAX - rng.gen_range(0..4),
                    _ => rng.r#gen(),
                })
            })
            .collect()
    }

    #[test]
    fn every_path_permutes_exactly_as_plonky2() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for simd in [Simd::Avx512, Simd::Scalar] {
            if !simd.is_available() {
                eprintln!("{simd:?} is not available on this CPU: its comparison is skipped");
                continue;
            }
            for n in [0, 1, 7, 8, 9, 16, 23, 64] {
                let input = random_states(n, &mut rng);
                let mut ours = input.clone();
                permute_all(&mut ours, simd);
                let theirs: Vec<State> = input.iter().map(|s| permute_scalar(*s)).collect();
                assert_eq!(ours, theirs, "{simd:?}, {n} states");
            }
        }
    }

    #[test]
    fn every_path_gives_the_reference_answers() {
        // The reference implementation's answers (plonky2's test vectors).
        let zeros = [
            0x3c18a9786cb0b359, 0xc4055e3364a246c3, 0x7953db0ab48808f4, 0xc71603f33a1144ca, 0xd7709673896996dc, 0x46a84e87642f44ed,
            0xd032648251ee0b3c, 0x1c687363b207df62, 0xdf8565563e8045fe, 0x40f5b37ff4254dae, 0xd070f637b431067c, 0x1792b1c4342109d7,
        ];
        let counting = [
            0xd64e1e3efc5b8e9e, 0x53666633020aaa47, 0xd40285597c6a8825, 0x613a4f81e81231d2, 0x414754bfebd051f0, 0xcb1f8980294a023f,
            0x6eb2a9e4d54a9d0f, 0x1902bc3af467e056, 0xf045d5eafdc6021f, 0xe4150f77caaa3be5, 0xc9bfd01d39b50cce, 0x5c0a27fcb0e1459b,
        ];
        let inputs: [State; 2] = [[0; SPONGE_WIDTH], std::array::from_fn(|i| i as u64)];
        for simd in [Simd::Avx512, Simd::Scalar].into_iter().filter(|s| s.is_available()) {
            let mut states = [inputs[0], inputs[1]].repeat(8);
            permute_all(&mut states, simd);
            for pair in states.chunks(2) {
                assert_eq!(pair, [zeros, counting], "{simd:?}");
            }
        }
    }
}
