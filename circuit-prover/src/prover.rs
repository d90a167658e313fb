//! Our PLONK prover for plonky2 circuits: plonky2's protocol step by step (witness, wire
//! commitment, permutation partial products, quotient, openings, FRI), with every commitment made
//! through a [`ProverBackend`]. It returns plonky2's own `ProofWithPublicInputs`, which
//! `CircuitData::verify` and recursive verifiers accept unchanged: the transcript (what is observed
//! and in which order) is plonky2's, so every challenge is the one plonky2's verifier derives.
//!
//! Circuits with lookup tables are refused: none of ours has one.

use plonky2::field::extension::Extendable;
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::field::types::Field;
use plonky2::field::zero_poly_coset::ZeroPolyOnCoset;
use plonky2::fri::structure::{FriBatchInfo, FriInstanceInfo, FriOpeningBatch, FriOpenings, FriOracleInfo, FriPolynomialInfo};
use plonky2::gates::gate::GateRef;
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::challenger::Challenger;
use plonky2::iop::witness::{PartialWitness, PartitionWitness, Witness};
use plonky2::plonk::circuit_data::{CircuitConfig, CommonCircuitData, ProverOnlyCircuitData, VerifierCircuitData, VerifierOnlyCircuitData};
use plonky2::plonk::config::{GenericConfig, Hasher};
use plonky2::plonk::proof::{OpeningSet, Proof, ProofWithPublicInputs};
use plonky2::plonk::vars::EvaluationVarsBaseBatch;
use plonky2::util::log2_ceil;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::commit::{Commitment, CommitmentRef, SALT_SIZE, commit, commit_permutation, commit_values};
use crate::cpu::Simd;
use crate::goldilocks::ProductSum;
use crate::partial_products::{Factors, PermutationInputs};
use crate::quotient::{self, CapName};
use crate::{F, MerkleHasher, ProverBackend};

/// plonky2's extension degree, the only one we prove with.
pub const D: usize = 2;
type FE = <F as Extendable<D>>::Extension;

/// A plonky2 configuration our prover can prove for: Goldilocks, Poseidon for the public
/// inputs' hash, and Merkle trees and transcript of a [`MerkleHasher`] (Poseidon, or Keccak
/// for a final proof).
pub trait ProverConfig: GenericConfig<D, F = F, Hasher = Self::MerkleHash, InnerHasher = PoseidonHash> {
    type MerkleHash: MerkleHasher;
}
impl<H: MerkleHasher, C: GenericConfig<D, F = F, Hasher = H, InnerHasher = PoseidonHash>> ProverConfig for C {
    type MerkleHash = H;
}

/// plonky2's four oracles, in transcript order (plonky2's `PlonkOracle`, whose fields are private).
#[derive(Clone, Copy)]
enum Oracle {
    ConstantsSigmas,
    Wires,
    ZsPartialProducts,
    Quotient,
}

impl Oracle {
    /// Whether a zero-knowledge proof salts its leaves: all but the preprocessed one.
    fn blinded(self) -> bool {
        !matches!(self, Self::ConstantsSigmas)
    }

    /// Whether this proof salts the oracle's leaves.
    fn salted(self, config: &CircuitConfig) -> bool {
        config.zero_knowledge && self.blinded()
    }
}

/// Rows of the witness one task lays out as wire columns.
const WIRE_TILE: usize = 64;

/// Rows whose permutation quotients one task computes, their denominators inverted together.
const PERMUTATION_ROWS: usize = 64;

/// Quotient evaluation points handed to the gates at once (plonky2's batch size).
const QUOTIENT_BATCH: usize = 32;

