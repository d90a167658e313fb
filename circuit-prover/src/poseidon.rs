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

/// Where plonky2's `PoseidonGate` keeps its values (its own wire functions are private): the
/// inputs, the outputs, the swap flag, the four deltas `swap · (input[i + 4] - input[i])`, then
/// the S-box inputs of every round but the first: the first full rounds' (twelve each), the
/// partial rounds' (one each), the last full rounds' (twelve each).
pub(crate) mod gate_wires {
    use plonky2::hash::poseidon::{HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, SPONGE_WIDTH};

    pub(crate) const INPUT: usize = 0;
    pub(crate) const OUTPUT: usize = SPONGE_WIDTH;
    pub(crate) const SWAP: usize = 2 * SPONGE_WIDTH;
    pub(crate) const DELTA: usize = SWAP + 1;
    pub(crate) const FULL_SBOX_0: usize = DELTA + 4;
    pub(crate) const PARTIAL_SBOX: usize = FULL_SBOX_0 + SPONGE_WIDTH * (HALF_N_FULL_ROUNDS - 1);
    pub(crate) const FULL_SBOX_1: usize = PARTIAL_SBOX + N_PARTIAL_ROUNDS;
    /// How many wires the gate takes.
    pub(crate) const COUNT: usize = FULL_SBOX_1 + SPONGE_WIDTH * HALF_N_FULL_ROUNDS;
    /// The wires from the deltas on: every value the gate's generator sets but its outputs.
    pub(crate) const FROM_DELTA: usize = COUNT - DELTA;
    /// The first wire of the S-box inputs of `round` (1 to 29; round 0's are not kept).
    pub(crate) const fn sbox(round: usize) -> usize {
        match round {
            r if r < HALF_N_FULL_ROUNDS => FULL_SBOX_0 + SPONGE_WIDTH * (r - 1),
            r if r < HALF_N_FULL_ROUNDS + N_PARTIAL_ROUNDS => PARTIAL_SBOX + r - HALF_N_FULL_ROUNDS,
            r => FULL_SBOX_1 + SPONGE_WIDTH * (r - HALF_N_FULL_ROUNDS - N_PARTIAL_ROUNDS),
        }
    }
}

/// How many constraints plonky2's `PoseidonGate` has: the swap flag's, the deltas', one per kept
/// S-box input and one per output.
pub(crate) const GATE_CONSTRAINTS: usize = 1 + 4 + SPONGE_WIDTH * (2 * HALF_N_FULL_ROUNDS - 1) + N_PARTIAL_ROUNDS + SPONGE_WIDTH;

