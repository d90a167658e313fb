//! Our prover against plonky2's: its proofs verify with plonky2's verifier (directly and inside a
//! recursive verifier), commit to exactly what plonky2 commits to, and neither a witness that
//! breaks a constraint nor a backend that computes wrongly makes a proof.

use plonky2::field::types::{Field, Sample};
use plonky2::gates::noop::NoopGate;
use plonky2::iop::generator::generate_partial_witness;
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartialWitness, PartitionWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::config::{GenericConfig, KeccakGoldilocksConfig, PoseidonGoldilocksConfig};
use plonky2::plonk::proof::ProofWithPublicInputs;
use via_circuit_prover::cpu::CpuBackend;
use via_circuit_prover::cuda::CudaBackend;
use via_circuit_prover::prover::{D, ProveError, ProverConfig, prove, prove_with_partition_witness};
use via_circuit_prover::{F, Plonky2Backend, ProverBackend};

type C = PoseidonGoldilocksConfig;

/// x^2 + x·y + 7 made public, with a Poseidon hash of the inputs made public and y checked to fit
/// 32 bits: arithmetic, constant, public-input, Poseidon and base-sum gates (every kind the CUDA
/// backend evaluates the quotient of). x is also copied into a wire no gate constrains (column 0
/// of a no-op row, the third target returned), which only the copy constraint ties to x.
fn small_circuit(config: CircuitConfig) -> (CircuitData<F, C, D>, [Target; 3]) {
    padded_circuit(config, 40)
}

/// The small circuit built for a configuration of another hash.
fn small_circuit_of<CC: ProverConfig>(config: CircuitConfig) -> (CircuitData<F, CC, D>, [Target; 3]) {
    padded_circuit_of(config, 40)
}

/// The small circuit with `noops` no-op rows.
fn padded_circuit(config: CircuitConfig, noops: usize) -> (CircuitData<F, C, D>, [Target; 3]) {
    padded_circuit_of(config, noops)
}

fn padded_circuit_of<CC: ProverConfig>(config: CircuitConfig, noops: usize) -> (CircuitData<F, CC, D>, [Target; 3]) {
    let mut builder = CircuitBuilder::<F, D>::new(config);
    let x = builder.add_virtual_target();
    let y = builder.add_virtual_target();
    let xx = builder.mul(x, x);
    let xy = builder.mul(x, y);
    let sum = builder.add(xx, xy);
    let out = builder.add_const(sum, F::from_canonical_u64(7));
    builder.register_public_input(out);
    let digest = builder.hash_n_to_hash_no_pad::<plonky2::hash::poseidon::PoseidonHash>(vec![x, y, out]);
    builder.register_public_inputs(&digest.elements);
    builder.range_check(y, 32);
    let unconstrained = builder.add_gate(NoopGate, vec![]);
    builder.connect(x, Target::wire(unconstrained, 0));
    for _ in 0..noops {
        builder.add_gate(NoopGate, vec![]);
    }
    (builder.build::<CC>(), [x, y, Target::wire(unconstrained, 0)])
}

fn inputs(targets: [Target; 3], x: u64, y: u64) -> PartialWitness<F> {
    let mut pw = PartialWitness::new();
    pw.set_target(targets[0], F::from_canonical_u64(x)).unwrap();
    pw.set_target(targets[1], F::from_canonical_u64(y)).unwrap();
    pw
}

fn backends() -> Vec<Box<dyn ProverBackend>> {
    let mut backends: Vec<Box<dyn ProverBackend>> = vec![Box::new(Plonky2Backend), Box::new(CpuBackend::detect())];
    match CudaBackend::new() {
        Ok(cuda) => backends.push(Box::new(cuda)),
        Err(e) => eprintln!("not testing the CUDA backend: {e}"),
    }
    backends
}

