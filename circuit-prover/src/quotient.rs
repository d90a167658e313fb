//! The quotient's evaluation described as data, for a backend that evaluates it where the LDEs
//! lie (the CUDA backend): the circuit's gates as records of the kinds such a backend knows, and
//! every value the evaluation takes from the transcript, laid out flat.
//!
//! The quotient at point `x_i = g·w^i` (`w` of order `n·2^q`, `q` the quotient degree's bits) is,
//! per repetition `a`, `sum_t term_t(x_i)·alpha_a^t / Z_H(x_i)` over plonky2's vanishing terms:
//! `L_0(x)·(Z_a(x) - 1)` for every repetition, each repetition's partial-product checks, then the
//! gate constraints, each gate's constraint `j` times its selector filter summed into term `j`.
//! The kinds are the gates plonky2's standard recursion configuration builds the basic and
//! aggregation circuits from; a circuit with a gate of another kind is not described, and the
//! prover evaluates its quotient on the CPU.

use std::any::TypeId;

use plonky2::field::types::{Field, PrimeField64};
use plonky2::field::zero_poly_coset::ZeroPolyOnCoset;
use plonky2::gates::arithmetic_base::ArithmeticGate;
use plonky2::gates::arithmetic_extension::ArithmeticExtensionGate;
use plonky2::gates::base_sum::BaseSumGate;
use plonky2::gates::constant::ConstantGate;
use plonky2::gates::coset_interpolation::CosetInterpolationGate;
use plonky2::gates::multiplication_extension::MulExtensionGate;
use plonky2::gates::noop::NoopGate;
use plonky2::gates::poseidon::PoseidonGate;
use plonky2::gates::poseidon_mds::PoseidonMdsGate;
use plonky2::gates::public_input::PublicInputGate;
use plonky2::gates::random_access::RandomAccessGate;
use plonky2::gates::reducing::ReducingGate;
use plonky2::gates::reducing_extension::ReducingExtensionGate;
use plonky2::hash::hash_types::HashOut;
use plonky2::hash::merkle_tree::MerkleCap;
use plonky2::plonk::config::{GenericHashOut, Hasher};
use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::util::log2_ceil;

use crate::F;
use crate::prover::{D, Selectors};

/// The gate kinds a backend evaluates, as the kernels number them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum GateKind {
    Noop = 0,
    /// `num_ops` operations `output = c0·m0·m1 + c1·addend`.
    Arithmetic = 1,
    /// `num_consts` wires equal to the row's constants.
    Constant = 2,
    /// The first four wires equal the public inputs' hash.
    PublicInput = 3,
    /// A sum split into `num_limbs` bits.
    BaseSumBinary = 4,
    /// plonky2's Poseidon permutation (135 wires).
    Poseidon = 5,
    /// Poseidon's MDS layer over extension elements.
    PoseidonMds = 6,
    /// `num_ops` extension operations `output = c0·m0·m1 + c1·addend`.
    ArithmeticExtension = 7,
    /// `num_ops` extension products `output = c0·m0·m1`.
    MulExtension = 8,
    /// `num_coeffs` steps `acc·alpha + coeff` of base coefficients, in the extension.
    Reducing = 9,
    /// `num_coeffs` steps `acc·alpha + coeff` of extension coefficients.
    ReducingExtension = 10,
    /// Lookups of `bits`-bit indices into lists (`extra`: copies, and extra constants << 16).
    RandomAccess = 11,
    /// Barycentric interpolation over a subgroup of `2^bits` points, `degree` at a time
    /// (`extra`), its domain and weights among the gate parameters.
    CosetInterpolation = 12,
}

/// The widest random-access list the kernels hold per copy.
const MAX_RANDOM_ACCESS_BITS: usize = 5;
/// The most repetitions (challenges) the kernels keep sums for.
const MAX_CHALLENGES: usize = 4;

/// One gate as a backend evaluates it: its kind, its size (operations, constants or limbs), the
/// constant column holding its selector, and its group of selector values and its own value in
/// it (plonky2's `compute_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct GateRecord {
    pub kind: u32,
    pub size: u32,
    pub extra: u32,
    pub selector_column: u32,
    pub group_start: u32,
    pub group_end: u32,
    pub row: u32,
    /// Where the gate's own parameters start among the gate parameters.
    pub params_offset: u32,
}