/// Why our prover made no proof.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("witness generation failed: {0}")]
    Witness(#[from] crate::witness::WitnessError),
    #[error("the circuit uses lookup tables, which this prover does not support")]
    Lookups,
    #[error("the witness breaks constraint {constraint} of {gate} at row {row}")]
    GateConstraint { row: usize, gate: String, constraint: usize },
    #[error("the witness breaks a copy constraint (the permutation argument's product for challenge {challenge} is not 1)")]
    CopyConstraint { challenge: usize },
    #[error("plonky2's verifier rejected the proof ({0}), though the witness satisfies every gate and copy constraint: the backend computed wrongly")]
    Rejected(String),
    #[error("the quotient has too high a degree: the witness does not satisfy the circuit")]
    Unsatisfied,
    #[error("the opening point fell in the trace subgroup (probability about 2^-100); prove again")]
    OpeningPointInSubgroup,
    #[error(transparent)]
    Fetch(#[from] crate::FetchError),
}

/// Runs the circuit's generators on `inputs`, then proves.
pub fn prove<C: ProverConfig>(
    backend: &dyn ProverBackend,
    prover_data: &ProverOnlyCircuitData<F, C, D>,
    common_data: &CommonCircuitData<F, D>,
    inputs: PartialWitness<F>,
) -> Result<ProofWithPublicInputs<F, C, D>, ProveError> {
    let witness_vector = crate::witness::generate_witness(inputs, prover_data, common_data)?;
    prove_with_partition_witness(backend, prover_data, common_data, witness_vector)
}

/// Proves from a witness vector (every wire's value, as the generators left it).
pub fn prove_with_partition_witness<C: ProverConfig>(
    backend: &dyn ProverBackend,
    prover_data: &ProverOnlyCircuitData<F, C, D>,
    common_data: &CommonCircuitData<F, D>,
    witness_vector: PartitionWitness<'_, F>,
) -> Result<ProofWithPublicInputs<F, C, D>, ProveError> {
    if !common_data.luts.is_empty() {
        return Err(ProveError::Lookups);
    }
    let config = &common_data.config;
    let (rate_bits, cap_height) = (config.fri_config.rate_bits, config.fri_config.cap_height);
    let commit_oracle = |values: &[PolynomialValues<F>], oracle: Oracle| commit_values::<C::MerkleHash>(backend, values, rate_bits, oracle.salted(config), cap_height);

    let mut phases = Phases::start();
    let public_inputs = witness_vector.get_targets(&prover_data.public_inputs);
    let public_inputs_hash = PoseidonHash::hash_no_pad(&public_inputs);
    let wires = wire_columns(&witness_vector);
    crate::witness::recycle(witness_vector);
    phases.done("wire columns");
    let circuit = Circuit { prover_data, common_data, selectors: Selectors::of(common_data) };
    // A witness that breaks a gate constraint shows only as a quotient of too high a degree or a
    // rejected proof; its witness is then checked, to name the constraint.
    let broken_constraint_or = |error: ProveError| circuit.check_gate_constraints(&wires, &public_inputs_hash).err().unwrap_or(error);
    let wires_commitment = commit_oracle(&wires, Oracle::Wires);
    phases.done("wires commitment");

    let mut challenger = Challenger::<F, C::MerkleHash>::new();
    common_data.fri_params.observe(&mut challenger);
    challenger.observe_hash::<C::MerkleHash>(prover_data.circuit_digest);
    challenger.observe_hash::<PoseidonHash>(public_inputs_hash);
    challenger.observe_cap::<C::MerkleHash>(wires_commitment.tree.cap());
    let betas = challenger.get_n_challenges(config.num_challenges);
    let gammas = challenger.get_n_challenges(config.num_challenges);

    let permutation = Permutation::new(&betas, &gammas, &common_data.k_is);
    // Where the backend holds the wires' values it computes Z and the partial products itself.
    let oracle = Oracle::ZsPartialProducts;
    let zs_commitment = match commit_permutation::<C::MerkleHash>(backend, &circuit.permutation_inputs(&wires_commitment, &permutation), rate_bits, oracle.salted(config), cap_height) {
        Some(committed) => committed.map_err(|broken| ProveError::CopyConstraint { challenge: broken.challenge })?,
        None => {
            let zs_partial_products = circuit.permutation_polys(&wires, &permutation)?;
            phases.done("partial products");
            commit_oracle(&zs_partial_products, oracle)
        }
    };
    phases.done("partial products commitment");
    challenger.observe_cap::<C::MerkleHash>(zs_commitment.tree.cap());
    let alphas = challenger.get_n_challenges(config.num_challenges);

    let quotient_values = circuit.quotient_values(backend, &public_inputs_hash, &wires_commitment, &zs_commitment, &permutation, &alphas)?;
    phases.done("quotient evaluation");
    let (quotient_degree, degree) = (common_data.quotient_degree(), common_data.degree());
    let quotient_chunks: Vec<PolynomialCoeffs<F>> = backend
        .interpolate(quotient_values, true)
        .into_par_iter()
        .map(|mut quotient| {
            quotient.trim_to_len(quotient_degree).map_err(|_| ProveError::Unsatisfied)?;
            Ok(quotient.chunks(degree))
        })
        .collect::<Result<Vec<_>, ProveError>>()
        .map_err(broken_constraint_or)?
        .concat();
    phases.done("quotient interpolation");
    let quotient_commitment = commit(backend, quotient_chunks, rate_bits, Oracle::Quotient.salted(config), cap_height);
    phases.done("quotient commitment");
    challenger.observe_cap::<C::MerkleHash>(quotient_commitment.tree.cap());

    let zeta = challenger.get_extension_challenge::<D>();
    // zeta in H would open witness values; (g zeta)^n = zeta^n, so checking zeta suffices.
    if zeta.exp_power_of_2(common_data.degree_bits()) == FE::ONE {
        return Err(ProveError::OpeningPointInSubgroup);
    }
    let g = FE::primitive_root_of_unity(common_data.degree_bits());
    let oracles = [CommitmentRef::from(&prover_data.constants_sigmas_commitment), wires_commitment.as_ref(), zs_commitment.as_ref(), quotient_commitment.as_ref()];
    let openings = opening_set(common_data, zeta, g, &oracles);
    challenger.observe_openings(&fri_openings(&openings));
    phases.done("openings");
    let opening_proof = crate::fri::prove_openings(backend, &fri_instance(common_data, zeta), &oracles, &mut challenger, &common_data.fri_params, &mut phases)?;

    let proof = Proof {
        wires_cap: wires_commitment.tree.cap().clone(),
        plonk_zs_partial_products_cap: zs_commitment.tree.cap().clone(),
        quotient_polys_cap: quotient_commitment.tree.cap().clone(),
        openings,
        opening_proof,
    };
    let proof = ProofWithPublicInputs { proof, public_inputs };
    // Every proof is verified (milliseconds), which also catches a backend that computed wrongly.
    // Checking every gate constraint on every row up front instead cost an eighth of the
    // quotient's evaluations, on the CPU, where most of a GPU proof's time now goes.
    if let Err(rejected) = circuit.verifier_data().verify(proof.clone()) {
        return Err(broken_constraint_or(ProveError::Rejected(rejected.to_string())));
    }
    phases.done("verification");
    phases.finish(backend, common_data.degree_bits());
    Ok(proof)
}

/// Time spent in each step of one proof, logged at debug level and added to [`step_times`] once
/// it is made.
pub(crate) struct Phases {
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Self {
        Self { last: Instant::now(), spent: Vec::new() }
    }

    pub(crate) fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        self.spent.push((step, now - self.last));
        self.last = now;
    }

    fn finish(&self, backend: &dyn ProverBackend, degree_bits: usize) {
        let steps: Vec<String> = self.spent.iter().map(|(step, time)| format!("{step} {:.3}s", time.as_secs_f64())).collect();
        tracing::debug!(backend = %backend.name(), degree_bits, steps = %steps.join(", "), "proved");
        let mut totals = step_totals();
        for &(step, time) in &self.spent {
            totals.count(step, time);
        }
    }
}

