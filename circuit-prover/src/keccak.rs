//! Keccak as plonky2's `KeccakGoldilocksConfig` uses it (the final proof's Merkle trees and
//! transcript), on SIMD lanes: Keccak-f[1600] on eight states at once with AVX-512, each state's
//! 64-bit words in one lane of 25 registers (Keccak's words are 64-bit lanes anyway, and
//! AVX-512 rotates them in one instruction). plonky2 hashes one message at a time through
//! `keccak-hash`, allocating for each; without AVX-512 we hash one at a time too, on
//! tiny-keccak's Keccak-f, without the allocations.
//!
//! - [`merkle_tree`]: plonky2's `MerkleTree::new` for Keccak digests, leaves and pairs hashed
//!   a lane-full at a time.
//! - [`last_rate_element`]: plonky2's Keccak permutation (`KeccakPermutation`: the state's bytes
//!   hashed with Keccak-256, the digest hashed again and again, and the 64-bit words below p
//!   taken in order as the new state) only as far as a proof-of-work search needs: the rate's
//!   last element, the challenge, is the eighth such word, two hashes where plonky2 computes
//!   three.

use plonky2::field::types::{Field, Field64, PrimeField64};
use plonky2::hash::hash_types::BytesHash;
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::keccak::{KeccakHash, KeccakPermutation};
use plonky2::hash::merkle_tree::MerkleTree;
use plonky2::hash::poseidon::SPONGE_RATE;
use rayon::prelude::*;

use crate::F;
use crate::cpu::{Simd, tree_from_levels, tree_height};
use crate::poseidon::State;

/// Keccak-256's rate in bytes.
const RATE: usize = 136;

/// Messages handed to one thread at a time.
const BATCH: usize = 64;

/// Keccak-f[1600]'s round constants.
pub(crate) const ROUND_CONSTANTS: [u64; 24] = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B, 0x0000000080000001,
    0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003, 0x8000000000008002, 0x8000000000000080,
    0x000000000000800A, 0x800000008000000A, 0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
];

/// The rotation of word `x + 5y` (rho).
pub(crate) const RHO: [u32; 25] = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];

/// A message Keccak-256 absorbs a 64-bit word at a time: bytes, or field elements as plonky2
/// hashes them (each its canonical eight bytes, little-endian: the canonical value is the word).
pub(crate) trait Message: Sync {
    /// The message's length in bytes.
    fn len_bytes(&self) -> usize;
    /// Word `w` of block `block` of the padded message (see [`padded_word`]).
    fn word(&self, block: usize, w: usize, last: bool) -> u64;
}

impl Message for &[u8] {
    fn len_bytes(&self) -> usize {
        self.len()
    }

    fn word(&self, block: usize, w: usize, last: bool) -> u64 {
        padded_word(self, block, w, last)
    }
}

impl Message for &[F] {
    fn len_bytes(&self) -> usize {
        8 * self.len()
    }

    fn word(&self, block: usize, w: usize, last: bool) -> u64 {
        let i = block * RATE / 8 + w;
        let mut word = match i.cmp(&self.len()) {
            std::cmp::Ordering::Less => self[i].to_canonical_u64(),
            std::cmp::Ordering::Equal => 0x01,
            std::cmp::Ordering::Greater => 0,
        };
        if last && w == RATE / 8 - 1 {
            word ^= 0x80 << 56;
        }
        word
    }
}

/// Keccak-256 of each message, all of one length (plonky2's `keccak`: the original padding,
/// domain bit 0x01): eight at a time with AVX-512, else one at a time.
pub(crate) fn keccak256_all<M: Message>(messages: &[M], simd: Simd) -> Vec<[u8; 32]> {
    let len = messages.first().map_or(0, M::len_bytes);
    assert!(messages.iter().all(|m| m.len_bytes() == len), "messages of one length");
    let mut out = Vec::with_capacity(messages.len());
    let rest = match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if simd.is_available() => {
            let mut chunks = messages.chunks_exact(crate::goldilocks::avx512::LANES);
            for chunk in &mut chunks {
                // SAFETY: AVX-512F is available (checked above).
                out.extend(unsafe { avx512::keccak256(chunk.try_into().expect("a lane each")) });
            }
            chunks.remainder()
        }
        _ => messages,
    };
    out.extend(rest.iter().map(keccak256_one));
    out
}