/// Everything a proof commits to before FRI's proof of work (which plonky2 searches for in
/// parallel, so the first witness found may differ from run to run).
fn assert_same_commitments<CC: GenericConfig<D, F = F>>(ours: &ProofWithPublicInputs<F, CC, D>, plonky2s: &ProofWithPublicInputs<F, CC, D>, what: &str) {
    assert_eq!(ours.public_inputs, plonky2s.public_inputs, "{what}: public inputs");
    assert_eq!(ours.proof.wires_cap, plonky2s.proof.wires_cap, "{what}: wires cap");
    assert_eq!(ours.proof.plonk_zs_partial_products_cap, plonky2s.proof.plonk_zs_partial_products_cap, "{what}: Z and partial products cap");
    assert_eq!(ours.proof.quotient_polys_cap, plonky2s.proof.quotient_polys_cap, "{what}: quotient cap");
    assert_eq!(ours.proof.openings, plonky2s.proof.openings, "{what}: openings");
    assert_eq!(ours.proof.opening_proof.commit_phase_merkle_caps, plonky2s.proof.opening_proof.commit_phase_merkle_caps, "{what}: FRI caps");
    assert_eq!(ours.proof.opening_proof.final_poly, plonky2s.proof.opening_proof.final_poly, "{what}: FRI final polynomial");
}

/// plonky2's proof from the same witness vector (the generators randomise some unused wires, so
/// each run of them gives another).
fn plonky2s_proof<CC: GenericConfig<D, F = F>>(data: &CircuitData<F, CC, D>, witness_vector: &PartitionWitness<'_, F>) -> ProofWithPublicInputs<F, CC, D> {
    plonky2::plonk::prover::prove_with_partition_witness(&data.prover_only, &data.common, witness_vector.clone(), &mut Default::default()).unwrap()
}

