//! `prover bench prover`: every circuit type proved by plonky2's own prover and by ours on each
//! backend, on the same inputs in the same run: one devnet batch taken from basic witnesses to
//! the compressed proof, each circuit type's first proof made once per prover.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use via_circuit_prover::cpu::CpuBackend;
use via_circuit_prover::cuda::{CudaBackend, CudaTimings, TreeHash};
use via_circuit_prover::Plonky2Backend;
use via_circuit_prover::prover::{StepTimes, step_times};
use via_circuits::aggregation::node::{AggregatedProof, NodeGrouping};
use via_circuits::aggregation::Proof;
use via_circuits::basic::CircuitId;
use via_circuits::proving::{Prover, use_prover};
use via_schemas::config::{AggregationConfig, BasicCircuitsConfig};

use super::{batch_and_circuits, peak_memory_mib, print_merkle_throughput, reset_peak_memory};

/// The provers compared: plonky2's, then ours on plonky2's own hashing and FFT (the protocol
/// alone), then ours on the CPU backend as production runs it (the widest SIMD this CPU has),
/// then ours on the CUDA backend where there is a GPU.
fn provers(cuda: Option<&Arc<CudaBackend>>) -> Vec<Prover> {
    let mut provers = vec![Prover::Plonky2, Prover::Ours(Arc::new(Plonky2Backend)), Prover::Ours(Arc::new(CpuBackend::detect()))];
    provers.extend(cuda.map(|cuda| Prover::Ours(cuda.clone())));
    provers
}

/// Rows of one circuit type each, proved by every prover.
struct Comparison {
    provers: Vec<Prover>,
    runs: usize,
    /// Per prover: total time over every row, for the summary.
    totals: Vec<Duration>,
    cuda: Option<Arc<CudaBackend>>,
    /// The CUDA backend's phases in the runs the rows report (each circuit's fastest: a first
    /// proof also uploads the circuit's constants and sigmas).
    cuda_fastest: CudaTimings,
    /// Per prover: our proofs' steps in the runs the rows report (none for plonky2's prover).
    steps: Vec<StepTimes>,
}

impl Comparison {
    fn new(runs: usize, cuda: Option<&Arc<CudaBackend>>) -> Self {
        let provers = provers(cuda);
        let totals = vec![Duration::ZERO; provers.len()];
        let steps = vec![StepTimes::default(); provers.len()];
        Self { provers, runs, totals, cuda: cuda.cloned(), cuda_fastest: CudaTimings::default(), steps }
    }

    fn print_header(&self) {
        print!("{:<28} {:>6}", "circuit", "degree");
        for prover in &self.provers {
            print!(" | {:>22}", prover.name());
        }
        println!();
    }

    /// Proves with each prover in turn, fastest of `runs` each, and prints one row: time,
    /// speed-up over plonky2 and peak memory per prover. Returns the last prover's proof.
    fn row<T>(&mut self, name: &str, degree_bits: usize, mut prove: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.row_from(name, degree_bits, || (), |()| prove())
    }

    /// As [`Self::row`], each run proving from an input `input` makes before the clock starts
    /// (a copy of a witness vector, which proving consumes).
    fn row_from<I, T>(&mut self, name: &str, degree_bits: usize, mut input: impl FnMut() -> I, mut prove: impl FnMut(I) -> anyhow::Result<T>) -> anyhow::Result<T> {
        print!("{name:<28} {:>6}", format!("2^{degree_bits}"));
        let mut baseline = None;
        let mut last = None;
        for (i, prover) in self.provers.iter().enumerate() {
            use_prover(prover.clone());
            let mut best = (Duration::MAX, 0.0, CudaTimings::default(), StepTimes::default());
            // Only the CUDA prover's runs move the backend's readings; the others add nothing.
            let cuda_timings = || self.cuda.as_ref().map(|cuda| cuda.timings()).unwrap_or_default();
            for _ in 0..self.runs {
                let input = input();
                reset_peak_memory();
                let (before, steps_before) = (cuda_timings(), step_times());
                let started = Instant::now();
                let out = prove(input)?;
                let time = started.elapsed();
                if time < best.0 {
                    best = (time, peak_memory_mib(), cuda_timings().since(&before), step_times().since(&steps_before));
                }
                last = Some(out);
            }
            let baseline = *baseline.get_or_insert(best.0);
            self.totals[i] += best.0;
            self.cuda_fastest = self.cuda_fastest.add(&best.2);
            self.steps[i] = self.steps[i].add(&best.3);
            print!(" | {:>6.2} s {:>5.2}x {:>5.0} MiB", best.0.as_secs_f64(), baseline.as_secs_f64() / best.0.as_secs_f64(), best.1);
        }
        println!();
        Ok(last.expect("at least one prover and run"))
    }

    fn print_totals(&self) {
        print!("{:<28} {:>6}", "all of the above", "");
        for total in &self.totals {
            print!(" | {:>6.2} s {:>5.2}x {:>9}", total.as_secs_f64(), self.totals[0].as_secs_f64() / total.as_secs_f64(), "");
        }
        println!();
    }

