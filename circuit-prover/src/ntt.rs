//! Coset low-degree extensions of many polynomials at once, eight per AVX-512 pass or four per
//! AVX2 pass (lane `k` of element `j` is coefficient `j` of polynomial `k`), laid out as Merkle
//! leaves, equal to plonky2's `lde(rate_bits).coset_fft(shift)` transposed into rows in
//! bit-reversed order.
//!
//! An LDE at rate `2^-r` of a polynomial of `n` coefficients is its values on the coset `g·H`,
//! `|H| = n·2^r`. That coset is the union of the `2^r` cosets `g·w^c·K` of the order-`n`
//! subgroup `K = <w^(2^r)>`, so the LDE is `2^r` NTTs of size `n` (of the coefficients scaled by
//! powers of `g·w^c`) rather than one of size `n·2^r`, three-quarters of which would be zeros:
//! the value at natural index `c + 2^r·m` is NTT `c`'s value `m`.

use plonky2::field::polynomial::PolynomialCoeffs;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::util::log2_strict;

use crate::F;
use crate::cpu::Simd;

/// The coset LDE at rate `2^-rate_bits` of polynomials of one length, as Merkle leaves: row `j`
/// holds every polynomial's value at the point of natural index `reverse_bits(j)` (what
/// [`crate::ProverBackend::lde_rows`] returns), with `simd`. `None` for [`Simd::Scalar`] or a
/// width this CPU lacks.
pub fn lde_rows(polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, shift: F, simd: Simd) -> Option<Vec<Vec<F>>> {
    if !simd.is_available() {
        return None;
    }
    match simd {
        // SAFETY: (both) the CPU has the instruction set (checked above).
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => Some(unsafe { avx512::lde_rows(polynomials, rate_bits, shift) }),
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => Some(unsafe { avx2::lde_rows(polynomials, rate_bits, shift) }),
        _ => None,
    }
}

/// `n` powers of `x`: `1, x, x^2, ...`, canonical.
fn powers(x: F, n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    let mut p = F::ONE;
    for _ in 0..n {
        out.push(p.to_canonical_u64());
        p *= x;
    }
    out
}

