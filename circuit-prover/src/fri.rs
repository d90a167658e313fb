//! FRI's opening proof: plonky2's `PolynomialBatch::prove_openings` with its two single-threaded
//! steps run in parallel, the same values out. Those steps are the reduction of every committed
//! polynomial by powers of the challenge alpha (about 250 polynomials of the trace's length) and
//! the coset FFT of the result over the whole LDE domain; together they were most of FRI's time
//! on a 16-core machine, once commitments had left the CPU. FRI's commit phase, proof of work
//! and queries are plonky2's own `fri_proof`.

use plonky2::field::extension::{Extendable, FieldExtension};
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::field::types::Field;
use plonky2::fri::FriParams;
use plonky2::fri::oracle::PolynomialBatch;
use plonky2::fri::proof::FriProof;
use plonky2::fri::prover::fri_proof;
use plonky2::fri::structure::{FriBatchInfo, FriInstanceInfo};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::challenger::Challenger;
use plonky2::util::log2_strict;
use rayon::prelude::*;

use crate::F;
use crate::prover::{D, PoseidonConfig};

type FE = <F as Extendable<D>>::Extension;

/// Coefficients per task of the reduction: every polynomial's run of them stays in cache.
const CHUNK: usize = 1 << 11;

/// The opening proof for `instance` over the committed `oracles`, after the openings have been
/// observed: plonky2's, step for step.
pub fn prove_openings<C: PoseidonConfig>(instance: &FriInstanceInfo<F, D>, oracles: &[&PolynomialBatch<F, C, D>], challenger: &mut Challenger<F, PoseidonHash>, fri_params: &FriParams) -> FriProof<F, PoseidonHash, D> {
    let alpha = challenger.get_extension_challenge::<D>();
    // final = sum over batches i of alpha^(k_i) (F_i(X) - F_i(z_i)) / (X - z_i), F_i the batch's
    // polynomials reduced by powers of alpha, each power of alpha used once overall.
    let mut final_poly = PolynomialCoeffs::<FE>::empty();
    for FriBatchInfo { point, polynomials } in &instance.batches {
        let batch: Vec<&PolynomialCoeffs<F>> = polynomials.iter().map(|p| &oracles[p.oracle_index].polynomials[p.polynomial_index]).collect();
        let mut quotient = reduce(&batch, alpha).divide_by_linear(*point);
        quotient.coeffs.push(FE::ZERO); // back to a power of two
        final_poly *= alpha.exp_u64(batch.len() as u64);
        final_poly += quotient;
    }
    let rate_bits = fri_params.config.rate_bits;
    let lde_values = coset_lde_values(&final_poly, rate_bits);
    let trees: Vec<_> = oracles.iter().map(|oracle| &oracle.merkle_tree).collect();
    fri_proof::<F, C, D>(&trees, final_poly.lde(rate_bits), lde_values, challenger, fri_params, None, None, &mut Default::default())
}

/// `sum_j alpha^j polynomials[j]`, a chunk of coefficients per task.
fn reduce(polynomials: &[&PolynomialCoeffs<F>], alpha: FE) -> PolynomialCoeffs<FE> {
    let len = polynomials.iter().map(|p| p.len()).max().unwrap_or(0);
    let powers: Vec<FE> = alpha.powers().take(polynomials.len()).collect();
    let mut out = vec![FE::ZERO; len];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, chunk)| {
        let start = i * CHUNK;
        for (p, &power) in polynomials.iter().zip(&powers) {
            for (o, &c) in chunk.iter_mut().zip(p.coeffs.get(start..).unwrap_or_default()) {
                *o += <FE as FieldExtension<D>>::scalar_mul(&power, c);
            }
        }
    });
    PolynomialCoeffs::new(out)
}

/// The values of `poly` on plonky2's coset `g·<w>` of `len << rate_bits` points, in natural
/// order (plonky2's `lde` then `coset_fft`). Point `i = c + 2^rate_bits·k` lies on the small
/// coset `g·w^c·<w^(2^rate_bits)>`, so the values are `2^rate_bits` FFTs of size `len` for each
/// of the two base-field components, all independent.
fn coset_lde_values(poly: &PolynomialCoeffs<FE>, rate_bits: usize) -> PolynomialValues<FE> {
    let (n, cosets) = (poly.len(), 1usize << rate_bits);
    let w = F::primitive_root_of_unity(log2_strict(n) + rate_bits);
    let components: [PolynomialCoeffs<F>; D] = std::array::from_fn(|k| PolynomialCoeffs::new(poly.coeffs.iter().map(|c| <FE as FieldExtension<D>>::to_basefield_array(c)[k]).collect()));
    // ffts[k * cosets + c]: component k on coset c.
    let ffts: Vec<Vec<F>> = (0..D * cosets).into_par_iter().map(|t| components[t / cosets].coset_fft(F::coset_shift() * w.exp_u64((t % cosets) as u64)).values).collect();
    let values = (0..n * cosets).into_par_iter().map(|i| <FE as FieldExtension<D>>::from_basefield_array(std::array::from_fn(|k| ffts[k * cosets + i % cosets][i / cosets]))).collect();
    PolynomialValues::new(values)
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;
    use plonky2::util::reducing::ReducingFactor;

    use super::*;

    #[test]
    fn the_reduction_and_the_coset_values_are_plonky2s() {
        for (log_n, count, rate_bits) in [(0, 1, 1), (3, 5, 1), (6, 40, 3), (12, 3, 2)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << log_n))).collect();
            let alpha = FE::rand();
            let expected = ReducingFactor::new(alpha).reduce_polys_base::<F, D>(&polynomials);
            let got = reduce(&polynomials.iter().collect::<Vec<_>>(), alpha);
            assert_eq!(got, expected, "{count} polynomials of 2^{log_n}");
            let values = coset_lde_values(&got, rate_bits);
            assert_eq!(values, got.lde(rate_bits).coset_fft(F::coset_shift().into()), "2^{log_n} at rate bits {rate_bits}");
        }
    }
}