/// Every proof's steps summed since the process started.
static STEP_TIMES: Mutex<StepTimes> = Mutex::new(StepTimes(Vec::new()));

/// Time spent in each step of our proofs (and in witness generation) since the process started,
/// summed over every proof on every backend: where a benchmark's proofs spend their time, and
/// what stays on the CPU beside a GPU. Take two readings and [`StepTimes::since`] for a span.
pub fn step_times() -> StepTimes {
    step_totals().clone()
}

/// Adds `time` to `step`'s total in [`step_times`].
pub(crate) fn count_step(step: &'static str, time: Duration) {
    step_totals().count(step, time);
}

/// The process's totals, locked (a panic elsewhere while holding them leaves them usable).
fn step_totals() -> std::sync::MutexGuard<'static, StepTimes> {
    STEP_TIMES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Time per step, steps in the order they were first met.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTimes(Vec<(&'static str, Duration)>);

impl StepTimes {
    fn count(&mut self, step: &'static str, time: Duration) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some((_, total)) => *total += time,
            None => self.0.push((step, time)),
        }
    }

    /// Each step's time between `earlier` and `self`, readings of [`step_times`].
    pub fn since(&self, earlier: &Self) -> Self {
        let spent = self.0.iter().map(|&(step, time)| (step, time - earlier.get(step))).filter(|(_, time)| !time.is_zero()).collect();
        Self(spent)
    }

    /// Both readings' times together.
    pub fn add(&self, other: &Self) -> Self {
        let mut sum = self.clone();
        for &(step, time) in &other.0 {
            sum.count(step, time);
        }
        sum
    }

    /// `step`'s time (zero if it was never met).
    pub fn get(&self, step: &str) -> Duration {
        self.0.iter().find(|(s, _)| *s == step).map_or(Duration::ZERO, |&(_, time)| time)
    }

    pub fn total(&self) -> Duration {
        self.0.iter().map(|(_, time)| *time).sum()
    }

    /// One line for a report: each step's time and share, the largest first.
    pub fn summary(&self) -> String {
        let total = self.total().as_secs_f64().max(f64::MIN_POSITIVE);
        let mut steps = self.0.clone();
        steps.sort_by_key(|&(_, time)| std::cmp::Reverse(time));
        steps.iter().map(|(step, time)| format!("{step} {:.3} s ({:.0}%)", time.as_secs_f64(), 100.0 * time.as_secs_f64() / total)).collect::<Vec<_>>().join(", ")
    }
}

/// The witness as one column per wire (unset wires are zero). Built a tile of rows at a time,
/// so each row's wires are looked up in order (by column, every lookup of the representatives'
/// map was a cache line of its own), each tile laid out column by column, then every column
/// gathered from the tiles.
fn wire_columns(witness_vector: &PartitionWitness<'_, F>) -> Vec<PolynomialValues<F>> {
    let (degree, num_wires) = (witness_vector.degree, witness_vector.num_wires);
    let tiles: Vec<Vec<F>> = (0..degree.div_ceil(WIRE_TILE))
        .into_par_iter()
        .map(|t| {
            let rows = t * WIRE_TILE..((t + 1) * WIRE_TILE).min(degree);
            let mut tile = vec![F::ZERO; rows.len() * num_wires];
            for (r, row) in rows.clone().enumerate() {
                for (column, &rep) in witness_vector.representative_map[row * num_wires..(row + 1) * num_wires].iter().enumerate() {
                    tile[column * rows.len() + r] = witness_vector.values[rep].unwrap_or(F::ZERO);
                }
            }
            tile
        })
        .collect();
    (0..num_wires)
        .into_par_iter()
        .map(|column| {
            let mut values = Vec::with_capacity(degree);
            for tile in &tiles {
                let rows = tile.len() / num_wires;
                values.extend_from_slice(&tile[column * rows..(column + 1) * rows]);
            }
            PolynomialValues::new(values)
        })
        .collect()
}

/// The permutation argument's challenges, one pair per repetition.
struct Permutation<'a> {
    betas: &'a [F],
    gammas: &'a [F],
    /// `beta·k_j` per repetition and routed wire, so a numerator factor costs one product.
    beta_ks: Vec<Vec<F>>,
}

impl<'a> Permutation<'a> {
    fn new(betas: &'a [F], gammas: &'a [F], k_is: &[F]) -> Self {
        Self { betas, gammas, beta_ks: betas.iter().map(|&beta| k_is.iter().map(|&k| beta * k).collect()).collect() }
    }

    /// Repetition `challenge`'s factors over rows of `wires` (columns), `sigmas` (rows) and
    /// `points`, `chunk` per chunk product.
    fn factors<'b>(&'b self, challenge: usize, wires: &'b [&'b [F]], sigmas: &'b [&'b [F]], points: &'b [F], chunk: usize) -> Factors<'b> {
        let (beta, gamma) = (self.betas[challenge], self.gammas[challenge]);
        Factors { wires, sigmas, points, beta, gamma, beta_ks: &self.beta_ks[challenge][..wires.len()], chunk }
    }
}

