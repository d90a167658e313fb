//! The core verifies submitted proofs with the protocol version's final verifier. A one-gate
//! circuit stands in for the last compression layer (the verifier code and the checks are the
//! real ones; building every circuit of a protocol version here would take minutes).

use plonky2::field::types::Field;
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use via_circuits::keys::save_verifier_only;
use via_core_devnet::{CoreDevnet, SubmitError};
use via_schemas::WireVersion;
use via_schemas::config::CoreDevnetConfig;
use via_schemas::primitives::Hash;
use via_schemas::prover_interface::{L1BatchNumber, L1BatchProofForL1, L1VerifierConfig, ProofBytes, SubmitProofRequest};

use via_circuits::config::{F, FinalC as C};

/// A circuit whose one public input is a commitment, like the final compression layer's.
fn final_circuit() -> (CircuitData<F, C, 2>, [plonky2::iop::target::Target; 4]) {
    let mut builder = CircuitBuilder::<F, 2>::new(CircuitConfig::standard_recursion_config());
    let commitment = builder.add_virtual_target_arr::<4>();
    builder.register_public_inputs(&commitment);
    (builder.build(), commitment)
}

fn prove(circuit: &(CircuitData<F, C, 2>, [plonky2::iop::target::Target; 4]), commitment: Hash) -> Vec<u8> {
    let mut pw = PartialWitness::new();
    for (t, v) in circuit.1.iter().zip(commitment.limbs()) {
        pw.set_target(*t, F::from_canonical_u64(v)).unwrap();
    }
    let proof = circuit.0.prove(pw).unwrap();
    circuit.0.compress(proof).unwrap().to_bytes()
}

fn submission(commitment: Hash, proof: Vec<u8>) -> SubmitProofRequest {
    SubmitProofRequest::Proof(Box::new(L1BatchProofForL1 {
        version: WireVersion::CURRENT,
        protocol_version: CoreDevnetConfig::default().protocol_version,
        batch_commitment: commitment,
        proof: ProofBytes(proof),
    }))
}

#[tokio::test]
async fn proofs_are_verified_against_the_batch_commitment() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let circuit = final_circuit();
    let scheduler_vk_hash = Hash::from_limbs([5, 6, 7, 8]).unwrap();
    let config = CoreDevnetConfig {
        database_url: format!("sqlite://{}/core.db", dir.path().display()),
        txs_per_batch: 3,
        user_accounts: 2,
        keys_dir: keys_dir.clone(),
        ..Default::default()
    };

    let err = CoreDevnet::open(config.clone()).await.err().expect("no keys, no core");
    assert!(err.to_string().contains("prover keys generate"), "{err}");

    save_verifier_only(&keys_dir.join("0.1.0"), config.protocol_version, &circuit.0.verifier_data(), scheduler_vk_hash).unwrap();
    let mismatched = CoreDevnetConfig { l1_verifier_config: L1VerifierConfig { scheduler_vk_hash: Hash::from_limbs([1, 1, 1, 1]).unwrap() }, ..config.clone() };
    let err = CoreDevnet::open(mismatched).await.err().expect("a configured key hash that is not the keys' is refused");
    assert!(err.to_string().contains("the keys' scheduler key hash is"), "{err}");

    let core = CoreDevnet::open(config).await.unwrap();
    assert_eq!(core.l1_verifier_config().scheduler_vk_hash, scheduler_vk_hash, "the key hash comes from the keys");
    core.seal_batch().await.unwrap();
    let data = core.next_proof_generation_data().await.unwrap().unwrap();
    assert_eq!(data.l1_verifier_config.scheduler_vk_hash, scheduler_vk_hash);
    let commitment = core.batch(L1BatchNumber(1)).await.unwrap().unwrap().commitment;

    let valid = prove(&circuit, commitment);
    let mut tampered = valid.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 4;
    let err = core.submit_proof(L1BatchNumber(1), submission(commitment, tampered)).await.unwrap_err();
    assert!(matches!(err, SubmitError::InvalidProof { .. }), "{err}");
    let other = prove(&circuit, Hash::from_limbs([9, 9, 9, 9]).unwrap());
    let err = core.submit_proof(L1BatchNumber(1), submission(commitment, other)).await.unwrap_err();
    assert!(err.to_string().contains("the proof commits to 0x"), "a proof of another commitment: {err}");
    let err = core.submit_proof(L1BatchNumber(1), submission(commitment, vec![1, 2, 3])).await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");

    core.submit_proof(L1BatchNumber(1), submission(commitment, valid)).await.unwrap();
    assert_eq!(core.batch(L1BatchNumber(1)).await.unwrap().unwrap().status, via_core_devnet::store::BatchStatus::Proven);
}
