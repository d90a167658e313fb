//! Our prover for plonky2 circuits, with its heavy parts behind [`ProverBackend`] so they can run
//! on whatever the machine has: coset LDEs laid out as Merkle leaves, and Poseidon Merkle trees
//! over them (together most of plonky2's prove time). Every backend produces exactly what
//! plonky2 produces for the same input, so its commitments are plonky2's own data structures and
//! proofs verify unchanged. Merkle trees and the transcript hash with Poseidon, or with Keccak
//! for a final proof that is verified only natively ([`MerkleHasher`]).
//!
//! - [`prover`]: the PLONK prover (plonky2's protocol and transcript) on a backend.
//! - [`commit`]: polynomial commitments made through a backend, their trees left wherever the
//!   backend built them ([`Committed`]).
//! - [`cpu`]: the CPU backend: Merkle trees hashed level by level in batches, in parallel; LDEs
//!   with [`ntt`].
//! - [`cuda`]: the CUDA backend: LDEs and Merkle trees on an NVIDIA GPU, kernels compiled at
//!   run time; CUDA is loaded dynamically, so it builds and runs where there is none.
//! - `fri`: FRI's opening proof, plonky2's protocol with its commit-phase trees hashed by the
//!   backend and its queries opening only the rows they name.
//! - [`quotient`]: the quotient's evaluation described as data, for a backend that evaluates it
//!   where the LDEs lie.
//! - [`ntt`]: coset LDEs of eight polynomials per AVX-512 pass (four per AVX2 pass), written as
//!   Merkle leaves.
//! - [`witness`]: witness generation, the circuit's generators run in parallel waves.
//! - [`partial_products`]: the permutation argument's factors multiplied a chunk at a time, rows
//!   side by side in SIMD lanes, and what a backend takes to compute them itself.
//! - [`poseidon`]: the Poseidon permutation over Goldilocks on many states at once, eight per
//!   AVX-512 vector or four per AVX2 vector, plonky2's scalar code otherwise.

pub mod commit;
pub mod cpu;
pub mod cuda;
mod fri;
mod gates;
mod goldilocks;
mod keccak;
pub mod ntt;
pub mod partial_products;
pub mod poseidon;
pub mod prover;
pub mod quotient;
pub mod witness;

use plonky2::field::goldilocks_field::GoldilocksField;
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use std::borrow::Cow;

use plonky2::hash::keccak::KeccakHash;
use plonky2::hash::merkle_proofs::MerkleProof;
use plonky2::hash::merkle_tree::{MerkleCap, MerkleTree};
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::challenger::Challenger;
use plonky2::plonk::config::Hasher;

use crate::cpu::Simd;
use crate::partial_products::{BrokenCopyConstraint, PermutationInputs};

/// The field every circuit of ours is over.
pub type F = GoldilocksField;

/// Keccak as plonky2's `KeccakGoldilocksConfig` hashes Merkle trees and its transcript with
/// (25-byte digests): a final layer's hash.
pub type Keccak = KeccakHash<25>;

/// Where a prover's heavy work runs.
pub trait ProverBackend: Send + Sync {
    /// The backend's name, for logs and benchmarks.
    fn name(&self) -> String;

    /// A Poseidon Merkle tree over `leaves` (rows of LDE values, a power-of-two count) with a cap
    /// of `2^cap_height` digests, identical to plonky2's `MerkleTree::new`.
    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash>;

    /// The coset LDE of `polynomials` (all of one length) at rate `2^-rate_bits`, as Merkle
    /// leaves: row `j` holds each polynomial's value at `g·w^i`, `i = reverse_bits(j)` (`w` of
    /// order `len << rate_bits`, `g` plonky2's coset shift), as plonky2's `PolynomialBatch` lays
    /// its leaves out. plonky2's FFT, then a transposition, by default.
    fn lde_rows(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize) -> Vec<Vec<F>> {
        use plonky2::field::types::Field;
        use rayon::prelude::*;
        let columns: Vec<Vec<F>> = polynomials.par_iter().map(|p| p.lde(rate_bits).coset_fft_with_options(F::coset_shift(), Some(rate_bits), None).values).collect();
        rows_bit_reversed(&columns)
    }

    /// A commitment's tree: the Merkle tree over the rows of `lde_rows(polynomials, rate_bits)`,
    /// each row followed by `salt_size` random elements (a blinded commitment's salt), with a cap
    /// of `2^cap_height`. `lde_rows` then `merkle_tree` by default; a backend that keeps the LDE
    /// where it computed it hashes it there.
    fn lde_merkle_tree(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
        let mut leaves = self.lde_rows(polynomials, rate_bits);
        salt_rows(&mut leaves, salt_size);
        self.merkle_tree(leaves, cap_height)
    }

