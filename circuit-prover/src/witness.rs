//! Witness generation: a circuit's generators run on its inputs until every wire has its value
//! (the witness vector the prover commits to).
//!
//! plonky2's loop runs the generators one at a time on one thread, each again whenever a wire it
//! watches is set, until it finds all its inputs. Here each generator runs once, when the last
//! wire it watches is set (a count per generator), and the generators made ready together run
//! in parallel as a wave against the witness as the wave found it; their values are then set,
//! each wire's in queue order (a large wave's by ranges of wires in parallel), which finds the
//! next wave. The values are plonky2's (each generator is a function of its inputs); only the
//! order in which they are found differs. A recursive verifier's generators (Poseidon
//! permutations along Merkle paths, FRI's folding) come in waves of hundreds, and on a GPU
//! machine an aggregation circuit's proof takes less time than plonky2's loop.
//!
//! plonky2's Poseidon gate generator is most of a recursive verifier's generator time (11,000 of
//! a leaf's 28,000 generators, four fifths of their time): it computes the permutation in generic
//! field arithmetic. The loop runs those gates itself ([`crate::poseidon::gate_trace`], the same
//! values), a lane-full of gates per SIMD pass ([`crate::poseidon::gate_traces`]), and weighs a
//! wave by its generators' cost when choosing whether to split it. Of the
//! 122 values such a gate sets, the 110 S-box inputs and deltas are, in every gate plonky2's
//! hashing builds, wires of the gate's own row that nothing else reads: those are written into
//! the witness as one block per gate, in parallel, rather than one by one through the watcher
//! index (a third of a leaf's witness generation went into setting values that way).

use plonky2::hash::poseidon::SPONGE_WIDTH;
use plonky2::iop::generator::GeneratedValues;
use plonky2::iop::target::Target;
use plonky2::iop::wire::Wire;
use plonky2::iop::witness::{PartialWitness, PartitionWitness};
use plonky2::plonk::circuit_data::{CommonCircuitData, ProverOnlyCircuitData};
use plonky2::plonk::config::{GenericConfig, GenericHashOut};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::F;
use crate::cpu::Simd;
use crate::prover::D;

/// Generators other than Poseidon gates run by one task of a wave at least (an arithmetic gate's
/// run takes well under a microsecond).
const GENERATORS_PER_TASK: usize = 16;

/// Poseidon gates per task of a wave: a SIMD pass's worth on AVX-512 (eight lanes), two on AVX2.
const MAX_LANES: usize = 8;

/// A Poseidon gate's run against another generator's, roughly (a permutation and 122 values set,
/// against an arithmetic gate's few products).
const POSEIDON_WEIGHT: usize = 8;

/// Waves of less weight (generators, a Poseidon gate's counted [`POSEIDON_WEIGHT`] times) run on
/// the loop's thread alone.
const SEQUENTIAL_BELOW: usize = 128;

/// Values of a wave set by ranges of wires in parallel at least (a leaf's waves of Merkle path
/// hashes set a hundred thousand); below, on the loop's thread.
const SET_IN_PARALLEL_FROM: usize = 1 << 14;

/// Poseidon gates' private blocks of a wave written in parallel at least (each 110 values).
const BLOCKS_IN_PARALLEL_FROM: usize = 64;

/// Inputs per share when they are set (a share is split from the others like a generator's
/// values).
const INPUTS_PER_SHARE: usize = 1024;

/// A value a generator found: the wire, its representative and the value.
type Generated = (Target, usize, F);

/// Why the generators did not produce a witness.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// An input, or a generator, set a wire that already had another value.
    #[error("a wire was given two different values: {0}")]
    Conflict(String),
    /// Some generators never found all their inputs set: the circuit's inputs are incomplete.
    #[error("{0} generators were never run: their inputs were never all set (missing circuit inputs?)")]
    Stalled(usize),
}

