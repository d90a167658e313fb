//! Every basic circuit: an honest batch proves and its instances chain end to end, and for each
//! rule a dishonest witness fails to prove (or, where the lie is in what a slot leaves out, its
//! proof's public outputs no longer chain with the producer's, which aggregation checks).

mod common;

use common::*;
use plonky2::field::types::{Field, PrimeField64};
use via_circuits::basic::CircuitId;
use via_circuits::basic::pubdata_hasher::PubdataHasherWitness;
use via_circuits::basic::signature_verifier::SignatureVerifierWitness;
use via_circuits::basic::storage_application::StorageApplicationWitness;
use via_circuits::basic::tx_execution::TxExecutionWitness;
use via_circuits::witness_generator::{BasicCircuitInstance, BasicWitness, BasicWitnesses, WitnessGenerationError, generate_basic_witnesses};
use via_l2::batch::BatchError;
use via_l2::hash::F as Fe;
use via_l2::scalar::Scalar;
use via_l2::state::{TxError, WitnessError};
use via_schemas::primitives::Hash;

fn witnesses() -> BasicWitnesses {
    generate_basic_witnesses(&mixed_batch(), &CONFIG).expect("an honest batch generates")
}

fn first(w: &BasicWitnesses, id: CircuitId) -> BasicCircuitInstance {
    w.instances.iter().find(|i| i.circuit_id == id).cloned().expect("every circuit has an instance")
}

/// Proves a witness; `Ok(public inputs)` when the proof verifies.
fn prove(witness: &BasicWitness) -> anyhow::Result<Vec<u64>> {
    let circuit = &CIRCUITS[&witness.circuit_id()];
    let proof = circuit.prove(witness)?;
    let public: Vec<u64> = proof.public_inputs.iter().map(|x| x.to_canonical_u64()).collect();
    circuit.verify(proof)?;
    Ok(public)
}

fn tx_execution(mutate: impl FnOnce(&mut TxExecutionWitness)) -> BasicWitness {
    let BasicWitness::TxExecution(mut w) = first(&witnesses(), CircuitId::TxExecution).witness else { unreachable!() };
    mutate(&mut w);
    BasicWitness::TxExecution(w)
}

#[test]
fn honest_batch_proves_and_chains_end_to_end() {
    let w = witnesses();
    let mut by_circuit: std::collections::BTreeMap<CircuitId, Vec<Vec<u64>>> = Default::default();
    for instance in &w.instances {
        let public = prove(&instance.witness).unwrap_or_else(|e| panic!("{} #{}: {e}", instance.circuit_id, instance.sequence));
        assert_eq!(public, instance.public_inputs, "{} #{} public inputs", instance.circuit_id, instance.sequence);
        by_circuit.entry(instance.circuit_id).or_default().push(public);
    }
    // Within a circuit type: same context, and out of i is in of i + 1.
    for (id, publics) in &by_circuit {
        let (context, state) = id.public_input_layout();
        for pair in publics.windows(2) {
            assert_eq!(pair[0][..context], pair[1][..context], "{id}: context");
            assert_eq!(pair[0][context + state..], pair[1][context..context + state], "{id}: chaining");
        }
    }
    let last_out = |id: CircuitId| {
        let (context, state) = id.public_input_layout();
        by_circuit[&id].last().unwrap()[context + state..].to_vec()
    };
    let first_in = |id: CircuitId| {
        let (context, state) = id.public_input_layout();
        by_circuit[&id][0][context..context + state].to_vec()
    };
    let hash = |h: Hash| h.limbs().to_vec();
    let tx_out = last_out(CircuitId::TxExecution);
    let storage_in = first_in(CircuitId::StorageApplication);
    let storage_out = last_out(CircuitId::StorageApplication);
    let hasher_out = last_out(CircuitId::PubdataHasher);
    // Producers and consumers end at the same queue states.
    assert_eq!(tx_out[0..4], storage_out[0..4], "access log");
    assert_eq!(tx_out[4..8], hasher_out[0..4], "pubdata");
    assert_eq!(tx_out[8..12], last_out(CircuitId::SignatureVerifier)[..], "signature requests");
    // And the chained states are the batch's public data.
    assert_eq!(storage_in[4..8], hash(w.public_data.previous_state_root)[..]);
    assert_eq!(storage_out[4..8], hash(w.public_data.new_state_root)[..]);
    assert_eq!(tx_out[12..16], hash(w.public_data.priority_ops_hash)[..]);
    assert_eq!(tx_out[16..20], hash(w.public_data.withdrawals_hash)[..]);
    let digest: Vec<u64> = w.public_data.pubdata_sha256.0.chunks(4).map(|c| u64::from(u32::from_be_bytes(c.try_into().unwrap()))).collect();
    assert_eq!(hasher_out[13..21], digest[..], "pubdata SHA-256");
    assert_eq!(by_circuit[&CircuitId::TxExecution][0][..2], [270, 0], "chain id and fee account");
}