    /// A commitment to the LDE of `polynomials` (the tree of [`Self::lde_merkle_tree`]), left
    /// where the backend computed it: FRI's queries then fetch only the rows they open. A host
    /// tree by default.
    fn commit_lde(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Box<dyn Committed> {
        Box::new(self.lde_merkle_tree(polynomials, rate_bits, salt_size, cap_height))
    }

    /// Each polynomial's coefficients from its values on the subgroup of its length (an inverse
    /// NTT) or, `on_coset`, on that subgroup's coset by plonky2's shift (`F::coset_shift()`, where
    /// the quotient is evaluated). plonky2's FFT by default.
    fn interpolate(&self, values: Vec<PolynomialValues<F>>, on_coset: bool) -> Vec<PolynomialCoeffs<F>> {
        use plonky2::field::types::Field;
        use rayon::prelude::*;
        values.into_par_iter().map(|v| if on_coset { v.coset_ifft(F::coset_shift()) } else { v.ifft() }).collect()
    }

    /// A commitment to the polynomials whose values on the subgroup of their length are `values`
    /// (all of one length): their coefficients and [`Self::commit_lde`]'s commitment to them.
    /// Interpolated, then committed, by default; a backend that interpolates where it commits
    /// keeps the coefficients there for the LDE.
    fn commit_values(&self, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> (Vec<PolynomialCoeffs<F>>, Box<dyn Committed>) {
        use rayon::prelude::*;
        let polynomials = self.interpolate(values.par_iter().cloned().collect(), false);
        let tree = self.commit_lde(&polynomials, rate_bits, salt_size, cap_height);
        (polynomials, tree)
    }

    /// A [`Keccak`] commitment (a final layer's) to the LDE of `polynomials`, as
    /// [`Self::commit_lde`]; `None` where this backend does not hash Keccak where it computes
    /// LDEs (the prover then hashes [`Self::lde_rows`] on the CPU).
    fn commit_lde_keccak(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Box<dyn Committed<Keccak>>> {
        let _ = (polynomials, rate_bits, salt_size, cap_height);
        None
    }

    /// A [`Keccak`] commitment to the polynomials with `values`, as [`Self::commit_values`];
    /// `None` as for [`Self::commit_lde_keccak`].
    fn commit_values_keccak(&self, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<CommittedValues<Keccak>> {
        let _ = (values, rate_bits, salt_size, cap_height);
        None
    }

    /// The permutation argument's polynomials (every repetition's Z, then every repetition's
    /// partial products, as values on the subgroup) computed where the backend holds the wires'
    /// values and committed there, as [`Self::commit_values`] commits values: their coefficients
    /// and the commitment, or the repetition whose Z does not return to one. `None` where this
    /// backend does not (the prover computes them on the CPU and commits them).
    fn commit_permutation(&self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues, BrokenCopyConstraint>> {
        let _ = (inputs, rate_bits, salt_size, cap_height);
        None
    }

    /// [`Self::commit_permutation`] with a [`Keccak`] commitment (a final layer's).
    fn commit_permutation_keccak(&self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<Keccak>, BrokenCopyConstraint>> {
        let _ = (inputs, rate_bits, salt_size, cap_height);
        None
    }

    /// The SIMD width this backend hashes Keccak with on the CPU (a final layer's trees where the
    /// backend does not commit with Keccak itself, FRI's commit-phase trees, and the proof of
    /// work): none by default, one message at a
    /// time on tiny-keccak's Keccak-f (plonky2's hashing, without its allocations).
    fn keccak_simd(&self) -> Simd {
        Simd::Scalar
    }

    /// FRI's proof of work on the backend's device: the smallest candidate `c` such that the
    /// Poseidon permutation of `state` with `c` written at position `at` (a transcript's sponge,
    /// its pending inputs written in, then `c`) leaves an element with `leading_zeros` leading
    /// zeros last in the rate, where the challenge is drawn. `None` where this backend does not
    /// search (the prover then searches on the CPU).
    fn proof_of_work(&self, state: &poseidon::State, at: usize, leading_zeros: u32) -> Option<u64> {
        let _ = (state, at, leading_zeros);
        None
    }

    /// The quotient's values at its points, one vector per repetition, evaluated where the LDEs
    /// of the commitments `inputs` names lie; `None` where this backend does not (the prover then
    /// evaluates them on the CPU).
    fn quotient_values(&self, inputs: &quotient::QuotientInputs<'_>) -> Option<Vec<Vec<F>>> {
        let _ = inputs;
        None
    }

    /// How long the backend's device has been busy (copies to and from it, and its kernels)
    /// since the backend was made; `None` for a backend that has no device.
    fn device_busy(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Polynomials committed to from their values: their coefficients and the commitment.
pub type CommittedValues<H = PoseidonHash> = (Vec<PolynomialCoeffs<F>>, Box<dyn Committed<H>>);

/// A committed row (a Merkle leaf) with its path to the cap: what a FRI query opens.
pub type Opening<H = PoseidonHash> = (Vec<F>, MerkleProof<F, H>);

/// A committed LDE's Merkle tree, wherever its rows lie: what the transcript observes (the cap)
/// and what FRI's queries open (rows with their paths).
pub trait Committed<H: Hasher<F> = PoseidonHash>: Send + Sync {
    fn cap(&self) -> &MerkleCap<F, H>;

    /// Rows `indices` (as Merkle leaves: salted, if the commitment is) with their paths to the cap.
    fn open(&self, indices: &[usize]) -> Result<Vec<Opening<H>>, FetchError>;

    /// Every row, in leaf order: for a quotient evaluated on the CPU. Fetched whole if the rows
    /// lie on a device.
    fn rows(&self) -> Result<Cow<'_, [Vec<F>]>, FetchError>;
}

/// Committed rows that could not be fetched from the device they lie on (the commitment cannot
/// be remade without them: its salt lives there too), so the proof fails and is made again.
#[derive(Debug, thiserror::Error)]
#[error("fetching committed rows from the device: {0}")]
pub struct FetchError(pub String);

impl<H: Hasher<F>> Committed<H> for MerkleTree<F, H> {
    fn cap(&self) -> &MerkleCap<F, H> {
        &self.cap
    }

    fn open(&self, indices: &[usize]) -> Result<Vec<Opening<H>>, FetchError> {
        Ok(indices.iter().map(|&i| (self.get(i).to_vec(), self.prove(i))).collect())
    }

    fn rows(&self) -> Result<Cow<'_, [Vec<F>]>, FetchError> {
        Ok(Cow::Borrowed(&self.leaves))
    }
}

/// A hash our prover builds Merkle trees and its transcript with (a plonky2 configuration's
/// `Hasher`). Poseidon, which recursion verifies in circuit, hashes on the backend. Keccak
/// (plonky2's `KeccakGoldilocksConfig`: 25-byte digests, so shorter Merkle paths) serves a final
/// proof that is only ever verified natively; a backend that hashes Keccak where it computes
/// LDEs (the CUDA backend) commits with it there, and otherwise its trees are hashed on the CPU
/// from LDE rows the backend computed, which costs less than Poseidon there (a 2^18 x 135 tree:
/// 0.66 s against 2.4 s for the AVX-512 Poseidon tree on two cores).
pub trait MerkleHasher: Hasher<F> + 'static {
    /// A Merkle tree over `leaves` (a power-of-two count), as plonky2's `MerkleTree::new`.
    fn merkle_tree(backend: &dyn ProverBackend, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, Self>;

    /// A commitment to the LDE of `polynomials`, as [`ProverBackend::commit_lde`].
    fn commit_lde(backend: &dyn ProverBackend, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Box<dyn Committed<Self>>;

    /// Coefficients of and a commitment to the polynomials with `values`, as
    /// [`ProverBackend::commit_values`].
    fn commit_values(backend: &dyn ProverBackend, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> (Vec<PolynomialCoeffs<F>>, Box<dyn Committed<Self>>);

    /// The permutation's polynomials computed and committed where the backend holds the wires'
    /// values, as [`ProverBackend::commit_permutation`].
    fn commit_permutation(backend: &dyn ProverBackend, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<Self>, BrokenCopyConstraint>>;

    /// FRI's proof of work: observes `pending` (the final polynomial's coefficients) on
    /// `challenger`, which has just drawn a challenge, then finds a witness whose observation
    /// makes the next challenge have `bits` leading zeros, observes it and draws that challenge.
    fn proof_of_work(backend: &dyn ProverBackend, challenger: &mut Challenger<F, Self>, pending: &[F], bits: u32) -> F;
}

impl MerkleHasher for PoseidonHash {
    fn merkle_tree(backend: &dyn ProverBackend, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, Self> {
        backend.merkle_tree(leaves, cap_height)
    }

    fn commit_lde(backend: &dyn ProverBackend, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Box<dyn Committed<Self>> {
        backend.commit_lde(polynomials, rate_bits, salt_size, cap_height)
    }

    fn commit_values(backend: &dyn ProverBackend, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> (Vec<PolynomialCoeffs<F>>, Box<dyn Committed<Self>>) {
        backend.commit_values(values, rate_bits, salt_size, cap_height)
    }

    fn commit_permutation(backend: &dyn ProverBackend, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<Self>, BrokenCopyConstraint>> {
        backend.commit_permutation(inputs, rate_bits, salt_size, cap_height)
    }

    fn proof_of_work(backend: &dyn ProverBackend, challenger: &mut Challenger<F, Self>, pending: &[F], bits: u32) -> F {
        fri::poseidon_proof_of_work(backend, challenger, pending, bits)
    }
}

impl MerkleHasher for Keccak {
    fn merkle_tree(backend: &dyn ProverBackend, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, Self> {
        keccak::merkle_tree(leaves, cap_height, backend.keccak_simd())
    }

    fn commit_lde(backend: &dyn ProverBackend, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Box<dyn Committed<Self>> {
        backend.commit_lde_keccak(polynomials, rate_bits, salt_size, cap_height).unwrap_or_else(|| {
            let mut leaves = backend.lde_rows(polynomials, rate_bits);
            salt_rows(&mut leaves, salt_size);
            Box::new(keccak::merkle_tree(leaves, cap_height, backend.keccak_simd()))
        })
    }

    fn commit_values(backend: &dyn ProverBackend, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> (Vec<PolynomialCoeffs<F>>, Box<dyn Committed<Self>>) {
        backend.commit_values_keccak(values, rate_bits, salt_size, cap_height).unwrap_or_else(|| {
            use rayon::prelude::*;
            let polynomials = backend.interpolate(values.par_iter().cloned().collect(), false);
            let tree = Self::commit_lde(backend, &polynomials, rate_bits, salt_size, cap_height);
            (polynomials, tree)
        })
    }

    fn commit_permutation(backend: &dyn ProverBackend, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<Self>, BrokenCopyConstraint>> {
        backend.commit_permutation_keccak(inputs, rate_bits, salt_size, cap_height)
    }

    fn proof_of_work(backend: &dyn ProverBackend, challenger: &mut Challenger<F, Self>, pending: &[F], bits: u32) -> F {
        fri::keccak_proof_of_work(backend, challenger, pending, bits)
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

/// `index` with its low `bits` bits reversed (the position of an LDE point among Merkle leaves).
pub(crate) fn reverse_bits(index: usize, bits: usize) -> usize {
    if bits == 0 { 0 } else { index.reverse_bits() >> (usize::BITS as usize - bits) }
}

/// Appends `salt_size` random elements to every row.
fn salt_rows(rows: &mut [Vec<F>], salt_size: usize) {
    use rayon::prelude::*;
    if salt_size > 0 {
        let salt = random_elements(rows.len() * salt_size);
        rows.par_iter_mut().zip(salt.par_chunks_exact(salt_size)).for_each(|(row, salt)| row.extend_from_slice(salt));
    }
}

/// `count` random elements for salts. From each thread's CSPRNG (ChaCha, seeded by the OS)
/// rather than plonky2's `rand_vec`, which asks the OS for every element: a commitment to 2^19
/// rows needs two million.
fn random_elements(count: usize) -> Vec<F> {
    use plonky2::field::types::Sample;
    use rayon::prelude::*;
    (0..count).into_par_iter().map_init(rand::thread_rng, |rng, _| F::sample(rng)).collect()
}

/// Row `j` of the result is row `reverse_bits(j)` of `columns`. Rows are gathered in natural
/// order a tile at a time (each column's run of the tile copied while the tile's rows stay in
/// cache) and then reordered, which moves only the rows' pointers.
fn rows_bit_reversed(columns: &[Vec<F>]) -> Vec<Vec<F>> {
    use rayon::prelude::*;
    /// Rows per tile: a tile of 135-wide rows is about 140 KB, well inside a core's L2.
    const TILE: usize = 128;
    let Some(first) = columns.first() else { return Vec::new() };
    let mut rows: Vec<Vec<F>> = vec![Vec::new(); first.len()];
    rows.par_chunks_mut(TILE).enumerate().for_each(|(t, tile)| {
        let start = t * TILE;
        for row in tile.iter_mut() {
            *row = Vec::with_capacity(columns.len());
        }
        for column in columns {
            for (row, &value) in tile.iter_mut().zip(&column[start..]) {
                row.push(value);
            }
        }
    });
    plonky2::util::reverse_index_bits_in_place(&mut rows);
    rows
}