/// Keccak-256 of one message, a word at a time.
fn keccak256_one<M: Message>(message: &M) -> [u8; 32] {
    let blocks = message.len_bytes() / RATE + 1;
    let mut state = [0; 25];
    for block in 0..blocks {
        for (w, word) in state.iter_mut().take(RATE / 8).enumerate() {
            *word ^= message.word(block, w, block + 1 == blocks);
        }
        tiny_keccak::keccakf(&mut state);
    }
    let mut out = [0; 32];
    for (chunk, word) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// Word `w` of the padded message's block `block` (little-endian), `last` being whether that
/// block is the last: a 0x01 byte right after the message, a 0x80 bit at the rate's end
/// (Keccak's pad10*1 with the original domain bit).
fn padded_word(message: &[u8], block: usize, w: usize, last: bool) -> u64 {
    let start = block * RATE + 8 * w;
    let mut word = match message.get(start..start + 8) {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().expect("eight bytes")),
        None => {
            let mut bytes = [0; 8];
            let tail = message.get(start..).unwrap_or_default();
            bytes[..tail.len()].copy_from_slice(tail);
            if (start..start + 8).contains(&message.len()) {
                bytes[message.len() - start] = 0x01;
            }
            u64::from_le_bytes(bytes)
        }
    };
    if last && w == RATE / 8 - 1 {
        word ^= 0x80 << 56;
    }
    word
}

/// plonky2's `MerkleTree::new(leaves, cap_height)` for `KeccakHash<N>`, its leaves (rows of
/// field elements, each as its canonical eight bytes) and each level's pairs hashed by
/// [`keccak256_all`] with `simd`. Leaves short enough to be their own digests are left to
/// plonky2.
pub(crate) fn merkle_tree<const N: usize>(leaves: Vec<Vec<F>>, cap_height: usize, simd: Simd) -> MerkleTree<F, KeccakHash<N>> {
    let height = tree_height(leaves.len(), cap_height);
    let width = leaves[0].len();
    if width * 8 <= N || leaves.iter().any(|leaf| leaf.len() != width) {
        return MerkleTree::new(leaves, cap_height);
    }
    let digest = |hash: [u8; 32]| BytesHash::<N>(hash[..N].try_into().expect("N of Keccak's 32 bytes"));
    let first: Vec<BytesHash<N>> = leaves
        .par_chunks(BATCH)
        .flat_map_iter(|chunk| {
            let messages: Vec<&[F]> = chunk.iter().map(Vec::as_slice).collect();
            keccak256_all(&messages, simd).into_iter().map(digest)
        })
        .collect();
    let mut levels = vec![first];
    while levels.len() <= height - cap_height {
        let next = levels
            .last()
            .expect("at least the leaves")
            .par_chunks(2 * BATCH)
            .flat_map_iter(|chunk| {
                let pairs: Vec<[u8; 64]> = chunk
                    .chunks_exact(2)
                    .map(|pair| {
                        let mut bytes = [0; 64];
                        bytes[..N].copy_from_slice(&pair[0].0);
                        bytes[N..2 * N].copy_from_slice(&pair[1].0);
                        bytes
                    })
                    .collect();
                let messages: Vec<&[u8]> = pairs.iter().map(|p| &p[..2 * N]).collect();
                keccak256_all(&messages, simd).into_iter().map(digest)
            })
            .collect();
        levels.push(next);
    }
    tree_from_levels(leaves, levels)
}

