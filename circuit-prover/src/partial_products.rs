//! The permutation argument's factors, multiplied a chunk at a time: per trace row and chunk of
//! routed wires, the product of the numerators `wire + beta·k_j·x + gamma` and of the
//! denominators `wire + beta·sigma_j + gamma`. About 340 field products per row and challenge,
//! the bulk of the partial products' time on the CPU, and of the permutation argument's terms in
//! a quotient evaluated on the CPU; with SIMD a register's lanes hold consecutive rows, whose
//! wires and points lie side by side. A backend that holds the wires' values where it committed
//! them (the CUDA backend) computes Z and the partial products there instead, from
//! [`PermutationInputs`].

use crate::F;
use crate::cpu::Simd;
use crate::quotient::CapName;

/// What a backend takes to compute the permutation argument's Z and partial products where it
/// committed the wires: the wires commitment's name (the backend kept the values it committed
/// to), the circuit's sigmas on the subgroup (named by its constants-and-sigmas commitment, for
/// the backend to keep), and the transcript's challenges.
pub struct PermutationInputs<'a> {
    pub wires: CapName,
    pub constants_sigmas: CapName,
    /// Each routed wire's sigma on the subgroup.
    pub sigmas: &'a [Vec<F>],
    pub degree_bits: usize,
    /// Factors per chunk (the quotient degree factor).
    pub chunk: usize,
    pub betas: &'a [F],
    pub gammas: &'a [F],
    /// `beta·k_j` per repetition and routed wire.
    pub beta_ks: &'a [Vec<F>],
}

/// A repetition whose Z does not return to one: the witness breaks a copy constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenCopyConstraint {
    pub challenge: usize,
}

/// One challenge's factors over rows: a circuit's trace (the partial products) or a batch of
/// the quotient's evaluation points.
pub(crate) struct Factors<'a> {
    /// The wires' values, column by column (only the routed ones are read).
    pub(crate) wires: &'a [&'a [F]],
    /// The sigmas' values, row by row.
    pub(crate) sigmas: &'a [&'a [F]],
    /// The rows' points.
    pub(crate) points: &'a [F],
    pub(crate) beta: F,
    pub(crate) gamma: F,
    /// `beta·k_j` per routed wire.
    pub(crate) beta_ks: &'a [F],
    /// Factors per chunk (the quotient degree factor).
    pub(crate) chunk: usize,
}

/// `wire + beta·k_j·x + gamma`: a factor of the grand product's numerator (`k_j·x` is wire `j`'s
/// identity).
fn numerator(wire: F, beta_k: F, x: F, gamma: F) -> F {
    wire + beta_k * x + gamma
}

/// `wire + beta·sigma + gamma`: a factor of the grand product's denominator.
fn denominator(wire: F, beta: F, sigma: F, gamma: F) -> F {
    wire + beta * sigma + gamma
}

impl Factors<'_> {
    /// Chunks per row.
    pub(crate) fn width(&self) -> usize {
        self.beta_ks.len().div_ceil(self.chunk)
    }

    /// The routed wires whose factors chunk `c` multiplies.
    fn chunk_wires(&self, c: usize) -> std::ops::Range<usize> {
        c * self.chunk..((c + 1) * self.chunk).min(self.beta_ks.len())
    }

    /// For the rows from `first` on, `numerators.len() / width` of them: each row's chunk
    /// products, row by row, into `numerators` and `denominators`.
    pub(crate) fn chunk_products(&self, simd: Simd, first: usize, numerators: &mut [F], denominators: &mut [F]) {
        let width = self.width();
        let rows = numerators.len() / width;
        let done = match simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is available (checked just before).
            Simd::Avx512 if simd.is_available() => unsafe { avx512::chunk_products(self, first, rows, numerators, denominators) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 is available (checked just before).
            Simd::Avx2 if simd.is_available() => unsafe { avx2::chunk_products(self, first, rows, numerators, denominators) },
            _ => 0,
        };
        for r in done..rows {
            let row = first + r;
            let (x, sigmas) = (self.points[row], self.sigmas[row]);
            for c in 0..width {
                let factors = self.chunk_wires(c);
                numerators[r * width + c] = factors.clone().map(|j| numerator(self.wires[j][row], self.beta_ks[j], x, self.gamma)).product();
                denominators[r * width + c] = factors.map(|j| denominator(self.wires[j][row], self.beta, sigmas[j], self.gamma)).product();
            }
        }
    }
}