/// A circuit being proved: its setup data and its gates' selectors.
struct Circuit<'a, C: ProverConfig> {
    prover_data: &'a ProverOnlyCircuitData<F, C, D>,
    common_data: &'a CommonCircuitData<F, D>,
    selectors: Selectors,
}

impl<C: ProverConfig> Circuit<'_, C> {
    /// What plonky2's verifier needs of the circuit: its common data and verification key.
    fn verifier_data(&self) -> VerifierCircuitData<F, C, D> {
        let verifier_only = VerifierOnlyCircuitData { constants_sigmas_cap: self.prover_data.constants_sigmas_commitment.merkle_tree.cap.clone(), circuit_digest: self.prover_data.circuit_digest };
        VerifierCircuitData { verifier_only, common: self.common_data.clone() }
    }

    /// What a backend takes to compute the permutation argument's polynomials where it committed
    /// the wires.
    fn permutation_inputs<'a>(&'a self, wires_commitment: &Commitment<C::MerkleHash>, permutation: &'a Permutation<'_>) -> PermutationInputs<'a> {
        PermutationInputs {
            wires: CapName::of(wires_commitment.tree.cap()),
            constants_sigmas: CapName::of(&self.prover_data.constants_sigmas_commitment.merkle_tree.cap),
            sigmas: &self.prover_data.sigmas,
            degree_bits: self.common_data.degree_bits(),
            chunk: self.common_data.quotient_degree_factor,
            betas: permutation.betas,
            gammas: permutation.gammas,
            beta_ks: &permutation.beta_ks,
        }
    }

    /// The permutation argument's polynomials in plonky2's order: every repetition's `Z`, then every
    /// repetition's partial products. Row `i` of repetition `r`'s partial products accumulate
    /// `Z(g^i)` times the quotients of the row's factors, `quotient_degree_factor` at a time; the last
    /// accumulation is `Z(g^{i+1})`. `Z` wraps round to 1 exactly when the copy constraints hold.
    fn permutation_polys(&self, wires: &[PolynomialValues<F>], permutation: &Permutation<'_>) -> Result<Vec<PolynomialValues<F>>, ProveError> {
        let (prover_data, common_data) = (self.prover_data, self.common_data);
        let repetitions = permutation.betas.len();
        let chunk = common_data.quotient_degree_factor;
        let routed = common_data.config.num_routed_wires;
        let mut zs = Vec::with_capacity(repetitions);
        let mut partial_products = Vec::with_capacity(repetitions * common_data.num_partial_products);
        let width = common_data.num_partial_products + 1;
        let simd = Simd::detect();
        let wires: Vec<&[F]> = wires[..routed].iter().map(|column| column.values.as_slice()).collect();
        let sigmas: Vec<&[F]> = prover_data.sigmas.iter().map(Vec::as_slice).collect();
        for challenge in 0..repetitions {
            // Per row, the product of each chunk of numerator/denominator quotients: the chunk's
            // numerators' product over its denominators' (one inversion per chunk, not per
            // factor), the denominators of a run of rows inverted together.
            let factors = permutation.factors(challenge, &wires, &sigmas, &prover_data.subgroup, chunk);
            debug_assert_eq!(factors.width(), width);
            let mut chunk_products = vec![F::ZERO; common_data.degree() * width];
            chunk_products.par_chunks_mut(PERMUTATION_ROWS * width).enumerate().for_each(|(task, out)| {
                let mut denominators = vec![F::ZERO; out.len()];
                factors.chunk_products(simd, task * PERMUTATION_ROWS, out, &mut denominators);
                for (product, inverse) in out.iter_mut().zip(F::batch_multiplicative_inverse(&denominators)) {
                    *product *= inverse;
                }
            });
            // Z(g^0) = 1 and Z(g^{i+1}) is row i's last accumulation: a running product, scanned
            // in parallel, a block of rows per task: each block's product, the products of the
            // blocks before each, then every block's accumulations from its start.
            let block = PERMUTATION_ROWS * width;
            let block_products: Vec<F> = chunk_products.par_chunks(block).map(|b| b.iter().copied().product()).collect();
            let starts: Vec<F> = block_products.iter().scan(F::ONE, |acc, &p| Some(std::mem::replace(acc, *acc * p))).collect();
            let z_n: F = block_products.iter().copied().product();
            if z_n != F::ONE {
                return Err(ProveError::CopyConstraint { challenge });
            }
            // Row-major: each row's Z, then its partial products.
            let mut accumulations = vec![F::ZERO; chunk_products.len()];
            accumulations.par_chunks_mut(block).zip(chunk_products.par_chunks(block)).zip(&starts).for_each(|((out, products), &start)| {
                let mut acc = start;
                for (out, products) in out.chunks_exact_mut(width).zip(products.chunks_exact(width)) {
                    out[0] = acc;
                    for (out, &product) in out[1..].iter_mut().zip(products) {
                        acc *= product;
                        *out = acc;
                    }
                    acc *= products[width - 1];
                }
            });
            let mut columns: Vec<Vec<F>> = (0..width).into_par_iter().map(|c| accumulations.iter().skip(c).step_by(width).copied().collect()).collect();
            let z = columns.remove(0);
            zs.push(PolynomialValues::new(z));
            partial_products.extend(columns.into_iter().map(PolynomialValues::new));
        }
        zs.extend(partial_products);
        Ok(zs)
    }

    /// Every gate's constraints on every row of the trace must vanish; the first that does not is
    /// named with its row and gate. About an eighth of the quotient's gate evaluations (one point
    /// per row rather than `2^rate_bits`).
    fn check_gate_constraints(&self, wires: &[PolynomialValues<F>], public_inputs_hash: &HashOut<F>) -> Result<(), ProveError> {
        let (prover_data, common_data, selectors) = (self.prover_data, self.common_data, &self.selectors);
        let constants: Vec<PolynomialValues<F>> = prover_data.constants_sigmas_commitment.polynomials[common_data.constants_range()].par_iter().map(|p| p.clone().fft()).collect();
        let rows: Vec<usize> = (0..common_data.degree()).collect();
        let row_values = |rows: &[usize]| {
            let constants = column_major_rows(&constants, rows);
            let wires = column_major_rows(wires, rows);
            (constants, wires)
        };
        let simd = Simd::detect();
        let broken = rows.par_chunks(QUOTIENT_BATCH).find_map_first(|batch| {
            let (constants, wires) = row_values(batch);
            let vars = EvaluationVarsBaseBatch::new(batch.len(), &constants, &wires, public_inputs_hash);
            let constraints = selectors.gate_constraints(common_data, vars, simd);
            constraints.iter().position(|c| *c != F::ZERO).map(|i| (batch[i % batch.len()], i / batch.len()))
        });
        let Some((row, constraint)) = broken else { return Ok(()) };
        let (constants, wires) = row_values(&[row]);
        let vars = EvaluationVarsBaseBatch::new(1, &constants, &wires, public_inputs_hash);
        let gate = common_data.gates.iter().enumerate().find(|&(i, gate)| selectors.gate_constraints_of(i, gate, common_data, vars, simd).iter().any(|c| *c != F::ZERO));
        Err(ProveError::GateConstraint { row, gate: gate.map_or_else(|| "an unknown gate".into(), |(_, g)| g.0.id()), constraint })
    }

    /// The quotient polynomials' values, one per repetition: the vanishing polynomial (every
    /// constraint combined with powers of that repetition's alpha) divided by `Z_H`, evaluated on
    /// the LDE coset at the degree the constraints need.
    fn quotient_values(&self, backend: &dyn ProverBackend, public_inputs_hash: &HashOut<F>, wires_commitment: &Commitment<C::MerkleHash>, zs_commitment: &Commitment<C::MerkleHash>, permutation: &Permutation<'_>, alphas: &[F]) -> Result<Vec<PolynomialValues<F>>, ProveError> {
        let (prover_data, common_data, selectors) = (self.prover_data, self.common_data, &self.selectors);
        let quotient_degree_bits = log2_ceil(common_data.quotient_degree_factor);
        let rate_bits = common_data.config.fri_config.rate_bits;
        assert!(quotient_degree_bits <= rate_bits, "constraints of degree above the rate are not supported (nor by plonky2)");
        let z_h_on_coset = ZeroPolyOnCoset::new(common_data.degree_bits(), quotient_degree_bits);
        let challenges = quotient::Challenges { public_inputs_hash, betas: permutation.betas, gammas: permutation.gammas, beta_ks: &permutation.beta_ks, alphas };
        // A backend evaluates the quotient where it holds the LDEs it committed to, which it
        // knows by their caps.
        let constants_sigmas = &prover_data.constants_sigmas_commitment.merkle_tree;
        let commitments = quotient::Commitments {
            constants_sigmas: CapName::of(&constants_sigmas.cap),
            constants_sigmas_rows: &constants_sigmas.leaves,
            wires: CapName::of(wires_commitment.tree.cap()),
            zs_partial_products: CapName::of(zs_commitment.tree.cap()),
        };
        if let Some(values) = quotient::describe(common_data, selectors, &challenges, &z_h_on_coset, commitments).and_then(|inputs| backend.quotient_values(&inputs)) {
            return Ok(values.into_iter().map(PolynomialValues::new).collect());
        }
        // Every `step`-th LDE point is the coset of the degree the constraints need; the next row's
        // `Z` is `next_step` points on.
        let step = 1 << (rate_bits - quotient_degree_bits);
        let next_step = 1 << quotient_degree_bits;
        let points = F::two_adic_subgroup(common_data.degree_bits() + quotient_degree_bits);
        let lde_size = points.len();
        let log_lde_rows = common_data.degree_bits() + rate_bits;
        let salt = |oracle: Oracle| if oracle.salted(&common_data.config) { SALT_SIZE } else { 0 };
        let (wires_rows, zs_rows) = (wires_commitment.tree.rows()?, zs_commitment.tree.rows()?);
        // Point `i`'s values: row `reverse_bits(i·step)` of the LDE, without its salt.
        fn lde_values(rows: &[Vec<F>], log_rows: usize, salt: usize, index: usize) -> &[F] {
            let row = &rows[crate::reverse_bits(index, log_rows)];
            &row[..row.len() - salt]
        }
        let (wires_salt, zs_salt) = (salt(Oracle::Wires), salt(Oracle::ZsPartialProducts));
        let (routed, chunk, width) = (common_data.config.num_routed_wires, common_data.quotient_degree_factor, common_data.num_partial_products + 1);
        let simd = Simd::detect();
        // Each repetition's terms combined as `sum_t term_t·alpha^t`, products summed unreduced:
        // a Horner fold would chain every term's multiplication on the last.
        let alpha_powers: Vec<Vec<F>> = alphas.iter().map(|alpha| alpha.powers().take(quotient::num_terms(common_data)).collect()).collect();
        let degree = F::from_canonical_usize(common_data.degree());
        let repetitions = alphas.len();

        // Point by point, each point's value per repetition side by side.
        let mut values = vec![F::ZERO; lde_size * repetitions];
        values.par_chunks_mut(QUOTIENT_BATCH * repetitions).zip(points.par_chunks(QUOTIENT_BATCH)).enumerate().for_each(|(batch, (out, xs))| {
            let indices: Vec<usize> = (batch * QUOTIENT_BATCH..).take(xs.len()).collect();
            let rows: Vec<Row<'_>> = indices
                .iter()
                .zip(xs)
                .map(|(&i, &x)| Row {
                    index: i,
                    x: F::coset_shift() * x,
                    constants_sigmas: prover_data.constants_sigmas_commitment.get_lde_values(i, step),
                    wires: lde_values(&wires_rows, log_lde_rows, wires_salt, i * step),
                    zs_partial_products: lde_values(&zs_rows, log_lde_rows, zs_salt, i * step),
                    next_zs_partial_products: lde_values(&zs_rows, log_lde_rows, zs_salt, (i + next_step) % lde_size * step),
                })
                .collect();
            let constants = column_major(rows.iter().map(|r| &r.constants_sigmas[common_data.constants_range()]));
            let wires = column_major(rows.iter().map(|r| r.wires));
            let vars = EvaluationVarsBaseBatch::new(rows.len(), &constants, &wires, public_inputs_hash);
            let constraints = selectors.gate_constraints(common_data, vars, simd);
            // The permutation argument's chunk products of every row at once (SIMD lanes
            // across rows), per repetition: each row's numerators', then its denominators'.
            let points: Vec<F> = rows.iter().map(|r| r.x).collect();
            let wire_columns: Vec<&[F]> = wires.chunks_exact(rows.len()).take(routed).collect();
            let sigmas: Vec<&[F]> = rows.iter().map(|r| &r.constants_sigmas[common_data.sigmas_range()]).collect();
            let chunk_products: Vec<(Vec<F>, Vec<F>)> = (0..permutation.betas.len())
                .map(|challenge| {
                    let (mut numerators, mut denominators) = (vec![F::ZERO; rows.len() * width], vec![F::ZERO; rows.len() * width]);
                    permutation.factors(challenge, &wire_columns, &sigmas, &points, chunk).chunk_products(simd, 0, &mut numerators, &mut denominators);
                    (numerators, denominators)
                })
                .collect();
            // `L_0(x) = Z_H(x) / (n·(x - 1))` at each point, the denominators inverted together
            // (plonky2 inverts one per point).
            let l_0_denominators: Vec<F> = rows.iter().map(|r| degree * (r.x - F::ONE)).collect();
            let l_0_inverses = F::batch_multiplicative_inverse(&l_0_denominators);
            let mut terms = Vec::new();
            for ((k, row), out) in rows.iter().enumerate().zip(out.chunks_exact_mut(repetitions)) {
                terms.clear();
                let row_products = chunk_products.iter().map(|(n, d)| (&n[k * width..(k + 1) * width], &d[k * width..(k + 1) * width]));
                row.vanishing_terms(common_data, row_products, z_h_on_coset.eval(row.index) * l_0_inverses[k], &mut terms);
                terms.extend(constraints.iter().skip(k).step_by(rows.len()));
                let denominator_inverse = z_h_on_coset.eval_inverse(row.index);
                for (value, powers) in out.iter_mut().zip(&alpha_powers) {
                    debug_assert_eq!(terms.len(), powers.len(), "a power of alpha per term");
                    let mut sum = ProductSum::default();
                    for (&term, &power) in terms.iter().zip(powers) {
                        sum.add(term, power);
                    }
                    *value = sum.value() * denominator_inverse;
                }
            }
        });

        Ok((0..repetitions).into_par_iter().map(|r| PolynomialValues::new(values.iter().skip(r).step_by(repetitions).copied().collect())).collect())
    }
}