/// Eight states per pass, in AVX-512 registers. (On four AVX2 lanes, whose sixteen registers
/// cannot hold a state, Keccak-f ran no faster than tiny-keccak's scalar code: measured, not
/// kept.)
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Message, RATE, RHO, ROUND_CONSTANTS};
    use crate::goldilocks::avx512::*;

    /// Keccak-f[1600] on `LANES` states: word `i` of state `k` in lane `k` of `a[i]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn keccak_f(a: &mut [V; 25]) {
        for rc in ROUND_CONSTANTS {
            // Theta.
            let mut c = [zero(); 5];
            for (x, c) in c.iter_mut().enumerate() {
                *c = xor3(xor3(a[x], a[x + 5], a[x + 10]), a[x + 15], a[x + 20]);
            }
            for x in 0..5 {
                let d = xor64(c[(x + 4) % 5], rotl(c[(x + 1) % 5], 1));
                for y in 0..5 {
                    a[x + 5 * y] = xor64(a[x + 5 * y], d);
                }
            }
            // Rho and pi.
            let mut b = [zero(); 25];
            for x in 0..5 {
                for y in 0..5 {
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], RHO[x + 5 * y]);
                }
            }
            // Chi, then iota.
            for y in 0..5 {
                for x in 0..5 {
                    a[x + 5 * y] = xor_andnot(b[x + 5 * y], b[(x + 1) % 5 + 5 * y], b[(x + 2) % 5 + 5 * y]);
                }
            }
            a[0] = xor64(a[0], splat(rc));
        }
    }

    /// Keccak-256 of `LANES` messages of one length.
    #[target_feature(enable = "avx512f")]
    pub fn keccak256<M: Message>(messages: &[M; LANES]) -> [[u8; 32]; LANES] {
        let blocks = messages[0].len_bytes() / RATE + 1;
        let mut state = [zero(); 25];
        for block in 0..blocks {
            for (w, word) in state.iter_mut().take(RATE / 8).enumerate() {
                let mut lanes = [0; LANES];
                for (lane, message) in lanes.iter_mut().zip(messages) {
                    *lane = message.word(block, w, block + 1 == blocks);
                }
                *word = xor64(*word, load(&lanes));
            }
            keccak_f(&mut state);
        }
        let mut out = [[0; 32]; LANES];
        for (w, word) in state.iter().take(4).enumerate() {
            for (digest, value) in out.iter_mut().zip(store(*word)) {
                digest[8 * w..8 * (w + 1)].copy_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    /// [`keccak_f`] on `LANES` states laid out one after another.
    #[cfg(test)]
    #[target_feature(enable = "avx512f")]
    pub(super) fn keccak_f_lanes(states: &mut [[u64; 25]; LANES]) {
        let mut a = [zero(); 25];
        for (i, word) in a.iter_mut().enumerate() {
            let mut lanes = [0; LANES];
            for (lane, state) in lanes.iter_mut().zip(states.iter()) {
                *lane = state[i];
            }
            *word = load(&lanes);
        }
        keccak_f(&mut a);
        for (i, word) in a.iter().enumerate() {
            for (state, value) in states.iter_mut().zip(store(*word)) {
                state[i] = value;
            }
        }
    }
}

/// plonky2's whole permutation of `state`, canonical.
pub(crate) fn permute(state: State) -> State {
    let mut permutation = KeccakPermutation::new(state.map(F::from_noncanonical_u64));
    permutation.permute();
    std::array::from_fn(|i| permutation.as_ref()[i].to_canonical_u64())
}

/// The state as plonky2's permutation hashes it: each element's canonical eight bytes.
fn state_bytes(state: &State) -> [u8; 96] {
    let mut bytes = [0; 96];
    for (chunk, x) in bytes.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&F::from_noncanonical_u64(*x).to_canonical_u64().to_le_bytes());
    }
    bytes
}

/// [`last_rate_element`] of each state, `simd`'s lanes at a time: the eighth word is the last of
/// the second digest unless a word before it is rejected (one chance in 2^29), when that state's
/// is computed alone.
pub(crate) fn last_rate_elements(states: &[State], simd: Simd) -> Vec<u64> {
    let bytes: Vec<[u8; 96]> = states.iter().map(state_bytes).collect();
    let first = keccak256_all(&bytes.iter().map(|b| &b[..]).collect::<Vec<_>>(), simd);
    let second = keccak256_all(&first.iter().map(|d| &d[..]).collect::<Vec<_>>(), simd);
    let words = |digest: &[u8; 32]| -> [u64; 4] { std::array::from_fn(|i| u64::from_le_bytes(digest[8 * i..8 * (i + 1)].try_into().expect("eight bytes"))) };
    states
        .iter()
        .zip(first.iter().zip(&second))
        .map(|(state, (a, b))| {
            let (a, b) = (words(a), words(b));
            match a.iter().chain(&b).all(|&w| w < F::ORDER) {
                true => b[3],
                false => last_rate_element(state),
            }
        })
        .collect()
}