/// The chunk products of `LANES` rows at a time, with the lane primitives and field operations
/// of one instruction set in scope, compiled with its target feature `$feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! lanes_of_rows {
    ($feature:literal) => {
        /// The chunk products of the rows from `first` on, `LANES` at a time, as many as fit in
        /// `rows`; returns how many rows it did.
        #[target_feature(enable = $feature)]
        pub(super) fn chunk_products(factors: &Factors<'_>, first: usize, rows: usize, numerators: &mut [F], denominators: &mut [F]) -> usize {
            let width = factors.width();
            let (beta, gamma) = (splat(factors.beta.to_noncanonical_u64()), splat(factors.gamma.to_noncanonical_u64()));
            let whole = rows - rows % LANES;
            for r in (0..whole).step_by(LANES) {
                let row = first + r;
                let x = lanes(|k| factors.points[row + k]);
                for c in 0..width {
                    let (mut numerator, mut denominator) = (splat(1), splat(1));
                    for j in factors.chunk_wires(c) {
                        let wire = lanes(|k| factors.wires[j][row + k]);
                        let sigma = lanes(|k| factors.sigmas[row + k][j]);
                        numerator = mul(numerator, add(add(wire, mul(splat(factors.beta_ks[j].to_noncanonical_u64()), x)), gamma));
                        denominator = mul(denominator, add(add(wire, mul(beta, sigma)), gamma));
                    }
                    for (k, (n, d)) in store(canonical(numerator)).into_iter().zip(store(canonical(denominator))).enumerate() {
                        numerators[(r + k) * width + c] = F::from_canonical_u64(n);
                        denominators[(r + k) * width + c] = F::from_canonical_u64(d);
                    }
                }
            }
            whole
        }

        /// A vector of the values of `LANES` consecutive rows.
        #[inline]
        #[target_feature(enable = $feature)]
        fn lanes(values: impl Fn(usize) -> F) -> V {
            load(&std::array::from_fn(|k| values(k).to_noncanonical_u64()))
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! Eight rows per pass.
    use plonky2::field::types::{Field, PrimeField64};

    use super::Factors;
    use crate::F;
    use crate::goldilocks::avx512::*;

    lanes_of_rows!("avx512f");
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Four rows per pass.
    use plonky2::field::types::{Field, PrimeField64};

    use super::Factors;
    use crate::F;
    use crate::goldilocks::avx2::*;

    lanes_of_rows!("avx2");
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::{Field, Sample};

    use super::*;

    #[test]
    fn every_width_multiplies_as_the_scalar_code() {
        // 80 routed wires in chunks of 8, 64 rows, from row 3 too (61 rows: a remainder for
        // both widths); some values non-canonical (at or above p), as field elements may be.
        let (rows, routed, chunk) = (64, 80, 8);
        let noncanonical = |i: usize| F::from_noncanonical_u64(u64::MAX - i as u64);
        let wires: Vec<Vec<F>> = (0..routed).map(|j| (0..rows).map(|i| if (i + j) % 7 == 0 { noncanonical(i) } else { F::rand() }).collect()).collect();
        let sigmas: Vec<Vec<F>> = (0..rows).map(|_| F::rand_vec(routed)).collect();
        let points = F::rand_vec(rows);
        let beta_ks = F::rand_vec(routed);
        let (wires, sigmas): (Vec<&[F]>, Vec<&[F]>) = (wires.iter().map(Vec::as_slice).collect(), sigmas.iter().map(Vec::as_slice).collect());
        let factors = Factors { wires: &wires, sigmas: &sigmas, points: &points, beta: F::rand(), gamma: noncanonical(3), beta_ks: &beta_ks, chunk };
        let width = factors.width();
        let products = |simd: Simd, first: usize| {
            let (mut numerators, mut denominators) = (vec![F::ZERO; (rows - first) * width], vec![F::ZERO; (rows - first) * width]);
            factors.chunk_products(simd, first, &mut numerators, &mut denominators);
            (numerators, denominators)
        };
        for first in [0, 3] {
            let expected = products(Simd::Scalar, first);
            for simd in Simd::ALL.into_iter().filter(|simd| simd.is_available()) {
                assert_eq!(products(simd, first), expected, "{simd:?} from row {first}");
            }
        }
    }
}