/// Every wire's value, from the circuit's `inputs`: the witness vector plonky2's
/// `generate_partial_witness` gives, its generators run in parallel waves.
pub fn generate_witness<'a, C: GenericConfig<D, F = F>>(
    inputs: PartialWitness<F>,
    prover_data: &'a ProverOnlyCircuitData<F, C, D>,
    common_data: &'a CommonCircuitData<F, D>,
) -> Result<PartitionWitness<'a, F>, WitnessError> {
    let started = std::time::Instant::now();
    let plan = Plan::of(prover_data, common_data.config.num_wires);
    // plonky2's `PartitionWitness::new`, its values (tens of megabytes) written in parallel.
    let mut witness = PartitionWitness {
        values: values_buffer(prover_data.representative_map.len()),
        representative_map: &prover_data.representative_map,
        num_wires: common_data.config.num_wires,
        degree: common_data.degree(),
    };
    let missing: Vec<AtomicU32> = plan.watched.par_iter().map(|&count| AtomicU32::new(count)).collect();
    // The inputs are set as a wave's values are, in shares so that many of them (an aggregation
    // circuit's proofs) are split; the first wave is the generators that watch nothing and
    // those the inputs make ready.
    let (num_wires, degree) = (witness.num_wires, witness.degree);
    let inputs: Vec<Generated> = inputs.target_values.into_iter().map(|(target, value)| (target, prover_data.representative_map[target.index(num_wires, degree)], value)).collect();
    let shares: Vec<&[Generated]> = inputs.chunks(INPUTS_PER_SHARE).collect();
    let (mut wave, _) = set_values(&mut witness.values, &shares, &plan, &missing)?;
    wave.extend((0..plan.watched.len() as u32).filter(|&index| plan.watched[index as usize] == 0));
    wave.par_sort_unstable();
    // A basic circuit's generators come in thousands of small waves: the loop runs on one of
    // the pool's threads, where a wave too small to split runs inline, rather than handing
    // every wave to the pool from outside it.
    rayon::scope(|_| run_waves(&mut witness, prover_data, &plan, missing, wave))?;
    // On a GPU this is much of an aggregation circuit's proof.
    crate::prover::count_step("witness generation", started.elapsed());
    tracing::debug!(degree_bits = common_data.degree_bits(), generators = prover_data.generators.len(), seconds = format_args!("{:.3}", started.elapsed().as_secs_f64()), "witness generated");
    Ok(witness)
}

/// Value buffers of witness vectors whose proofs are done with them, kept for the next: a
/// leaf's is 35 MB, a 2^16 basic circuit's 140 MB, and a fresh allocation that size is mapped
/// from the OS and faulted in page by page on every proof (1-12 ms of a leaf's witness here),
/// where a kept one is only overwritten.
static SPARE_VALUES: Mutex<Vec<Vec<Option<F>>>> = Mutex::new(Vec::new());

/// Spare buffers kept: a prover worker holds two witness vectors at once (one being proved, the
/// next being generated).
const SPARES_KEPT: usize = 2;

/// The largest buffer kept, in values (64 MiB): a larger one is a large basic circuit's (280 MB
/// at 2^17), whose proof takes seconds, so faulting a fresh one in costs under a hundredth of
/// it, and keeping it would hold that memory through the proof, where memory peaks.
const LARGEST_SPARE: usize = (64 << 20) / std::mem::size_of::<Option<F>>();

/// Keeps a witness vector's value buffer for the next witness, once its proof no longer reads it.
pub(crate) fn recycle(witness: PartitionWitness<'_, F>) {
    keep_spare(witness.values);
}

/// Keeps `values` as a spare buffer, unless it is too large to be worth keeping.
fn keep_spare(values: Vec<Option<F>>) {
    if values.capacity() > LARGEST_SPARE {
        return;
    }
    let mut spares = SPARE_VALUES.lock().expect("no panic while holding the lock");
    spares.push(values);
    if spares.len() > SPARES_KEPT {
        let smallest = (0..spares.len()).min_by_key(|&i| spares[i].capacity()).expect("spares kept");
        spares.swap_remove(smallest);
    }
}

/// `len` unset values, in the smallest spare buffer that holds them where there is one.
fn values_buffer(len: usize) -> Vec<Option<F>> {
    let spare = {
        let mut spares = SPARE_VALUES.lock().expect("no panic while holding the lock");
        let fits = (0..spares.len()).filter(|&i| spares[i].capacity() >= len).min_by_key(|&i| spares[i].capacity());
        fits.map(|i| spares.swap_remove(i))
    };
    let mut values = spare.unwrap_or_default();
    values.clear();
    values.par_extend((0..len).into_par_iter().map(|_| None));
    values
}