    /// Where each of our provers' time went over the runs the rows report, step by step
    /// (plonky2's prover, generator loop included, has no steps of ours).
    fn print_steps(&self) {
        for (prover, steps) in self.provers.iter().zip(&self.steps).filter(|(prover, _)| matches!(prover, Prover::Ours(_))) {
            println!("steps of {}: {}", prover.name(), steps.summary());
        }
    }
}

/// Proves one batch's first instance of every circuit type with each prover. `txs` defaults to
/// two leaves' worth of signatures: a node needs more than one leaf, and not every transaction
/// is signed (deposits are not).
pub async fn run(config: BasicCircuitsConfig, txs: Option<usize>, runs: usize) -> anyhow::Result<()> {
    let aggregation_config = AggregationConfig::default();
    let txs = txs.unwrap_or((2 * config.signatures_per_signature_verifier * aggregation_config.basic_proofs_per_leaf).max(16));
    println!("every circuit type of a {txs}-transaction devnet batch, basic shape {config:?}, {aggregation_config:?}, fastest of {runs} run(s), {} threads", rayon::current_num_threads());
    let (witnesses, basic, circuits) = batch_and_circuits(txs, &config, &aggregation_config).await?;
    let cuda = super::cuda_backend().map(Arc::new);
    let mut comparison = Comparison::new(runs, cuda.as_ref());
    comparison.print_header();
    // Proofs that only feed the next round are made once, by the prover production uses.
    let production = comparison.provers.last().expect("provers").clone();

    // Round 0: each type's first instance compared; the rest proved once, for aggregation.
    let mut proofs: BTreeMap<CircuitId, Vec<Proof>> = BTreeMap::new();
    for instance in &witnesses.instances {
        let circuit = &basic[&instance.circuit_id];
        let proof = if proofs.contains_key(&instance.circuit_id) {
            use_prover(production.clone());
            circuit.prove(&instance.witness)?
        } else {
            let vector = circuit.witness_vector(&instance.witness)?;
            let proof = comparison.row_from(&format!("0 {}", instance.circuit_id), circuit.data.common.degree_bits(), || vector.clone(), |vector| Ok(circuit.prove_witness_vector(vector)?))?;
            circuit.verify(proof.clone())?;
            proof
        };
        proofs.entry(instance.circuit_id).or_default().push(proof);
    }

    // Rounds 1 and 2: each type's first leaf and the first node compared.
    let mut roots = Vec::new();
    let mut node_compared = false;
    for id in CircuitId::ALL {
        let leaf = &circuits.leaves[&id];
        let mut level = Vec::new();
        for (i, chunk) in proofs[&id].chunks(leaf.capacity).enumerate() {
            let proof = if i == 0 {
                comparison.row(&format!("1 leaf {id}"), leaf.data.common.degree_bits(), || Ok(leaf.prove(chunk)?))?
            } else {
                use_prover(production.clone());
                leaf.prove(chunk)?
            };
            level.push(AggregatedProof { is_node: false, proof });
        }
        let root = NodeGrouping::FewestNodes.root(level, |children| {
            if node_compared {
                use_prover(production.clone());
                Ok(circuits.node.prove(children)?)
            } else {
                node_compared = true;
                comparison.row("2 node", circuits.node.data.common.degree_bits(), || Ok(circuits.node.prove(children)?))
            }
        })?;
        roots.push(root);
    }
    if !node_compared {
        println!("(no node: every type fits one leaf at {txs} transactions; raise --txs)");
    }
    let tip = comparison.row("3 recursion tip", circuits.tip.data.common.degree_bits(), || Ok(circuits.tip.prove(&circuits.node, &roots)?))?;
    let mut proof = comparison.row("4 scheduler", circuits.scheduler.data.common.degree_bits(), || Ok(circuits.scheduler.prove(&tip, &witnesses.public_data)?))?;
    for layer in &circuits.compression {
        let inner = proof.clone();
        proof = comparison.row(&format!("5 compression {}", layer.layer), layer.data.common.degree_bits(), || Ok(layer.prove(&inner)?))?;
    }
    let final_layer = &circuits.final_layer;
    let proof = comparison.row(&format!("5 compression {} (final)", final_layer.layer), final_layer.data.common.degree_bits(), || Ok(final_layer.prove(&proof)?))?;
    comparison.print_totals();
    comparison.print_steps();
    if let Some(cuda) = &cuda {
        // Its time over every proof it made, the feeder proofs too.
        let timings = cuda.timings();
        println!("cuda backend: {:.2} s in all: {}; {} quotients and {} partial products computed on the GPU", timings.total().as_secs_f64(), timings.summary(1), timings.quotients, timings.partial_products);
        let fastest = &comparison.cuda_fastest;
        println!("cuda backend in the runs above: {:.2} s: {}", fastest.total().as_secs_f64(), fastest.summary(1));
        // The trees that weigh most: a 2^17 basic circuit's wires at rate 1/8 (PubdataHasher and
        // SignatureVerifier at the production shape), the final wrap's at 1/256.
        print_merkle_throughput(cuda, &[(TreeHash::Poseidon, 20, "a 2^17 circuit's wires"), (TreeHash::Keccak, 20, "the final wrap's wires")], 135, 4)?;
    }
    // Every prover's proofs went into the next round; the last one's final proof must verify.
    circuits.final_verifier().verify(&circuits.final_proof_bytes(proof)?, &witnesses.public_data)?;
    println!("final proof verified");
    Ok(())
}
