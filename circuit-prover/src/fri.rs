//! FRI's opening proof: plonky2's protocol (`PolynomialBatch::prove_openings` and `fri_proof`),
//! the same transcript and proof, with three changes of where the work runs. The reduction of
//! every committed polynomial by powers of alpha and the coset FFTs run in parallel (plonky2 runs
//! them on one thread); the commit phase's trees are hashed by the backend; and the queries open
//! only the rows they name through [`Committed::open`], so a backend whose LDE rows stay on a
//! device sends just those rows back.

use plonky2::field::extension::{Extendable, FieldExtension, flatten, unflatten};
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::field::types::{Field, PrimeField64};
use plonky2::fri::FriParams;
use plonky2::fri::proof::{FriInitialTreeProof, FriProof, FriQueryRound, FriQueryStep};
use plonky2::fri::structure::{FriBatchInfo, FriInstanceInfo};
use plonky2::hash::merkle_tree::MerkleTree;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::challenger::Challenger;
use plonky2::plonk::plonk_common::reduce_with_powers;
use plonky2::util::{log2_strict, reverse_index_bits_in_place};
use rayon::prelude::*;

use crate::commit::CommitmentRef;
use crate::prover::D;
use crate::{Committed, F, FetchError, ProverBackend};

type FE = <F as Extendable<D>>::Extension;

/// Coefficients per task of the reduction: every polynomial's run of them stays in cache.
const CHUNK: usize = 1 << 11;

