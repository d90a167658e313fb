//! Poseidon over Goldilocks (width 12, plonky2's constants and round structure) applied to many
//! states at once. plonky2 1.1 hashes one state at a time with scalar code (its AVX2 version is
//! disabled); a Merkle tree hashes millions of independent states, which vectorize across lanes:
//! with AVX-512 (AVX2), lane `k` of vector `i` holds element `i` of state `k`, eight (four)
//! states per pass.

use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::poseidon::{HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, Poseidon, SPONGE_WIDTH};

use crate::F;
use crate::cpu::Simd;

/// A permutation state, as raw `u64`s (any value below 2^64; outputs are canonical).
pub type State = [u64; SPONGE_WIDTH];

/// Permutes every state in place with `simd`, which must be available (see [`Simd::is_available`]).
pub fn permute_all(states: &mut [State], simd: Simd) {
    assert!(simd.is_available(), "{simd:?} is not available on this CPU");
    let rest: &mut [State] = match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => {
            let mut chunks = states.chunks_exact_mut(crate::goldilocks::avx512::LANES);
            for chunk in &mut chunks {
                // SAFETY: AVX-512F is available (asserted above).
                unsafe { avx512::permute(chunk.try_into().expect("a chunk of eight")) };
            }
            chunks.into_remainder()
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => {
            let mut chunks = states.chunks_exact_mut(crate::goldilocks::avx2::LANES);
            for chunk in &mut chunks {
                // SAFETY: AVX2 is available (asserted above).
                unsafe { avx2::permute(chunk.try_into().expect("a chunk of four")) };
            }
            chunks.into_remainder()
        }
        _ => states,
    };
    for state in rest {
        *state = permute_scalar(*state);
    }
}

/// plonky2's own permutation of one state.
pub fn permute_scalar(state: State) -> State {
    let out = F::poseidon(state.map(F::from_noncanonical_u64));
    out.map(|x| x.to_canonical_u64())
}

/// One permutation with the values plonky2's `PoseidonGate` keeps as wires besides its inputs.
#[derive(Debug)]
pub(crate) struct GateTrace {
    /// `swap · (input[i + 4] - input[i])`.
    pub(crate) delta: [F; 4],
    /// The S-box inputs of the first full rounds but the first.
    pub(crate) full_sbox_0: [[F; SPONGE_WIDTH]; HALF_N_FULL_ROUNDS - 1],
    /// The first element's S-box input in each partial round (plonky2's fast form).
    pub(crate) partial_sbox: [F; N_PARTIAL_ROUNDS],
    /// The S-box inputs of the last full rounds.
    pub(crate) full_sbox_1: [[F; SPONGE_WIDTH]; HALF_N_FULL_ROUNDS],
    pub(crate) output: [F; SPONGE_WIDTH],
}

/// The permutation of `inputs`, its first four elements swapped with the next four when `swap`
/// is one, as plonky2's Poseidon gate generator computes it, step for step, but on the
/// permutation's own arithmetic (the MDS layers summed unreduced and reduced once) rather than
/// generic field operations (every product reduced).
pub(crate) fn gate_trace(inputs: [F; SPONGE_WIDTH], swap: F) -> GateTrace {
    let mut state = inputs;
    let delta = std::array::from_fn(|i| swap * (state[i + 4] - state[i]));
    if swap == F::ONE {
        for i in 0..4 {
            state.swap(i, i + 4);
        }
    }
    let mut full_sbox_0 = [[F::ZERO; SPONGE_WIDTH]; HALF_N_FULL_ROUNDS - 1];
    let mut round = 0;
    for r in 0..HALF_N_FULL_ROUNDS {
        F::constant_layer(&mut state, round);
        if r != 0 {
            full_sbox_0[r - 1] = state;
        }
        F::sbox_layer(&mut state);
        state = F::mds_layer(&state);
        round += 1;
    }
    F::partial_first_constant_layer::<F, 1>(&mut state);
    state = F::mds_partial_layer_init::<F, 1>(&state);
    let mut partial_sbox = [F::ZERO; N_PARTIAL_ROUNDS];
    for (r, sbox_input) in partial_sbox.iter_mut().enumerate() {
        *sbox_input = state[0];
        state[0] = F::sbox_monomial(state[0]);
        // As the gate's generator: the last partial round adds no constant.
        if r < N_PARTIAL_ROUNDS - 1 {
            state[0] += F::from_canonical_u64(<F as Poseidon>::FAST_PARTIAL_ROUND_CONSTANTS[r]);
        }
        state = F::mds_partial_layer_fast(&state, r);
    }
    round += N_PARTIAL_ROUNDS;
    let mut full_sbox_1 = [[F::ZERO; SPONGE_WIDTH]; HALF_N_FULL_ROUNDS];
    for sbox_inputs in &mut full_sbox_1 {
        F::constant_layer(&mut state, round);
        *sbox_inputs = state;
        F::sbox_layer(&mut state);
        state = F::mds_layer(&state);
        round += 1;
    }
    GateTrace { delta, full_sbox_0, partial_sbox, full_sbox_1, output: state }
}

