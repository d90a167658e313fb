//! The sparse Merkle tree of accounts: depth 32, Poseidon, empty leaves hash to zero.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::hash::{Digest, ZERO_DIGEST, hash_pair};

/// Levels between a leaf and the root; the tree has 2^32 leaves.
pub const TREE_DEPTH: usize = 32;

/// `EMPTY[l]` is the root of an empty subtree of height `l`.
static EMPTY: LazyLock<[Digest; TREE_DEPTH + 1]> = LazyLock::new(|| {
    let mut empty = [ZERO_DIGEST; TREE_DEPTH + 1];
    for level in 1..=TREE_DEPTH {
        empty[level] = hash_pair(empty[level - 1], empty[level - 1]);
    }
    empty
});

/// A Merkle path that does not fit the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Merkle path has {0} siblings, the tree has depth {TREE_DEPTH}")]
pub struct WrongPathLength(pub usize);

/// A sparse Merkle tree holding only the nodes that differ from an empty subtree, or, for a
/// partial tree built from paths, only the nodes those paths determine.
#[derive(Clone, Debug, Default)]
pub struct SparseMerkleTree {
    /// `(level, index)` to node; level 0 holds the leaves.
    nodes: HashMap<(usize, u64), Digest>,
}

impl SparseMerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn node(&self, level: usize, index: u64) -> Digest {
        self.nodes.get(&(level, index)).copied().unwrap_or(EMPTY[level])
    }

    /// The root hash.
    pub fn root(&self) -> Digest {
        self.node(TREE_DEPTH, 0)
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u32) -> Digest {
        self.node(0, index.into())
    }

    /// Sets a leaf and rehashes its path to the root.
    pub fn set_leaf(&mut self, index: u32, leaf: Digest) {
        let mut index = u64::from(index);
        let mut current = leaf;
        for level in 0..TREE_DEPTH {
            self.nodes.insert((level, index), current);
            let sibling = self.node(level, index ^ 1);
            current = if index & 1 == 0 { hash_pair(current, sibling) } else { hash_pair(sibling, current) };
            index >>= 1;
        }
        self.nodes.insert((TREE_DEPTH, 0), current);
    }

    /// The siblings from the leaf at `index` up to the root, leaf level first.
    pub fn merkle_path(&self, index: u32) -> Vec<Digest> {
        let mut index = u64::from(index);
        (0..TREE_DEPTH)
            .map(|level| {
                let sibling = self.node(level, index ^ 1);
                index >>= 1;
                sibling
            })
            .collect()
    }

    /// Records a leaf together with its path, so the leaf can later be updated without the rest
    /// of the tree. Callers check the path against the expected root first
    /// ([`root_from_path`]).
    pub fn insert_path(&mut self, index: u32, leaf: Digest, path: &[Digest]) -> Result<(), WrongPathLength> {
        if path.len() != TREE_DEPTH {
            return Err(WrongPathLength(path.len()));
        }
        let mut position = u64::from(index);
        for (level, sibling) in path.iter().enumerate() {
            self.nodes.insert((level, position ^ 1), *sibling);
            position >>= 1;
        }
        self.set_leaf(index, leaf);
        Ok(())
    }
}

/// The root that a leaf and its path hash up to.
pub fn root_from_path(index: u32, leaf: Digest, path: &[Digest]) -> Result<Digest, WrongPathLength> {
    if path.len() != TREE_DEPTH {
        return Err(WrongPathLength(path.len()));
    }
    let mut index = index;
    Ok(path.iter().fold(leaf, |current, &sibling| {
        let parent = if index & 1 == 0 { hash_pair(current, sibling) } else { hash_pair(sibling, current) };
        index >>= 1;
        parent
    }))
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Field;
    use plonky2::hash::hash_types::HashOut;

    use super::*;
    use crate::hash::F;

    fn leaf(x: u64) -> Digest {
        HashOut { elements: [F::from_canonical_u64(x); 4] }
    }

    #[test]
    fn paths_hash_up_to_the_root() {
        let mut tree = SparseMerkleTree::new();
        let empty_root = tree.root();
        for (i, index) in [0u32, 1, 7, u32::MAX].into_iter().enumerate() {
            tree.set_leaf(index, leaf(i as u64 + 1));
        }
        assert_ne!(tree.root(), empty_root);
        for index in [0u32, 1, 7, 8, u32::MAX] {
            let path = tree.merkle_path(index);
            assert_eq!(root_from_path(index, tree.leaf(index), &path).unwrap(), tree.root());
        }
        // A path for one index does not prove another.
        let path = tree.merkle_path(1);
        assert_ne!(root_from_path(0, tree.leaf(1), &path).unwrap(), tree.root());
    }

    #[test]
    fn partial_tree_updates_like_the_full_one() {
        let mut full = SparseMerkleTree::new();
        for index in [3u32, 4, 1000, 77_777] {
            full.set_leaf(index, leaf(u64::from(index)));
        }
        let mut partial = SparseMerkleTree::new();
        for index in [4u32, 1000, 5] {
            partial.insert_path(index, full.leaf(index), &full.merkle_path(index)).unwrap();
        }
        assert_eq!(partial.root(), full.root());
        for (index, value) in [(4u32, 40u64), (5, 50), (1000, 0)] {
            full.set_leaf(index, leaf(value));
            partial.set_leaf(index, leaf(value));
            assert_eq!(partial.root(), full.root());
        }
    }

    #[test]
    fn wrong_path_length_is_named() {
        assert_eq!(root_from_path(0, leaf(1), &[leaf(2)]), Err(WrongPathLength(1)));
    }
}
