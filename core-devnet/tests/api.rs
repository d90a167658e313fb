//! The devnet core over real HTTP, on real databases: it serves batches, takes proofs, refuses bad
//! input by name without changing state, and survives a restart.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use via_core_devnet::CoreDevnet;
use via_core_devnet::store::BatchStatus;
use via_schemas::WireVersion;
use via_schemas::config::CoreDevnetConfig;
use via_schemas::primitives::Hash;
use via_schemas::prover_interface::*;

/// A core on its own database, serving on an ephemeral port.
struct Devnet {
    core: Arc<CoreDevnet>,
    url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Devnet {
    async fn start(config: CoreDevnetConfig) -> Self {
        let core = CoreDevnet::open(config).await.expect("core opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn({
            let (core, shutdown) = (core.clone(), shutdown.clone());
            async move { core.serve(listener, shutdown).await.unwrap() }
        });
        Self { core, url, http: reqwest::Client::new(), shutdown, server }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap();
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).header("content-type", "application/json").body(body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn next_batch(&self) -> Option<ProofGenerationData> {
        let (status, body) = self.post("/proof_generation_data", "{}").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        match serde_json::from_value(body).unwrap() {
            ProofGenerationDataResponse::Success(data) => data.map(|d| *d),
            ProofGenerationDataResponse::Error(e) => panic!("core error: {e}"),
        }
    }

    async fn batch(&self, n: u32) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}/batches/{n}", self.url)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn submit(&self, n: u32, request: &SubmitProofRequest) -> (StatusCode, Value) {
        self.post(&format!("/submit_proof/{n}"), serde_json::to_vec(request).unwrap()).await
    }

    async fn seal(&self, count: usize) {
        for _ in 0..count {
            self.core.seal_batch().await.unwrap().expect("sealing is not paused");
        }
    }
}

fn config(database_url: String) -> CoreDevnetConfig {
    // Proofs here are placeholders: these tests are about the interface, so only commitments are
    // checked. `verified_proofs.rs` runs the verifier.
    CoreDevnetConfig { database_url, txs_per_batch: 4, user_accounts: 3, max_unproven_batches: 10, verify_proofs: false, ..Default::default() }
}

/// A fresh SQLite database in a temporary directory (kept alive by the returned guard).
fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/core.db", dir.path().display());
    (dir, url)
}

