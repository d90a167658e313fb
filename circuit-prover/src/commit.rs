//! Polynomial commitments made through a backend: plonky2's (coset LDE of each polynomial, rows in
//! bit-reversed order as Merkle leaves, the tree), with the same cap as
//! `PolynomialBatch::from_coeffs`, but the tree left where the backend built it ([`Committed`]):
//! the prover keeps the coefficients, and FRI fetches only the rows its queries open.

use plonky2::field::extension::{Extendable, FieldExtension};
use plonky2::field::types::Field;
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use rayon::prelude::*;

use crate::goldilocks::ProductSum;
use plonky2::hash::poseidon::PoseidonHash;

use crate::partial_products::{BrokenCopyConstraint, PermutationInputs};
use crate::{Committed, F, MerkleHasher, ProverBackend};

type FE = <F as Extendable<2>>::Extension;

/// Powers of an opening point computed per task.
const POWERS_CHUNK: usize = 1 << 12;

/// Random elements appended to every leaf of a blinded commitment (plonky2's `SALT_SIZE`).
pub const SALT_SIZE: usize = plonky2::fri::oracle::SALT_SIZE;

/// Polynomials committed to: their coefficients (for openings at a point) and their LDE's tree.
pub struct Commitment<H: MerkleHasher = PoseidonHash> {
    pub polynomials: Vec<PolynomialCoeffs<F>>,
    pub tree: Box<dyn Committed<H>>,
}

impl<H: MerkleHasher> Commitment<H> {
    pub fn as_ref(&self) -> CommitmentRef<'_, H> {
        CommitmentRef { polynomials: &self.polynomials, tree: self.tree.as_ref() }
    }
}

/// A commitment as openings and FRI read it, borrowed: a circuit's preprocessed commitment lies
/// in its setup data and is not copied for each proof.
pub struct CommitmentRef<'a, H: MerkleHasher = PoseidonHash> {
    pub polynomials: &'a [PolynomialCoeffs<F>],
    pub tree: &'a dyn Committed<H>,
}

impl<H: MerkleHasher> Clone for CommitmentRef<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: MerkleHasher> Copy for CommitmentRef<'_, H> {}

impl<H: MerkleHasher> CommitmentRef<'_, H> {
    /// Every polynomial's value at `point` (plonky2's `eval_commitment`): its coefficients'
    /// products with the powers of `point`, summed per base-field component and reduced once
    /// (plonky2 lifts each polynomial to the extension and multiplies in it, by Horner's rule).
    pub fn eval(&self, point: FE) -> Vec<FE> {
        let len = self.polynomials.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut powers = vec![[F::ZERO; 2]; len];
        powers.par_chunks_mut(POWERS_CHUNK).enumerate().for_each(|(i, chunk)| {
            let mut power = point.exp_u64((i * POWERS_CHUNK) as u64);
            for p in chunk {
                *p = power.to_basefield_array();
                power *= point;
            }
        });
        self.polynomials
            .par_iter()
            .map(|p| {
                let mut sums = [ProductSum::default(); 2];
                for (&c, [x, y]) in p.coeffs.iter().zip(&powers) {
                    sums[0].add(c, *x);
                    sums[1].add(c, *y);
                }
                FE::from_basefield_array(sums.map(ProductSum::value))
            })
            .collect()
    }
}

/// plonky2's commitment in its setup data, as a [`CommitmentRef`].
impl<'a, C: plonky2::plonk::config::GenericConfig<2, F = F, Hasher: MerkleHasher>> From<&'a plonky2::fri::oracle::PolynomialBatch<F, C, 2>> for CommitmentRef<'a, C::Hasher> {
    fn from(batch: &'a plonky2::fri::oracle::PolynomialBatch<F, C, 2>) -> Self {
        Self { polynomials: &batch.polynomials, tree: &batch.merkle_tree }
    }
}

/// Commits to `polynomials` (all of one degree) at rate `2^-rate_bits`, with a cap of
/// `2^cap_height`. Blinding salts every leaf with random elements, as plonky2 does.
pub fn commit<H: MerkleHasher>(backend: &dyn ProverBackend, polynomials: Vec<PolynomialCoeffs<F>>, rate_bits: usize, blinding: bool, cap_height: usize) -> Commitment<H> {
    let tree = H::commit_lde(backend, &polynomials, rate_bits, salt_size(blinding), cap_height);
    Commitment { polynomials, tree }
}