/// Runs every generator once its watched wires are set, in waves from `wave` (in queue order),
/// into `witness`; `missing` counts each generator's watched representatives not yet set.
fn run_waves<C: GenericConfig<D, F = F>>(witness: &mut PartitionWitness<'_, F>, prover_data: &ProverOnlyCircuitData<F, C, D>, plan: &Plan, missing: Vec<AtomicU32>, mut wave: Vec<u32>) -> Result<(), WitnessError> {
    let generators = &prover_data.generators;
    let (num_wires, degree) = (witness.num_wires, witness.degree);
    let representatives = &prover_data.representative_map;
    let mut remaining = generators.len();
    // Generators that were ready but did not finish (none of plonky2's do): run again after
    // any wave that sets a wire.
    let mut unfinished = Vec::new();
    let simd = Simd::detect();
    while !wave.is_empty() {
        let run = |&index: &u32| {
            let mut values = GeneratedValues::empty();
            let done = generators[index as usize].0.run(witness, &mut values);
            Ran { done, values: values.target_values.into_iter().map(|(target, value)| (target, representatives[target.index(num_wires, degree)], value)).collect(), block: None }
        };
        // The Poseidon gates apart, so that their permutations fill the SIMD lanes.
        let gates: Vec<PoseidonRow> = wave.iter().filter_map(|&index| plan.poseidon_rows[index as usize]).collect();
        let others: Vec<u32> = wave.iter().copied().filter(|&index| plan.poseidon_rows[index as usize].is_none()).collect();
        // Most of a basic circuit's waves are a few generators: waking the pool for them costs
        // more than running them.
        let (gates_ran, others_ran): (Vec<Ran>, Vec<Ran>) = match POSEIDON_WEIGHT * gates.len() + others.len() < SEQUENTIAL_BELOW {
            true => (poseidon_gates_values(witness, representatives, &gates, simd), others.iter().map(run).collect()),
            false => rayon::join(
                || gates.par_chunks(MAX_LANES).flat_map_iter(|chunk| poseidon_gates_values(witness, representatives, chunk, simd)).collect(),
                || others.par_iter().with_min_len(GENERATORS_PER_TASK).map(run).collect(),
            ),
        };
        // Back in queue order.
        let (mut gates_ran, mut others_ran) = (gates_ran.into_iter(), others_ran.into_iter());
        let ran: Vec<Ran> = wave.iter().map(|&index| if plan.poseidon_rows[index as usize].is_some() { gates_ran.next() } else { others_ran.next() }.expect("a run per generator")).collect();
        unfinished.clear();
        for (&index, ran) in wave.iter().zip(&ran) {
            match ran.done {
                true => remaining -= 1,
                false => unfinished.push(index),
            }
        }
        let blocks_set = set_blocks(&mut witness.values, &ran, num_wires)?;
        // Values are set in queue order for each wire (a wire given two values must be seen).
        let (mut next, any_set) = set_values(&mut witness.values, &ran, plan, &missing)?;
        if any_set || blocks_set {
            next.extend(&unfinished);
        }
        // Which decrement came last varies from run to run; the queue order must not.
        match next.len() < SEQUENTIAL_BELOW {
            true => next.sort_unstable(),
            false => next.par_sort_unstable(),
        }
        next.dedup();
        wave = next;
    }
    match remaining {
        0 => Ok(()),
        stalled => Err(WitnessError::Stalled(stalled)),
    }
}

/// What one generator's run gave: whether it finished, the values it set, and for a Poseidon
/// gate whose S-box inputs are its own ([`PoseidonRow::private`]), those as one block.
struct Ran {
    done: bool,
    values: Vec<Generated>,
    block: Option<Box<PrivateBlock>>,
}

impl AsRef<[Generated]> for Ran {
    fn as_ref(&self) -> &[Generated] {
        &self.values
    }
}

/// A Poseidon gate's private wires' values (see [`PoseidonRow::private`]), in column order.
struct PrivateBlock {
    row: u32,
    values: [F; crate::poseidon::gate_wires::FROM_DELTA],
}

/// Writes each Poseidon gate's private block into its row's slots (each wire its own
/// representative, watched by no generator: what setting them one by one would do, without
/// the watchers' lookups), many blocks in parallel; true if any wire was newly set.
fn set_blocks(values: &mut [Option<F>], ran: &[Ran], num_wires: usize) -> Result<bool, WitnessError> {
    use crate::poseidon::gate_wires::{DELTA, FROM_DELTA};
    let mut blocks: Vec<&PrivateBlock> = ran.iter().filter_map(|ran| ran.block.as_deref()).collect();
    // Each gate has a row of its own, so in row order the blocks' slots are disjoint slices.
    blocks.sort_unstable_by_key(|block| block.row);
    let mut slots = Vec::with_capacity(blocks.len());
    let (mut rest, mut at) = (values, 0);
    for block in blocks {
        let first = block.row as usize * num_wires + DELTA;
        let (_, from_block) = std::mem::take(&mut rest).split_at_mut(first - at);
        let (block_slots, after) = from_block.split_at_mut(FROM_DELTA);
        (rest, at) = (after, first + FROM_DELTA);
        slots.push((block_slots, block));
    }
    let set = |(block_slots, block): (&mut [Option<F>], &PrivateBlock)| -> Result<bool, WitnessError> {
        // Almost always none of the block's wires has a value yet (an input could give one).
        if block_slots.iter().all(Option::is_none) {
            for (slot, &value) in block_slots.iter_mut().zip(&block.values) {
                *slot = Some(value);
            }
            return Ok(true);
        }
        let mut any_set = false;
        for (column, (slot, &value)) in (DELTA..).zip(block_slots.iter_mut().zip(&block.values)) {
            any_set |= set_value(slot, Target::wire(block.row as usize, column), value)?;
        }
        Ok(any_set)
    };
    match slots.len() < BLOCKS_IN_PARALLEL_FROM {
        true => slots.into_iter().try_fold(false, |any_set, slots| Ok(set(slots)? | any_set)),
        false => slots.into_par_iter().with_min_len(BLOCKS_IN_PARALLEL_FROM / 2).map(set).try_reduce(|| false, |a, b| Ok(a | b)),
    }
}