#[test]
fn proofs_verify_and_commit_to_what_plonky2s_do() {
    let (data, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let witness_vector = generate_partial_witness(inputs(targets, 3, 5), &data.prover_only, &data.common).unwrap();
    let expected = plonky2s_proof(&data, &witness_vector);
    for backend in backends() {
        let proof = prove_with_partition_witness(backend.as_ref(), &data.prover_only, &data.common, witness_vector.clone()).unwrap();
        assert_eq!(proof.public_inputs[0], F::from_canonical_u64(9 + 15 + 7));
        assert_same_commitments(&proof, &expected, &backend.name());
        data.verify(proof).unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
    }
}

#[test]
fn the_cuda_backend_evaluates_the_quotient_where_the_ldes_lie() {
    let cuda = match CudaBackend::new() {
        Ok(cuda) => cuda,
        Err(e) => return eprintln!("skipped: no GPU to evaluate a quotient on ({e})"),
    };
    for config in [CircuitConfig::standard_recursion_config(), CircuitConfig { zero_knowledge: true, ..CircuitConfig::standard_recursion_config() }] {
        let (data, targets) = small_circuit(config);
        let witness_vector = generate_partial_witness(inputs(targets, 3, 5), &data.prover_only, &data.common).unwrap();
        let before = cuda.timings().quotients;
        let proof = prove_with_partition_witness(&cuda, &data.prover_only, &data.common, witness_vector.clone()).unwrap();
        assert_eq!(cuda.timings().quotients, before + 1, "the quotient was evaluated on the GPU");
        data.verify(proof.clone()).unwrap();
        if !data.common.config.zero_knowledge {
            assert_same_commitments(&proof, &plonky2s_proof(&data, &witness_vector), "cuda quotient");
        }
    }
    // A recursive verifier of a 2^13 circuit has every gate an aggregation circuit has:
    // extension arithmetic, reducing, random access, coset interpolation, Poseidon's MDS layer.
    let (inner, targets) = padded_circuit(CircuitConfig::standard_recursion_config(), 5000);
    let inner_proof = prove(&cuda, &inner.prover_only, &inner.common, inputs(targets, 11, 13)).unwrap();
    let (outer, pw) = recursive_verifier(&inner, &inner_proof);
    assert_quotient_on_the_gpu(&cuda, &outer, pw, "a recursive verifier");
    // A final layer's: Keccak commitments, left on the device and found by their caps.
    let (outer, pw) = recursive_verifier_of::<KeccakGoldilocksConfig>(&inner, &inner_proof);
    assert_quotient_on_the_gpu(&cuda, &outer, pw, "a Keccak verifier");

    // A gate the kernels do not know (exponentiation) leaves the quotient to the CPU.
    let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let x = builder.add_virtual_target();
    let power = builder.exp_u64(x, 12345);
    builder.register_public_input(power);
    let data = builder.build::<C>();
    let mut pw = PartialWitness::new();
    pw.set_target(x, F::from_canonical_u64(3)).unwrap();
    let before = cuda.timings().quotients;
    let proof = prove(&cuda, &data.prover_only, &data.common, pw).unwrap();
    assert_eq!(cuda.timings().quotients, before, "an exponentiation gate's quotient stays on the CPU");
    data.verify(proof).unwrap();
    // Every commitment and interpolation was made on the GPU (a failed one is made on the CPU).
    assert_eq!(cuda.timings().failures, 0, "calls failed on the GPU (see the error logs)");
}

/// Proves `circuit` on `cuda` and checks that its partial products and quotient were computed on
/// the GPU, that the proof commits to what plonky2's does, and that it verifies.
fn assert_quotient_on_the_gpu<CC: ProverConfig>(cuda: &CudaBackend, circuit: &CircuitData<F, CC, D>, pw: PartialWitness<F>, what: &str) {
    let witness_vector = generate_partial_witness(pw, &circuit.prover_only, &circuit.common).unwrap();
    let (before, partial_products_before) = (cuda.timings().quotients, cuda.timings().partial_products);
    let proof = prove_with_partition_witness(cuda, &circuit.prover_only, &circuit.common, witness_vector.clone()).unwrap();
    assert_eq!(cuda.timings().quotients, before + 1, "{what}: the quotient was evaluated on the GPU");
    assert_eq!(cuda.timings().partial_products, partial_products_before + 1, "{what}: the partial products were computed on the GPU");
    assert_same_commitments(&proof, &plonky2s_proof(circuit, &witness_vector), &format!("cuda quotient of {what}"));
    circuit.verify(proof).unwrap();
}

/// A circuit verifying `inner`'s proofs under its key, and its inputs for `inner_proof`.
fn recursive_verifier(inner: &CircuitData<F, C, D>, inner_proof: &ProofWithPublicInputs<F, C, D>) -> (CircuitData<F, C, D>, PartialWitness<F>) {
    recursive_verifier_of(inner, inner_proof)
}

/// A recursive verifier built for a configuration of another hash (as a final layer is).
fn recursive_verifier_of<CC: ProverConfig>(inner: &CircuitData<F, C, D>, inner_proof: &ProofWithPublicInputs<F, C, D>) -> (CircuitData<F, CC, D>, PartialWitness<F>) {
    let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let proof_target = builder.add_virtual_proof_with_pis(&inner.common);
    let verifier_data = builder.constant_verifier_data(&inner.verifier_only);
    builder.verify_proof::<C>(&proof_target, &verifier_data, &inner.common);
    builder.register_public_inputs(&proof_target.public_inputs);
    let mut pw = PartialWitness::new();
    pw.set_proof_with_pis_target(&proof_target, inner_proof).unwrap();
    (builder.build::<CC>(), pw)
}

/// A final proof's configuration: Keccak Merkle trees and transcript (the public inputs' hash
/// and what the circuit verifies stay Poseidon). Our prover's proofs commit to what plonky2's
/// do on every backend and verify, for a small circuit and a verifier of a Poseidon proof.
#[test]
fn keccak_proofs_verify_and_commit_to_what_plonky2s_do() {
    type K = KeccakGoldilocksConfig;
    let (data, targets) = small_circuit_of::<K>(CircuitConfig::standard_recursion_config());
    let witness_vector = generate_partial_witness(inputs(targets, 3, 5), &data.prover_only, &data.common).unwrap();
    let expected = plonky2s_proof(&data, &witness_vector);
    let (inner, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let inner_proof = prove(&CpuBackend::detect(), &inner.prover_only, &inner.common, inputs(targets, 11, 13)).unwrap();
    let (outer, pw) = recursive_verifier_of::<K>(&inner, &inner_proof);
    let outer_witness = generate_partial_witness(pw, &outer.prover_only, &outer.common).unwrap();
    let outer_expected = plonky2s_proof(&outer, &outer_witness);
    for backend in backends() {
        let proof = prove_with_partition_witness(backend.as_ref(), &data.prover_only, &data.common, witness_vector.clone()).unwrap();
        assert_same_commitments(&proof, &expected, &format!("keccak, {}", backend.name()));
        data.verify(proof).unwrap_or_else(|e| panic!("keccak, {}: {e}", backend.name()));
        let proof = prove_with_partition_witness(backend.as_ref(), &outer.prover_only, &outer.common, outer_witness.clone()).unwrap();
        assert_same_commitments(&proof, &outer_expected, &format!("keccak verifier of a Poseidon proof, {}", backend.name()));
        assert_eq!(proof.public_inputs, inner_proof.public_inputs);
        outer.verify(proof).unwrap_or_else(|e| panic!("keccak verifier, {}: {e}", backend.name()));
    }
    // A tampered Keccak proof is refused: the prover's transcript is the verifier's.
    let mut proof = prove_with_partition_witness(&CpuBackend::detect(), &data.prover_only, &data.common, witness_vector).unwrap();
    proof.proof.opening_proof.pow_witness += F::ONE;
    assert!(data.verify(proof).is_err(), "a wrong proof-of-work witness verified");
}

#[test]
fn zero_knowledge_proofs_verify() {
    let config = CircuitConfig { zero_knowledge: true, ..CircuitConfig::standard_recursion_config() };
    let (data, targets) = small_circuit(config);
    let a = prove(&CpuBackend::detect(), &data.prover_only, &data.common, inputs(targets, 3, 5)).unwrap();
    let b = prove(&CpuBackend::detect(), &data.prover_only, &data.common, inputs(targets, 3, 5)).unwrap();
    assert_ne!(a.proof.wires_cap, b.proof.wires_cap, "blinded commitments differ from proof to proof");
    data.verify(a).unwrap();
    data.verify(b).unwrap();
}

#[test]
fn a_recursive_verifier_accepts_our_proofs_and_we_prove_it() {
    let (inner, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let backend = CpuBackend::detect();
    let inner_proof = prove(&backend, &inner.prover_only, &inner.common, inputs(targets, 11, 13)).unwrap();

    // The outer circuit checks the inner proof: recursion, ext-arithmetic, random-access,
    // coset-interpolation, reducing and exponentiation gates.
    let (outer, pw) = recursive_verifier(&inner, &inner_proof);

    let witness_vector = generate_partial_witness(pw, &outer.prover_only, &outer.common).unwrap();
    let expected = plonky2s_proof(&outer, &witness_vector);
    let proof = prove_with_partition_witness(&backend, &outer.prover_only, &outer.common, witness_vector).unwrap();
    assert_same_commitments(&proof, &expected, "recursive verifier");
    assert_eq!(proof.public_inputs, inner_proof.public_inputs);
    outer.verify(proof).unwrap();
}

#[test]
fn a_witness_that_breaks_a_constraint_makes_no_proof() {
    let (data, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let mut witness_vector = generate_partial_witness(inputs(targets, 3, 5), &data.prover_only, &data.common).unwrap();
    // Change the public output after the generators ran: x^2 + x·y + 7 no longer holds.
    let out = data.prover_only.public_inputs[0];
    let index = witness_vector.representative_map[out.index(witness_vector.num_wires, witness_vector.degree)];
    let honest = witness_vector.values[index].unwrap();
    witness_vector.values[index] = Some(honest + F::ONE);
    let Err(err) = prove_with_partition_witness(&CpuBackend::detect(), &data.prover_only, &data.common, witness_vector) else { panic!("a proof from a dishonest witness") };
    assert!(matches!(err, ProveError::GateConstraint { ref gate, .. } if gate.starts_with("ArithmeticGate")), "{err}");
}

#[test]
fn a_witness_that_breaks_a_copy_constraint_makes_no_proof() {
    let (data, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let mut witness_vector = generate_partial_witness(inputs(targets, 3, 5), &data.prover_only, &data.common).unwrap();
    // Give the unconstrained copy of x its own representative holding another value: every gate
    // still holds, but the wires of x no longer agree.
    let wire = targets[2].index(witness_vector.num_wires, witness_vector.degree);
    let mut map = witness_vector.representative_map.to_vec();
    map[wire] = wire;
    let mut values = witness_vector.values.clone();
    values[wire] = Some(F::from_canonical_u64(4));
    witness_vector.representative_map = &map;
    witness_vector.values = values;
    // On every backend: the CUDA backend finds it in the partial products it computes itself.
    for backend in backends() {
        let Err(err) = prove_with_partition_witness(backend.as_ref(), &data.prover_only, &data.common, witness_vector.clone()) else { panic!("{}: a proof from a dishonest witness", backend.name()) };
        assert!(matches!(err, ProveError::CopyConstraint { challenge: 0 }), "{}: {err}", backend.name());
    }
}

/// The CPU backend, but a bit of every interpolated polynomial's constant coefficient flipped: a
/// backend that computes wrongly (a faulty GPU, say).
struct FaultyBackend(CpuBackend);

impl ProverBackend for FaultyBackend {
    fn name(&self) -> String {
        "faulty".into()
    }

    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> plonky2::hash::merkle_tree::MerkleTree<F, plonky2::hash::poseidon::PoseidonHash> {
        self.0.merkle_tree(leaves, cap_height)
    }

    fn interpolate(&self, values: Vec<plonky2::field::polynomial::PolynomialValues<F>>, on_coset: bool) -> Vec<plonky2::field::polynomial::PolynomialCoeffs<F>> {
        let mut polynomials = self.0.interpolate(values, on_coset);
        for p in &mut polynomials {
            p.coeffs[0] = F::from_canonical_u64(p.coeffs[0].0 ^ 1);
        }
        polynomials
    }
}

#[test]
fn a_backend_that_computes_wrongly_makes_no_proof() {
    let (data, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let err = prove(&FaultyBackend(CpuBackend::detect()), &data.prover_only, &data.common, inputs(targets, 3, 5)).unwrap_err();
    // The witness is honest, so the error says the proof, not the witness, is wrong.
    assert!(matches!(err, ProveError::Rejected(_)), "{err}");
}

#[test]
fn conflicting_inputs_are_a_witness_error() {
    let (data, targets) = small_circuit(CircuitConfig::standard_recursion_config());
    let mut pw = inputs(targets, 3, 5);
    // The output is determined by x and y; claiming another one contradicts the generators.
    pw.set_target(data.prover_only.public_inputs[0], F::rand()).unwrap();
    let err = prove(&CpuBackend::detect(), &data.prover_only, &data.common, pw).unwrap_err();
    assert!(matches!(err, ProveError::Witness(_)), "{err}");
}

#[test]
fn circuits_with_lookup_tables_are_refused() {
    let mut builder = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
    let table = std::sync::Arc::new((0..4u16).map(|i| (i, i * i)).collect::<Vec<_>>());
    let index = builder.add_lookup_table_from_pairs(table);
    let x = builder.add_virtual_target();
    let y = builder.add_lookup_from_index(x, index);
    builder.register_public_input(y);
    let data = builder.build::<C>();
    let mut pw = PartialWitness::new();
    pw.set_target(x, F::TWO).unwrap();
    let err = prove(&CpuBackend::detect(), &data.prover_only, &data.common, pw).unwrap_err();
    assert!(matches!(err, ProveError::Lookups), "{err}");
}

