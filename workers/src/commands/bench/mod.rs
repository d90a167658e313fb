//! `prover bench`: benchmarks that compare our path with a baseline measured in the same run.

mod pipeline;
mod prover;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use plonky2::iop::generator::generate_partial_witness;
use via_circuit_prover::cuda::{CudaBackend, TreeHash};
use via_circuits::aggregation::node::{AggregatedProof, NodeGrouping};
use via_circuits::aggregation::{AggregationCircuits, Proof};
use via_circuits::basic::CircuitId;
use via_circuits::prover::BasicCircuit;
use via_circuits::witness_generator::{BasicWitnesses, generate_basic_witnesses};
use via_core_devnet::CoreDevnet;
use via_schemas::config::{AggregationConfig, BasicCircuitsConfig, Config, CoreDevnetConfig};
use via_schemas::l2::WitnessInputData;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Round 0: each basic circuit proved through our path (witness vector, then proof) and by
    /// calling plonky2's `prove` directly on the same circuit and witness.
    Basic {
        /// Instance shape: the production one, or the small one of tests.
        #[arg(long, value_enum, default_value_t = Shape::Production)]
        shape: Shape,
        /// Runs per measurement; the fastest is reported.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// Rounds 1 to 5 on one devnet batch: every basic proof, then every aggregation step, with
    /// time and peak memory per round, aggregation's cost as a fraction of basic proving, and the
    /// final proof's size and verification time.
    Aggregate {
        #[arg(long, value_enum, default_value_t = Shape::Production)]
        shape: Shape,
        /// Transactions in the batch.
        #[arg(long, default_value_t = 64)]
        txs: usize,
    },
    /// Every circuit type (basic, leaf, node, recursion tip, scheduler, compression) of one devnet
    /// batch proved by plonky2's own prover and by ours (on plonky2's hashing and FFT, on the CPU
    /// backend, and on the CUDA backend where there is a GPU), on the same inputs: time, speed-up
    /// over plonky2 and peak memory per prover, and the CUDA backend's split between host
    /// copies, transfers and kernels.
    Prover {
        #[arg(long, value_enum, default_value_t = Shape::Production)]
        shape: Shape,
        /// Transactions in the batch; by default enough for two leaves of SignatureVerifier
        /// proofs, so a node is proved (48 at the production shape).
        #[arg(long)]
        txs: Option<usize>,
        /// Runs per measurement; the fastest is reported.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// Poseidon Merkle trees over LDE-shaped rows, as a prover commits to its polynomials:
    /// plonky2's `MerkleTree::new` against the CPU backend with each SIMD width this CPU has, and
    /// the CUDA backend where there is a GPU (with its phases, and the Poseidon and Keccak tree
    /// kernels' bandwidth against the device's peak).
    Merkle {
        /// log2 of the number of leaves (LDE rows): 17 for a 2^14 circuit at rate 1/8.
        #[arg(long, default_value_t = 17)]
        log_leaves: usize,
        /// Elements per leaf (polynomials committed together): 135 for the wires.
        #[arg(long, default_value_t = 135)]
        width: usize,
        /// Cap height, as the circuits' FRI configuration has it.
        #[arg(long, default_value_t = 4)]
        cap_height: usize,
        /// Runs per measurement; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Polynomial commitments as a prover makes them (coset LDE, rows in bit-reversed order,
    /// Merkle tree): plonky2's `PolynomialBatch::from_coeffs` against the CPU backend with each
    /// SIMD width this CPU has, and the CUDA backend where there is a GPU.
    Commit {
        /// log2 of the polynomials' degree: 14 or 16 for the basic circuits.
        #[arg(long, default_value_t = 14)]
        degree_bits: usize,
        /// Polynomials committed together: 135 for the wires.
        #[arg(long, default_value_t = 135)]
        polys: usize,
        /// The rate's log (3: rate 1/8, as the circuits' FRI configuration).
        #[arg(long, default_value_t = 3)]
        rate_bits: usize,
        #[arg(long, default_value_t = 4)]
        cap_height: usize,
        /// Runs per measurement; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The same devnet batches proved through the whole pipeline (core, gateway, Temporal,
    /// storage, records, worker pools in this process) and by calling the same stages directly in
    /// one process, with the configured shape and keys: wall times, their ratio, per-stage times
    /// and peak memory.
    Pipeline {
        /// Batches to prove each way.
        #[arg(long, default_value_t = 2)]
        batches: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shape {
    Production,
    Small,
}

impl Shape {
    fn config(self) -> BasicCircuitsConfig {
        match self {
            Self::Production => BasicCircuitsConfig::PRODUCTION,
            Self::Small => BasicCircuitsConfig::SMALL,
        }
    }
}

pub async fn run(command: BenchCommand, config: Config) -> anyhow::Result<()> {
    match command {
        BenchCommand::Basic { shape, runs } => basic(shape.config(), runs.max(1)).await,
        BenchCommand::Aggregate { shape, txs } => aggregate(shape.config(), txs).await,
        BenchCommand::Prover { shape, txs, runs } => prover::run(shape.config(), txs, runs.max(1)).await,
        BenchCommand::Pipeline { batches } => pipeline::run(config, batches.max(1)).await,
        BenchCommand::Merkle { log_leaves, width, cap_height, runs } => merkle(log_leaves, width, cap_height, runs.max(1)),
        BenchCommand::Commit { degree_bits, polys, rate_bits, cap_height, runs } => commit(degree_bits, polys, rate_bits, cap_height, runs.max(1)),
    }
}

/// A mixed devnet batch big enough to fill an instance of every circuit at `config`'s shape.
async fn devnet_batch(config: &BasicCircuitsConfig) -> anyhow::Result<WitnessInputData> {
    let txs = config.txs_per_tx_execution.max(config.blocks_per_pubdata_hasher).max(config.signatures_per_signature_verifier * 2).max(8);
    devnet_batch_of(txs).await
}

/// The second batch of a devnet sealing `txs` transactions per batch (the first opens accounts).
async fn devnet_batch_of(txs: usize) -> anyhow::Result<WitnessInputData> {
    let dir = tempfile::tempdir()?;
    let core = CoreDevnet::open(CoreDevnetConfig {
        database_url: format!("sqlite://{}/core.db", dir.path().display()),
        txs_per_batch: txs,
        user_accounts: 16,
        verify_proofs: false,
        ..CoreDevnetConfig::default()
    })
    .await?;
    // The first batch opens the accounts with deposits; the second mixes every kind.
    core.seal_batch().await?;
    core.seal_batch().await?;
    core.next_proof_generation_data().await?;
    let data = core.next_proof_generation_data().await?.ok_or_else(|| anyhow::anyhow!("the devnet sealed no second batch"))?;
    Ok(data.witness_input_data)
}

/// Resets the kernel's peak-RSS counter for this process, so the next reading covers only what
/// follows (Linux `clear_refs` 5). Memory freed by what ran before is first handed back to the
/// kernel: glibc keeps freed heap memory resident, and a measurement that followed a larger one
/// would otherwise start from the earlier one's peak.
fn reset_peak_memory() {
    // SAFETY: malloc_trim only hands free pages of glibc's heaps back to the kernel.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0)
    };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, in MiB (Linux `VmHWM`).
fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or(f64::NAN, |k| k / 1024.0)
}

struct Measured {
    witness_vector: Duration,
    total: Duration,
    peak_mib: f64,
}

fn fastest(runs: usize, mut measure: impl FnMut() -> anyhow::Result<Measured>) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs {
        let m = measure()?;
        if best.as_ref().is_none_or(|b| m.total < b.total) {
            best = Some(m);
        }
    }
    Ok(best.expect("at least one run"))
}

async fn basic(config: BasicCircuitsConfig, runs: usize) -> anyhow::Result<()> {
    println!("basic circuits at {config:?}, fastest of {runs} run(s)");
    let input = devnet_batch(&config).await?;
    let witnesses = generate_basic_witnesses(&input, &config)?;
    println!(
        "{:<24} {:>6} {:>8} {:>9} {:>12} {:>9} {:>10} {:>10} {:>6} {:>9} {:>9} {:>8}",
        "circuit", "degree", "build s", "wit.vec s", "p2 wit.vec s", "prove s", "ours s", "plonky2 s", "ratio", "ours MiB", "base MiB", "proof KiB"
    );
    for id in CircuitId::ALL {
        let instance = witnesses.instances.iter().find(|i| i.circuit_id == id).expect("every circuit has an instance");
        let started = Instant::now();
        let circuit = BasicCircuit::build(id, &config);
        let build = started.elapsed();

        let baseline = fastest(runs, || {
            reset_peak_memory();
            let started = Instant::now();
            let pw = circuit.partial_witness(&instance.witness)?;
            let proof = circuit.data.prove(pw)?;
            let total = started.elapsed();
            let peak_mib = peak_memory_mib();
            circuit.verify(proof)?;
            Ok(Measured { witness_vector: Duration::ZERO, total, peak_mib })
        })?;
        // plonky2's generator loop alone, for the witness vector column.
        let plonky2_witness_vector = (0..runs)
            .map(|_| {
                let pw = circuit.partial_witness(&instance.witness)?;
                let started = Instant::now();
                generate_partial_witness(pw, &circuit.data.prover_only, &circuit.data.common)?;
                Ok(started.elapsed())
            })
            .collect::<anyhow::Result<Vec<Duration>>>()?
            .into_iter()
            .min()
            .expect("at least one run");
        let mut proof_bytes = 0;
        let ours = fastest(runs, || {
            reset_peak_memory();
            let started = Instant::now();
            let vector = circuit.witness_vector(&instance.witness)?;
            let witness_vector = started.elapsed();
            let proof = circuit.prove_witness_vector(vector)?;
            let total = started.elapsed();
            let peak_mib = peak_memory_mib();
            proof_bytes = proof.to_bytes().len();
            circuit.verify(proof)?;
            Ok(Measured { witness_vector, total, peak_mib })
        })?;
        println!(
            "{:<24} {:>6} {:>8.2} {:>9.2} {:>12.2} {:>9.2} {:>10.2} {:>10.2} {:>6.3} {:>9.0} {:>9.0} {:>8.1}",
            id.to_string(),
            format!("2^{}", circuit.data.common.degree_bits()),
            build.as_secs_f64(),
            ours.witness_vector.as_secs_f64(),
            plonky2_witness_vector.as_secs_f64(),
            (ours.total - ours.witness_vector).as_secs_f64(),
            ours.total.as_secs_f64(),
            baseline.total.as_secs_f64(),
            ours.total.as_secs_f64() / baseline.total.as_secs_f64(),
            ours.peak_mib,
            baseline.peak_mib,
            proof_bytes as f64 / 1024.0,
        );
    }
    Ok(())
}

/// One round's figures.
struct Round {
    /// The aggregation round (0 basic to 5 compression); compression's layers are one each.
    round: usize,
    name: String,
    proofs: usize,
    time: Duration,
    peak_mib: f64,
}

impl Round {
    fn new(round: usize, name: impl Into<String>) -> Self {
        Self { round, name: name.into(), proofs: 0, time: Duration::ZERO, peak_mib: 0.0 }
    }

    /// Times one proof of this round, tracking the round's peak memory.
    fn time<T>(&mut self, step: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        reset_peak_memory();
        let started = Instant::now();
        let out = step()?;
        self.time += started.elapsed();
        self.peak_mib = self.peak_mib.max(peak_memory_mib());
        self.proofs += 1;
        Ok(out)
    }

    fn print(&self) {
        println!("{:<26} {:>6} {:>10.2} {:>10.2} {:>9.0}", format!("{} {}", self.round, self.name), self.proofs, self.time.as_secs_f64(), self.time.as_secs_f64() / self.proofs.max(1) as f64, self.peak_mib);
    }
}

/// Proves one batch from its basic witnesses to the compressed final proof by calling every
/// stage's circuit directly, timing each round. Returns the rounds (basic, leaf, node, recursion
/// tip, scheduler, compression) and the final proof's bytes.
fn prove_directly(basic: &BTreeMap<CircuitId, BasicCircuit>, circuits: &AggregationCircuits, witnesses: &BasicWitnesses) -> anyhow::Result<(Vec<Round>, Vec<u8>)> {
    let mut basic_round = Round::new(0, "basic");
    let mut proofs: BTreeMap<CircuitId, Vec<Proof>> = BTreeMap::new();
    for instance in &witnesses.instances {
        let proof = basic_round.time(|| Ok(basic[&instance.circuit_id].prove(&instance.witness)?))?;
        proofs.entry(instance.circuit_id).or_default().push(proof);
    }
    let (mut leaves, mut nodes) = (Round::new(1, "leaf"), Round::new(2, "node"));
    let mut roots = Vec::new();
    for id in CircuitId::ALL {
        let leaf = &circuits.leaves[&id];
        let mut level = Vec::new();
        for chunk in proofs[&id].chunks(leaf.capacity) {
            level.push(AggregatedProof { is_node: false, proof: leaves.time(|| Ok(leaf.prove(chunk)?))? });
        }
        roots.push(NodeGrouping::FewestNodes.root(level, |children| nodes.time(|| Ok(circuits.node.prove(children)?)))?);
    }
    let mut tip_round = Round::new(3, "recursion tip");
    let tip = tip_round.time(|| Ok(circuits.tip.prove(&circuits.node, &roots)?))?;
    let mut scheduler_round = Round::new(4, "scheduler");
    let mut proof = scheduler_round.time(|| Ok(circuits.scheduler.prove(&tip, &witnesses.public_data)?))?;
    let mut rounds = vec![basic_round, leaves, nodes, tip_round, scheduler_round];
    for layer in &circuits.compression {
        let mut layer_round = Round::new(5, format!("compression {}", layer.layer));
        proof = layer_round.time(|| Ok(layer.prove(&proof)?))?;
        rounds.push(layer_round);
    }
    let mut final_round = Round::new(5, format!("compression {} (final)", circuits.final_layer.layer));
    let final_proof = final_round.time(|| Ok(circuits.final_layer.prove(&proof)?))?;
    rounds.push(final_round);
    let bytes = circuits.final_proof_bytes(final_proof)?;
    Ok((rounds, bytes))
}

/// A `txs`-transaction devnet batch's basic witnesses, and every circuit (basic and aggregation)
/// of its protocol version, built.
async fn batch_and_circuits(txs: usize, config: &BasicCircuitsConfig, aggregation_config: &AggregationConfig) -> anyhow::Result<(BasicWitnesses, BTreeMap<CircuitId, BasicCircuit>, AggregationCircuits)> {
    let input = devnet_batch_of(txs).await?;
    let witnesses = generate_basic_witnesses(&input, config)?;
    let started = Instant::now();
    let basic: BTreeMap<CircuitId, BasicCircuit> = CircuitId::ALL.into_iter().map(|id| (id, BasicCircuit::build(id, config))).collect();
    let circuits = AggregationCircuits::build(&basic, aggregation_config, input.protocol_version)?;
    println!("built every circuit in {:.1} s", started.elapsed().as_secs_f64());
    Ok((witnesses, basic, circuits))
}

async fn aggregate(config: BasicCircuitsConfig, txs: usize) -> anyhow::Result<()> {
    let aggregation_config = AggregationConfig::default();
    println!("aggregation of a {txs}-transaction devnet batch, basic shape {config:?}, {aggregation_config:?}");
    let (witnesses, basic, circuits) = batch_and_circuits(txs, &config, &aggregation_config).await?;

    let (rounds, bytes) = prove_directly(&basic, &circuits, &witnesses)?;
    println!("{:<26} {:>6} {:>10} {:>10} {:>9}", "round", "proofs", "total s", "per proof", "peak MiB");
    for round in &rounds {
        round.print();
    }
    let basic_time = rounds[0].time.as_secs_f64();
    let aggregation_time: f64 = rounds[1..].iter().map(|r| r.time.as_secs_f64()).sum();
    println!("aggregation: {aggregation_time:.1} s = {:.1}% of basic proving ({basic_time:.1} s)", 100.0 * aggregation_time / basic_time);
    let verifier = circuits.final_verifier();
    const VERIFICATIONS: u32 = 20;
    let started = Instant::now();
    for _ in 0..VERIFICATIONS {
        verifier.verify(&bytes, &witnesses.public_data)?;
    }
    println!("final proof: {} bytes, verified in {:.2} ms (mean of {VERIFICATIONS})", bytes.len(), started.elapsed().as_secs_f64() * 1e3 / f64::from(VERIFICATIONS));
    Ok(())
}

/// The fastest of `runs` calls of `run`, each on a fresh input from `input` (made off the clock),
/// and the last call's result.
fn fastest_run<I, T>(runs: usize, input: impl Fn() -> I, mut run: impl FnMut(I) -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let input = input();
        let started = Instant::now();
        let out = run(input);
        best = best.min(started.elapsed());
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

/// The CUDA backend, or `None` with the reason printed.
fn cuda_backend() -> Option<CudaBackend> {
    match CudaBackend::new() {
        Ok(backend) => {
            println!("GPU: {}", backend.device());
            Some(backend)
        }
        Err(e) => {
            println!("cuda: not available ({e})");
            None
        }
    }
}

/// Times the CUDA backend as `fastest_run` times the others, after one untimed call that
/// allocates its buffers; checks its result against plonky2's `expected` (`differs` says what
/// went wrong), and prints its speed-up and its phases per run.
fn time_cuda<I, T: PartialEq>(cuda: &CudaBackend, runs: usize, plonky2: Duration, expected: &T, differs: &str, input: impl Fn() -> I, mut run: impl FnMut(I) -> T) -> anyhow::Result<()> {
    run(input());
    let before = cuda.timings();
    let (time, out) = fastest_run(runs, input, &mut run);
    anyhow::ensure!(out == *expected, "cuda {differs}");
    print_speed_up("cuda", time, plonky2);
    let phases = cuda.timings().since(&before);
    println!("  per run: {}", phases.summary(runs));
    Ok(())
}

/// One line of a backend comparison: its time and its speed-up over plonky2's.
fn print_speed_up(name: &str, time: Duration, plonky2: Duration) {
    println!("{name:<16} {:>9.3} s   {:>6.2}x plonky2", time.as_secs_f64(), plonky2.as_secs_f64() / time.as_secs_f64());
}

fn merkle(log_leaves: usize, width: usize, cap_height: usize, runs: usize) -> anyhow::Result<()> {
    use plonky2::field::types::Sample;
    use via_circuit_prover::cpu::CpuBackend;
    use via_circuit_prover::cpu::Simd;
    use via_circuit_prover::{F, Plonky2Backend, ProverBackend};

    println!("Merkle tree over 2^{log_leaves} leaves of {width} elements, cap height {cap_height}, fastest of {runs} run(s), {} threads", rayon::current_num_threads());
    let leaves: Vec<Vec<F>> = (0..1usize << log_leaves).map(|_| F::rand_vec(width)).collect();
    let (plonky2, expected) = fastest_run(runs, || leaves.clone(), |leaves| Plonky2Backend.merkle_tree(leaves, cap_height).cap);
    print_speed_up(&Plonky2Backend.name(), plonky2, plonky2);
    for simd in Simd::ALL {
        let Some(backend) = CpuBackend::with_simd(simd) else {
            println!("{simd:?}: not available on this CPU");
            continue;
        };
        let (time, cap) = fastest_run(runs, || leaves.clone(), |leaves| backend.merkle_tree(leaves, cap_height).cap);
        // Every backend must build plonky2's tree; a fast wrong one is no result.
        anyhow::ensure!(cap == expected, "{} built a different tree", backend.name());
        print_speed_up(&backend.name(), time, plonky2);
    }
    if let Some(cuda) = cuda_backend() {
        time_cuda(&cuda, runs, plonky2, &expected, "built a different tree", || leaves.clone(), |leaves| cuda.merkle_tree(leaves, cap_height).cap)?;
        print_merkle_throughput(&cuda, &[(TreeHash::Poseidon, log_leaves, "these leaves"), (TreeHash::Keccak, log_leaves, "a final layer's")], width, cap_height)?;
    }
    Ok(())
}

/// The tree kernels' speed on the device as memory bandwidth against its peak (the goal: half of
/// it), over random leaves of `width` elements laid out as an LDE's columns, with a cap of
/// `2^cap_height`: one line per tree of `trees` (its hash, log2 of its leaves, what it stands for).
fn print_merkle_throughput(cuda: &CudaBackend, trees: &[(TreeHash, usize, &str)], width: usize, cap_height: usize) -> anyhow::Result<()> {
    for &(hash, log_leaves, what) in trees {
        let throughput = cuda.merkle_throughput(hash, log_leaves, width, cap_height)?;
        let share = match (throughput.share_of_peak(), throughput.peak) {
            (Some(share), Some(peak)) => format!("{:.1}% of the device's {:.0} GB/s", 100.0 * share, peak / 1e9),
            _ => "the device's peak unknown".into(),
        };
        println!("  {hash:?} tree kernels, 2^{log_leaves} leaves of {width} ({what}): {:.2} ms, {:.0} GB/s, {share}", throughput.seconds * 1e3, throughput.bandwidth() / 1e9);
    }
    Ok(())
}

fn commit(degree_bits: usize, polys: usize, rate_bits: usize, cap_height: usize, runs: usize) -> anyhow::Result<()> {
    use plonky2::field::polynomial::PolynomialCoeffs;
    use plonky2::field::types::Sample;
    use plonky2::fri::oracle::PolynomialBatch;
    use plonky2::plonk::config::PoseidonGoldilocksConfig;
    use plonky2::util::timing::TimingTree;
    use via_circuit_prover::commit::commit;
    use via_circuit_prover::cpu::{CpuBackend, Simd};
    use via_circuit_prover::{F, ProverBackend};

    type C = PoseidonGoldilocksConfig;
    println!("commitment to {polys} polynomials of degree 2^{degree_bits} at rate bits {rate_bits}, cap height {cap_height}, fastest of {runs} run(s)");
    let polynomials: Vec<PolynomialCoeffs<F>> = (0..polys).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << degree_bits))).collect();
    let (plonky2, expected) = fastest_run(
        runs,
        || polynomials.clone(),
        |polynomials| PolynomialBatch::<F, C, 2>::from_coeffs(polynomials, rate_bits, false, cap_height, &mut TimingTree::default(), None).merkle_tree.cap,
    );
    print_speed_up("plonky2", plonky2, plonky2);
    // Each SIMD width alone, and the mix production detects where it is another.
    let mut backends: Vec<CpuBackend> = Simd::ALL.into_iter().filter_map(CpuBackend::with_simd).collect();
    if !backends.iter().any(|b| b.name() == CpuBackend::detect().name()) {
        backends.push(CpuBackend::detect());
    }
    for backend in backends {
        let (time, cap) = fastest_run(runs, || polynomials.clone(), |polynomials| commit(&backend, polynomials, rate_bits, false, cap_height).tree.cap().clone());
        anyhow::ensure!(cap == expected, "{} committed to something else", backend.name());
        print_speed_up(&backend.name(), time, plonky2);
    }
    if let Some(cuda) = cuda_backend() {
        time_cuda(&cuda, runs, plonky2, &expected, "committed to something else", || polynomials.clone(), |polynomials| commit(&cuda, polynomials, rate_bits, false, cap_height).tree.cap().clone())?;
    }
    Ok(())
}
