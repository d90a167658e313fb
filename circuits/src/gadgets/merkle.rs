//! Paths in the Poseidon state tree, as the native `via_l2::smt` hashes them.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::hashing::PlonkyPermutation;
use plonky2::hash::poseidon::{PoseidonHash, PoseidonPermutation};
use plonky2::iop::target::BoolTarget;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::config::AlgebraicHasher;

use crate::config::{D, F};

/// The root that `leaf` hashes up to with `siblings` (leaf level first); bit `i` of the index
/// (little-endian) set means the running node is the right child at level `i`. One Poseidon
/// gate per level: the gate's own swap wire orders the pair.
pub fn merkle_root(builder: &mut CircuitBuilder<F, D>, leaf: HashOutTarget, index_bits: &[BoolTarget], siblings: &[HashOutTarget]) -> HashOutTarget {
    assert_eq!(index_bits.len(), siblings.len(), "one index bit per level");
    let zero = builder.zero();
    let mut node = leaf;
    for (bit, sibling) in index_bits.iter().zip(siblings) {
        let mut state = [zero; 12];
        state[..4].copy_from_slice(&node.elements);
        state[4..8].copy_from_slice(&sibling.elements);
        let out = PoseidonHash::permute_swapped(PoseidonPermutation::new(state), *bit, builder);
        node = HashOutTarget::from_partial(&out.squeeze()[..4], zero);
    }
    node
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Field;
    use plonky2::hash::hash_types::HashOut;
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use via_l2::smt::{SparseMerkleTree, TREE_DEPTH};

    use super::*;
    use crate::gadgets::testing::{builder, prove};

    fn circuit(tree: &SparseMerkleTree, index: u32, claimed_index: u32) -> anyhow::Result<()> {
        let mut b = builder();
        let leaf = b.add_virtual_hash();
        let bits: Vec<BoolTarget> = (0..TREE_DEPTH).map(|_| b.add_virtual_bool_target_safe()).collect();
        let siblings: Vec<HashOutTarget> = (0..TREE_DEPTH).map(|_| b.add_virtual_hash()).collect();
        let root = merkle_root(&mut b, leaf, &bits, &siblings);
        let expected = b.constant_hash(tree.root());
        b.connect_hashes(root, expected);
        let mut pw = PartialWitness::new();
        pw.set_hash_target(leaf, tree.leaf(index))?;
        for (i, bit) in bits.iter().enumerate() {
            pw.set_bool_target(*bit, (claimed_index >> i) & 1 == 1)?;
        }
        for (t, s) in siblings.iter().zip(tree.merkle_path(index)) {
            pw.set_hash_target(*t, s)?;
        }
        prove(b, pw)
    }

    #[test]
    fn paths_match_the_native_tree() {
        let mut tree = SparseMerkleTree::new();
        for i in [3u32, 4, 900_000] {
            tree.set_leaf(i, HashOut { elements: [F::from_canonical_u32(i); 4] });
        }
        circuit(&tree, 900_000, 900_000).unwrap();
        assert!(circuit(&tree, 4, 5).is_err(), "a path proves one index only");
    }
}