/// plonky2's `PoseidonGate` constraints at `points` points, on the lanes of `simd`: the values
/// of the gate's `eval_unfiltered_base_batch`, for any wire values (not only a permutation's),
/// `wires` and the result laid out as plonky2's batches are (wire or constraint `i` of point `j`
/// at `i·points + j`). plonky2 evaluates the gate one point at a time with generic field code
/// (its MDS layers 144 reduced products each); this is the permutation's own lane arithmetic, the
/// partial rounds in their plain form, which gives the same values as plonky2's fast form since
/// both are the same linear maps around the same S-boxes. `None` for [`Simd::Scalar`], where
/// plonky2's evaluation serves.
pub(crate) fn gate_constraints(wires: &[F], points: usize, simd: Simd) -> Option<Vec<F>> {
    assert!(wires.len() >= gate_wires::COUNT * points, "the Poseidon gate's wires at every point");
    let mut out = vec![F::ZERO; GATE_CONSTRAINTS * points];
    match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if simd.is_available() => {
            for first in (0..points).step_by(crate::goldilocks::avx512::LANES) {
                // SAFETY: AVX-512F is available (checked above).
                unsafe { avx512::gate_constraints(wires, points, first, &mut out) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 if simd.is_available() => {
            for first in (0..points).step_by(crate::goldilocks::avx2::LANES) {
                // SAFETY: AVX2 is available (checked above).
                unsafe { avx2::gate_constraints(wires, points, first, &mut out) };
            }
        }
        _ => return None,
    }
    Some(out)
}

/// One permutation with the values plonky2's `PoseidonGate` keeps as wires besides its inputs.
#[derive(Debug, PartialEq)]
pub(crate) struct GateTrace {
    /// Wires `DELTA` to `COUNT - 1` (see [`gate_wires`]): the deltas
    /// `swap · (input[i + 4] - input[i])`, then the S-box inputs of every round but the first (in
    /// the partial rounds, plonky2's fast form's first element).
    pub(crate) kept: [F; gate_wires::FROM_DELTA],
    pub(crate) output: [F; SPONGE_WIDTH],
}

/// The permutation of `inputs`, its first four elements swapped with the next four when `swap`
/// is one, as plonky2's Poseidon gate generator computes it, step for step, but on the
/// permutation's own arithmetic (the MDS layers summed unreduced and reduced once) rather than
/// generic field operations (every product reduced).
pub(crate) fn gate_trace(inputs: [F; SPONGE_WIDTH], swap: F) -> GateTrace {
    use gate_wires::{DELTA, sbox};
    let mut kept = [F::ZERO; gate_wires::FROM_DELTA];
    let mut state = inputs;
    for i in 0..4 {
        kept[i] = swap * (state[i + 4] - state[i]);
    }
    if swap == F::ONE {
        for i in 0..4 {
            state.swap(i, i + 4);
        }
    }
    let mut round = 0;
    for _ in 0..HALF_N_FULL_ROUNDS {
        F::constant_layer(&mut state, round);
        if round != 0 {
            kept[sbox(round) - DELTA..][..SPONGE_WIDTH].copy_from_slice(&state);
        }
        F::sbox_layer(&mut state);
        state = F::mds_layer(&state);
        round += 1;
    }
    F::partial_first_constant_layer::<F, 1>(&mut state);
    state = F::mds_partial_layer_init::<F, 1>(&state);
    for r in 0..N_PARTIAL_ROUNDS {
        kept[sbox(round) - DELTA] = state[0];
        state[0] = F::sbox_monomial(state[0]);
        // As the gate's generator: the last partial round adds no constant.
        if r < N_PARTIAL_ROUNDS - 1 {
            state[0] += F::from_canonical_u64(<F as Poseidon>::FAST_PARTIAL_ROUND_CONSTANTS[r]);
        }
        state = F::mds_partial_layer_fast(&state, r);
        round += 1;
    }
    for _ in 0..HALF_N_FULL_ROUNDS {
        F::constant_layer(&mut state, round);
        kept[sbox(round) - DELTA..][..SPONGE_WIDTH].copy_from_slice(&state);
        F::sbox_layer(&mut state);
        state = F::mds_layer(&state);
        round += 1;
    }
    GateTrace { kept, output: state }
}

/// How many S-box inputs plonky2's Poseidon gate keeps as wires: every round's but the first's.
const KEPT_SBOXES: usize = gate_wires::COUNT - gate_wires::FULL_SBOX_0;

/// [`gate_trace`] of each gate (its inputs and swap flag), a lane-full of gates per pass on
/// `simd` where it is available, one at a time otherwise.
pub(crate) fn gate_traces(gates: &[([F; SPONGE_WIDTH], F)], simd: Simd) -> Vec<GateTrace> {
    match simd {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is available (checked by the guard).
        Simd::Avx512 if simd.is_available() => gates.chunks(crate::goldilocks::avx512::LANES).flat_map(|chunk| unsafe { avx512::gate_traces(chunk) }).collect(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 is available (checked by the guard).
        Simd::Avx2 if simd.is_available() => gates.chunks(crate::goldilocks::avx2::LANES).flat_map(|chunk| unsafe { avx2::gate_traces(chunk) }).collect(),
        _ => gates.iter().map(|&(inputs, swap)| gate_trace(inputs, swap)).collect(),
    }
}

/// The permutation on the lanes of one instruction set's registers (its lane primitives and
/// field operations in scope), every function compiled with target feature `$feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! permutation {
    ($feature:literal) => {
        /// x^7 of each of `xs` (the whole state in full rounds, its first element in partial
        /// ones), one product at a time across them (every square, then every cube, every
        /// fourth power, every seventh power): in a full round, twelve independent products in
        /// flight where element by element each is a chain of three dependent ones.
        #[inline]
        #[target_feature(enable = $feature)]
        fn sbox_layer<const N: usize>(xs: &mut [V; N]) {
            let mut x2 = [zero(); N];
            for i in 0..N {
                x2[i] = mul(xs[i], xs[i]);
            }
            for i in 0..N {
                xs[i] = mul(xs[i], x2[i]);
            }
            for i in 0..N {
                x2[i] = mul(x2[i], x2[i]);
            }
            for i in 0..N {
                xs[i] = mul(xs[i], x2[i]);
            }
        }

        /// `x·c` for a small constant `c` (the frequency-domain MDS constants), as shifts and adds
        /// on two's-complement lanes.
        #[inline]
        #[target_feature(enable = $feature)]
        fn mul_small<const C: i64>(x: V) -> V {
            let m = match C.unsigned_abs() {
                1 => x,
                2 => shl::<1>(x),
                3 => add64(shl::<1>(x), x),
                4 => shl::<2>(x),
                8 => shl::<3>(x),
                16 => shl::<4>(x),
                17 => add64(shl::<4>(x), x),
                32 => shl::<5>(x),
                _ => unreachable!("no MDS constant {}", C),
            };
            if C < 0 { sub64(zero(), m) } else { m }
        }

        /// A real 4-point FFT of 64-bit integers (plonky2's `fft4_real`).
        #[inline]
        #[target_feature(enable = $feature)]
        fn fft4(x: [V; 4]) -> (V, (V, V), V) {
            let (z0, z2) = (add64(x[0], x[2]), sub64(x[0], x[2]));
            let (z1, z3) = (add64(x[1], x[3]), sub64(x[1], x[3]));
            (add64(z0, z1), (z2, sub64(zero(), z3)), sub64(z0, z1))
        }

        /// Its inverse, times 4 (plonky2's `ifft4_real_unreduced`).
        #[inline]
        #[target_feature(enable = $feature)]
        fn ifft4(y: (V, (V, V), V)) -> [V; 4] {
            let (z0, z1) = (add64(y.0, y.2), sub64(y.0, y.2));
            let (z2, z3) = (y.1.0, sub64(zero(), y.1.1));
            [add64(z0, z2), add64(z1, z3), sub64(z0, z2), sub64(z1, z3)]
        }

        /// The first frequency block, by `[16, 32, 16]`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn block1(x: [V; 3]) -> [V; 3] {
            let [x0, x1, x2] = x;
            [add64(shl::<4>(add64(x0, x1)), shl::<5>(x2)), add64(shl::<5>(x0), shl::<4>(add64(x1, x2))), add64(shl::<4>(add64(x0, x2)), shl::<5>(x1))]
        }

        /// `x·y` for a complex `x` and a constant `y = (R, I)` by Karatsuba: the real and
        /// imaginary parts' products and the product of their sums.
        #[inline]
        #[target_feature(enable = $feature)]
        fn karatsuba<const R: i64, const I: i64, const S: i64>(x: (V, V), x_sum: V) -> (V, V) {
            const { assert!(S == R + I, "S is the sum of the constant's parts") };
            let (rr, ii) = (mul_small::<R>(x.0), mul_small::<I>(x.1));
            (sub64(rr, ii), sub64(sub64(mul_small::<S>(x_sum), rr), ii))
        }

        /// The second frequency block, by `[(2, -1), (-4, 1), (16, 1)]` (complex).
        #[inline]
        #[target_feature(enable = $feature)]
        fn block2(x: [(V, V); 3]) -> [(V, V); 3] {
            let s = [add64(x[0].0, x[0].1), add64(x[1].0, x[1].1), add64(x[2].0, x[2].1)];
            let z0 = complex_add(karatsuba::<2, -1, 1>(x[0], s[0]), times_minus_i(complex_add(karatsuba::<16, 1, 17>(x[1], s[1]), karatsuba::<-4, 1, -3>(x[2], s[2]))));
            let z1 = complex_add(complex_add(karatsuba::<-4, 1, -3>(x[0], s[0]), karatsuba::<2, -1, 1>(x[1], s[1])), times_minus_i(karatsuba::<16, 1, 17>(x[2], s[2])));
            let z2 = complex_add(complex_add(karatsuba::<16, 1, 17>(x[0], s[0]), karatsuba::<-4, 1, -3>(x[1], s[1])), karatsuba::<2, -1, 1>(x[2], s[2]));
            [z0, z1, z2]
        }

        /// A complex number times -i.
        #[inline]
        #[target_feature(enable = $feature)]
        fn times_minus_i((r, i): (V, V)) -> (V, V) {
            (i, sub64(zero(), r))
        }

        /// The sum of two complex numbers.
        #[inline]
        #[target_feature(enable = $feature)]
        fn complex_add((ar, ai): (V, V), (br, bi): (V, V)) -> (V, V) {
            (add64(ar, br), add64(ai, bi))
        }

        /// The third frequency block, by `[-1, -8, 2]`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn block3(x: [V; 3]) -> [V; 3] {
            let [x0, x1, x2] = x;
            [
                sub64(shl::<3>(x2), add64(x0, shl::<1>(x1))),
                sub64(zero(), add64(add64(shl::<3>(x0), x1), shl::<1>(x2))),
                sub64(shl::<1>(x0), add64(shl::<3>(x1), x2)),
            ]
        }

        /// The circulant part of the MDS matrix times twelve values below 2^32, exactly (below
        /// 2^40), through a 3 x 4 split FFT whose pointwise products are by small constants
        /// (plonky2's `mds_multiply_freq`): adds and shifts, where the matrix itself takes 144
        /// multiplications.
        #[inline]
        #[target_feature(enable = $feature)]
        fn circulant(s: [V; SPONGE_WIDTH]) -> [V; SPONGE_WIDTH] {
            let (u0, u1, u2) = fft4([s[0], s[3], s[6], s[9]]);
            let (u4, u5, u6) = fft4([s[1], s[4], s[7], s[10]]);
            let (u8, u9, u10) = fft4([s[2], s[5], s[8], s[11]]);
            let [v0, v4, v8] = block1([u0, u4, u8]);
            let [v1, v5, v9] = block2([u1, u5, u9]);
            let [v2, v6, v10] = block3([u2, u6, u10]);
            let [s0, s3, s6, s9] = ifft4((v0, v1, v2));
            let [s1, s4, s7, s10] = ifft4((v4, v5, v6));
            let [s2, s5, s8, s11] = ifft4((v8, v9, v10));
            [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11]
        }

        /// The MDS layer, then `constants` added (the next round's, folded in before the one
        /// reduction). Each input's low and high 32 bits go through the circulant apart, and the
        /// diagonal's single entry is added to both halves.
        #[inline]
        #[target_feature(enable = $feature)]
        fn mds_then_add(state: &[V; SPONGE_WIDTH], constants: &[u64; SPONGE_WIDTH]) -> [V; SPONGE_WIDTH] {
            const { assert!(matches!(<F as Poseidon>::MDS_MATRIX_DIAG, [8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "the diagonal is added as 8·state[0]") };
            // Loops rather than closures throughout: a closure does not inherit the target feature,
            // so its vector code would not inline.
            let (mut lo, mut hi) = ([zero(); SPONGE_WIDTH], [zero(); SPONGE_WIDTH]);
            for i in 0..SPONGE_WIDTH {
                lo[i] = and64(state[i], splat(EPSILON));
                hi[i] = shr32(state[i]);
            }
            let (mut l, mut h) = (circulant(lo), circulant(hi));
            l[0] = add64(l[0], shl::<3>(lo[0]));
            h[0] = add64(h[0], shl::<3>(hi[0]));
            let mut out = [zero(); SPONGE_WIDTH];
            for r in 0..SPONGE_WIDTH {
                // l + h·2^32 with the constant's halves added to l and h (each still below 2^42).
                let l = add64(l[r], splat(constants[r] & EPSILON));
                let h = add64(h[r], splat(constants[r] >> 32));
                out[r] = combine_halves(l, h);
            }
            out
        }

        /// `l + h·2^32` modulo p, for `l` and `h` below 2^42: with `h = h_hi·2^32 + h_lo`, that is
        /// `h_lo·2^32 + (l + h_hi·(2^32 - 1))` (2^64 = 2^32 - 1 modulo p), a sum of a 64-bit value
        /// and one below 2^43 that wraps past 2^64 at most once (a wrap loses 2^64 = 2^32 - 1).
        /// Half the work of a general 128-bit reduction.
        #[inline]
        #[target_feature(enable = $feature)]
        fn combine_halves(l: V, h: V) -> V {
            let h_hi = shr32(h);
            let small = sub64(add64(l, shl::<32>(h_hi)), h_hi);
            let sum = add64(shl::<32>(h), small);
            mask_add(sum, lt(sum, small), splat(EPSILON))
        }

        /// [`combine_halves`] of `LANES` pairs `(l, h)`, for its test.
        #[cfg(test)]
        #[target_feature(enable = $feature)]
        pub(super) fn combine_halves_lanes(pairs: &[(u64, u64)]) -> [u64; LANES] {
            let (l, h): ([u64; LANES], [u64; LANES]) = (std::array::from_fn(|k| pairs[k].0), std::array::from_fn(|k| pairs[k].1));
            store(combine_halves(load(&l), load(&h)))
        }

        /// The permutation's rounds on `state`, round 0's constants added. Every round is an
        /// S-box layer (the whole state in full rounds, its first element in partial ones) and the
        /// MDS layer, into which the next round's constants are added. plonky2's fast form of the
        /// partial rounds trades their MDS layers for dot products with 64-bit constants, a trade
        /// that loses against this MDS layer.
        ///
        /// The S-box inputs plonky2's Poseidon gate keeps as wires (every round's but the first's)
        /// are handled as `kept` says. One function for the permutation, the gate's constraints
        /// and its witness, so that the MDS layer has one caller and inlines (a target-feature
        /// function cannot be `#[inline(always)]`).
        #[target_feature(enable = $feature)]
        fn rounds(state: &mut [V; SPONGE_WIDTH], mut kept: Kept<'_, '_>) {
            for round in 0..N_ROUNDS {
                let partial = (HALF_N_FULL_ROUNDS..HALF_N_FULL_ROUNDS + N_PARTIAL_ROUNDS).contains(&round);
                if round != 0 {
                    let (sboxes, wire) = (if partial { 1 } else { SPONGE_WIDTH }, super::gate_wires::sbox(round));
                    match &mut kept {
                        Kept::Ignored => {}
                        Kept::Constrained(points) => {
                            for (i, x) in state[..sboxes].iter_mut().enumerate() {
                                let kept = points.wire(wire + i);
                                points.constrain(sub(*x, kept));
                                *x = kept;
                            }
                        }
                        Kept::Recorded(trace) => trace[wire - super::gate_wires::FULL_SBOX_0..][..sboxes].copy_from_slice(&state[..sboxes]),
                    }
                }
                match partial {
                    true => sbox_layer::<1>((&mut state[..1]).try_into().expect("the first element")),
                    false => sbox_layer(state),
                }
                let next: &[u64; SPONGE_WIDTH] = match round + 1 {
                    N_ROUNDS => &[0; SPONGE_WIDTH],
                    next => ALL_ROUND_CONSTANTS[next * SPONGE_WIDTH..][..SPONGE_WIDTH].try_into().expect("a round's constants"),
                };
                *state = mds_then_add(state, next);
            }
        }

        /// What [`rounds`] does with the S-box inputs plonky2's Poseidon gate keeps as wires.
        enum Kept<'a, 'b> {
            /// Nothing: the permutation alone.
            Ignored,
            /// Each compared with its wire, the difference written as a constraint, and replaced
            /// by it.
            Constrained(&'a mut Points<'b>),
            /// Each recorded at its wire's place, counted from the first kept one.
            Recorded(&'a mut [V; super::KEPT_SBOXES]),
        }

        /// Permutes `LANES` states.
        #[target_feature(enable = $feature)]
        pub fn permute(states: &mut [State; LANES]) {
            // Transpose into lanes: vector i holds element i of every state.
            let mut state = [zero(); SPONGE_WIDTH];
            for (i, x) in state.iter_mut().enumerate() {
                let mut lanes = [0; LANES];
                for (lane, s) in lanes.iter_mut().zip(states.iter()) {
                    *lane = s[i];
                }
                *x = add(load(&lanes), splat(ALL_ROUND_CONSTANTS[i]));
            }
            rounds(&mut state, Kept::Ignored);
            for (i, x) in state.iter().enumerate() {
                for (k, value) in store(canonical(*x)).into_iter().enumerate() {
                    states[k][i] = value;
                }
            }
        }

        /// plonky2's `PoseidonGate` constraints at up to `LANES` points, `first` onwards, in its
        /// order: the swap flag binary, the deltas, each kept S-box input equal to the state there
        /// ([`rounds`]), the outputs equal to the last state.
        #[target_feature(enable = $feature)]
        pub fn gate_constraints(wires: &[F], points: usize, first: usize, out: &mut [F]) {
            use super::gate_wires::{DELTA, INPUT, OUTPUT, SWAP};
            let mut p = Points::new(wires, &[], out, points, first);
            let swap = p.wire(SWAP);
            p.constrain(mul(swap, sub(swap, splat(1))));
            let mut state = [zero(); SPONGE_WIDTH];
            for (i, x) in state.iter_mut().enumerate() {
                *x = p.wire(INPUT + i);
            }
            for i in 0..4 {
                let (lhs, rhs, delta) = (state[i], state[i + 4], p.wire(DELTA + i));
                p.constrain(sub(mul(swap, sub(rhs, lhs)), delta));
                state[i] = add(lhs, delta);
                state[i + 4] = sub(rhs, delta);
            }
            for (i, x) in state.iter_mut().enumerate() {
                *x = add(*x, splat(ALL_ROUND_CONSTANTS[i]));
            }
            rounds(&mut state, Kept::Constrained(&mut p));
            for (i, &x) in state.iter().enumerate() {
                let output = p.wire(OUTPUT + i);
                p.constrain(sub(x, output));
            }
            debug_assert_eq!(p.constraints(), super::GATE_CONSTRAINTS);
        }

        /// [`super::gate_trace`] for up to `LANES` gates, each given as its inputs and swap flag.
        #[target_feature(enable = $feature)]
        pub fn gate_traces(gates: &[([F; SPONGE_WIDTH], F)]) -> Vec<super::GateTrace> {
            use super::gate_wires::DELTA;
            assert!(gates.len() <= LANES, "at most a lane per gate");
            let mut state = [zero(); SPONGE_WIDTH];
            for (i, x) in state.iter_mut().enumerate() {
                let mut lanes = [0; LANES];
                for (lane, (inputs, _)) in lanes.iter_mut().zip(gates) {
                    *lane = inputs[i].to_noncanonical_u64();
                }
                *x = load(&lanes);
            }
            // The deltas are `swap · (input[i + 4] - input[i])` whatever the flag; the halves are
            // swapped only when it is one (as plonky2's generator does for a flag neither 0 nor 1).
            let (mut swap, mut swapped) = ([0; LANES], [0; LANES]);
            for ((flag, one), (_, s)) in swap.iter_mut().zip(swapped.iter_mut()).zip(gates) {
                (*flag, *one) = (s.to_noncanonical_u64(), u64::from(*s == F::ONE));
            }
            let (swap, swapped) = (load(&swap), load(&swapped));
            let mut delta = [zero(); 4];
            for i in 0..4 {
                let (lhs, rhs) = (state[i], state[i + 4]);
                let difference = sub(rhs, lhs);
                delta[i] = mul(swap, difference);
                let moved = mul(swapped, difference);
                state[i] = add(lhs, moved);
                state[i + 4] = sub(rhs, moved);
            }
            for (i, x) in state.iter_mut().enumerate() {
                *x = add(*x, splat(ALL_ROUND_CONSTANTS[i]));
            }
            let mut kept = [zero(); super::KEPT_SBOXES];
            rounds(&mut state, Kept::Recorded(&mut kept));
            // Back out of the lanes, canonical, in the gate's wire order.
            let mut traces: Vec<super::GateTrace> = (0..gates.len()).map(|_| super::GateTrace { kept: [F::ZERO; super::gate_wires::FROM_DELTA], output: [F::ZERO; SPONGE_WIDTH] }).collect();
            for (wire, &x) in (DELTA..).zip(delta.iter().chain(&kept)) {
                for (trace, value) in traces.iter_mut().zip(store(canonical(x))) {
                    trace.kept[wire - DELTA] = F::from_canonical_u64(value);
                }
            }
            for (i, &x) in state.iter().enumerate() {
                for (trace, value) in traces.iter_mut().zip(store(canonical(x))) {
                    trace.output[i] = F::from_canonical_u64(value);
                }
            }
            traces
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! Eight states per pass.
    use plonky2::field::types::{Field, PrimeField64};
    use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, N_ROUNDS, Poseidon};

    use super::{SPONGE_WIDTH, State};
    use crate::F;
    use crate::gates::avx512::Points;
    use crate::goldilocks::avx512::*;

    permutation!("avx512f");
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Four states per pass.
    use plonky2::field::types::{Field, PrimeField64};
    use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, HALF_N_FULL_ROUNDS, N_PARTIAL_ROUNDS, N_ROUNDS, Poseidon};

    use super::{SPONGE_WIDTH, State};
    use crate::F;
    use crate::gates::avx2::Points;
    use crate::goldilocks::avx2::*;

    permutation!("avx2");
}

#[cfg(test)]
pub(crate) mod tests {
    use plonky2::field::types::Field64;
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

    /// Sums of the MDS layer's halves (`l + h·2^32`, `l` and `h` below 2^42) to reduce, with
    /// their values modulo p: edges, sums that wrap past 2^64 once `h`'s high bits are folded in
    /// (random states almost never give one), and random ones; a multiple of eight.
    pub(crate) fn mds_halves_cases() -> Vec<((u64, u64), u64)> {
        const BELOW: u64 = 1 << 42;
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let mut pairs = vec![(0, 0), (BELOW - 1, BELOW - 1), (0, BELOW - 1), (BELOW - 1, 0)];
        pairs.extend((0..60).map(|_| (rng.gen_range(BELOW / 2..BELOW), (rng.gen_range(0..1 << 10) << 32) | (0xFFFF_FFFF - rng.gen_range(0..1 << 8)))));
        pairs.extend((0..64).map(|_| (rng.gen_range(0..BELOW), rng.gen_range(0..BELOW))));
        let p = u128::from(F::ORDER);
        let wraps = pairs.iter().filter(|&&(l, h)| (h << 32).checked_add(l + (h >> 32) * 0xFFFF_FFFF).is_none()).count();
        assert!(wraps > 10, "{wraps} sums wrap");
        pairs.into_iter().map(|(l, h)| ((l, h), ((u128::from(l) + (u128::from(h) << 32)) % p) as u64)).collect()
    }

    #[test]
    fn the_mds_layers_halves_reduce_as_128_bit_arithmetic() {
        let cases = mds_halves_cases();
        let (pairs, expected): (Vec<(u64, u64)>, Vec<u64>) = cases.into_iter().unzip();
        for simd in Simd::each_available() {
            let ours: Vec<u64> = match simd {
                // SAFETY: (both) the CPU has the instruction set (each_available).
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => pairs.chunks_exact(crate::goldilocks::avx512::LANES).flat_map(|c| unsafe { avx512::combine_halves_lanes(c) }).collect(),
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => pairs.chunks_exact(crate::goldilocks::avx2::LANES).flat_map(|c| unsafe { avx2::combine_halves_lanes(c) }).collect(),
                _ => continue,
            };
            assert_eq!(ours.into_iter().map(|x| x % F::ORDER).collect::<Vec<_>>(), expected, "{simd:?}");
        }
    }

    #[test]
    fn every_path_permutes_exactly_as_plonky2() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for simd in Simd::each_available() {
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
    fn gate_traces_on_every_path_are_the_scalar_trace() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for simd in Simd::each_available() {
            for n in [0, 1, 3, 8, 9, 19] {
                // Any u64 is an element (unreduced ones too); swap flags 0, 1 and neither.
                let gates: Vec<([F; SPONGE_WIDTH], F)> = (0..n)
                    .map(|k| {
                        let swap = match k % 3 {
                            0 => F::ZERO,
                            1 => F::ONE,
                            _ => plonky2::field::goldilocks_field::GoldilocksField(rng.r#gen()),
                        };
                        (std::array::from_fn(|_| plonky2::field::goldilocks_field::GoldilocksField(rng.r#gen())), swap)
                    })
                    .collect();
                let theirs: Vec<GateTrace> = gates.iter().map(|&(inputs, swap)| gate_trace(inputs, swap)).collect();
                assert_eq!(gate_traces(&gates, simd), theirs, "{simd:?}, {n} gates");
            }
        }
    }

    /// `points` points' wires for the Poseidon gate, batch layout: each an honest trace of
    /// random inputs (swapped at odd points), or random values throughout.
    fn gate_wires(points: usize, honest: bool, rng: &mut impl Rng) -> Vec<F> {
        let mut wires = vec![F::ZERO; gate_wires::COUNT * points];
        for (j, state) in random_states(points, rng).into_iter().enumerate() {
            let mut set = |wire: usize, value: F| wires[wire * points + j] = value;
            if !honest {
                for (wire, &x) in state.iter().cycle().enumerate().take(gate_wires::COUNT) {
                    set(wire, F::from_noncanonical_u64(x ^ (wire as u64).rotate_left(17)));
                }
                continue;
            }
            let (inputs, swap) = (state.map(F::from_noncanonical_u64), F::from_bool(j % 2 == 1));
            let trace = gate_trace(inputs, swap);
            for (i, (&input, &output)) in inputs.iter().zip(&trace.output).enumerate() {
                set(gate_wires::INPUT + i, input);
                set(gate_wires::OUTPUT + i, output);
            }
            set(gate_wires::SWAP, swap);
            for (wire, &x) in (gate_wires::DELTA..).zip(&trace.kept) {
                set(wire, x);
            }
        }
        wires
    }

    /// plonky2's own evaluation of the gate's constraints, batch layout.
    fn plonky2_gate_constraints(wires: &[F], points: usize) -> Vec<F> {
        use plonky2::gates::gate::Gate;
        use plonky2::gates::poseidon::PoseidonGate;
        use plonky2::hash::hash_types::HashOut;
        use plonky2::plonk::vars::EvaluationVarsBaseBatch;
        let hash = HashOut::ZERO;
        PoseidonGate::<F, 2>::new().eval_unfiltered_base_batch(EvaluationVarsBaseBatch::new(points, &[], wires, &hash))
    }

    #[test]
    fn gate_constraints_on_lanes_are_plonky2s_for_any_wires() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for simd in Simd::ALL {
            if simd == Simd::Scalar || !simd.is_available() {
                eprintln!("{simd:?}: no lanes on this CPU, so no comparison (plonky2 evaluates the gate)");
                assert!(simd != Simd::Scalar || gate_constraints(&[], 0, simd).is_none());
                continue;
            }
            for points in [1, 7, 8, 9, 32, 37] {
                for honest in [true, false] {
                    let wires = gate_wires(points, honest, &mut rng);
                    let ours = gate_constraints(&wires, points, simd).expect("lanes");
                    assert_eq!(ours, plonky2_gate_constraints(&wires, points), "{simd:?}, {points} points, honest {honest}");
                    assert_eq!(ours.iter().all(|c| *c == F::ZERO), honest, "an honest trace, and only one, satisfies the gate");
                }
            }
        }
    }

    #[test]
    fn a_wrong_wire_breaks_its_own_constraint() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let Some(simd) = [Simd::Avx512, Simd::Avx2].into_iter().find(|s| s.is_available()) else {
            eprintln!("no SIMD lanes on this CPU: skipped");
            return;
        };
        let points = 9;
        // Each kept S-box input (and the deltas, and the outputs) is compared by one constraint,
        // in wire order after the swap flag's.
        for (wire, constraint) in [(gate_wires::DELTA + 2, 3), (gate_wires::FULL_SBOX_0 + 5, 10), (gate_wires::PARTIAL_SBOX + 21, 62), (gate_wires::FULL_SBOX_1, 63), (gate_wires::OUTPUT + 11, 122)] {
            let mut wires = gate_wires(points, true, &mut rng);
            wires[wire * points + 4] += F::ONE;
            let ours = gate_constraints(&wires, points, simd).expect("lanes");
            assert_eq!(ours, plonky2_gate_constraints(&wires, points), "wire {wire}");
            assert_ne!(ours[constraint * points + 4], F::ZERO, "wire {wire} checked by constraint {constraint}");
            assert!(ours.iter().enumerate().all(|(k, c)| k % points == 4 || *c == F::ZERO), "other points still hold");
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
