//! StorageApplication (circuit id 2): applies the access log to the state tree. Each active slot
//! pops an access `(account, old leaf, new leaf)`, checks the old leaf against the running root
//! with a Merkle path, and moves the root to the path's root with the new leaf. A padded slot
//! pops nothing and leaves the root as it was.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::{HashOut, HashOutTarget};
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};
use via_l2::smt::TREE_DEPTH;

use super::items;
use crate::config::{D, F};
use crate::gadgets::merkle::merkle_root;
use crate::gadgets::queue::push_if;

/// `access-log queue state (4) || state root (4)`.
pub const STATE_LEN: usize = 8;

/// One access; all zero for padding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSlot {
    pub active: bool,
    pub account: u32,
    pub old_leaf: [u64; 4],
    pub new_leaf: [u64; 4],
    /// Siblings from the leaf up, against the root as it stands before this access.
    pub merkle_path: Vec<[u64; 4]>,
}

/// The witness of one StorageApplication instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageApplicationWitness {
    pub queue_in: [u64; 4],
    pub root_in: [u64; 4],
    pub slots: Vec<AccessSlot>,
}

struct SlotTargets {
    active: BoolTarget,
    account: Target,
    old_leaf: HashOutTarget,
    new_leaf: HashOutTarget,
    merkle_path: Vec<HashOutTarget>,
}

/// The instance's witness targets.
pub struct StorageApplicationTargets {
    queue_in: HashOutTarget,
    root_in: HashOutTarget,
    slots: Vec<SlotTargets>,
}

/// Lays out the circuit for `capacity` accesses.
pub fn define(builder: &mut CircuitBuilder<F, D>, capacity: usize) -> StorageApplicationTargets {
    let queue_in = builder.add_virtual_hash();
    let root_in = builder.add_virtual_hash();
    builder.register_public_inputs(&queue_in.elements);
    builder.register_public_inputs(&root_in.elements);
    let (mut queue, mut root) = (queue_in, root_in);
    let mut slots = Vec::with_capacity(capacity);
    for _ in 0..capacity {
        let t = SlotTargets {
            active: builder.add_virtual_bool_target_safe(),
            account: builder.add_virtual_target(),
            old_leaf: builder.add_virtual_hash(),
            new_leaf: builder.add_virtual_hash(),
            merkle_path: (0..TREE_DEPTH).map(|_| builder.add_virtual_hash()).collect(),
        };
        queue = push_if(builder, queue, &items::access_target(t.account, t.old_leaf, t.new_leaf), t.active);
        // The index bits are the account id: a 32-bit split also range-checks it.
        let bits = builder.split_le(t.account, TREE_DEPTH);
        let old_root = merkle_root(builder, t.old_leaf, &bits, &t.merkle_path);
        for i in 0..4 {
            builder.conditional_assert_eq(t.active.target, old_root.elements[i], root.elements[i]);
        }
        let new_root = merkle_root(builder, t.new_leaf, &bits, &t.merkle_path);
        root = HashOutTarget { elements: std::array::from_fn(|i| builder.select(t.active, new_root.elements[i], root.elements[i])) };
        slots.push(t);
    }
    builder.register_public_inputs(&queue.elements);
    builder.register_public_inputs(&root.elements);
    StorageApplicationTargets { queue_in, root_in, slots }
}

fn hash(limbs: [u64; 4]) -> HashOut<F> {
    HashOut { elements: limbs.map(F::from_canonical_u64) }
}

/// Fills the instance's witness targets.
pub fn assign(targets: &StorageApplicationTargets, witness: &StorageApplicationWitness, pw: &mut PartialWitness<F>) -> anyhow::Result<()> {
    anyhow::ensure!(witness.slots.len() == targets.slots.len(), "StorageApplication holds {} accesses, the witness has {}", targets.slots.len(), witness.slots.len());
    pw.set_hash_target(targets.queue_in, hash(witness.queue_in))?;
    pw.set_hash_target(targets.root_in, hash(witness.root_in))?;
    for (t, s) in targets.slots.iter().zip(&witness.slots) {
        pw.set_bool_target(t.active, s.active)?;
        pw.set_target(t.account, F::from_canonical_u32(s.account))?;
        pw.set_hash_target(t.old_leaf, hash(s.old_leaf))?;
        pw.set_hash_target(t.new_leaf, hash(s.new_leaf))?;
        anyhow::ensure!(s.merkle_path.is_empty() || s.merkle_path.len() == TREE_DEPTH, "access to account {} has a Merkle path of {} siblings", s.account, s.merkle_path.len());
        for (i, sibling) in t.merkle_path.iter().enumerate() {
            pw.set_hash_target(*sibling, hash(s.merkle_path.get(i).copied().unwrap_or_default()))?;
        }
    }
    Ok(())
}