/// Values `rows` of each column, laid out column by column.
fn column_major_rows(columns: &[PolynomialValues<F>], rows: &[usize]) -> Vec<F> {
    columns.iter().flat_map(|column| rows.iter().map(|&r| column.values[r])).collect()
}

/// Which selector polynomial filters each gate, and the gates each selector covers: plonky2's
/// `SelectorsInfo`, whose fields are private, rebuilt the way plonky2's circuit builder groups
/// gates (greedily, in degree order, so a group's filter and its gates stay within the quotient
/// degree).
pub(crate) struct Selectors {
    pub(crate) selector_indices: Vec<usize>,
    pub(crate) groups: Vec<Range<usize>>,
}

impl Selectors {
    pub(crate) fn of(common_data: &CommonCircuitData<F, D>) -> Self {
        let gates = &common_data.gates;
        let max_degree = common_data.quotient_degree_factor + 1;
        let max_gate_degree = gates.last().map_or(0, |g| g.0.degree());
        let groups = if max_gate_degree + gates.len() - 1 <= max_degree {
            std::iter::once(0..gates.len()).collect()
        } else {
            let mut groups = Vec::new();
            let mut start = 0;
            while start < gates.len() {
                let size = (0..).find(|&size| start + size == gates.len() || size + gates[start + size].0.degree() >= max_degree).expect("a group ends");
                groups.push(start..start + size);
                start += size;
            }
            groups
        };
        assert_eq!(groups.len(), common_data.selectors_info.num_selectors(), "selector groups rebuilt unlike plonky2's");
        let selector_indices = (0..gates.len()).map(|i| groups.iter().position(|g| g.contains(&i)).expect("every gate is in a group")).collect();
        Self { selector_indices, groups }
    }