/// The opening proof for `instance` over the committed `oracles`, after the openings have been
/// observed: plonky2's, step for step.
pub fn prove_openings(backend: &dyn ProverBackend, instance: &FriInstanceInfo<F, D>, oracles: &[CommitmentRef<'_>], challenger: &mut Challenger<F, PoseidonHash>, fri_params: &FriParams) -> Result<FriProof<F, PoseidonHash, D>, FetchError> {
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
    let values = coset_lde_values(&final_poly, fri_params.config.rate_bits, F::coset_shift());
    let trees: Vec<&dyn Committed> = oracles.iter().map(|oracle| oracle.tree).collect();
    fri_proof(backend, &trees, final_poly, values, challenger, fri_params)
}

/// FRI on `poly` (its coefficients below the degree bound: plonky2's LDE of it without the zeros
/// that pad it), whose values on the LDE coset are `values`: the commit phase (fold by each reduction arity, commit to each folded codeword),
/// the proof of work, then the query rounds opening the initial `trees` and every folded one.
fn fri_proof(backend: &dyn ProverBackend, trees: &[&dyn Committed], poly: PolynomialCoeffs<FE>, values: PolynomialValues<FE>, challenger: &mut Challenger<F, PoseidonHash>, fri_params: &FriParams) -> Result<FriProof<F, PoseidonHash, D>, FetchError> {
    let n = values.len();
    let (layers, final_poly) = commit_phase(backend, poly, values, challenger, fri_params);
    let pow_witness = proof_of_work(challenger, fri_params.config.proof_of_work_bits);
    let indices: Vec<usize> = challenger.get_n_challenges(fri_params.config.num_query_rounds).into_iter().map(|x| x.to_canonical_u64() as usize % n).collect();
    // Each initial tree opens every query's row at once: one fetch per tree from a device.
    let mut initial = trees.iter().map(|tree| Ok(tree.open(&indices)?.into_iter())).collect::<Result<Vec<_>, FetchError>>()?;
    let query_round_proofs = indices
        .iter()
        .map(|&index| {
            let evals_proofs = initial.iter_mut().map(|opened| opened.next().expect("one opening per query")).collect();
            let mut index = index;
            let steps = layers
                .iter()
                .zip(&fri_params.reduction_arity_bits)
                .map(|(tree, &arity_bits)| {
                    index >>= arity_bits;
                    FriQueryStep { evals: unflatten::<F, D>(tree.get(index)), merkle_proof: tree.prove(index) }
                })
                .collect();
            FriQueryRound { initial_trees_proof: FriInitialTreeProof { evals_proofs }, steps }
        })
        .collect();
    Ok(FriProof { commit_phase_merkle_caps: layers.into_iter().map(|tree| tree.cap).collect(), query_round_proofs, final_poly, pow_witness })
}

/// The commit phase: for each reduction arity, commit to the codeword (each leaf one coset of
/// `arity` points, plonky2's order), draw beta, and fold. Returns the trees and the final
/// polynomial, which the transcript observes. Folding the unpadded coefficients gives plonky2's
/// folds without their zeros.
fn commit_phase(backend: &dyn ProverBackend, mut coeffs: PolynomialCoeffs<FE>, mut values: PolynomialValues<FE>, challenger: &mut Challenger<F, PoseidonHash>, fri_params: &FriParams) -> (Vec<MerkleTree<F, PoseidonHash>>, PolynomialCoeffs<FE>) {
    let rate_bits = fri_params.config.rate_bits;
    let mut layers = Vec::with_capacity(fri_params.reduction_arity_bits.len());
    let mut shift = F::coset_shift();
    for &arity_bits in &fri_params.reduction_arity_bits {
        let arity = 1 << arity_bits;
        reverse_index_bits_in_place(&mut values.values);
        let leaves = values.values.par_chunks(arity).map(flatten::<F, D>).collect();
        let tree = backend.merkle_tree(leaves, fri_params.config.cap_height);
        challenger.observe_cap(&tree.cap);
        layers.push(tree);
        let beta = challenger.get_extension_challenge::<D>();
        // P(x) = sum_{i<r} x^i P_i(x^r) becomes sum_{i<r} beta^i P_i(x).
        coeffs = PolynomialCoeffs::new(coeffs.coeffs.par_chunks_exact(arity).map(|chunk| reduce_with_powers(chunk, beta)).collect());
        shift = shift.exp_u64(arity as u64);
        values = coset_lde_values(&coeffs, rate_bits, shift);
    }
    challenger.observe_extension_elements::<D>(&coeffs.coeffs);
    (layers, coeffs)
}

/// The proof-of-work witness: the smallest element whose observation makes the next challenge
/// have `bits` leading zeros (plonky2's grinding; the smallest, so a proof is reproducible).
fn proof_of_work(challenger: &mut Challenger<F, PoseidonHash>, bits: u32) -> F {
    let min_leading_zeros = bits + (64 - F::order().bits()) as u32;
    let response = |candidate: u64| {
        let mut trial = challenger.clone();
        trial.observe_element(F::from_canonical_u64(candidate));
        trial.get_challenge().to_canonical_u64().leading_zeros()
    };
    let witness = (0..F::NEG_ONE.to_canonical_u64()).into_par_iter().find_first(|&candidate| response(candidate) >= min_leading_zeros).map(F::from_canonical_u64).expect("a proof-of-work witness exists");
    challenger.observe_element(witness);
    challenger.get_challenge();
    witness
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

/// The values of `poly` on the coset `shift·<w>` of `len << rate_bits` points, in natural
/// order (plonky2's `lde` then `coset_fft`). Point `i = c + 2^rate_bits·k` lies on the small
/// coset `shift·w^c·<w^(2^rate_bits)>`, so the values are `2^rate_bits` FFTs of size `len` for
/// each of the two base-field components, all independent.
fn coset_lde_values(poly: &PolynomialCoeffs<FE>, rate_bits: usize, shift: F) -> PolynomialValues<FE> {
    let (n, cosets) = (poly.len(), 1usize << rate_bits);
    let w = F::primitive_root_of_unity(log2_strict(n) + rate_bits);
    let components: [PolynomialCoeffs<F>; D] = std::array::from_fn(|k| PolynomialCoeffs::new(poly.coeffs.iter().map(|c| <FE as FieldExtension<D>>::to_basefield_array(c)[k]).collect()));
    // ffts[k * cosets + c]: component k on coset c.
    let ffts: Vec<Vec<F>> = (0..D * cosets).into_par_iter().map(|t| components[t / cosets].coset_fft(shift * w.exp_u64((t % cosets) as u64)).values).collect();
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
            let shift = F::rand();
            let values = coset_lde_values(&got, rate_bits, shift);
            assert_eq!(values, got.lde(rate_bits).coset_fft(shift.into()), "2^{log_n} at rate bits {rate_bits}");
        }
    }
}