#[test]
fn a_proof_with_altered_public_inputs_is_rejected() {
    let instance = first(&witnesses(), CircuitId::TxExecution);
    let circuit = &CIRCUITS[&CircuitId::TxExecution];
    let mut proof = circuit.prove(&instance.witness).unwrap();
    proof.public_inputs[5] += Fe::ONE;
    assert!(circuit.verify(proof).is_err());
}

// TxExecution rules. The first instance holds the deposit (slot 0) and the first transfer
// (slot 1: account 1 pays 1000 + 10 to account 2).

#[test]
fn insufficient_balance_fails() {
    assert!(prove(&tx_execution(|w| w.slots[1].amount = 1_000_000)).is_err());
    // The honest slot spends well within the balance: the same witness otherwise proves.
    assert!(prove(&tx_execution(|w| w.slots[1].amount = 999_990)).is_ok_and(|p| p != first(&witnesses(), CircuitId::TxExecution).public_inputs));
}

#[test]
fn replayed_nonce_fails() {
    assert!(prove(&tx_execution(|w| w.slots[1].nonce = 1)).is_err());
    assert!(prove(&tx_execution(|w| w.slots[1].lanes[0].nonce = 1)).is_err());
}

#[test]
fn transfer_to_self_fails() {
    assert!(prove(&tx_execution(|w| {
        w.slots[1].account_b = 1;
        w.slots[1].lanes[1] = w.slots[1].lanes[0];
    }))
    .is_err());
}

#[test]
fn unknown_accounts_fail() {
    assert!(prove(&tx_execution(|w| w.slots[1].lanes[0].exists = false)).is_err(), "sender");
    assert!(prove(&tx_execution(|w| w.slots[1].lanes[1].exists = false)).is_err(), "recipient");
    assert!(prove(&tx_execution(|w| w.slots[1].lanes[2].exists = false)).is_err(), "fee account");
}

#[test]
fn balance_overflow_fails() {
    assert!(prove(&tx_execution(|w| w.slots[1].lanes[1].balance = (1 << 60) - 500)).is_err(), "recipient");
    assert!(prove(&tx_execution(|w| w.slots[0].amount = 1 << 60)).is_err(), "deposit amount");
}

#[test]
fn deposit_key_rules_fail() {
    // Account 3 is new: its key must decode. Pornin's known non-encoding is not a key.
    let not_a_point = [13557832913345268708, 15669280705791538619, 8534654657267986396, 12533218303838131749, 5058070698878426028];
    assert!(prove(&tx_execution(|w| w.slots[0].public_key = not_a_point)).is_err(), "invalid key");
    assert!(prove(&tx_execution(|w| w.slots[0].public_key = [0; 5])).is_err(), "neutral key");
    // Depositing to an existing account under another key.
    assert!(prove(&tx_execution(|w| {
        w.slots[0].lanes[0] = w.slots[1].lanes[0];
        w.slots[0].account_a = 1;
    }))
    .is_err());
}

#[test]
fn two_kinds_in_one_slot_fail() {
    // The witness type has one `kind`; a prover writing wires directly could raise two flags.
    // On an honest transfer, also raising the withdraw flag breaks only the one-kind rule.
    let circuit = &CIRCUITS[&CircuitId::TxExecution];
    let via_circuits::prover::BasicTargets::TxExecution(targets) = &circuit.targets else { unreachable!() };
    let honest = tx_execution(|_| {});
    let pw = circuit.partial_witness(&honest).unwrap();
    assert!(circuit.data.prove(pw.clone()).and_then(|p| circuit.data.verify(p)).is_ok());
    let mut two_kinds = pw;
    two_kinds.target_values.insert(targets.kind_flags(1)[2].target, Fe::ONE);
    assert!(circuit.data.prove(two_kinds).and_then(|p| circuit.data.verify(p)).is_err());
}

