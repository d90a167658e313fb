//! FRI's opening proof: plonky2's protocol (`PolynomialBatch::prove_openings` and `fri_proof`),
//! the same transcript and proof, with three changes of where the work runs. The reduction of
//! every committed polynomial by powers of alpha and the coset FFTs run in parallel (plonky2 runs
//! them on one thread); the commit phase's trees are hashed by the backend; and the queries open
//! only the rows they name through [`Committed::open`], so a backend whose LDE rows stay on a
//! device sends just those rows back.

use plonky2::field::extension::{Extendable, FieldExtension, unflatten};
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::field::types::{Field, PrimeField64};
use plonky2::fri::FriParams;
use plonky2::fri::proof::{FriInitialTreeProof, FriProof, FriQueryRound, FriQueryStep};
use plonky2::fri::structure::{FriBatchInfo, FriInstanceInfo};
use plonky2::hash::keccak::KeccakHash;
use plonky2::hash::merkle_tree::MerkleTree;
use plonky2::hash::poseidon::{PoseidonHash, SPONGE_RATE};
use plonky2::iop::challenger::Challenger;
use plonky2::plonk::config::Hasher;
use plonky2::plonk::plonk_common::reduce_with_powers;
use plonky2::util::log2_strict;
use rayon::prelude::*;

use crate::commit::CommitmentRef;
use crate::cpu::Simd;
use crate::goldilocks::ProductSum;
use crate::poseidon::{State, permute_all, permute_scalar};
use crate::prover::{D, Phases};
use crate::{Committed, F, FetchError, MerkleHasher, ProverBackend, keccak};

type FE = <F as Extendable<D>>::Extension;

/// Coefficients per task of the reduction: every polynomial's run of them stays in cache.
const CHUNK: usize = 1 << 11;