/// Sets a wave's values (each generator's, or each share of the inputs'), in queue order, and
/// returns the generators they make ready (their last watched wire set) and whether any wire was
/// newly set. A wave of many values is split by ranges of representatives, one range per task:
/// every value of a representative falls to one task, in queue order, so a conflict is still
/// seen.
fn set_values<S: AsRef<[Generated]> + Sync>(values: &mut [Option<F>], generated: &[S], plan: &Plan, missing: &[AtomicU32]) -> Result<(Vec<u32>, bool), WitnessError> {
    // Sets `values` (the slots from representative `first` on) and collects what they make ready.
    let set_all = |slots: &mut [Option<F>], first: usize, generated: &mut dyn Iterator<Item = &Generated>| -> Result<(Vec<u32>, bool), WitnessError> {
        let (mut ready, mut any_set) = (Vec::new(), false);
        for &(target, rep, value) in generated {
            if set_value(&mut slots[rep - first], target, value)? {
                any_set = true;
                ready.extend(plan.watchers_of(rep).iter().copied().filter(|&index| missing[index as usize].fetch_sub(1, Ordering::Relaxed) == 1));
            }
        }
        Ok((ready, any_set))
    };
    let count: usize = generated.iter().map(|values| values.as_ref().len()).sum();
    if count < SET_IN_PARALLEL_FROM {
        return set_all(values, 0, &mut generated.iter().flat_map(AsRef::as_ref));
    }
    let ranges = 4 * rayon::current_num_threads();
    let span = values.len().div_ceil(ranges);
    // Each task's share of the values sorted by range, then each range set from every share in
    // turn.
    let shares: Vec<Vec<Vec<Generated>>> = generated
        .par_chunks(generated.len().div_ceil(ranges))
        .map(|share| {
            let mut by_range = vec![Vec::new(); ranges];
            for &value in share.iter().flat_map(AsRef::as_ref) {
                by_range[value.1 / span].push(value);
            }
            by_range
        })
        .collect();
    let per_range: Vec<(Vec<u32>, bool)> = values
        .par_chunks_mut(span)
        .enumerate()
        .map(|(range, slots)| set_all(slots, range * span, &mut shares.iter().flat_map(|by_range| &by_range[range])))
        .collect::<Result<_, WitnessError>>()?;
    let any_set = per_range.iter().any(|(_, any_set)| *any_set);
    Ok((per_range.into_iter().flat_map(|(ready, _)| ready).collect(), any_set))
}

/// Gives a wire (its representative's `slot`) its value: true if it had none, an error if it
/// had another.
fn set_value(slot: &mut Option<F>, target: Target, value: F) -> Result<bool, WitnessError> {
    match *slot {
        None => {
            *slot = Some(value);
            Ok(true)
        }
        Some(old) if old != value => Err(WitnessError::Conflict(format!("{target:?} was set to {old} and then to {value}"))),
        Some(_) => Ok(false),
    }
}

/// What the loop needs of a circuit beside plonky2's data, laid out once per circuit: plonky2's
/// watcher map (a tree of vectors, millions of entries for a 2^16 circuit) as flat arrays, each
/// generator's count of watched wires, and its Poseidon gate's row if it is one (asking every
/// generator its id allocates a string). About 60 MB for a 2^16 basic circuit.
struct Plan {
    /// The generators watching representative `rep` are `watchers[offsets[rep]..offsets[rep + 1]]`.
    offsets: Vec<u32>,
    watchers: Vec<u32>,
    /// Per generator, how many representatives it watches.
    watched: Vec<u32>,
    /// Per generator, the Poseidon gate it generates, if it is one.
    poseidon_rows: Vec<Option<PoseidonRow>>,
}