#[test]
fn padding_emits_nothing() {
    let honest = first(&witnesses(), CircuitId::TxExecution).public_inputs;
    let padded = prove(&tx_execution(|w| w.slots[1].kind = 0)).expect("padding proves");
    assert_ne!(padded, honest, "a transaction turned into padding no longer chains");
    assert_eq!(padded[..2], honest[..2]);
    // A padded slot's leftover fields emit nothing: the queues are those of the deposit alone.
    let deposit_only = prove(&tx_execution(|w| w.slots[1] = Default::default())).unwrap();
    assert_eq!(padded, deposit_only);
}

// StorageApplication.

fn storage(mutate: impl FnOnce(&mut StorageApplicationWitness)) -> BasicWitness {
    let BasicWitness::StorageApplication(mut w) = first(&witnesses(), CircuitId::StorageApplication).witness else { unreachable!() };
    mutate(&mut w);
    BasicWitness::StorageApplication(w)
}

#[test]
fn bad_merkle_path_fails() {
    assert!(prove(&storage(|w| w.slots[1].merkle_path[5][0] ^= 1)).is_err());
    assert!(prove(&storage(|w| w.slots[1].account ^= 1)).is_err(), "a path proves one index");
}

#[test]
fn lying_about_an_account_fails() {
    // TxExecution takes the old account as a witness; the lie surfaces as an old leaf that is
    // not in the tree.
    assert!(prove(&storage(|w| w.slots[1].old_leaf[2] += 1)).is_err());
}

#[test]
fn skipping_an_access_breaks_the_chain() {
    let honest = first(&witnesses(), CircuitId::StorageApplication).public_inputs;
    let skipped = prove(&storage(|w| w.slots[3].active = false)).expect("an inactive slot proves");
    assert_ne!(skipped[8..12], honest[8..12], "the access log no longer matches TxExecution's");
}

// PubdataHasher.

fn hasher(mutate: impl FnOnce(&mut PubdataHasherWitness)) -> BasicWitness {
    let BasicWitness::PubdataHasher(mut w) = first(&witnesses(), CircuitId::PubdataHasher).witness else { unreachable!() };
    mutate(&mut w);
    BasicWitness::PubdataHasher(w)
}

#[test]
fn wrong_sha256_state_breaks_the_chain() {
    let honest = first(&witnesses(), CircuitId::PubdataHasher).public_inputs;
    let tampered = prove(&hasher(|w| w.state_in.sha256[0] ^= 1)).expect("any 32-bit state proves");
    assert_ne!(tampered[21 + 4..21 + 12], honest[21 + 4..21 + 12], "the SHA-256 state out changes");
    assert_ne!(tampered[4..12], honest[4..12], "and its state in no longer matches the previous out");
}

#[test]
fn words_above_32_bits_fail() {
    assert!(prove(&hasher(|w| w.state_in.sha256[0] = u32::MAX)).is_ok());
    let BasicWitness::PubdataHasher(w) = hasher(|_| {}) else { unreachable!() };
    let mut circuit_witness = w.clone();
    circuit_witness.state_in.count = 1 << 23;
    assert!(prove(&BasicWitness::PubdataHasher(circuit_witness)).is_err(), "block count beyond 2^23");
}

#[test]
fn tampered_record_breaks_the_chain() {
    let honest = first(&witnesses(), CircuitId::PubdataHasher).public_inputs;
    let tampered = prove(&hasher(|w| w.slots[0].words[3] ^= 1)).expect("proves");
    assert_ne!(tampered[21..25], honest[21..25], "the pubdata queue no longer matches TxExecution's");
}

// SignatureVerifier.

fn signatures(mutate: impl FnOnce(&mut SignatureVerifierWitness)) -> BasicWitness {
    let BasicWitness::SignatureVerifier(mut w) = first(&witnesses(), CircuitId::SignatureVerifier).witness else { unreachable!() };
    mutate(&mut w);
    BasicWitness::SignatureVerifier(w)
}

#[test]
fn forged_signature_fails() {
    assert!(prove(&signatures(|w| w.slots[0].s[9] ^= 1)).is_err());
    assert!(prove(&signatures(|w| w.slots[0].r[0] += 1)).is_err());
}

