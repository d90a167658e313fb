//! Poseidon over Goldilocks, as the circuits compute it, and the conversions between wire values
//! and field elements.

use plonky2::field::goldilocks_field::GoldilocksField;
use plonky2::field::types::{Field, PrimeField64};
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::plonk::config::Hasher;
use via_schemas::primitives::{Bytes32, Hash};

/// The base field of every proof and hash in the system.
pub type F = GoldilocksField;

/// A Poseidon digest: four field elements.
pub type Digest = HashOut<F>;

/// Poseidon sponge over `inputs`, without padding (the circuits' `hash_n_to_hash_no_pad`).
pub fn hash(inputs: &[F]) -> Digest {
    PoseidonHash::hash_no_pad(inputs)
}

/// Poseidon compression of two digests: a Merkle tree node.
pub fn hash_pair(left: Digest, right: Digest) -> Digest {
    PoseidonHash::two_to_one(left, right)
}

/// One step of a queue's hash chain: `h' = H(h || item)`.
pub fn chain(state: Digest, item: &[F]) -> Digest {
    let mut input = Vec::with_capacity(4 + item.len());
    input.extend_from_slice(&state.elements);
    input.extend_from_slice(item);
    hash(&input)
}

/// The all-zero digest: an empty leaf, and the initial state of every queue.
pub const ZERO_DIGEST: Digest = HashOut { elements: [F::ZERO; 4] };

/// A digest as it travels on the wire.
pub fn to_wire(digest: Digest) -> Hash {
    Hash::from_limbs_reduced(digest.elements.map(|e| e.to_canonical_u64()))
}

/// A wire hash as a digest. Wire hashes are canonical by construction.
pub fn from_wire(hash: Hash) -> Digest {
    HashOut { elements: hash.limbs().map(F::from_canonical_u64) }
}

/// A `u64` as a field element, reduced modulo p. Callers range-check values that must not wrap.
pub fn fe(value: u64) -> F {
    F::from_noncanonical_u64(value)
}

/// 32 bytes as eight field elements, each a big-endian 32-bit word (as SHA-256 reads them).
pub fn bytes32_words(bytes: &Bytes32) -> [F; 8] {
    std::array::from_fn(|i| {
        let word = u32::from_be_bytes(bytes.0[4 * i..4 * i + 4].try_into().expect("4-byte window"));
        F::from_canonical_u32(word)
    })
}