/// The LDE on the lanes of one instruction set's registers (its lane primitives and field
/// operations in scope), every function compiled with target feature `$feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! lde {
    ($feature:literal) => {
        /// Vectors of one NTT that stay in a core's L2 cache (2^12 vectors, at most 256 KB):
        /// stages below this size run block by block, so most stages do not stream the whole
        /// buffer.
        const BLOCK_LOG: usize = 12;

        /// Leaf `j` is natural index `i = reverse_bits(j)` over `log n + rate_bits` bits; with
        /// `i = c + cosets·m`, that is leaf `reverse_bits(c)·n + reverse_bits(m)`. A DIF NTT leaves
        /// value `m` at position `reverse_bits(m)`, so coset `c`'s NTT output is, in order, the block
        /// of `n` leaves starting at `reverse_bits(c)·n`: each block is built by its own task.
        #[target_feature(enable = $feature)]
        pub fn lde_rows(polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, shift: F) -> Vec<Vec<F>> {
            let Some(first) = polynomials.first() else { return Vec::new() };
            let n = first.len();
            let log_n = log2_strict(n);
            assert!(polynomials.iter().all(|p| p.len() == n), "polynomials of one length");
            let root = F::primitive_root_of_unity(log_n + rate_bits);
            // Twiddles of the size-n NTT: w^j for j < n/2, w = root^(2^rate_bits) of order n.
            let twiddles = powers(root.exp_power_of_2(rate_bits), n / 2);
            let mut rows: Vec<Vec<F>> = vec![Vec::new(); n << rate_bits];
            rows.par_chunks_mut(n).enumerate().for_each(|(block, rows)| {
                let c = crate::reverse_bits(block, rate_bits);
                // The coefficients scale by powers of shift·root^c.
                let scale = powers(shift * root.exp_u64(c as u64), n);
                let groups: Vec<Vec<V>> = polynomials
                    .chunks(LANES)
                    .map(|group| {
                        let mut buf = load_scaled(group, &scale);
                        dif(&mut buf, &twiddles, log_n);
                        buf
                    })
                    .collect();
                for (i, row) in rows.iter_mut().enumerate() {
                    let mut values = Vec::with_capacity(polynomials.len());
                    for (g, buf) in groups.iter().enumerate() {
                        let lanes = store(canonical(buf[i]));
                        let used = LANES.min(polynomials.len() - g * LANES);
                        values.extend(lanes[..used].iter().map(|&v| F::from_canonical_u64(v)));
                    }
                    *row = values;
                }
            });
            rows
        }

        /// Element `j`: lanes of coefficient `j` of each polynomial of `group` times `scale[j]` (zero
        /// lanes past the group's end).
        #[target_feature(enable = $feature)]
        fn load_scaled(group: &[PolynomialCoeffs<F>], scale: &[u64]) -> Vec<V> {
            scale
                .iter()
                .enumerate()
                .map(|(j, &s)| {
                    let lanes: [u64; LANES] = std::array::from_fn(|k| group.get(k).map_or(0, |p| p.coeffs[j].to_noncanonical_u64()));
                    mul(load(&lanes), splat(s))
                })
                .collect()
        }

        /// In-place decimation-in-frequency NTT of size `2^log_n`: natural order in, bit-reversed
        /// order out. Stages of blocks wider than [`BLOCK_LOG`] pass over the whole buffer; the rest
        /// run block by block while the block is in cache.
        #[target_feature(enable = $feature)]
        fn dif(buf: &mut [V], twiddles: &[u64], log_n: usize) {
            let n = buf.len();
            let blocked = log_n.min(BLOCK_LOG);
            for stage in (blocked..log_n).rev() {
                dif_stage(buf, twiddles, n, stage);
            }
            for block in buf.chunks_exact_mut(1 << blocked) {
                for stage in (0..blocked).rev() {
                    dif_stage(block, twiddles, n, stage);
                }
            }
        }

        /// One DIF stage over `buf` (a whole number of `2^(stage+1)` butterfly blocks) of an NTT of
        /// size `n`: the stage's root is `w^(n / 2^(stage+1))`, whose `j`-th power is
        /// `twiddles[j·stride]`.
        #[target_feature(enable = $feature)]
        fn dif_stage(buf: &mut [V], twiddles: &[u64], n: usize, stage: usize) {
            let half = 1 << stage;
            let stride = n / (2 * half);
            for block in buf.chunks_exact_mut(2 * half) {
                let (lo, hi) = block.split_at_mut(half);
                for (j, (u, v)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let (a, b) = (*u, *v);
                    *u = add(a, b);
                    *v = if j == 0 { sub(a, b) } else { mul(sub(a, b), splat(twiddles[j * stride])) };
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use rayon::prelude::*;

    use super::*;
    use crate::goldilocks::avx512::*;

    lde!("avx512f");
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use rayon::prelude::*;

    use super::*;
    use crate::goldilocks::avx2::*;

    lde!("avx2");
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;

    use super::*;
    use crate::{Plonky2Backend, ProverBackend};

    #[test]
    fn lde_rows_equal_plonky2s() {
        for (log_n, count, rate_bits) in [(0, 1, 1), (1, 3, 1), (2, 8, 3), (4, 9, 2), (6, 17, 3), (10, 5, 3), (8, 2, 7)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << log_n))).collect();
            let expected = Plonky2Backend.lde_rows(&polynomials, rate_bits);
            for simd in [Simd::Avx512, Simd::Avx2] {
                match lde_rows(&polynomials, rate_bits, F::coset_shift(), simd) {
                    Some(ours) => assert_eq!(ours, expected, "{simd:?}: 2^{log_n} coefficients, {count} polynomials, rate bits {rate_bits}"),
                    None => eprintln!("{simd:?} is not available on this CPU: its comparison is skipped"),
                }
            }
        }
    }
}