    /// Every gate's constraints, filtered by its selector, summed gate by gate into one list per
    /// constraint index: value `j·batch + i` for point `i` (plonky2's
    /// `evaluate_gate_constraints_base_batch`, each product by a filter added as it is taken,
    /// on lanes, rather than in a pass of its own).
    fn gate_constraints(&self, common_data: &CommonCircuitData<F, D>, vars: EvaluationVarsBaseBatch<'_, F>, simd: Simd) -> Vec<F> {
        let points = vars.len();
        let mut constraints = vec![F::ZERO; common_data.num_gate_constraints * points];
        for (i, gate) in common_data.gates.iter().enumerate() {
            let (unfiltered, filters) = self.unfiltered_constraints_of(i, gate, common_data, vars, simd);
            crate::gates::add_filtered(&mut constraints, &unfiltered, &filters, simd);
        }
        constraints
    }

    /// Gate `i`'s constraints alone, filtered by its selector.
    fn gate_constraints_of(&self, i: usize, gate: &GateRef<F, D>, common_data: &CommonCircuitData<F, D>, vars: EvaluationVarsBaseBatch<'_, F>, simd: Simd) -> Vec<F> {
        let (mut constraints, filters) = self.unfiltered_constraints_of(i, gate, common_data, vars, simd);
        for constraint in constraints.chunks_exact_mut(vars.len()) {
            for (value, &filter) in constraint.iter_mut().zip(&filters) {
                *value *= filter;
            }
        }
        constraints
    }