/// The opening proof for `instance` over the committed `oracles`, after the openings have been
/// observed: plonky2's, step for step.
pub(crate) fn prove_openings<H: MerkleHasher>(backend: &dyn ProverBackend, instance: &FriInstanceInfo<F, D>, oracles: &[CommitmentRef<'_, H>], challenger: &mut Challenger<F, H>, fri_params: &FriParams, phases: &mut Phases) -> Result<FriProof<F, H, D>, FetchError> {
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
    phases.done("FRI reduction");
    let values = coset_lde_values(&final_poly, fri_params.config.rate_bits, F::coset_shift());
    phases.done("FRI LDE");
    let trees: Vec<&dyn Committed<H>> = oracles.iter().map(|oracle| oracle.tree).collect();
    fri_proof(backend, &trees, final_poly, values, challenger, fri_params, phases)
}

/// FRI on `poly` (its coefficients below the degree bound: plonky2's LDE of it without the zeros
/// that pad it), whose values on the LDE coset are `values`: the commit phase (fold by each reduction arity, commit to each folded codeword),
/// the proof of work, then the query rounds opening the initial `trees` and every folded one.
fn fri_proof<H: MerkleHasher>(backend: &dyn ProverBackend, trees: &[&dyn Committed<H>], poly: PolynomialCoeffs<FE>, values: PolynomialValues<FE>, challenger: &mut Challenger<F, H>, fri_params: &FriParams, phases: &mut Phases) -> Result<FriProof<F, H, D>, FetchError> {
    let n = values.len();
    let (layers, final_poly) = commit_phase(backend, poly, values, challenger, fri_params);
    phases.done("FRI commit phase");
    let final_coefficients: Vec<F> = final_poly.coeffs.iter().flat_map(<FE as FieldExtension<D>>::to_basefield_array).collect();
    let pow_witness = H::proof_of_work(backend, challenger, &final_coefficients, fri_params.config.proof_of_work_bits);
    phases.done("FRI proof of work");
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
    phases.done("FRI queries");
    Ok(FriProof { commit_phase_merkle_caps: layers.into_iter().map(|tree| tree.cap).collect(), query_round_proofs, final_poly, pow_witness })
}

/// The commit phase: for each reduction arity, commit to the codeword (each leaf one coset of
/// `arity` points, plonky2's order), draw beta, and fold. Returns the trees and the final
/// polynomial, which the proof of work observes: the transcript has just drawn a challenge (a
/// beta, or alpha with no layers). Folding the unpadded coefficients gives plonky2's folds
/// without their zeros.
fn commit_phase<H: MerkleHasher>(backend: &dyn ProverBackend, mut coeffs: PolynomialCoeffs<FE>, mut values: PolynomialValues<FE>, challenger: &mut Challenger<F, H>, fri_params: &FriParams) -> (Vec<MerkleTree<F, H>>, PolynomialCoeffs<FE>) {
    let rate_bits = fri_params.config.rate_bits;
    let mut layers = Vec::with_capacity(fri_params.reduction_arity_bits.len());
    let mut shift = F::coset_shift();
    for &arity_bits in &fri_params.reduction_arity_bits {
        let arity = 1 << arity_bits;
        // Leaf k holds points k·arity.. of the codeword in bit-reversed order, gathered in
        // parallel (plonky2 reverses the whole codeword in place on one thread first).
        let log_len = log2_strict(values.len());
        let leaves = (0..values.len() / arity).into_par_iter().map(|k| (k * arity..(k + 1) * arity).flat_map(|m| <FE as FieldExtension<D>>::to_basefield_array(&values.values[crate::reverse_bits(m, log_len)])).collect()).collect();
        let tree = H::merkle_tree(backend, leaves, fri_params.config.cap_height);
        challenger.observe_cap(&tree.cap);
        layers.push(tree);
        let beta = challenger.get_extension_challenge::<D>();
        // P(x) = sum_{i<r} x^i P_i(x^r) becomes sum_{i<r} beta^i P_i(x).
        coeffs = PolynomialCoeffs::new(coeffs.coeffs.par_chunks_exact(arity).map(|chunk| reduce_with_powers(chunk, beta)).collect());
        shift = shift.exp_u64(arity as u64);
        values = coset_lde_values(&coeffs, rate_bits, shift);
    }
    (layers, coeffs)
}

/// The proof-of-work witness on a Poseidon transcript (see [`MerkleHasher::proof_of_work`]): the
/// smallest element that works (plonky2's grinding; the smallest, so a proof is reproducible).
/// Candidates are tried on copies of the transcript's sponge, on the backend's device if it
/// searches, else many permutations per SIMD pass.
pub(crate) fn poseidon_proof_of_work(backend: &dyn ProverBackend, challenger: &mut Challenger<F, PoseidonHash>, pending: &[F], bits: u32) -> F {
    let sponge = Sponge::observed(challenger, permute_scalar, pending);
    let min_leading_zeros = min_leading_zeros(bits);
    let simd = Simd::detect();
    // The first of `POW_BATCH` candidates from `first` that works, by the sponge's copy.
    let first_in_batch = |first: u64| {
        let mut states: Vec<State> = (first..first + POW_BATCH).map(|candidate| sponge.duplexed_with(candidate)).collect();
        permute_all(&mut states, simd);
        // The challenge drawn is the last of the rate's elements.
        states.iter().position(|state| state[SPONGE_RATE - 1].leading_zeros() >= min_leading_zeros).map(|i| first + i as u64)
    };
    let on_device = backend.proof_of_work(&sponge.duplexed_with(0), sponge.buffer.len(), min_leading_zeros);
    let witness = on_device.unwrap_or_else(|| first_witness(&first_in_batch, POW_BATCH));
    observe_checked(challenger, witness, bits)
}

/// The proof-of-work witness on a Keccak transcript (a final proof's): the smallest, candidates
/// tried on copies of the sponge a SIMD pass at a time, each hashed only as far as the challenge
/// ([`keccak::last_rate_elements`]).
pub(crate) fn keccak_proof_of_work<const N: usize>(backend: &dyn ProverBackend, challenger: &mut Challenger<F, KeccakHash<N>>, pending: &[F], bits: u32) -> F {
    let sponge = Sponge::observed(challenger, keccak::permute, pending);
    let min_leading_zeros = min_leading_zeros(bits);
    let simd = backend.keccak_simd();
    let first_in_batch = |first: u64| {
        let states: Vec<State> = (first..first + POW_BATCH).map(|candidate| sponge.duplexed_with(candidate)).collect();
        keccak::last_rate_elements(&states, simd).iter().position(|challenge| challenge.leading_zeros() >= min_leading_zeros).map(|i| first + i as u64)
    };
    observe_checked(challenger, first_witness(&first_in_batch, POW_BATCH), bits)
}

/// Observes `witness`, found on a copy of `challenger`'s sponge, and draws its challenge; should
/// the copy disagree with plonky2's challenger (which would be a bug here), grinds on the
/// challenger itself instead.
fn observe_checked<H: Hasher<F>>(challenger: &mut Challenger<F, H>, witness: u64, bits: u32) -> F {
    if !works(challenger, witness, min_leading_zeros(bits)) {
        tracing::error!(witness, "the proof of work found on a copy of the sponge fails the transcript; searching again on the transcript");
        return challenger_proof_of_work(challenger, bits);
    }
    observe_witness(challenger, witness)
}

/// The proof-of-work witness searched on the transcript itself, one candidate at a time: the
/// smallest that works.
fn challenger_proof_of_work<H: Hasher<F>>(challenger: &mut Challenger<F, H>, bits: u32) -> F {
    let min_leading_zeros = min_leading_zeros(bits);
    let witness = first_witness(&|candidate| works(challenger, candidate, min_leading_zeros).then_some(candidate), 1);
    observe_witness(challenger, witness)
}

/// Leading zeros of a challenge's 64 bits that `bits` of grinding ask for.
fn min_leading_zeros(bits: u32) -> u32 {
    bits + (64 - F::order().bits()) as u32
}

/// Whether observing `candidate` makes the transcript's next challenge have the leading zeros.
fn works<H: Hasher<F>>(challenger: &Challenger<F, H>, candidate: u64, min_leading_zeros: u32) -> bool {
    let mut trial = challenger.clone();
    trial.observe_element(F::from_canonical_u64(candidate));
    trial.get_challenge().to_canonical_u64().leading_zeros() >= min_leading_zeros
}

/// The smallest witness `works_in(i * step)` finds (each call tries the `step` candidates from
/// `i * step`). Blocks of candidates in order, each searched by every thread, so the first block
/// holding a witness holds the smallest. (One `find_first` over the whole field left the search
/// to one thread: rayon's first split gives the low candidates to a single piece.)
fn first_witness(works_in: &(dyn Fn(u64) -> Option<u64> + Sync), step: u64) -> u64 {
    let block = POW_BATCH * 64 * rayon::current_num_threads() as u64;
    (0..F::NEG_ONE.to_canonical_u64() / block)
        .find_map(|b| (b * block / step..(b + 1) * block / step).into_par_iter().find_map_first(|i| works_in(i * step)))
        .expect("a proof-of-work witness exists")
}

/// Observes the witness and draws the challenge it was ground for, as plonky2's prover does.
fn observe_witness<H: Hasher<F>>(challenger: &mut Challenger<F, H>, witness: u64) -> F {
    let witness = F::from_canonical_u64(witness);
    challenger.observe_element(witness);
    challenger.get_challenge();
    witness
}

/// Candidates one SIMD pass of permutations tries (a multiple of every lane count).
const POW_BATCH: u64 = 64;

/// plonky2's duplex sponge in overwrite mode, copied out of a `Challenger` (which keeps its state
/// private) to try proof-of-work candidates without cloning the challenger for each.
struct Sponge {
    state: State,
    /// Elements observed since the last permutation, written over the state's first ones by
    /// the next.
    buffer: Vec<u64>,
    /// The transcript's permutation.
    permute: fn(State) -> State,
}

impl Sponge {
    /// The sponge of a challenger that has just drawn a challenge: its input buffer is then
    /// empty, so `compact` returns its state without permuting it.
    fn after_challenge<H: Hasher<F>>(challenger: &Challenger<F, H>, permute: fn(State) -> State) -> Self {
        let permutation = challenger.clone().compact();
        let state = std::array::from_fn(|i| permutation.as_ref()[i].to_canonical_u64());
        Self { state, buffer: Vec::new(), permute }
    }

    /// The sponge of `challenger`, which has just drawn a challenge, once both have observed
    /// `pending`.
    fn observed<H: Hasher<F>>(challenger: &mut Challenger<F, H>, permute: fn(State) -> State, pending: &[F]) -> Self {
        let mut sponge = Self::after_challenge(challenger, permute);
        challenger.observe_elements(pending);
        sponge.observe(pending.iter().copied());
        sponge
    }

    /// As `Challenger::observe_element` for each: a full rate of inputs is permuted in.
    fn observe(&mut self, elements: impl IntoIterator<Item = F>) {
        for element in elements {
            self.buffer.push(element.to_canonical_u64());
            if self.buffer.len() == SPONGE_RATE {
                self.state[..SPONGE_RATE].copy_from_slice(&self.buffer);
                self.state = (self.permute)(self.state);
                self.buffer.clear();
            }
        }
    }

    /// The state the next permutation takes once `candidate` is observed (not yet permuted).
    fn duplexed_with(&self, candidate: u64) -> State {
        let mut state = self.state;
        state[..self.buffer.len()].copy_from_slice(&self.buffer);
        state[self.buffer.len()] = candidate;
        state
    }
}

/// `sum_j alpha^j polynomials[j]`, a chunk of coefficients per task, each coefficient's products
/// summed per base-field component and reduced once.
fn reduce(polynomials: &[&PolynomialCoeffs<F>], alpha: FE) -> PolynomialCoeffs<FE> {
    let len = polynomials.iter().map(|p| p.len()).max().unwrap_or(0);
    let powers: Vec<[F; D]> = alpha.powers().take(polynomials.len()).map(|power| power.to_basefield_array()).collect();
    let mut out = vec![FE::ZERO; len];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, chunk)| {
        let start = i * CHUNK;
        let mut sums = vec![[ProductSum::default(); D]; chunk.len()];
        for (p, [x, y]) in polynomials.iter().zip(&powers) {
            for (sum, &c) in sums.iter_mut().zip(p.coeffs.get(start..).unwrap_or_default()) {
                sum[0].add(c, *x);
                sum[1].add(c, *y);
            }
        }
        for (o, sum) in chunk.iter_mut().zip(sums) {
            *o = FE::from_basefield_array(sum.map(ProductSum::value));
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
    use plonky2::fri::FriConfig;
    use plonky2::fri::oracle::PolynomialBatch;
    use plonky2::fri::reduction_strategies::FriReductionStrategy;
    use plonky2::fri::structure::{FriOpeningBatch, FriOpenings, FriOracleInfo, FriPolynomialInfo};
    use plonky2::fri::verifier::verify_fri_proof;
    use plonky2::hash::keccak::KeccakHash;
    use plonky2::plonk::config::PoseidonGoldilocksConfig;
    use plonky2::util::reducing::ReducingFactor;
    use plonky2::util::timing::TimingTree;

    use super::*;
    use crate::commit::{Commitment, commit};
    use crate::cpu::CpuBackend;

    type C = PoseidonGoldilocksConfig;

    /// Two oracles of random polynomials of degree `2^degree_bits`, the second blinded as
    /// `blinding` says; all opened at a point, the first oracle's first two also at another.
    struct Setup {
        oracles: Vec<Commitment>,
        instance: FriInstanceInfo<F, D>,
        openings: FriOpenings<F, D>,
        params: FriParams,
    }

    fn setup(degree_bits: usize, blinding: bool) -> Setup {
        let config = FriConfig { rate_bits: 3, cap_height: 2, proof_of_work_bits: 6, reduction_strategy: FriReductionStrategy::ConstantArityBits(3, 2), num_query_rounds: 9 };
        let params = config.fri_params(degree_bits, blinding);
        let backend = CpuBackend::detect();
        let random = |count: usize| (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << degree_bits))).collect::<Vec<_>>();
        let oracles = vec![commit(&backend, random(5), config.rate_bits, false, config.cap_height), commit(&backend, random(3), config.rate_bits, blinding, config.cap_height)];
        let (zeta, next) = (FE::rand(), FE::rand());
        let all: Vec<FriPolynomialInfo> = oracles.iter().enumerate().flat_map(|(i, o)| FriPolynomialInfo::from_range(i, 0..o.polynomials.len())).collect();
        let some = FriPolynomialInfo::from_range(0, 0..2);
        let values = |point: FE, polys: &[FriPolynomialInfo]| FriOpeningBatch { values: polys.iter().map(|p| oracles[p.oracle_index].polynomials[p.polynomial_index].to_extension::<D>().eval(point)).collect() };
        let openings = FriOpenings { batches: vec![values(zeta, &all), values(next, &some)] };
        let instance = FriInstanceInfo {
            oracles: vec![FriOracleInfo { num_polys: 5, blinding: false }, FriOracleInfo { num_polys: 3, blinding }],
            batches: vec![FriBatchInfo { point: zeta, polynomials: all }, FriBatchInfo { point: next, polynomials: some }],
        };
        Setup { oracles, instance, openings, params }
    }

    /// The transcript up to FRI: both caps and the openings.
    fn challenger(setup: &Setup) -> Challenger<F, PoseidonHash> {
        let mut challenger = Challenger::new();
        for oracle in &setup.oracles {
            challenger.observe_cap::<PoseidonHash>(oracle.tree.cap());
        }
        challenger.observe_openings(&setup.openings);
        challenger
    }

    fn prove(setup: &Setup) -> FriProof<F, PoseidonHash, D> {
        let oracles: Vec<CommitmentRef<'_>> = setup.oracles.iter().map(Commitment::as_ref).collect();
        prove_openings(&CpuBackend::detect(), &setup.instance, &oracles, &mut challenger(setup), &setup.params, &mut Phases::start()).unwrap()
    }

    fn verify(setup: &Setup, proof: &FriProof<F, PoseidonHash, D>) -> Result<(), String> {
        let mut challenger = challenger(setup);
        let challenges = challenger.fri_challenges::<C, D>(&proof.commit_phase_merkle_caps, &proof.final_poly, proof.pow_witness, setup.params.degree_bits, &setup.params.config, None, None);
        let caps: Vec<_> = setup.oracles.iter().map(|o| o.tree.cap().clone()).collect();
        verify_fri_proof::<F, C, D>(&setup.instance, &setup.openings, &challenges, &caps, proof, &setup.params).map_err(|e| e.to_string())
    }

    #[test]
    fn our_fri_proofs_pass_plonky2s_verifier_and_tampered_ones_do_not() {
        for (degree_bits, blinding) in [(3, false), (6, true), (9, false)] {
            let setup = setup(degree_bits, blinding);
            let proof = prove(&setup);
            verify(&setup, &proof).unwrap_or_else(|e| panic!("2^{degree_bits}: {e}"));
            let mut opened = proof.clone();
            opened.query_round_proofs[0].initial_trees_proof.evals_proofs[1].0[0] += F::ONE;
            assert!(verify(&setup, &opened).is_err(), "2^{degree_bits}: a changed opened row");
            let mut folded = proof.clone();
            if let Some(step) = folded.query_round_proofs[1].steps.first_mut() {
                step.evals[0] += FE::ONE;
                assert!(verify(&setup, &folded).is_err(), "2^{degree_bits}: a changed folded value");
            }
            let mut ground = proof.clone();
            ground.pow_witness += F::ONE;
            assert!(verify(&setup, &ground).is_err(), "2^{degree_bits}: another proof-of-work witness");
        }
    }

    #[test]
    fn the_commit_phase_is_plonky2s() {
        let setup = setup(8, false);
        let ours = prove(&setup);
        let batches: Vec<PolynomialBatch<F, C, D>> = setup.oracles.iter().map(|o| PolynomialBatch::from_coeffs(o.polynomials.clone(), 3, false, 2, &mut TimingTree::default(), None)).collect();
        let theirs = PolynomialBatch::prove_openings(&setup.instance, &batches.iter().collect::<Vec<_>>(), &mut challenger(&setup), &setup.params, None, None, &mut TimingTree::default());
        assert_eq!(ours.commit_phase_merkle_caps, theirs.commit_phase_merkle_caps);
        assert_eq!(ours.final_poly, theirs.final_poly);
        // The smallest witness: a proof without blinding is made again exactly.
        assert_eq!(prove(&setup), ours);
    }

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

    #[test]
    fn the_proof_of_work_witness_is_the_smallest() {
        // 16 bits: the witness usually lies beyond the first block of candidates. Observed
        // after the last challenge: a few elements, a rate and more, exactly a rate.
        let bits = 16;
        for (seed, observed) in [(0, 3), (1, 13), (2, 8), (3, 0)] {
            let mut challenger = Challenger::<F, PoseidonHash>::new();
            challenger.observe_element(F::from_canonical_u64(seed));
            challenger.get_challenge();
            let elements: Vec<F> = (0..observed).map(|i| F::from_canonical_u64(seed * 1000 + i)).collect();
            let mut sponge = Sponge::after_challenge(&challenger, permute_scalar);
            let mut ours = challenger.clone();
            challenger.observe_elements(&elements);
            sponge.observe(elements.iter().copied());
            // The copy draws the challenger's challenges (else the search would fall back).
            for candidate in 0..4 {
                let mut trial = challenger.clone();
                trial.observe_element(F::from_canonical_u64(candidate));
                assert_eq!(permute_scalar(sponge.duplexed_with(candidate))[SPONGE_RATE - 1], trial.get_challenge().to_canonical_u64(), "seed {seed}");
            }
            let smallest = smallest_witness(&challenger, bits);
            assert_eq!(poseidon_proof_of_work(&CpuBackend::detect(), &mut ours, &elements, bits).to_canonical_u64(), smallest, "seed {seed}, {observed} observed");
            // The witness is observed and its challenge drawn, as the verifier will.
            challenger.observe_element(F::from_canonical_u64(smallest));
            assert_eq!(ours.get_challenge(), { challenger.get_challenge(); challenger.get_challenge() });
        }
    }

    #[test]
    fn the_proof_of_work_witness_on_a_keccak_transcript_is_the_smallest() {
        // A final proof's transcript; a few elements, a rate and more, none observed.
        let bits = 12;
        for (seed, observed) in [(0, 3), (1, 13), (2, 0)] {
            let mut challenger = Challenger::<F, KeccakHash<25>>::new();
            challenger.observe_element(F::from_canonical_u64(seed));
            challenger.get_challenge();
            let elements: Vec<F> = (0..observed).map(|i| F::from_canonical_u64(seed * 1000 + i)).collect();
            let mut ours = challenger.clone();
            challenger.observe_elements(&elements);
            let smallest = smallest_witness(&challenger, bits);
            assert_eq!(keccak_proof_of_work(&CpuBackend::detect(), &mut ours, &elements, bits).to_canonical_u64(), smallest, "seed {seed}, {observed} observed");
            challenger.observe_element(F::from_canonical_u64(smallest));
            assert_eq!(ours.get_challenge(), { challenger.get_challenge(); challenger.get_challenge() });
        }
        // The search on the transcript itself (the fallback) finds the same.
        let mut challenger = Challenger::<F, KeccakHash<25>>::new();
        challenger.observe_element(F::ONE);
        let smallest = smallest_witness(&challenger, bits);
        assert_eq!(challenger_proof_of_work(&mut challenger.clone(), bits).to_canonical_u64(), smallest);
    }

    /// The smallest candidate whose observation gives a challenge of `bits` leading zeros.
    fn smallest_witness<H: Hasher<F>>(challenger: &Challenger<F, H>, bits: u32) -> u64 {
        (0..).find(|&candidate| works(challenger, candidate, min_leading_zeros(bits))).unwrap()
    }

    /// A backend whose device answers a proof-of-work witness that does not work.
    struct WrongProofOfWork;

    impl ProverBackend for WrongProofOfWork {
        fn name(&self) -> String {
            "wrong proof of work".into()
        }

        fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
            MerkleTree::new(leaves, cap_height)
        }

        fn proof_of_work(&self, _: &State, _: usize, _: u32) -> Option<u64> {
            Some(1)
        }
    }

    #[test]
    fn a_device_witness_that_fails_the_transcript_is_searched_again() {
        let mut challenger = Challenger::<F, PoseidonHash>::new();
        challenger.get_challenge();
        let mut after = challenger.clone();
        after.observe_element(F::TWO);
        assert!(!works(&after, 1, min_leading_zeros(8)), "pick another transcript: 1 works on it");
        let witness = poseidon_proof_of_work(&WrongProofOfWork, &mut challenger, &[F::TWO], 8);
        assert_eq!(witness.to_canonical_u64(), smallest_witness(&after, 8));
    }
}