/// A Poseidon gate the loop runs itself.
#[derive(Clone, Copy, Debug)]
struct PoseidonRow {
    row: u32,
    /// Whether every wire from its deltas on is its own representative and watched by no
    /// generator (so in its own slot, next to the others), as in every gate plonky2's hashing
    /// builds: 110 of the 122 values the gate sets, written as one block.
    private: bool,
}

/// Plans kept, the most recently used first: a protocol version's circuits (four basic, four
/// leaves, node, recursion tip, scheduler, compression) and some to spare.
const PLANS_KEPT: usize = 16;

/// plonky2's Poseidon gate generator's id.
const POSEIDON_GENERATOR: &str = "PoseidonGenerator";

impl Plan {
    /// The plan of the circuit of `prover_data`, laid out on first use. Plans are keyed by the
    /// circuit's digest and generator count, so two circuits that share a digest but not their
    /// generators (the digest commits to the constraints, not to the generators) do not share one.
    fn of<C: GenericConfig<D, F = F>>(prover_data: &ProverOnlyCircuitData<F, C, D>, num_wires: usize) -> Arc<Plan> {
        type Kept = Vec<((Vec<u8>, usize), Arc<Plan>)>;
        static KEPT: Mutex<Kept> = Mutex::new(Vec::new());
        let key = (prover_data.circuit_digest.to_bytes(), prover_data.generators.len());
        {
            let mut kept = KEPT.lock().expect("no panic while holding the lock");
            if let Some(at) = kept.iter().position(|(k, _)| *k == key) {
                let entry = kept.remove(at);
                let plan = entry.1.clone();
                kept.insert(0, entry);
                return plan;
            }
        }
        let plan = Arc::new(Self::lay_out(prover_data, num_wires));
        let mut kept = KEPT.lock().expect("no panic while holding the lock");
        // Another proof of the circuit may have laid it out meanwhile.
        if let Some((_, theirs)) = kept.iter().find(|(k, _)| *k == key) {
            return theirs.clone();
        }
        kept.insert(0, (key, plan.clone()));
        kept.truncate(PLANS_KEPT);
        plan
    }

    fn lay_out<C: GenericConfig<D, F = F>>(prover_data: &ProverOnlyCircuitData<F, C, D>, num_wires: usize) -> Self {
        let index = |n: usize| u32::try_from(n).expect("generator and watcher counts fit in u32");
        let reps = prover_data.representative_map.len();
        let (mut offsets, mut watchers) = (Vec::with_capacity(reps + 1), Vec::new());
        let mut watched = vec![0u32; prover_data.generators.len()];
        offsets.push(0);
        for (&rep, watching) in &prover_data.generator_indices_by_watches {
            offsets.resize(rep + 1, index(watchers.len()));
            for &generator in watching {
                watchers.push(index(generator));
                watched[generator] += 1;
            }
            offsets.push(index(watchers.len()));
        }
        offsets.resize(reps + 1, index(watchers.len()));
        let unwatched = |rep: usize| offsets[rep] == offsets[rep + 1];
        let private = |row: usize| {
            let first = row * num_wires;
            (first + crate::poseidon::gate_wires::DELTA..first + crate::poseidon::gate_wires::COUNT).all(|wire| prover_data.representative_map[wire] == wire && unwatched(wire))
        };
        let poseidon_rows = prover_data
            .generators
            .par_iter()
            .map(|generator| match generator.0.id() == POSEIDON_GENERATOR {
                // The gate generator watches its row's inputs, the first input first.
                true => match generator.0.watch_list().first() {
                    Some(Target::Wire(Wire { row, .. })) => Some(PoseidonRow { row: index(*row), private: private(*row) }),
                    _ => None,
                },
                false => None,
            })
            .collect();
        Self { offsets, watchers, watched, poseidon_rows }
    }

    fn watchers_of(&self, rep: usize) -> &[u32] {
        &self.watchers[self.offsets[rep] as usize..self.offsets[rep + 1] as usize]
    }
}

