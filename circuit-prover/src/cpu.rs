//! The CPU backend. LDEs come from [`crate::ntt`] at the widest SIMD the CPU has. Merkle trees
//! are hashed a level at a time, each level's independent permutations batched (eight per
//! AVX-512 pass where the CPU has it) and spread over threads, then laid out the way plonky2's
//! `MerkleTree` stores its digests.

use plonky2::field::polynomial::PolynomialCoeffs;
use plonky2::hash::hash_types::{HashOut, NUM_HASH_OUT_ELTS};
use plonky2::hash::merkle_tree::{MerkleCap, MerkleTree};
use plonky2::hash::poseidon::{PoseidonHash, SPONGE_RATE};
use plonky2::plonk::config::Hasher;
use plonky2::field::types::{Field, PrimeField64};
use rayon::prelude::*;

use crate::poseidon::{State, permute_all};
use crate::{F, Plonky2Backend, ProverBackend};

/// Permutations handed to one thread at a time: enough to amortize scheduling, small enough to
/// keep both cores busy on small trees.
const BATCH: usize = 256;

/// The vector width the CPU backend computes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Eight lanes (states, or polynomials) per pass in AVX-512 registers.
    Avx512,
    /// Four lanes per pass in AVX2 registers.
    Avx2,
    /// plonky2's scalar code: one state at a time, its own FFT.
    Scalar,
}

impl Simd {
    /// Every width, widest first.
    pub const ALL: [Simd; 3] = [Simd::Avx512, Simd::Avx2, Simd::Scalar];

    /// The widest this CPU runs.
    pub fn detect() -> Self {
        Self::ALL.into_iter().find(|simd| simd.is_available()).unwrap_or(Self::Scalar)
    }

    /// Every width this CPU runs, for tests that compare each with a reference; those it does
    /// not run are named as skipped.
    #[cfg(test)]
    pub(crate) fn each_available() -> impl Iterator<Item = Simd> {
        Self::ALL.into_iter().filter(|simd| {
            let available = simd.is_available();
            if !available {
                eprintln!("{simd:?} is not available on this CPU: its comparison is skipped");
            }
            available
        })
    }

    /// Whether this CPU runs `self`.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2 => false,
            Self::Scalar => true,
        }
    }
}

/// The CPU backend, with the SIMD width its LDEs and its hashing run.
#[derive(Clone, Copy, Debug)]
pub struct CpuBackend {
    simd: Simd,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::detect()
    }
}

impl CpuBackend {
    /// The fastest this CPU runs: its widest SIMD, for LDEs and hashing alike (on four AVX2
    /// lanes too our permutation beats plonky2's scalar one since its MDS layer went to the
    /// frequency domain: 1.38x on `prover bench merkle`, where it was 0.95x).
    pub fn detect() -> Self {
        Self { simd: Simd::detect() }
    }

    /// One SIMD width for everything, if this CPU has it.
    pub fn with_simd(simd: Simd) -> Option<Self> {
        simd.is_available().then_some(Self { simd })
    }

    /// Digests of equally long leaves: a leaf of at most four elements is its own digest (zero
    /// padded), a longer one is absorbed eight elements per permutation (plonky2's overwrite-mode
    /// sponge).
    fn hash_leaves(&self, leaves: &[Vec<F>]) -> Vec<HashOut<F>> {
        let width = leaves.first().map_or(0, Vec::len);
        if width <= NUM_HASH_OUT_ELTS || leaves.iter().any(|l| l.len() != width) {
            return leaves.par_iter().map(|leaf| PoseidonHash::hash_or_noop(leaf)).collect();
        }
        leaves
            .par_chunks(BATCH)
            .flat_map_iter(|chunk| {
                let mut states: Vec<State> = vec![[0; 12]; chunk.len()];
                for start in (0..width).step_by(SPONGE_RATE) {
                    for (state, leaf) in states.iter_mut().zip(chunk) {
                        for (slot, x) in state.iter_mut().zip(&leaf[start..(start + SPONGE_RATE).min(width)]) {
                            *slot = x.to_noncanonical_u64();
                        }
                    }
                    permute_all(&mut states, self.simd);
                }
                states.into_iter().map(|s| digest(&s))
            })
            .collect()
    }

    /// The digests of the tree over `leaves` level by level, the leaves' first and the cap
    /// (`2^cap_height` digests) last.
    pub(crate) fn tree_levels(&self, leaves: &[Vec<F>], cap_height: usize) -> Vec<Vec<HashOut<F>>> {
        let height = tree_height(leaves.len(), cap_height);
        let mut levels = vec![self.hash_leaves(leaves)];
        while levels.len() <= height - cap_height {
            let next = self.compress_pairs(levels.last().expect("at least the leaves"));
            levels.push(next);
        }
        levels
    }

    /// The next level up: `two_to_one` of each adjacent pair.
    fn compress_pairs(&self, level: &[HashOut<F>]) -> Vec<HashOut<F>> {
        level
            .par_chunks(2 * BATCH)
            .flat_map_iter(|chunk| {
                let mut states: Vec<State> = chunk
                    .chunks_exact(2)
                    .map(|pair| {
                        let mut state = [0; 12];
                        for (i, x) in pair[0].elements.iter().chain(&pair[1].elements).enumerate() {
                            state[i] = x.to_noncanonical_u64();
                        }
                        state
                    })
                    .collect();
                permute_all(&mut states, self.simd);
                states.into_iter().map(|s| digest(&s))
            })
            .collect()
    }
}