    /// Gate `i`'s constraints before its filter (on `simd`'s lanes for the gates
    /// [`crate::gates`] knows, else by plonky2), and its filter at each point.
    fn unfiltered_constraints_of(&self, i: usize, gate: &GateRef<F, D>, common_data: &CommonCircuitData<F, D>, vars: EvaluationVarsBaseBatch<'_, F>, simd: Simd) -> (Vec<F>, Vec<F>) {
        let selector = self.selector_indices[i];
        // Constant `c` of point `j` is at `c·points + j`.
        let filters: Vec<F> = (0..vars.len()).map(|j| self.filter(i, vars.local_constants[selector * vars.len() + j])).collect();
        let mut own = vars;
        own.remove_prefix(self.groups.len() + common_data.num_lookup_selectors);
        let constraints = crate::gates::unfiltered_constraints(gate, own, simd).unwrap_or_else(|| gate.0.eval_unfiltered_base_batch(own));
        (constraints, filters)
    }

    /// Gate `i`'s filter where its selector polynomial is `s` (plonky2's private
    /// `compute_filter`): zero where another gate of its group is selected, or, when there are
    /// several groups, where none of this group's is.
    fn filter(&self, i: usize, s: F) -> F {
        /// plonky2's selector value for rows of no gate of a group.
        const UNUSED_SELECTOR: u64 = u32::MAX as u64;
        let group = self.groups[self.selector_indices[i]].clone();
        let unused = (self.groups.len() > 1).then_some(F::from_canonical_u64(UNUSED_SELECTOR));
        group.filter(|&g| g != i).map(F::from_canonical_usize).chain(unused).map(|value| value - s).product()
    }
}

/// One quotient evaluation point and the LDE values opened there.
struct Row<'a> {
    index: usize,
    /// The point itself, on the coset.
    x: F,
    constants_sigmas: &'a [F],
    wires: &'a [F],
    zs_partial_products: &'a [F],
    next_zs_partial_products: &'a [F],
}

impl Row<'_> {
    /// The permutation argument's terms, in plonky2's order: `L_0(x)·(Z(x) - 1)` for every
    /// repetition (`l_0` is `L_0(x)`), then every repetition's partial-product checks
    /// (`prev · numerator chunk - next · denominator chunk`), from the row's chunk products
    /// (numerators' and denominators', per repetition).
    fn vanishing_terms<'c>(&self, common_data: &CommonCircuitData<F, D>, chunk_products: impl Iterator<Item = (&'c [F], &'c [F])>, l_0: F, terms: &mut Vec<F>) {
        let zs = &self.zs_partial_products[common_data.zs_range()];
        let next_zs = &self.next_zs_partial_products[common_data.zs_range()];
        let partial_products = &self.zs_partial_products[common_data.partial_products_range()];
        terms.extend(zs.iter().map(|&z| l_0 * (z - F::ONE)));
        let num_prods = common_data.num_partial_products;
        for (challenge, ((&z_x, &z_gx), (numerators, denominators))) in zs.iter().zip(next_zs).zip(chunk_products).enumerate() {
            let partials = &partial_products[challenge * num_prods..(challenge + 1) * num_prods];
            // Accumulators Z(x), the partial products, Z(gx); chunk c links accumulators c and c + 1.
            let accumulator = |c: usize| match c {
                0 => z_x,
                c if c == num_prods + 1 => z_gx,
                c => partials[c - 1],
            };
            for c in 0..=num_prods {
                terms.push(accumulator(c) * numerators[c] - accumulator(c + 1) * denominators[c]);
            }
        }
    }
}

/// Rows of equal length laid out column by column (value `i` of row `j` at `i·rows + j`), as
/// plonky2's batched gate evaluation reads them.
fn column_major<'a>(rows: impl ExactSizeIterator<Item = &'a [F]> + Clone) -> Vec<F> {
    let count = rows.len();
    let width = rows.clone().next().map_or(0, <[F]>::len);
    let mut out = vec![F::ZERO; count * width];
    for (j, row) in rows.enumerate() {
        for (i, &v) in row.iter().enumerate() {
            out[i * count + j] = v;
        }
    }
    out
}