/// A fresh database on the Postgres server the test stack started (`infra/test.sh`).
async fn postgres() -> String {
    use sqlx::Connection;
    let admin = std::env::var("VIA_TEST_POSTGRES_URL")
        .expect("VIA_TEST_POSTGRES_URL is not set: run the tests with infra/test.sh, which starts Postgres");
    let name = format!("core_devnet_{}_{}", std::process::id(), rand_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test Postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn proof_for(record: &Value, commitment_override: Option<Hash>) -> SubmitProofRequest {
    let commitment: Hash = serde_json::from_value(record["commitment"].clone()).unwrap();
    SubmitProofRequest::Proof(Box::new(L1BatchProofForL1 {
        version: WireVersion::CURRENT,
        protocol_version: serde_json::from_value(record["public_data"]["protocol_version"].clone()).unwrap(),
        batch_commitment: commitment_override.unwrap_or(commitment),
        proof: ProofBytes(vec![1, 2, 3]),
    }))
}

#[tokio::test]
async fn serves_batches_in_order_and_accepts_a_proof() {
    let (_dir, url) = sqlite();
    let devnet = Devnet::start(config(url)).await;
    assert_eq!(devnet.next_batch().await, None, "nothing sealed yet");
    devnet.seal(2).await;

    let first = devnet.next_batch().await.unwrap();
    let second = devnet.next_batch().await.unwrap();
    assert_eq!((first.l1_batch_number, second.l1_batch_number), (L1BatchNumber(1), L1BatchNumber(2)));
    assert_eq!(first.witness_input_data.transactions.len(), 4);
    let (_, record1) = devnet.batch(1).await;
    assert_eq!(
        second.witness_input_data.previous_state_root.to_string(),
        record1["public_data"]["new_state_root"].as_str().unwrap(),
        "batches chain"
    );
    assert_eq!(record1["status"], "picked");
    assert_eq!(devnet.next_batch().await, None, "both handed out");

    let (status, body) = devnet.submit(1, &proof_for(&record1, None)).await;
    assert_eq!((status, body), (StatusCode::OK, json!("Success")));
    let (_, record1) = devnet.batch(1).await;
    assert_eq!(record1["status"], "proven");
    assert_eq!(devnet.core.proof(L1BatchNumber(1)).await.unwrap().unwrap().proof, ProofBytes(vec![1, 2, 3]));
    devnet.stop().await;
}

#[tokio::test]
async fn bad_requests_are_named_and_change_nothing() {
    let (_dir, url) = sqlite();
    let devnet = Devnet::start(config(url)).await;
    devnet.seal(1).await;
    let (_, before) = devnet.batch(1).await;
    let good = serde_json::to_value(proof_for(&before, None)).unwrap();

    let (status, body) = devnet.post("/submit_proof/1", "{\"Proof\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["Error"].as_str().unwrap().starts_with("malformed request"), "{body}");

    let mut wrong_version = good.clone();
    wrong_version["Proof"]["version"] = json!(2);
    let (status, body) = devnet.post("/submit_proof/1", wrong_version.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["Error"].as_str().unwrap().contains("unsupported wire format version 2: this build speaks version 1"), "{body}");

    let (status, body) = devnet.post("/submit_proof/99", good.to_string()).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({ "Error": "batch 99 does not exist" })));

    let (status, body) = devnet.submit(1, &proof_for(&before, Some(Hash::from_limbs([1, 2, 3, 4]).unwrap()))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["Error"].as_str().unwrap().contains("the proof's public input is 0x"), "{body}");

    let mut other_protocol = good.clone();
    other_protocol["Proof"]["protocol_version"] = json!({ "minor": 9, "patch": 0 });
    let (status, body) = devnet.post("/submit_proof/1", other_protocol.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["Error"], "batch 1 was sealed under protocol version 0.1.0, the proof is for 0.9.0");

    let mut empty = good.clone();
    empty["Proof"]["proof"] = json!("");
    let (status, body) = devnet.post("/submit_proof/1", empty.to_string()).await;
    assert_eq!((status, body), (StatusCode::UNPROCESSABLE_ENTITY, json!({ "Error": "batch 1: the proof is empty" })));

    let (status, body) = devnet.submit(1, &SubmitProofRequest::SkippedProofGeneration).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["Error"].as_str().unwrap().contains("allow_skipped_proofs is off"), "{body}");

    let (status, body) = devnet.post("/proof_generation_data", "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (_, after) = devnet.batch(1).await;
    assert_eq!(after, before, "no bad request changed the batch");

    // A proof for a batch that is already proven.
    assert_eq!(devnet.post("/submit_proof/1", good.to_string()).await.0, StatusCode::OK);
    let (_, proven) = devnet.batch(1).await;
    let (status, body) = devnet.post("/submit_proof/1", good.to_string()).await;
    assert_eq!((status, body), (StatusCode::CONFLICT, json!({ "Error": "batch 1 is already proven" })));
    assert_eq!(devnet.batch(1).await.1, proven);
    assert_eq!(devnet.batch(5).await.0, StatusCode::NOT_FOUND);
    devnet.stop().await;
}

#[tokio::test]
async fn skipped_proofs_are_taken_only_where_allowed() {
    let (_dir, url) = sqlite();
    let devnet = Devnet::start(CoreDevnetConfig { allow_skipped_proofs: true, ..config(url) }).await;
    devnet.seal(1).await;
    assert_eq!(devnet.submit(1, &SubmitProofRequest::SkippedProofGeneration).await, (StatusCode::OK, json!("Success")));
    assert_eq!(devnet.batch(1).await.1["status"], "skipped");
    devnet.stop().await;
}

#[tokio::test]
async fn sealing_pauses_while_too_many_batches_await_proofs() {
    let (_dir, url) = sqlite();
    let core = CoreDevnet::open(CoreDevnetConfig { max_unproven_batches: 2, ..config(url) }).await.unwrap();
    assert_eq!(core.seal_batch().await.unwrap(), Some(L1BatchNumber(1)));
    assert_eq!(core.seal_batch().await.unwrap(), Some(L1BatchNumber(2)));
    assert_eq!(core.seal_batch().await.unwrap(), None);
    core.submit_proof(L1BatchNumber(1), proof_request(&core, 1).await).await.unwrap();
    assert_eq!(core.seal_batch().await.unwrap(), Some(L1BatchNumber(3)));
}

async fn proof_request(core: &CoreDevnet, n: u32) -> SubmitProofRequest {
    let record = core.batch(L1BatchNumber(n)).await.unwrap().unwrap();
    proof_for(&serde_json::to_value(record).unwrap(), None)
}

#[tokio::test]
async fn batches_handed_out_long_ago_are_offered_again() {
    let (_dir, url) = sqlite();
    let core = CoreDevnet::open(CoreDevnetConfig { proof_generation_timeout_s: 0, ..config(url) }).await.unwrap();
    core.seal_batch().await.unwrap();
    let first = core.next_proof_generation_data().await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = core.next_proof_generation_data().await.unwrap().unwrap();
    assert_eq!(first.l1_batch_number, again.l1_batch_number);
}

async fn survives_a_restart(url: String) {
    let devnet = Devnet::start(config(url.clone())).await;
    devnet.seal(2).await;
    devnet.next_batch().await.unwrap();
    let (_, record1) = devnet.batch(1).await;
    devnet.submit(1, &proof_for(&record1, None)).await;
    let (_, record1) = devnet.batch(1).await;
    let (_, record2) = devnet.batch(2).await;
    devnet.stop().await;

    let devnet = Devnet::start(config(url.clone())).await;
    assert_eq!(devnet.batch(1).await.1, record1);
    assert_eq!(devnet.batch(2).await.1, record2);
    assert_eq!(record1["status"], "proven");
    // The handed-out-but-unproven queue survives too: batch 2 is next.
    assert_eq!(devnet.next_batch().await.unwrap().l1_batch_number, L1BatchNumber(2));
    devnet.seal(1).await;
    let third = devnet.core.batch(L1BatchNumber(3)).await.unwrap().unwrap();
    assert_eq!(third.status, BatchStatus::Sealed);
    assert_eq!(third.public_data.previous_state_root.to_string(), record2["public_data"]["new_state_root"].as_str().unwrap());
    devnet.stop().await;

    let err = CoreDevnet::open(CoreDevnetConfig { seed: 99, ..config(url) }).await.err().expect("another seed is refused");
    assert!(err.to_string().contains("the database was created with genesis"), "{err}");
}

#[tokio::test]
async fn survives_a_restart_on_sqlite() {
    let (_dir, url) = sqlite();
    survives_a_restart(url).await;
}

#[tokio::test]
async fn survives_a_restart_on_postgres() {
    survives_a_restart(postgres().await).await;
}