/// The evaluation's dimensions, passed to a kernel by value.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct QuotientShape {
    /// `log2` of the number of points, `n·2^q`.
    pub log_points: u32,
    /// `log2` of the LDE's size, `n·2^rate_bits`: point `i` is LDE value `i << (rate_bits - q)`.
    pub log_lde: u32,
    pub quotient_degree_bits: u32,
    pub num_challenges: u32,
    pub num_routed_wires: u32,
    pub num_partial_products: u32,
    /// Factors per partial product (the quotient degree factor).
    pub chunk: u32,
    /// Constant columns (selectors included) in a constants-and-sigmas row, before its sigma per
    /// routed wire.
    pub num_constants: u32,
    /// Constant columns before a gate's own constants: the selectors (and lookup selectors).
    pub selector_prefix: u32,
    /// Whether filters include the unused-selector factor (more than one selector).
    pub many_selectors: u32,
    pub num_gates: u32,
    /// Every term, the gate constraints' included.
    pub num_terms: u32,
}

/// Where a circuit's quotient inputs lie, and what the transcript fixed.
pub struct QuotientInputs<'a> {
    pub shape: QuotientShape,
    pub gates: Vec<GateRecord>,
    /// In order: the public inputs' hash (4), betas (R), gammas (R), `beta_a·k_j` (R × routed),
    /// `alpha_a^t` (R × terms), `Z_H(x_i)` and `1/Z_H(x_i)` (each `2^q`, periodic in `i`), `n`,
    /// the coset shift and `w`, then the gate parameters.
    pub params: Vec<u64>,
    pub commitments: Commitments<'a>,
}

/// The commitments the quotient reads: the preprocessed constants and sigmas as committed (rows
/// in the LDE's order), and the wires and partial products, whose LDEs a backend holds, each
/// named by its cap.
#[derive(Clone)]
pub struct Commitments<'a> {
    pub constants_sigmas: CapName,
    pub constants_sigmas_rows: &'a [Vec<F>],
    pub wires: CapName,
    pub zs_partial_products: CapName,
}

/// A commitment's name: its Merkle hash and its cap's digests as bytes. A backend keeps the LDEs
/// it committed to under such names, whichever hash their trees use (Poseidon, or Keccak for a
/// final layer), for the quotient to find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapName {
    hash: TypeId,
    bytes: Vec<u8>,
}

impl CapName {
    pub fn of<H: Hasher<F> + 'static>(cap: &MerkleCap<F, H>) -> Self {
        Self { hash: TypeId::of::<H>(), bytes: cap.0.iter().flat_map(|digest| digest.to_bytes()).collect() }
    }
}

/// What the transcript fixed before the quotient.
pub(crate) struct Challenges<'a> {
    pub public_inputs_hash: &'a HashOut<F>,
    pub betas: &'a [F],
    pub gammas: &'a [F],
    /// `beta_a·k_j` per repetition and routed wire.
    pub beta_ks: &'a [Vec<F>],
    pub alphas: &'a [F],
}

/// The quotient of `common_data` described for a backend, or `None` if it cannot be (a gate of
/// another kind, or more repetitions than the kernels keep sums for).
pub(crate) fn describe<'a>(common_data: &CommonCircuitData<F, D>, selectors: &Selectors, challenges: &Challenges<'_>, z_h_on_coset: &ZeroPolyOnCoset<F>, commitments: Commitments<'a>) -> Option<QuotientInputs<'a>> {
    let (gates, gate_params) = gate_records(common_data, selectors)?;
    let quotient_degree_bits = log2_ceil(common_data.quotient_degree_factor);
    let (params, num_terms) = params(common_data, challenges, z_h_on_coset, quotient_degree_bits, &gate_params);
    let u = |v: usize| u32::try_from(v).ok();
    let shape = QuotientShape {
        log_points: u(common_data.degree_bits() + quotient_degree_bits)?,
        log_lde: u(common_data.degree_bits() + common_data.config.fri_config.rate_bits)?,
        quotient_degree_bits: u(quotient_degree_bits)?,
        num_challenges: u(common_data.config.num_challenges)?,
        num_routed_wires: u(common_data.config.num_routed_wires)?,
        num_partial_products: u(common_data.num_partial_products)?,
        chunk: u(common_data.quotient_degree_factor)?,
        num_constants: u(common_data.num_constants)?,
        selector_prefix: u(selectors.groups.len() + common_data.num_lookup_selectors)?,
        many_selectors: u32::from(selectors.groups.len() > 1),
        num_gates: u(gates.len())?,
        num_terms: u(num_terms)?,
    };
    Some(QuotientInputs { shape, gates, params, commitments })
}