fn digest(state: &State) -> HashOut<F> {
    HashOut { elements: std::array::from_fn(|i| F::from_canonical_u64(state[i])) }
}

/// Writes a subtree's digests in plonky2's order: left subtree, left child, right child, right
/// subtree, recursively. `levels[k][i]` is the node of height `k` over leaves `i*2^k..(i+1)*2^k`.
fn lay_out<T: Copy>(buf: &mut [T], levels: &[Vec<T>], first_leaf: usize, leaves: usize) {
    if leaves == 1 {
        return;
    }
    let half = leaves / 2;
    let height = half.trailing_zeros() as usize;
    let (left, right) = buf.split_at_mut(buf.len() / 2);
    let (left_child, left_rest) = left.split_last_mut().expect("a subtree of two leaves or more has digests");
    let (right_child, right_rest) = right.split_first_mut().expect("a subtree of two leaves or more has digests");
    *left_child = levels[height][first_leaf / half];
    *right_child = levels[height][first_leaf / half + 1];
    lay_out(left_rest, levels, first_leaf, half);
    lay_out(right_rest, levels, first_leaf + half, half);
}

impl ProverBackend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({:?})", self.simd).to_lowercase()
    }

    fn keccak_simd(&self) -> Simd {
        self.simd
    }

    fn lde_rows(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize) -> Vec<Vec<F>> {
        crate::ntt::lde_rows(polynomials, rate_bits, F::coset_shift(), self.simd).unwrap_or_else(|| Plonky2Backend.lde_rows(polynomials, rate_bits))
    }

    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
        let levels = self.tree_levels(&leaves, cap_height);
        tree_from_levels(leaves, levels)
    }
}

/// The height of a Merkle tree over `leaves` leaves, which must be a power of two and reach a cap
/// of `2^cap_height` digests.
pub(crate) fn tree_height(leaves: usize, cap_height: usize) -> usize {
    assert!(leaves.is_power_of_two(), "a Merkle tree needs a power-of-two number of leaves, not {leaves}");
    let height = leaves.trailing_zeros() as usize;
    assert!(cap_height <= height, "cap height {cap_height} exceeds the tree's height {height}");
    height
}

/// plonky2's `MerkleTree` from its leaves and its digests level by level (`levels[k][i]` over
/// leaves `i*2^k..(i+1)*2^k`), the last level being the cap.
pub(crate) fn tree_from_levels<H: Hasher<F>>(leaves: Vec<Vec<F>>, mut levels: Vec<Vec<H::Hash>>) -> MerkleTree<F, H> {
    let cap = levels.pop().expect("the cap level");
    // Every digest is written below; the cap's first is only a placeholder.
    let mut digests = vec![cap[0]; 2 * (leaves.len() - cap.len())];
    if !digests.is_empty() {
        let (per_subtree, digests_per_subtree) = (leaves.len() / cap.len(), digests.len() / cap.len());
        digests.par_chunks_mut(digests_per_subtree).enumerate().for_each(|(i, buf)| lay_out(buf, &levels, i * per_subtree, per_subtree));
    }
    MerkleTree { leaves, digests, cap: MerkleCap(cap) }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::Plonky2Backend;

    fn random_leaves(count: usize, width: usize, rng: &mut impl Rng) -> Vec<Vec<F>> {
        (0..count).map(|_| (0..width).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect()
    }

    #[test]
    fn trees_equal_plonky2s_for_every_shape() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let backends: Vec<CpuBackend> = Simd::ALL.into_iter().filter_map(CpuBackend::with_simd).collect();
        assert!(!backends.is_empty());
        for log_leaves in [0, 1, 2, 3, 5, 10] {
            // Widths around the no-hash limit (4) and the sponge rate (8), and a wire count.
            for width in [1, 4, 5, 8, 9, 16, 135] {
                let leaves = random_leaves(1 << log_leaves, width, &mut rng);
                for cap_height in (0..=log_leaves).filter(|c| *c <= 4 || *c == log_leaves) {
                    let expected = Plonky2Backend.merkle_tree(leaves.clone(), cap_height);
                    for backend in &backends {
                        let got = backend.merkle_tree(leaves.clone(), cap_height);
                        assert_eq!(got.cap, expected.cap, "{}: 2^{log_leaves} leaves of {width}, cap height {cap_height}", backend.name());
                        assert!(got == expected, "{}: 2^{log_leaves} leaves of {width}, cap height {cap_height}: digests differ", backend.name());
                    }
                }
            }
        }
    }

    #[test]
    fn proofs_from_our_trees_verify() {
        use plonky2::hash::merkle_proofs::verify_merkle_proof_to_cap;
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let leaves = random_leaves(1 << 8, 20, &mut rng);
        let tree = CpuBackend::detect().merkle_tree(leaves.clone(), 2);
        for index in [0, 1, 77, 255] {
            let proof = tree.prove(index);
            verify_merkle_proof_to_cap::<F, PoseidonHash>(leaves[index].clone(), index, &tree.cap, &proof).unwrap();
        }
        // And a wrong leaf does not.
        let proof = tree.prove(5);
        assert!(verify_merkle_proof_to_cap::<F, PoseidonHash>(leaves[6].clone(), 5, &tree.cap, &proof).is_err());
    }
}
