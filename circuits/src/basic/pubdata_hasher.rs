//! PubdataHasher (circuit id 3): SHA-256 over the batch's pubdata, one 64-byte record (one block)
//! per active slot, with the SHA-256 state and the block count carried across instances.
//!
//! Every instance also outputs the digest the pubdata would have if it ended there (its state
//! compressed with SHA-256's final padding block for `count` blocks), so whichever instance is
//! last, its output carries the batch's pubdata hash and no instance needs to know it is last.

use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use serde::{Deserialize, Serialize};

use super::set_all;
use crate::config::{D, F};
use crate::gadgets::queue::push_if;
use crate::gadgets::sha256::compress;

/// `pubdata queue (4) || SHA-256 state (8) || block count (1) || digest if last (8)`.
pub const STATE_LEN: usize = 21;
/// Words in a pubdata record.
pub const RECORD_WORDS: usize = 16;
/// Block counts stay below 2^23 so the message length in bits fits SHA-256's last word.
const COUNT_BITS: usize = 23;

/// The state carried from instance to instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HasherState {
    pub queue: [u64; 4],
    pub sha256: [u32; 8],
    pub count: u32,
    /// Whatever the previous instance output; an instance does not read it.
    pub digest: [u32; 8],
}

/// One record; inactive (and all zero) for padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSlot {
    pub active: bool,
    pub words: [u32; RECORD_WORDS],
}

/// The witness of one PubdataHasher instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubdataHasherWitness {
    pub state_in: HasherState,
    pub slots: Vec<RecordSlot>,
}

/// The final SHA-256 block of a message of `count` whole 64-byte blocks.
pub fn padding_block(count: u32) -> [u32; RECORD_WORDS] {
    let mut block = [0u32; RECORD_WORDS];
    block[0] = 0x8000_0000;
    block[15] = count * 512;
    block
}

struct StateTargets {
    queue: HashOutTarget,
    sha256: [Target; 8],
    count: Target,
    digest: [Target; 8],
}

impl StateTargets {
    fn register(&self, builder: &mut CircuitBuilder<F, D>) {
        builder.register_public_inputs(&self.queue.elements);
        builder.register_public_inputs(&self.sha256);
        builder.register_public_input(self.count);
        builder.register_public_inputs(&self.digest);
    }
}

/// The instance's witness targets.
pub struct PubdataHasherTargets {
    state_in: StateTargets,
    slots: Vec<(BoolTarget, [Target; RECORD_WORDS])>,
}

/// Lays out the circuit for `capacity` blocks.
pub fn define(builder: &mut CircuitBuilder<F, D>, capacity: usize) -> PubdataHasherTargets {
    let state_in = StateTargets {
        queue: builder.add_virtual_hash(),
        sha256: builder.add_virtual_target_arr(),
        count: builder.add_virtual_target(),
        digest: builder.add_virtual_target_arr(),
    };
    state_in.register(builder);
    let (mut queue, mut sha256, mut count) = (state_in.queue, state_in.sha256, state_in.count);
    let mut slots = Vec::with_capacity(capacity);
    for _ in 0..capacity {
        let active = builder.add_virtual_bool_target_safe();
        let words: [Target; RECORD_WORDS] = builder.add_virtual_target_arr();
        queue = push_if(builder, queue, &words, active);
        let next = compress(builder, &sha256, &words);
        sha256 = std::array::from_fn(|i| builder.select(active, next[i], sha256[i]));
        count = builder.add(count, active.target);
        slots.push((active, words));
    }
    builder.range_check(count, COUNT_BITS);
    let zero = builder.zero();
    let mut padding = [zero; RECORD_WORDS];
    padding[0] = builder.constant(F::from_canonical_u32(0x8000_0000));
    padding[15] = builder.mul_const(F::from_canonical_u32(512), count);
    let digest = compress(builder, &sha256, &padding);
    StateTargets { queue, sha256, count, digest }.register(builder);
    PubdataHasherTargets { state_in, slots }
}

/// Fills the instance's witness targets.
pub fn assign(targets: &PubdataHasherTargets, witness: &PubdataHasherWitness, pw: &mut PartialWitness<F>) -> anyhow::Result<()> {
    anyhow::ensure!(witness.slots.len() == targets.slots.len(), "PubdataHasher holds {} blocks, the witness has {}", targets.slots.len(), witness.slots.len());
    let (t, s) = (&targets.state_in, &witness.state_in);
    set_all(pw, &t.queue.elements, s.queue)?;
    set_all(pw, &t.sha256, s.sha256.map(u64::from))?;
    pw.set_target(t.count, F::from_canonical_u32(s.count))?;
    set_all(pw, &t.digest, s.digest.map(u64::from))?;
    for ((active, words), slot) in targets.slots.iter().zip(&witness.slots) {
        pw.set_bool_target(*active, slot.active)?;
        set_all(pw, words, slot.words.map(u64::from))?;
    }
    Ok(())
}