/// The last element of the rate after plonky2's permutation of `state`: the challenge a
/// transcript draws next.
pub(crate) fn last_rate_element(state: &State) -> u64 {
    let mut digest = keccak256_one(&state_bytes(state).as_slice());
    let mut taken = 0;
    loop {
        for word in digest.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("eight bytes"))) {
            // plonky2 skips words at or above p (rejection sampling).
            if word < F::ORDER {
                if taken == SPONGE_RATE - 1 {
                    return word;
                }
                taken += 1;
            }
        }
        digest = keccak256_one(&digest.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn keccak_f_on_lanes_is_keccak_f() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let states: [[u64; 25]; 8] = std::array::from_fn(|_| std::array::from_fn(|_| rng.r#gen()));
        let mut expected = states;
        for state in &mut expected {
            tiny_keccak::keccakf(state);
        }
        if !Simd::Avx512.is_available() {
            eprintln!("no AVX-512 on this CPU: skipped");
        } else {
            let mut ours = states;
            // SAFETY: AVX-512F is available (checked above).
            unsafe { avx512::keccak_f_lanes(&mut ours) };
            assert_eq!(ours, expected, "AVX-512");
        }
    }

    /// Keccak-256 by tiny-keccak's own sponge (what plonky2's `keccak-hash` calls).
    fn reference_keccak256(bytes: &[u8]) -> [u8; 32] {
        use tiny_keccak::{Hasher, Keccak};
        let mut hasher = Keccak::v256();
        hasher.update(bytes);
        let mut out = [0; 32];
        hasher.finalize(&mut out);
        out
    }

    #[test]
    fn keccak256_on_lanes_is_plonky2s_for_every_padding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        // Empty, a word, a pair of 25-byte digests, just under, at and over the rate, a leaf.
        for len in [0, 8, 50, 96, 135, 136, 137, 271, 272, 1080] {
            let bytes: Vec<Vec<u8>> = (0..11).map(|_| (0..len).map(|_| rng.r#gen()).collect()).collect();
            let messages: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
            let expected: Vec<[u8; 32]> = messages.iter().map(|m| reference_keccak256(m)).collect();
            for simd in Simd::ALL {
                assert_eq!(keccak256_all(&messages, simd), expected, "{simd:?}, {len} bytes");
            }
            // Field elements hash as their canonical bytes.
            let elements: Vec<Vec<F>> = (0..11).map(|_| (0..len / 8).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect();
            let as_bytes: Vec<Vec<u8>> = elements.iter().map(|e| e.iter().flat_map(|x| x.to_canonical_u64().to_le_bytes()).collect()).collect();
            let expected: Vec<[u8; 32]> = as_bytes.iter().map(|m| reference_keccak256(m)).collect();
            let messages: Vec<&[F]> = elements.iter().map(Vec::as_slice).collect();
            for simd in Simd::ALL {
                assert_eq!(keccak256_all(&messages, simd), expected, "{simd:?}, {} elements", len / 8);
            }
        }
    }

    #[test]
    fn trees_equal_plonky2s() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        // Rows of a final layer's oracles (quotient 16, wires 135), a pair of field elements
        // (its own digest), a single leaf.
        for (log_leaves, width, cap_height) in [(6, 16, 0), (5, 135, 2), (4, 2, 1), (0, 135, 0), (3, 9, 3)] {
            let leaves: Vec<Vec<F>> = (0..1 << log_leaves).map(|_| (0..width).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect();
            let expected = MerkleTree::<F, KeccakHash<25>>::new(leaves.clone(), cap_height);
            for simd in Simd::ALL {
                let ours = merkle_tree::<25>(leaves.clone(), cap_height, simd);
                assert!(ours.digests == expected.digests && ours.cap == expected.cap && ours.leaves == expected.leaves, "{simd:?}: 2^{log_leaves} leaves of {width}, cap height {cap_height}");
            }
        }
    }

    #[test]
    fn the_rate_end_is_plonky2s_permutation_for_any_state() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for i in 0..500 {
            // Non-canonical inputs too: plonky2 hashes the canonical form.
            let state: State = std::array::from_fn(|j| if (i + j) % 7 == 0 { u64::MAX - rng.gen_range(0..100) } else { rng.r#gen() });
            let permuted = permute(state);
            assert_eq!(last_rate_element(&state), permuted[SPONGE_RATE - 1], "state {state:?}");
        }
        let states: Vec<State> = (0..37).map(|i| std::array::from_fn(|j| ((i * 12 + j) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
        let expected: Vec<u64> = states.iter().map(|s| permute(*s)[SPONGE_RATE - 1]).collect();
        for simd in Simd::ALL {
            assert_eq!(last_rate_elements(&states, simd), expected, "{simd:?}");
        }
    }
}