/// What plonky2's Poseidon gate generator sets for each of `gates`: its inputs (wires 0 to 11)
/// and swap flag (wire 24) are read, then the deltas (25 to 28), the first full rounds' S-box
/// inputs (29 to 64), the partial rounds' (65 to 86), the last full rounds' (87 to 134) and the
/// outputs (12 to 23) are set: the outputs each with its representative, the rest as one block
/// where the gate's are private, each with its representative otherwise. The permutations run a
/// lane-full of gates at a time on `simd`.
fn poseidon_gates_values(witness: &PartitionWitness<'_, F>, representatives: &[usize], gates: &[PoseidonRow], simd: Simd) -> Vec<Ran> {
    use crate::poseidon::gate_wires::{DELTA, INPUT, OUTPUT, SWAP};
    let (num_wires, degree) = (witness.num_wires, witness.degree);
    let wire = |row: usize, column: usize| {
        let target = Target::wire(row, column);
        (target, representatives[target.index(num_wires, degree)])
    };
    let get = |row: usize, column: usize| witness.values[wire(row, column).1].expect("the generator runs once its watched wires are set");
    let inputs: Vec<([F; SPONGE_WIDTH], F)> = gates.iter().map(|gate| (std::array::from_fn(|i| get(gate.row as usize, INPUT + i)), get(gate.row as usize, SWAP))).collect();
    let traces = crate::poseidon::gate_traces(&inputs, simd);
    gates
        .iter()
        .zip(traces)
        .map(|(gate, trace)| {
            let set = |(column, value): (usize, F)| {
                let (target, rep) = wire(gate.row as usize, column);
                (target, rep, value)
            };
            let outputs = (OUTPUT..).zip(trace.output).map(set);
            match gate.private {
                true => Ran { done: true, values: outputs.collect(), block: Some(Box::new(PrivateBlock { row: gate.row, values: trace.kept })) },
                false => Ran { done: true, values: (DELTA..).zip(trace.kept).map(set).chain(outputs).collect(), block: None },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Field;
    use plonky2::hash::hashing::PlonkyPermutation;
    use plonky2::hash::poseidon::{PoseidonHash, PoseidonPermutation};
    use plonky2::plonk::config::AlgebraicHasher;
    use plonky2::iop::generator::generate_partial_witness;
    use plonky2::iop::target::Target;
    use plonky2::iop::witness::WitnessWrite;
    use plonky2::plonk::circuit_builder::CircuitBuilder;
    use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
    use plonky2::plonk::config::PoseidonGoldilocksConfig;

    use super::*;

    type C = PoseidonGoldilocksConfig;

    /// Two chains of Poseidon hashes and arithmetic from two inputs, joined at the end: waves
    /// with several generators each, and generators that wait on values from earlier waves. Each
    /// chain ends in a permutation whose halves are swapped when its input is odd, as a Merkle
    /// path's are.
    fn chains() -> (CircuitData<F, C, D>, [Target; 2]) {
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let inputs = [builder.add_virtual_target(), builder.add_virtual_target()];
        let ends = inputs.map(|input| {
            let mut value = input;
            for _ in 0..20 {
                let digest = builder.hash_n_to_hash_no_pad::<PoseidonHash>(vec![value, input]);
                let squared = builder.mul(digest.elements[0], digest.elements[1]);
                value = builder.add(squared, digest.elements[2]);
            }
            let odd = builder.split_le(input, 64)[0];
            let state = PoseidonPermutation::new((0..SPONGE_WIDTH as u64).map(|i| builder.mul_const(F::from_canonical_u64(i + 1), value)));
            let swapped = PoseidonHash::permute_swapped(state, odd, &mut builder);
            builder.add(value, swapped.as_ref()[0])
        });
        let joined = builder.mul(ends[0], ends[1]);
        builder.register_public_input(joined);
        builder.range_check(inputs[1], 32);
        (builder.build::<C>(), inputs)
    }

    fn inputs(targets: [Target; 2], values: [u64; 2]) -> PartialWitness<F> {
        let mut pw = PartialWitness::new();
        for (target, value) in targets.into_iter().zip(values) {
            pw.set_target(target, F::from_canonical_u64(value)).unwrap();
        }
        pw
    }

    /// Every wire our loop sets from `inputs` is the one plonky2's sets.
    fn assert_plonky2s_wires(data: &CircuitData<F, C, D>, inputs: impl Fn() -> PartialWitness<F>, case: &str) {
        let ours = generate_witness(inputs(), &data.prover_only, &data.common).unwrap();
        let theirs = generate_partial_witness(inputs(), &data.prover_only, &data.common).unwrap();
        // plonky2 randomises the public-input gate's unused wires: those differ between two of
        // its own runs and are left out.
        let again = generate_partial_witness(inputs(), &data.prover_only, &data.common).unwrap();
        let random: Vec<bool> = theirs.values.iter().zip(&again.values).map(|(a, b)| a != b).collect();
        assert!(random.iter().filter(|&&r| r).count() <= data.common.config.num_wires, "only one gate's wires are random");
        for (i, ((ours, theirs), random)) in ours.values.iter().zip(&theirs.values).zip(&random).enumerate() {
            assert!(*random || ours == theirs, "{case}: wire {i} is {ours:?}, plonky2's {theirs:?}");
            assert_eq!(ours.is_some(), theirs.is_some(), "{case}: wire {i} set by one");
        }
    }

    #[test]
    fn every_wire_is_plonky2s() {
        let (data, targets) = chains();
        // Every Poseidon gate plonky2's hashing builds has its S-box inputs to itself.
        let plan = Plan::lay_out(&data.prover_only, data.common.config.num_wires);
        assert!(plan.poseidon_rows.iter().flatten().all(|gate| gate.private), "{:?}", plan.poseidon_rows);
        // Odd and even inputs: the swapped permutations run with swap 1 and 0.
        for values in [[3, 5], [u64::MAX >> 1, 1 << 31]] {
            assert_plonky2s_wires(&data, || inputs(targets, values), &format!("inputs {values:?}"));
        }
    }

    #[test]
    fn a_wide_wave_of_hashes_sets_plonky2s_wires() {
        // Independent hashes of one input: a wave of that many Poseidon gates, whose private
        // blocks are written in parallel.
        let hashes = 2 * BLOCKS_IN_PARALLEL_FROM;
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let input = builder.add_virtual_target();
        for i in 0..hashes {
            let salt = builder.constant(F::from_canonical_usize(i));
            let digest = builder.hash_n_to_hash_no_pad::<PoseidonHash>(vec![input, salt]);
            builder.register_public_input(digest.elements[0]);
        }
        let data = builder.build::<C>();
        let inputs = || {
            let mut pw = PartialWitness::new();
            pw.set_target(input, F::from_canonical_u64(5)).unwrap();
            pw
        };
        assert_plonky2s_wires(&data, inputs, "a wide wave");
    }

    /// A hashing gate beside a Poseidon gate built by hand, one of whose S-box inputs is
    /// multiplied by itself (so it is watched by the multiplication's generator and copied into
    /// its gate) and made public.
    fn a_watched_sbox_input() -> (CircuitData<F, C, D>, Target, usize) {
        use crate::poseidon::gate_wires::{FULL_SBOX_0, INPUT, SWAP};
        use plonky2::gates::poseidon::PoseidonGate;
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let input = builder.add_virtual_target();
        let digest = builder.hash_n_to_hash_no_pad::<PoseidonHash>(vec![input]);
        let row = builder.add_gate(PoseidonGate::<F, D>::new(), vec![]);
        for i in 0..SPONGE_WIDTH {
            builder.connect(digest.elements[i % 4], Target::wire(row, INPUT + i));
        }
        let zero = builder.zero();
        builder.connect(zero, Target::wire(row, SWAP));
        let sbox = Target::wire(row, FULL_SBOX_0 + 3);
        let squared = builder.mul(sbox, sbox);
        builder.register_public_input(squared);
        (builder.build::<C>(), input, row)
    }

    #[test]
    fn a_poseidon_gate_whose_sbox_input_is_watched_sets_its_wires_one_by_one_as_plonky2() {
        let (data, input, row) = a_watched_sbox_input();
        let plan = Plan::lay_out(&data.prover_only, data.common.config.num_wires);
        let mut gates: Vec<(u32, bool)> = plan.poseidon_rows.iter().flatten().map(|gate| (gate.row, gate.private)).collect();
        gates.sort_unstable();
        assert_eq!(gates.iter().filter(|(_, private)| !private).map(|(row, _)| *row as usize).collect::<Vec<_>>(), vec![row], "only the hand-built gate's S-box inputs are not its own: {gates:?}");
        assert!(gates.iter().any(|(_, private)| *private), "the hashing gates' are: {gates:?}");
        let inputs = || {
            let mut pw = PartialWitness::new();
            pw.set_target(input, F::from_canonical_u64(11)).unwrap();
            pw
        };
        assert_plonky2s_wires(&data, inputs, "a watched S-box input");
    }

    #[test]
    fn a_kept_buffer_comes_back_unset() {
        let (data, targets) = chains();
        let witness = generate_witness(inputs(targets, [3, 5]), &data.prover_only, &data.common).unwrap();
        let len = witness.values.len();
        assert!(witness.values.iter().filter(|v| v.is_some()).count() > len / 4);
        recycle(witness);
        for len in [len, len / 2, 1] {
            let values = values_buffer(len);
            assert_eq!(values.len(), len);
            assert!(values.iter().all(Option::is_none), "a kept buffer came back with values set");
        }
    }

    #[test]
    fn a_buffer_too_large_to_keep_is_freed() {
        let large: Vec<Option<F>> = Vec::with_capacity(LARGEST_SPARE + 1);
        keep_spare(large);
        let spares = SPARE_VALUES.lock().unwrap();
        assert!(spares.iter().all(|spare| spare.capacity() <= LARGEST_SPARE), "a buffer above the limit was kept");
    }

    /// A wave of 400 generators of 100 values each over `reps` wires, each wire set four times
    /// (by generators far apart in the queue), to its own index.
    fn wave_over(reps: usize) -> Vec<Vec<Generated>> {
        (0..400)
            .map(|g| {
                let values = (0..100).map(|k| {
                    let rep = (g * 100 + k) * 7919 % reps;
                    (Target::VirtualTarget { index: rep }, rep, F::from_canonical_usize(rep))
                });
                values.collect()
            })
            .collect()
    }

    #[test]
    fn a_wave_set_by_ranges_sets_every_wire_once_and_sees_a_conflict() {
        let reps = 10_000;
        let wave = wave_over(reps);
        assert!(wave.iter().map(Vec::len).sum::<usize>() >= SET_IN_PARALLEL_FROM, "the parallel path");
        // Generator 0 watches wires 5 and 9,000 (in different ranges), generator 1 wire 9,000,
        // generator 2 wire 7 and a wire the wave does not set.
        let watching: std::collections::BTreeMap<usize, Vec<u32>> = [(5, vec![0]), (7, vec![2]), (9_000, vec![0, 1])].into();
        let mut offsets = vec![0u32];
        let mut watchers = Vec::new();
        for rep in 0..reps {
            watchers.extend(watching.get(&rep).into_iter().flatten());
            offsets.push(watchers.len() as u32);
        }
        let plan = Plan { offsets, watchers, watched: vec![2, 1, 2], poseidon_rows: vec![None; 3] };
        let missing = plan.watched.iter().map(|&n| AtomicU32::new(n)).collect::<Vec<_>>();
        let mut values = vec![None; reps];
        let (mut ready, any_set) = set_values(&mut values, &wave, &plan, &missing).unwrap();
        ready.sort_unstable();
        assert_eq!((ready, any_set), (vec![0, 1], true), "made ready once each");
        assert_eq!(missing[2].load(Ordering::Relaxed), 1, "one watched wire left unset");
        assert!(values.iter().enumerate().all(|(rep, v)| *v == Some(F::from_canonical_usize(rep))));
        // Wires already set are not newly set again.
        assert_eq!(set_values(&mut values, &wave, &plan, &missing).unwrap(), (vec![], false));

        // The last generator gives a wire the first generator set another value.
        let mut wave = wave_over(reps);
        let (target, rep, _) = wave[0][0];
        wave[399].push((target, rep, F::from_canonical_usize(rep + 1)));
        let missing = plan.watched.iter().map(|&n| AtomicU32::new(n)).collect::<Vec<_>>();
        let error = set_values(&mut vec![None; reps], &wave, &plan, &missing).unwrap_err();
        assert!(matches!(error, WitnessError::Conflict(_)), "{error}");
    }

    #[test]
    fn a_missing_input_stalls_the_generators_that_need_it() {
        let (data, targets) = chains();
        let mut pw = PartialWitness::new();
        pw.set_target(targets[0], F::ONE).unwrap();
        let error = generate_witness(pw, &data.prover_only, &data.common).unwrap_err();
        assert!(matches!(error, WitnessError::Stalled(count) if count > 20), "{error}");
    }

    #[test]
    fn a_wire_given_two_values_is_a_conflict() {
        let (data, targets) = chains();
        let mut pw = inputs(targets, [3, 5]);
        // The public input is generated from the inputs; giving it another value conflicts.
        pw.set_target(data.prover_only.public_inputs[0], F::from_canonical_u64(7)).unwrap();
        let error = generate_witness(pw, &data.prover_only, &data.common).unwrap_err();
        assert!(matches!(error, WitnessError::Conflict(_)), "{error}");

        // So does an S-box input a Poseidon gate writes as part of its private block.
        let plan = Plan::lay_out(&data.prover_only, data.common.config.num_wires);
        let gate = plan.poseidon_rows.iter().flatten().find(|gate| gate.private).expect("a hashing gate");
        let sbox = Target::wire(gate.row as usize, crate::poseidon::gate_wires::FULL_SBOX_1 + 5);
        let mut pw = inputs(targets, [3, 5]);
        pw.set_target(sbox, F::from_canonical_u64(7)).unwrap();
        let error = generate_witness(pw, &data.prover_only, &data.common).unwrap_err();
        assert!(matches!(&error, WitnessError::Conflict(conflict) if conflict.contains(&format!("{sbox:?}"))), "{error}");
    }
}