#[test]
fn wrong_key_fails() {
    assert!(prove(&signatures(|w| w.slots[0].public_key = key(2).public_key().limbs())).is_err());
}

#[test]
fn tampered_message_fails() {
    assert!(prove(&signatures(|w| w.slots[0].message[0] += 1)).is_err());
}

#[test]
fn unreduced_scalar_fails() {
    // s + n is the same point multiple, so only the range check refuses it.
    let honest = signatures(|_| {});
    let BasicWitness::SignatureVerifier(w) = honest.clone() else { unreachable!() };
    let s: Vec<u8> = w.slots[0].s.iter().flat_map(|x| x.to_be_bytes()).collect();
    let bumped = num_bigint::BigUint::from_bytes_be(&s) + Scalar::order();
    let mut bytes = [0u8; 40];
    let be = bumped.to_bytes_be();
    bytes[40 - be.len()..].copy_from_slice(&be);
    let words: [u32; 10] = std::array::from_fn(|i| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()));
    assert!(prove(&honest).is_ok());
    assert!(prove(&signatures(|w| w.slots[0].s = words)).is_err());
}

#[test]
fn skipped_signature_breaks_the_chain() {
    let honest = first(&witnesses(), CircuitId::SignatureVerifier).public_inputs;
    let skipped = prove(&signatures(|w| w.slots[0].active = false)).expect("an inactive slot proves");
    assert_ne!(skipped[4..8], honest[4..8], "the request queue no longer matches TxExecution's");
}

// The witness generator's refusals.

#[test]
fn broken_rule_is_named_with_its_index() {
    let mut input = mixed_batch();
    input.transactions.push(transfer(1, 2, 1, 0, 0));
    let err = generate_basic_witnesses(&input, &CONFIG).unwrap_err();
    assert_eq!(err, WitnessGenerationError::Transaction(BatchError { index: 5, source: TxError::NonceMismatch { account: via_schemas::l2::AccountId(1), expected: 2, got: 0 } }));
    assert!(!err.is_retryable());
}

#[test]
fn paths_that_miss_the_root_are_refused_before_proving() {
    let mut input = mixed_batch();
    input.accounts[1].merkle_path[0] = Hash::from_limbs([1, 2, 3, 4]).unwrap();
    let err = generate_basic_witnesses(&input, &CONFIG).unwrap_err();
    assert!(matches!(err, WitnessGenerationError::Witness(WitnessError::RootMismatch { .. })), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn our_prover_and_plonky2s_make_the_same_commitments_on_every_basic_circuit() {
    use via_circuits::proving::Prover;
    use via_schemas::config::ProverBackendKind;
    let w = witnesses();
    // The CPU backend always; the CUDA backend where there is a GPU.
    let mut ours = vec![Prover::of_kind(ProverBackendKind::Cpu).unwrap()];
    match Prover::of_kind(ProverBackendKind::Cuda) {
        Ok(cuda) => ours.push(cuda),
        Err(e) => eprintln!("not comparing the CUDA backend: {e}"),
    }
    for id in CircuitId::ALL {
        let circuit = &CIRCUITS[&id];
        let vector = circuit.witness_vector(&first(&w, id).witness).unwrap();
        let plonky2s = Prover::Plonky2.prove_witness_vector(&circuit.data, vector.clone()).unwrap();
        for prover in &ours {
            let name = prover.name();
            let proof = prover.prove_witness_vector(&circuit.data, vector.clone()).unwrap();
            assert_eq!(proof.proof.wires_cap, plonky2s.proof.wires_cap, "{id} on {name}: wires");
            assert_eq!(proof.proof.plonk_zs_partial_products_cap, plonky2s.proof.plonk_zs_partial_products_cap, "{id} on {name}: partial products");
            assert_eq!(proof.proof.quotient_polys_cap, plonky2s.proof.quotient_polys_cap, "{id} on {name}: quotient");
            assert_eq!(proof.proof.openings, plonky2s.proof.openings, "{id} on {name}: openings");
            circuit.verify(proof).unwrap_or_else(|e| panic!("{id}: our proof on {name}: {e}"));
        }
        circuit.verify(plonky2s).unwrap_or_else(|e| panic!("{id}: plonky2's proof: {e}"));
    }
}