/// Every polynomial of the four oracles at zeta, the `Z`s and partial products also at `g·zeta`
/// (plonky2's `OpeningSet::new` without lookups).
fn opening_set<H: MerkleHasher>(common_data: &CommonCircuitData<F, D>, zeta: FE, g: FE, oracles: &[CommitmentRef<'_, H>; 4]) -> OpeningSet<F, D> {
    let [constants_sigmas, wires, zs_partial_products, quotient] = oracles;
    let constants_sigmas = constants_sigmas.eval(zeta);
    let zs_at_zeta = zs_partial_products.eval(zeta);
    // Only the `Z`s are opened at `g·zeta`.
    let zs = CommitmentRef { polynomials: &zs_partial_products.polynomials[common_data.zs_range()], ..*zs_partial_products };
    let zs_at_next = zs.eval(g * zeta);
    OpeningSet {
        constants: constants_sigmas[common_data.constants_range()].to_vec(),
        plonk_sigmas: constants_sigmas[common_data.sigmas_range()].to_vec(),
        wires: wires.eval(zeta),
        plonk_zs: zs_at_zeta[common_data.zs_range()].to_vec(),
        plonk_zs_next: zs_at_next,
        partial_products: zs_at_zeta[common_data.partial_products_range()].to_vec(),
        quotient_polys: quotient.eval(zeta),
        lookup_zs: Vec::new(),
        lookup_zs_next: Vec::new(),
    }
}

/// The opened values as the transcript observes them: everything at zeta, then the `Z`s at
/// `g·zeta` (plonky2's `OpeningSet::to_fri_openings` without lookups).
fn fri_openings(openings: &OpeningSet<F, D>) -> FriOpenings<F, D> {
    let at_zeta = [&openings.constants, &openings.plonk_sigmas, &openings.wires, &openings.plonk_zs, &openings.partial_products, &openings.quotient_polys].into_iter().flatten().copied().collect();
    FriOpenings { batches: vec![FriOpeningBatch { values: at_zeta }, FriOpeningBatch { values: openings.plonk_zs_next.clone() }] }
}

/// Which polynomials FRI opens where: every polynomial of the four oracles at zeta, the `Z`s also
/// at `g·zeta` (plonky2's `CommonCircuitData::get_fri_instance` without lookups).
fn fri_instance(common_data: &CommonCircuitData<F, D>, zeta: FE) -> FriInstanceInfo<F, D> {
    let num_preprocessed = common_data.sigmas_range().end;
    let num_zs_partial_products = common_data.partial_products_range().end;
    let num_quotient = common_data.config.num_challenges * common_data.quotient_degree_factor;
    let sizes = [num_preprocessed, common_data.config.num_wires, num_zs_partial_products, num_quotient];
    let oracles = [Oracle::ConstantsSigmas, Oracle::Wires, Oracle::ZsPartialProducts, Oracle::Quotient];
    let all = oracles.iter().zip(sizes).flat_map(|(oracle, size)| FriPolynomialInfo::from_range(*oracle as usize, 0..size)).collect();
    let zs = FriPolynomialInfo::from_range(Oracle::ZsPartialProducts as usize, common_data.zs_range());
    let g = FE::primitive_root_of_unity(common_data.degree_bits());
    FriInstanceInfo {
        oracles: oracles.iter().zip(sizes).map(|(oracle, num_polys)| FriOracleInfo { num_polys, blinding: oracle.blinded() }).collect(),
        batches: vec![FriBatchInfo { point: zeta, polynomials: all }, FriBatchInfo { point: g * zeta, polynomials: zs }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_add_up_by_step_and_subtract_between_readings() {
        let ms = Duration::from_millis;
        let mut earlier = StepTimes::default();
        earlier.count("wires commitment", ms(5));
        let mut later = earlier.clone();
        later.count("witness generation", ms(30));
        later.count("wires commitment", ms(10));
        later.count("verification", ms(0));
        let span = later.since(&earlier);
        assert_eq!(span, StepTimes(vec![("wires commitment", ms(10)), ("witness generation", ms(30))]), "steps unmoved between the readings are left out");
        assert_eq!(span.add(&span).get("witness generation"), ms(60));
        assert_eq!(span.total(), ms(40));
        assert_eq!(span.summary(), "witness generation 0.030 s (75%), wires commitment 0.010 s (25%)");
    }

    #[test]
    fn a_proof_counts_its_steps() {
        let before = step_times();
        let mut builder = plonky2::plonk::circuit_builder::CircuitBuilder::<F, D>::new(plonky2::plonk::circuit_data::CircuitConfig::standard_recursion_config());
        let x = builder.add_virtual_target();
        let y = builder.mul(x, x);
        builder.register_public_input(y);
        let data = builder.build::<plonky2::plonk::config::PoseidonGoldilocksConfig>();
        let mut inputs = PartialWitness::new();
        plonky2::iop::witness::WitnessWrite::set_target(&mut inputs, x, F::from_canonical_u64(3)).unwrap();
        prove(&crate::cpu::CpuBackend::detect(), &data.prover_only, &data.common, inputs).unwrap();
        let span = step_times().since(&before);
        for step in ["witness generation", "wires commitment", "quotient evaluation", "FRI commit phase", "verification"] {
            assert!(span.get(step) > Duration::ZERO, "{step} was not counted: {span:?}");
        }
    }
}
