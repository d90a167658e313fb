//! The heavy parts of proving a plonky2 circuit, behind [`ProverBackend`], so they can run on
//! whatever the machine has: Poseidon Merkle trees over LDE rows today (70-85% of plonky2's prove
//! time), LDE next. Every backend produces exactly what plonky2 produces for the same input, so
//! its trees slot into plonky2's own data structures and proofs verify unchanged.
//!
//! - [`poseidon`]: the Poseidon permutation over Goldilocks on many states at once, eight per
//!   AVX-512 vector where the CPU has it (detected at run time), plonky2's scalar code otherwise.
//! - [`cpu`]: the CPU backend: Merkle trees hashed level by level in batches, in parallel.
//! - [`commit`]: polynomial commitments (plonky2's `PolynomialBatch`) made through a backend.

pub mod commit;
pub mod cpu;
pub mod poseidon;
pub mod prover;

use plonky2::field::goldilocks_field::GoldilocksField;
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::hash::merkle_tree::MerkleTree;
use plonky2::hash::poseidon::PoseidonHash;

/// The field every circuit of ours is over.
pub type F = GoldilocksField;

/// Where a prover's heavy work runs.
pub trait ProverBackend: Send + Sync {
    /// The backend's name, for logs and benchmarks.
    fn name(&self) -> String;

    /// A Poseidon Merkle tree over `leaves` (rows of LDE values, a power-of-two count) with a cap
    /// of `2^cap_height` digests, identical to plonky2's `MerkleTree::new`.
    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash>;

    /// Each polynomial's values on the coset `g·H` of the subgroup of order `len << rate_bits`
    /// (`g` is plonky2's coset shift), in natural order, as plonky2's `PolynomialBatch` computes
    /// them. plonky2's FFT by default.
    fn coset_lde(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize) -> Vec<Vec<F>> {
        use plonky2::field::types::Field;
        use rayon::prelude::*;
        polynomials.par_iter().map(|p| p.lde(rate_bits).coset_fft_with_options(F::coset_shift(), Some(rate_bits), None).values).collect()
    }

    /// Each polynomial's coefficients from its values on the subgroup of its length (an inverse
    /// NTT). plonky2's FFT by default.
    fn interpolate(&self, values: Vec<PolynomialValues<F>>) -> Vec<PolynomialCoeffs<F>> {
        use rayon::prelude::*;
        values.into_par_iter().map(PolynomialValues::ifft).collect()
    }
}

/// plonky2's own code: the reference every backend must match, and the baseline it must beat.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plonky2Backend;

impl ProverBackend for Plonky2Backend {
    fn name(&self) -> String {
        "plonky2".into()
    }

    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
        MerkleTree::new(leaves, cap_height)
    }
}