/// Gate records for `common_data`'s gates and their parameters, or `None` if a gate is of a kind
/// not described here (or the circuit has more repetitions than the kernels keep sums for).
fn gate_records(common_data: &CommonCircuitData<F, D>, selectors: &Selectors) -> Option<(Vec<GateRecord>, Vec<F>)> {
    if common_data.config.num_challenges > MAX_CHALLENGES {
        return None;
    }
    let mut gate_params = Vec::new();
    let records = common_data
        .gates
        .iter()
        .enumerate()
        .map(|(i, gate)| {
            let any = gate.0.as_any();
            let params_offset = gate_params.len();
            let (kind, size, extra) = if any.is::<NoopGate>() {
                (GateKind::Noop, 0, 0)
            } else if let Some(g) = any.downcast_ref::<ArithmeticGate>() {
                (GateKind::Arithmetic, g.num_ops, 0)
            } else if any.is::<ConstantGate>() {
                (GateKind::Constant, gate.0.num_constraints(), 0)
            } else if any.is::<PublicInputGate>() {
                (GateKind::PublicInput, 4, 0)
            } else if let Some(g) = any.downcast_ref::<BaseSumGate<2>>() {
                (GateKind::BaseSumBinary, g.num_limbs, 0)
            } else if any.is::<PoseidonGate<F, D>>() {
                (GateKind::Poseidon, 0, 0)
            } else if any.is::<PoseidonMdsGate<F, D>>() {
                (GateKind::PoseidonMds, 0, 0)
            } else if let Some(g) = any.downcast_ref::<ArithmeticExtensionGate<D>>() {
                (GateKind::ArithmeticExtension, g.num_ops, 0)
            } else if let Some(g) = any.downcast_ref::<MulExtensionGate<D>>() {
                (GateKind::MulExtension, g.num_ops, 0)
            } else if let Some(g) = any.downcast_ref::<ReducingGate<D>>() {
                (GateKind::Reducing, g.num_coeffs, 0)
            } else if let Some(g) = any.downcast_ref::<ReducingExtensionGate<D>>() {
                (GateKind::ReducingExtension, g.num_coeffs, 0)
            } else if let Some(g) = any.downcast_ref::<RandomAccessGate<F, D>>() {
                if g.bits > MAX_RANDOM_ACCESS_BITS || g.num_extra_constants >= 1 << 16 {
                    return None;
                }
                (GateKind::RandomAccess, g.bits, g.num_copies | g.num_extra_constants << 16)
            } else if let Some(g) = any.downcast_ref::<CosetInterpolationGate<F, D>>() {
                gate_params.extend(F::two_adic_subgroup(g.subgroup_bits));
                gate_params.extend_from_slice(&g.barycentric_weights);
                (GateKind::CosetInterpolation, g.subgroup_bits, g.degree)
            } else {
                return None;
            };
            let selector = selectors.selector_indices[i];
            let group = &selectors.groups[selector];
            let u = |v: usize| u32::try_from(v).ok();
            Some(GateRecord { kind: kind as u32, size: u(size)?, extra: u(extra)?, selector_column: u(selector)?, group_start: u(group.start)?, group_end: u(group.end)?, row: u(i)?, params_offset: u(params_offset)? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((records, gate_params))
}

/// The vanishing polynomial's terms per point: per repetition `L_0(x)·(Z(x) - 1)` and a
/// partial-product check per chunk, then the gate constraints.
pub(crate) fn num_terms(common_data: &CommonCircuitData<F, D>) -> usize {
    common_data.config.num_challenges * (1 + common_data.num_partial_products + 1) + common_data.num_gate_constraints
}

/// The flat parameters (see [`QuotientInputs::params`]) and the number of terms.
fn params(common_data: &CommonCircuitData<F, D>, challenges: &Challenges<'_>, z_h_on_coset: &ZeroPolyOnCoset<F>, quotient_degree_bits: usize, gate_params: &[F]) -> (Vec<u64>, usize) {
    let Challenges { public_inputs_hash, betas, gammas, beta_ks, alphas } = *challenges;
    let num_terms = num_terms(common_data);
    let mut params: Vec<F> = public_inputs_hash.elements.to_vec();
    params.extend_from_slice(betas);
    params.extend_from_slice(gammas);
    params.extend(beta_ks.iter().flatten());
    for &alpha in alphas {
        params.extend(alpha.powers().take(num_terms));
    }
    let period = 1 << quotient_degree_bits;
    params.extend((0..period).map(|i| z_h_on_coset.eval(i)));
    params.extend((0..period).map(|i| z_h_on_coset.eval_inverse(i)));
    params.push(F::from_canonical_usize(common_data.degree()));
    params.push(F::coset_shift());
    params.push(F::primitive_root_of_unity(common_data.degree_bits() + quotient_degree_bits));
    params.extend_from_slice(gate_params);
    (params.iter().map(|x| x.to_canonical_u64()).collect(), num_terms)
}

#[cfg(test)]
mod tests {
    use plonky2::hash::poseidon::PoseidonHash;
    use plonky2::plonk::circuit_builder::CircuitBuilder;
    use plonky2::plonk::circuit_data::CircuitConfig;
    use plonky2::plonk::config::PoseidonGoldilocksConfig;

    use super::*;

    type Described = Option<(Vec<GateRecord>, Vec<F>)>;

    fn records(exponentiation: bool) -> (CommonCircuitData<F, D>, Described) {
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let x = builder.add_virtual_target();
        let y = builder.mul(x, x);
        builder.range_check(y, 16);
        let digest = builder.hash_n_to_hash_no_pad::<PoseidonHash>(vec![x, y]);
        builder.register_public_inputs(&digest.elements);
        if exponentiation {
            let power = builder.exp_u64(x, 12345);
            builder.register_public_input(power);
        }
        let common = builder.build::<PoseidonGoldilocksConfig>().common;
        let records = gate_records(&common, &Selectors::of(&common));
        (common, records)
    }

    #[test]
    fn gates_the_kernels_know_are_described_in_order_with_their_selectors() {
        let (common, records) = records(false);
        let (records, gate_params) = records.expect("every gate is of a known kind");
        assert!(gate_params.is_empty(), "no gate here has parameters of its own");
        let kinds: Vec<u32> = records.iter().map(|r| r.kind).collect();
        let names: Vec<String> = common.gates.iter().map(|g| g.0.id()).collect();
        for (kind, name) in kinds.iter().zip(&names) {
            let expected = [("Noop", GateKind::Noop), ("Arithmetic", GateKind::Arithmetic), ("Constant", GateKind::Constant), ("PublicInput", GateKind::PublicInput), ("BaseSum", GateKind::BaseSumBinary), ("Poseidon", GateKind::Poseidon)]
                .into_iter()
                .find(|(prefix, _)| name.starts_with(prefix))
                .map(|(_, kind)| kind as u32);
            assert_eq!(Some(*kind), expected, "{name}");
        }
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.row as usize, i);
            assert!((record.group_start..record.group_end).contains(&record.row));
            assert!((record.selector_column as usize) < common.selectors_info.num_selectors());
        }
        let arithmetic = records.iter().find(|r| r.kind == GateKind::Arithmetic as u32).unwrap();
        assert_eq!(arithmetic.size as usize, common.config.num_routed_wires / 4);
    }

    #[test]
    fn a_recursive_verifier_is_described_with_its_interpolation_domain_and_weights() {
        type C = PoseidonGoldilocksConfig;
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let x = builder.add_virtual_target();
        builder.register_public_input(x);
        for _ in 0..5000 {
            builder.add_gate(NoopGate, vec![]);
        }
        let inner = builder.build::<C>();
        let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let proof = builder.add_virtual_proof_with_pis(&inner.common);
        let verifier_data = builder.constant_verifier_data(&inner.verifier_only);
        builder.verify_proof::<C>(&proof, &verifier_data, &inner.common);
        let common = builder.build::<C>().common;
        let (records, gate_params) = gate_records(&common, &Selectors::of(&common)).expect("a recursive verifier's gates are all known");
        let interpolation = records.iter().find(|r| r.kind == GateKind::CosetInterpolation as u32).expect("FRI's coset interpolation");
        let gate = common.gates[interpolation.row as usize].0.as_any().downcast_ref::<CosetInterpolationGate<F, D>>().unwrap();
        let points = 1 << gate.subgroup_bits;
        let at = interpolation.params_offset as usize;
        assert_eq!(gate_params[at..at + points], F::two_adic_subgroup(gate.subgroup_bits));
        assert_eq!(gate_params[at + points..at + 2 * points], gate.barycentric_weights);
        assert_eq!(interpolation.extra as usize, gate.degree);
        let random_access = records.iter().find(|r| r.kind == GateKind::RandomAccess as u32).expect("FRI's random access");
        let gate = common.gates[random_access.row as usize].0.as_any().downcast_ref::<RandomAccessGate<F, D>>().unwrap();
        assert_eq!((random_access.size, random_access.extra), (gate.bits as u32, (gate.num_copies | gate.num_extra_constants << 16) as u32));
    }

    #[test]
    fn a_gate_of_another_kind_leaves_the_quotient_to_the_cpu() {
        assert!(records(true).1.is_none());
    }

    #[test]
    fn more_repetitions_than_the_kernels_sum_leave_the_quotient_to_the_cpu() {
        let config = CircuitConfig { num_challenges: MAX_CHALLENGES + 1, ..CircuitConfig::standard_recursion_config() };
        let mut builder = CircuitBuilder::<F, D>::new(config);
        let x = builder.add_virtual_target();
        let y = builder.mul(x, x);
        builder.register_public_input(y);
        let common = builder.build::<PoseidonGoldilocksConfig>().common;
        assert!(gate_records(&common, &Selectors::of(&common)).is_none());
    }
}