/// Commits to the polynomials whose values on the subgroup of their length are `values`, as
/// [`commit`] does to coefficients: the backend interpolates them where it commits.
pub fn commit_values<H: MerkleHasher>(backend: &dyn ProverBackend, values: &[PolynomialValues<F>], rate_bits: usize, blinding: bool, cap_height: usize) -> Commitment<H> {
    let (polynomials, tree) = H::commit_values(backend, values, rate_bits, salt_size(blinding), cap_height);
    Commitment { polynomials, tree }
}

/// Commits to the permutation argument's polynomials where the backend holds the wires' values
/// and computes them (see [`ProverBackend::commit_permutation`]); `None` where it does not.
pub fn commit_permutation<H: MerkleHasher>(backend: &dyn ProverBackend, inputs: &PermutationInputs<'_>, rate_bits: usize, blinding: bool, cap_height: usize) -> Option<Result<Commitment<H>, BrokenCopyConstraint>> {
    let committed = H::commit_permutation(backend, inputs, rate_bits, salt_size(blinding), cap_height)?;
    Some(committed.map(|(polynomials, tree)| Commitment { polynomials, tree }))
}

/// Elements appended to every leaf: a blinded commitment's salt, or none.
fn salt_size(blinding: bool) -> usize {
    if blinding { SALT_SIZE } else { 0 }
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;
    use plonky2::fri::oracle::PolynomialBatch;
    use plonky2::hash::keccak::KeccakHash;
    use plonky2::plonk::config::{KeccakGoldilocksConfig, PoseidonGoldilocksConfig};
    use plonky2::util::timing::TimingTree;

    use super::*;
    use crate::Plonky2Backend;
    use crate::cpu::CpuBackend;

    type C = PoseidonGoldilocksConfig;

    #[test]
    fn commitments_equal_plonky2s() {
        for (degree_bits, count, rate_bits, cap_height) in [(0, 1, 1, 0), (3, 5, 1, 2), (5, 20, 3, 4), (8, 135, 3, 4)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << degree_bits))).collect();
            let expected = PolynomialBatch::<F, C, 2>::from_coeffs(polynomials.clone(), rate_bits, false, cap_height, &mut TimingTree::default(), None);
            let keccak = PolynomialBatch::<F, KeccakGoldilocksConfig, 2>::from_coeffs(polynomials.clone(), rate_bits, false, cap_height, &mut TimingTree::default(), None);
            for backend in [&Plonky2Backend as &dyn ProverBackend, &CpuBackend::detect()] {
                let ours = commit::<KeccakHash<25>>(backend, polynomials.clone(), rate_bits, false, cap_height);
                assert_eq!(ours.tree.cap(), &keccak.merkle_tree.cap, "keccak, {}: 2^{degree_bits} x {count}", backend.name());
                let ours = commit::<PoseidonHash>(backend, polynomials.clone(), rate_bits, false, cap_height);
                let what = format!("{}: 2^{degree_bits} x {count} at rate bits {rate_bits}", backend.name());
                assert_eq!(ours.tree.cap(), &expected.merkle_tree.cap, "{what}");
                assert_eq!(*ours.tree.rows().unwrap(), expected.merkle_tree.leaves, "{what}");
                let last = expected.merkle_tree.leaves.len() - 1;
                let opened = ours.tree.open(&[0, last / 2, last]).unwrap();
                for ((leaf, proof), i) in opened.into_iter().zip([0, last / 2, last]) {
                    assert_eq!((leaf.as_slice(), proof), (expected.merkle_tree.get(i), expected.merkle_tree.prove(i)), "{what}: row {i}");
                }
                assert_eq!(ours.polynomials, expected.polynomials);
                let point = FE::rand();
                assert_eq!(ours.as_ref().eval(point), expected.polynomials.iter().map(|p| p.to_extension::<2>().eval(point)).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn blinded_commitments_salt_every_leaf() {
        let polynomials: Vec<PolynomialCoeffs<F>> = (0..3).map(|_| PolynomialCoeffs::new(F::rand_vec(16))).collect();
        let a = commit::<PoseidonHash>(&CpuBackend::detect(), polynomials.clone(), 1, true, 1);
        let b = commit::<PoseidonHash>(&CpuBackend::detect(), polynomials, 1, true, 1);
        assert!(a.tree.rows().unwrap().iter().all(|leaf| leaf.len() == 3 + SALT_SIZE));
        assert_ne!(a.tree.cap(), b.tree.cap(), "fresh salt, another commitment");
        assert_eq!(a.tree.rows().unwrap()[5][..3], b.tree.rows().unwrap()[5][..3], "same values under the salt");
    }
}
