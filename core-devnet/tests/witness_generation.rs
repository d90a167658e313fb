//! The devnet's batches are valid round-0 input: every sealed batch turns into basic circuit
//! instances whose expected public inputs chain from the previous state root to the batch's
//! public data.

use via_circuits::basic::CircuitId;
use via_circuits::witness_generator::generate_basic_witnesses;
use via_core_devnet::CoreDevnet;
use via_schemas::config::{BasicCircuitsConfig, CoreDevnetConfig};

#[tokio::test]
async fn devnet_batches_split_into_chaining_instances() {
    let dir = tempfile::tempdir().unwrap();
    let core = CoreDevnet::open(CoreDevnetConfig {
        database_url: format!("sqlite://{}/core.db", dir.path().display()),
        txs_per_batch: 12,
        user_accounts: 4,
        verify_proofs: false,
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        core.seal_batch().await.unwrap();
    }
    let config = BasicCircuitsConfig { txs_per_tx_execution: 5, accesses_per_storage_application: 7, blocks_per_pubdata_hasher: 3, signatures_per_signature_verifier: 2 };
    while let Some(data) = core.next_proof_generation_data().await.unwrap() {
        let record = core.batch(data.l1_batch_number).await.unwrap().unwrap();
        let witnesses = generate_basic_witnesses(&data.witness_input_data, &config).unwrap();
        assert_eq!(witnesses.public_data, record.public_data, "batch {}: the prover derives the core's public data", data.l1_batch_number);
        for id in CircuitId::ALL {
            let (context, state) = id.public_input_layout();
            let instances: Vec<_> = witnesses.instances.iter().filter(|i| i.circuit_id == id).collect();
            assert!(!instances.is_empty(), "{id} has an instance");
            for (n, pair) in instances.windows(2).enumerate() {
                assert_eq!(pair[0].sequence, n);
                assert_eq!(pair[0].public_inputs[context + state..], pair[1].public_inputs[context..context + state], "{id} chains");
            }
        }
        let storage: Vec<_> = witnesses.instances.iter().filter(|i| i.circuit_id == CircuitId::StorageApplication).collect();
        let root_in = &storage[0].public_inputs[4..8];
        let root_out = &storage.last().unwrap().public_inputs[12..16];
        assert_eq!(root_in, record.public_data.previous_state_root.limbs());
        assert_eq!(root_out, record.public_data.new_state_root.limbs());
    }
}
