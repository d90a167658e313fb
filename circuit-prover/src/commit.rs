//! Polynomial commitments made through a backend: plonky2's `PolynomialBatch` (coset LDE of each
//! polynomial, rows in bit-reversed order as Merkle leaves, the tree), identical to
//! `PolynomialBatch::from_coeffs`, so plonky2's opening proofs and verifier take it as their own.

use plonky2::field::polynomial::PolynomialCoeffs;
use plonky2::fri::oracle::PolynomialBatch;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::plonk::config::GenericConfig;
use plonky2::util::log2_strict;

use crate::{F, ProverBackend};

/// Random elements appended to every leaf of a blinded commitment (plonky2's `SALT_SIZE`).
const SALT_SIZE: usize = plonky2::fri::oracle::SALT_SIZE;

/// Commits to `polynomials` (all of one degree) at rate `2^-rate_bits`, with a cap of
/// `2^cap_height`. Blinding salts every leaf with random elements, as plonky2 does.
pub fn commit<C: GenericConfig<2, F = F, Hasher = PoseidonHash>>(
    backend: &dyn ProverBackend,
    polynomials: Vec<PolynomialCoeffs<F>>,
    rate_bits: usize,
    blinding: bool,
    cap_height: usize,
) -> PolynomialBatch<F, C, 2> {
    let degree = polynomials[0].len();
    let merkle_tree = backend.lde_merkle_tree(&polynomials, rate_bits, if blinding { SALT_SIZE } else { 0 }, cap_height);
    PolynomialBatch { polynomials, merkle_tree, degree_log: log2_strict(degree), rate_bits, blinding }
}

#[cfg(test)]
mod tests {
    use plonky2::plonk::config::PoseidonGoldilocksConfig;
    use plonky2::util::timing::TimingTree;

    use plonky2::field::types::Sample;

    use super::*;
    use crate::Plonky2Backend;
    use crate::cpu::CpuBackend;

    type C = PoseidonGoldilocksConfig;

    #[test]
    fn commitments_equal_plonky2s() {
        for (degree_bits, count, rate_bits, cap_height) in [(0, 1, 1, 0), (3, 5, 1, 2), (5, 20, 3, 4), (8, 135, 3, 4)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << degree_bits))).collect();
            let expected = PolynomialBatch::<F, C, 2>::from_coeffs(polynomials.clone(), rate_bits, false, cap_height, &mut TimingTree::default(), None);
            for backend in [&Plonky2Backend as &dyn ProverBackend, &CpuBackend::detect()] {
                let ours = commit::<C>(backend, polynomials.clone(), rate_bits, false, cap_height);
                assert!(ours.merkle_tree == expected.merkle_tree, "{}: 2^{degree_bits} x {count} at rate bits {rate_bits}", backend.name());
                assert_eq!(ours.polynomials, expected.polynomials);
            }
        }
    }

    #[test]
    fn blinded_commitments_salt_every_leaf() {
        let polynomials: Vec<PolynomialCoeffs<F>> = (0..3).map(|_| PolynomialCoeffs::new(F::rand_vec(16))).collect();
        let a = commit::<C>(&CpuBackend::detect(), polynomials.clone(), 1, true, 1);
        let b = commit::<C>(&CpuBackend::detect(), polynomials, 1, true, 1);
        assert!(a.merkle_tree.leaves.iter().all(|leaf| leaf.len() == 3 + SALT_SIZE));
        assert_ne!(a.merkle_tree.cap, b.merkle_tree.cap, "fresh salt, another commitment");
        assert_eq!(a.merkle_tree.leaves[5][..3], b.merkle_tree.leaves[5][..3], "same values under the salt");
    }
}