/// The permutation on the lanes of one instruction set's registers (its lane primitives and
/// field operations in scope), every function compiled with target feature `$feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! permutation {
    ($feature:literal) => {
        /// x^7.
        #[inline]
        #[target_feature(enable = $feature)]
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
        #[target_feature(enable = $feature)]
        fn mds(state: &[V; SPONGE_WIDTH]) -> [V; SPONGE_WIDTH] {
            let high: [V; SPONGE_WIDTH] = std::array::from_fn(|i| shr32(state[i]));
            std::array::from_fn(|r| {
                let (mut lo_sum, mut hi_sum) = (zero(), zero());
                for i in 0..SPONGE_WIDTH {
                    let c = splat(<F as Poseidon>::MDS_MATRIX_CIRC[i]);
                    let j = (i + r) % SPONGE_WIDTH;
                    lo_sum = add64(lo_sum, mul32(state[j], c));
                    hi_sum = add64(hi_sum, mul32(high[j], c));
                }
                let d = <F as Poseidon>::MDS_MATRIX_DIAG[r];
                if d != 0 {
                    let c = splat(d);
                    lo_sum = add64(lo_sum, mul32(state[r], c));
                    hi_sum = add64(hi_sum, mul32(high[r], c));
                }
                // lo_sum + hi_sum * 2^32 as a 128-bit value.
                let (lo, carry) = carrying_add(lo_sum, shl32(hi_sum));
                reduce128(add64(shr32(hi_sum), carry), lo)
            })
        }

        #[inline]
        #[target_feature(enable = $feature)]
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
            #[target_feature(enable = $feature)]
            fn of(x: V) -> Self {
                Self { lo: x, hi: zero(), top: zero() }
            }

            /// Adds `a·b`.
            #[inline]
            #[target_feature(enable = $feature)]
            fn add_product(self, a: V, b: V) -> Self {
                let (hi, lo) = mul_wide(a, b);
                let one = splat(1);
                let sum_lo = add64(self.lo, lo);
                // A product's high half is at most 2^64 - 2, so adding the carry cannot wrap.
                let hi = mask_add(hi, lt(sum_lo, lo), one);
                let sum_hi = add64(self.hi, hi);
                Self { lo: sum_lo, hi: sum_hi, top: mask_add(self.top, lt(sum_hi, hi), one) }
            }

            /// The sum modulo p (below 2^64), using 2^128 = -2^32 (mod p). Sums of up to 2^32
            /// products keep `top·2^32` below 2^64.
            #[inline]
            #[target_feature(enable = $feature)]
            fn reduce(self) -> V {
                let r = reduce128(self.hi, self.lo);
                let t = shl32(self.top);
                // r - t, and on a borrow + p (= - EPSILON after the wrap); t is tiny, so once
                // suffices.
                mask_sub(sub64(r, t), lt(r, t), splat(EPSILON))
            }
        }

        /// The partial rounds in plonky2's fast form: one change of basis, then per round an S-box
        /// on the first element and a sparse matrix (first row `w_hat`, first column `v`). Every
        /// dot product is summed unreduced and reduced once.
        #[inline]
        #[target_feature(enable = $feature)]
        fn partial_rounds(state: &mut [V; SPONGE_WIDTH], round: &mut usize) {
            for (x, c) in state.iter_mut().zip(<F as Poseidon>::FAST_PARTIAL_FIRST_ROUND_CONSTANT) {
                *x = add(*x, splat(c));
            }
            let matrix = <F as Poseidon>::FAST_PARTIAL_ROUND_INITIAL_MATRIX;
            let mut next = *state;
            for (j, y) in next[1..].iter_mut().enumerate() {
                let mut sum = Sum::of(zero());
                for (x, row) in state[1..].iter().zip(&matrix) {
                    sum = sum.add_product(*x, splat(row[j]));
                }
                *y = sum.reduce();
            }
            *state = next;
            let mds00 = splat(<F as Poseidon>::MDS_MATRIX_CIRC[0] + <F as Poseidon>::MDS_MATRIX_DIAG[0]);
            for r in 0..N_PARTIAL_ROUNDS {
                let s0 = add(sbox(state[0]), splat(<F as Poseidon>::FAST_PARTIAL_ROUND_CONSTANTS[r]));
                let mut d = Sum::of(zero()).add_product(s0, mds00);
                let sparse = <F as Poseidon>::FAST_PARTIAL_ROUND_W_HATS[r].into_iter().zip(<F as Poseidon>::FAST_PARTIAL_ROUND_VS[r]);
                for (x, (w_hat, v)) in state[1..].iter_mut().zip(sparse) {
                    d = d.add_product(*x, splat(w_hat));
                    *x = Sum::of(*x).add_product(s0, splat(v)).reduce();
                }
                state[0] = d.reduce();
            }
            *round += N_PARTIAL_ROUNDS;
        }

        /// Permutes `LANES` states.
        #[target_feature(enable = $feature)]
        pub fn permute(states: &mut [State; LANES]) {
            // Transpose into lanes: vector i holds element i of every state.
            let mut state: [V; SPONGE_WIDTH] = std::array::from_fn(|i| load(&std::array::from_fn(|k| states[k][i])));
            let mut round = 0;
            full_rounds(&mut state, &mut round);
            partial_rounds(&mut state, &mut round);
            full_rounds(&mut state, &mut round);
            for (i, x) in state.iter().enumerate() {
                for (k, value) in store(canonical(*x)).into_iter().enumerate() {
                    states[k][i] = value;
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! Eight states per pass.
    use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, Poseidon};

    use super::{SPONGE_WIDTH, State};
    use crate::F;
    use crate::goldilocks::avx512::*;

    permutation!("avx512f");
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Four states per pass.
    use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, Poseidon};

    use super::{SPONGE_WIDTH, State};
    use crate::F;
    use crate::goldilocks::avx2::*;

    permutation!("avx2");
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
        for simd in Simd::ALL {
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
        for simd in Simd::ALL.into_iter().filter(|s| s.is_available()) {
            let mut states = [inputs[0], inputs[1]].repeat(8);
            permute_all(&mut states, simd);
            for pair in states.chunks(2) {
                assert_eq!(pair, [zeros, counting], "{simd:?}");
            }
        }
    }
}
