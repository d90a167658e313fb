//! The whole pipeline as operators run it: `prover core-devnet`, `prover gateway` and
//! `prover worker` processes against the real Temporal dev server (and real Postgres and S3
//! where a test says so), all started by `infra/test.sh`. Each test owns its files, database,
//! ports and a Temporal deployment prefix, so runs never take each other's work.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use via_schemas::config::{AggregationConfig, BasicCircuitsConfig};
use via_schemas::prover_interface::ProtocolSemanticVersion;

const PROVER: &str = env!("CARGO_BIN_EXE_prover");
const VERSION: ProtocolSemanticVersion = ProtocolSemanticVersion { minor: 1, patch: 0 };

/// One pipeline at a time: two cores cannot prove two pipelines in step with their timeouts.
static SERIAL: Mutex<()> = Mutex::new(());

/// The keys of the default (small) shape, made once and kept between runs.
static KEYS: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pipeline-keys");
    let version_dir = dir.join(VERSION.to_string());
    if via_circuits::keys::read_manifest(&version_dir, VERSION, &BasicCircuitsConfig::default(), &AggregationConfig::default()).is_err() {
        let status = Command::new(PROVER).args(["keys", "generate", "--out"]).arg(&version_dir).env("RUST_LOG", "warn").status().expect("prover runs");
        assert!(status.success(), "generating keys failed");
    }
    dir
});

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with infra/test.sh, which starts the local stack"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where blobs and records go.
enum Backends {
    LocalAndSqlite,
    S3AndPostgres,
}

/// A pipeline's processes and files.
struct Pipeline {
    dir: tempfile::TempDir,
    core_port: u16,
    deployment: String,
    /// The S3 pipeline's prefix in the bucket (a directory of s3s-fs), removed with the pipeline:
    /// it holds a copy of the keys, 1.7 GB a run.
    s3_prefix: Option<PathBuf>,
    children: Vec<(String, Child)>,
}

impl Pipeline {
    fn new(name: &str, backends: Backends) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let core_port = free_port();
        let deployment = format!("test-{name}-{}-{}/", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());
        let keys = KEYS.display();
        let root = dir.path().display();
        let s3_prefix = matches!(backends, Backends::S3AndPostgres)
            .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack/s3").join(env("VIA_TEST_S3_BUCKET")).join(deployment.trim_end_matches('/')));
        let (storage, records) = match backends {
            Backends::LocalAndSqlite => (format!("url = \"file://{root}/blobs\""), format!("database_url = \"sqlite://{root}/prover.db\"")),
            Backends::S3AndPostgres => {
                let storage = format!(
                    "url = \"s3://{}/{}\"\ns3_endpoint = \"{}\"\ns3_access_key_id = \"{}\"\ns3_secret_access_key = \"{}\"\ns3_allow_http = true",
                    env("VIA_TEST_S3_BUCKET"),
                    deployment.trim_end_matches('/'),
                    env("VIA_TEST_S3_ENDPOINT"),
                    env("VIA_TEST_S3_ACCESS_KEY"),
                    env("VIA_TEST_S3_SECRET_KEY")
                );
                (storage, format!("database_url = \"{}\"", create_postgres_database(name)))
            }
        };
        let config = format!(
            r#"[core_devnet]
listen_addr = "127.0.0.1:{core_port}"
database_url = "sqlite://{root}/core.db"
txs_per_batch = 3
user_accounts = 3
batch_interval_ms = 200
keys_dir = "{keys}"

[prover]
keys_dir = "{keys}"

[storage]
{storage}

[records]
{records}

[temporal]
address = "{temporal}"
deployment = "{deployment}"

[gateway]
core_url = "http://127.0.0.1:{core_port}"
poll_interval_ms = 300
max_backoff_ms = 2000
heartbeat_timeout_s = 6

[worker]
metrics_addr = "127.0.0.1:0"
"#,
            temporal = env("VIA_TEST_TEMPORAL_ADDRESS"),
        );
        std::fs::write(dir.path().join("prover.toml"), config).unwrap();
        Self { dir, core_port, deployment, s3_prefix, children: Vec::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `prover ARGS` in the pipeline's directory, logging to `{name}.log`.
    fn start(&mut self, name: &str, args: &[&str]) -> u32 {
        self.start_with(name, args, &[])
    }

    /// [`Self::start`] with configuration overrides from the environment.
    fn start_with(&mut self, name: &str, args: &[&str], envs: &[(&str, &str)]) -> u32 {
        let log = std::fs::File::create(self.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(PROVER)
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(self.path())
            .env("RUST_LOG", "info,sqlx=warn,temporalio_sdk_core=warn")
            .env_remove("RUST_BACKTRACE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("prover starts");
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        pid
    }

    /// Kills a process as a crash would (SIGKILL: no shutdown, no goodbyes).
    fn kill(&mut self, name: &str) {
        let index = self.children.iter().position(|(n, _)| n == name).expect("started");
        let (_, mut child) = self.children.remove(index);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn prover(&self, args: &[&str]) -> String {
        let out = Command::new(PROVER).args(args).current_dir(self.path()).env("RUST_LOG", "warn").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// The core's record of a batch.
    fn batch(&self, n: u32) -> Option<serde_json::Value> {
        let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{}/batches/{n}", self.core_port)]).output().ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until the core has accepted a proof of each batch, or fails with every log (at once
    /// if a process died).
    fn wait_proven(&mut self, batches: &[u32], timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if batches.iter().all(|n| self.batch(*n).is_some_and(|b| b["status"] == "proven")) {
                return;
            }
            if self.children.iter_mut().any(|(_, c)| c.try_wait().ok().flatten().is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let logs: String = self.children.iter().map(|(n, _)| format!("\n==== {n}\n{}", tail(&self.log(n), 40))).collect();
        panic!("batches {batches:?} not proven within {timeout:?}\nstatus:\n{}{logs}", self.prover(&["status"]));
    }

    /// Rows of the job records, through the status command.
    fn status(&self) -> String {
        self.prover(&["status"])
    }

    /// A query over the job records (SQLite pipelines).
    fn query_records(&self, query: &str) -> String {
        let db = self.path().join("prover.db");
        if !db.exists() {
            return String::new();
        }
        let url = format!("sqlite://{}", db.display());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let Ok(rows) = sqlx::query(sqlx::AssertSqlSafe(query.to_owned())).fetch_all(&pool).await else {
                // The tables appear when the first process starts.
                return String::new();
            };
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.try_get::<i64, _>(i).map(|v| v.to_string()).or_else(|_| r.try_get::<String, _>(i)).unwrap_or_default()).collect::<Vec<_>>().join("|"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(prefix) = &self.s3_prefix {
            let _ = std::fs::remove_dir_all(prefix);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn create_postgres_database(name: &str) -> String {
    let admin = env("VIA_TEST_POSTGRES_URL");
    let database = format!("pipeline_{}_{}", name.replace('-', "_"), std::process::id());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("test Postgres reachable");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}"))).execute(&mut conn).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&mut conn).await.unwrap();
    });
    format!("{}/{database}", admin.rsplit_once('/').unwrap().0)
}

fn temporal(args: &[&str]) -> String {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack/venv/bin/temporal");
    let address = env("VIA_TEST_TEMPORAL_ADDRESS");
    let out = Command::new(cli).args(args).args(["--address", address.trim_start_matches("http://")]).output().expect("the Temporal CLI runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

const ALL_POOLS: &str = "witness-generator,compressor,prover-group-basic,prover-group-aggregation";

#[test]
fn two_batches_end_to_end_on_local_files_and_sqlite() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("local", Backends::LocalAndSqlite);
    p.start("core", &["core-devnet"]);
    p.start("gateway", &["gateway"]);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    p.start_with("worker", &["worker", "--pools", ALL_POOLS], &[("PROVER_WORKER__METRICS_ADDR", &metrics_addr)]);
    // A worker of another protocol version, polling its own queues beside ours.
    let other = p.start("other-version", &["worker", "--protocol-version", "0.2.0"]);
    p.wait_proven(&[1, 2], Duration::from_secs(900));

    // The worker counted and timed every job it ran, by stage.
    let out = Command::new("curl").args(["-sf", &format!("http://{metrics_addr}/metrics")]).output().unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    let basic_jobs = p.query_records("SELECT COUNT(*) FROM prover_jobs WHERE aggregation_round = 0 AND status = 'successful'");
    assert!(metrics.contains(&format!("via_prover_jobs_total{{outcome=\"ok\",stage=\"basic\"}} {}", basic_jobs.trim())), "{basic_jobs} basic jobs, metrics:\n{metrics}");
    assert!(metrics.contains("via_prover_jobs_total{outcome=\"ok\",stage=\"compression\"} 2"), "{metrics}");
    assert!(metrics.contains("via_prover_job_seconds_count{stage=\"scheduler\"} 2"), "{metrics}");
    assert!(metrics.contains("via_prover_queue_lag_seconds_count{stage=\"leaf\"}"), "{metrics}");
    let proving_seconds = metrics.lines().find_map(|l| l.strip_prefix("via_prover_basic_proving_seconds_total ")).and_then(|v| v.parse::<f64>().ok());
    assert!(proving_seconds.is_some_and(|s| s > 0.0), "the basic prover's busy time is counted: {metrics}");
    // Before its first job it had none; each job's witness vector is generated before its proof.
    for cause in ["no_jobs", "inputs"] {
        let idle = metrics.lines().find_map(|l| l.strip_prefix(&format!("via_prover_basic_idle_seconds_total{{cause=\"{cause}\"}} "))).and_then(|v| v.parse::<f64>().ok());
        assert!(idle.is_some_and(|s| s > 0.0), "the basic prover's idle time with {cause} is counted: {metrics}");
    }
    assert!(metrics.contains("via_prover_device_busy_seconds_total "), "{metrics}");
    // Its log lines carry the job's batch, round and circuit id.
    let log = p.log("worker");
    assert!(log.lines().any(|l| l.contains("batch=2") && l.contains("round=1 circuit_id=3") && l.contains("job finished")), "{}", tail(&log, 40));

    let status = p.status();
    assert!(status.contains("batch 1 (protocol 0.1.0): proven, submitted"), "{status}");
    assert!(status.contains("batch 2 (protocol 0.1.0): proven, submitted"), "{status}");
    assert!(p.log("other-version").contains("0.2.0/prover-group-basic"), "the other version polled its own queues");
    let jobs_of_other = p.query_records(&format!("SELECT COUNT(*) FROM prover_jobs WHERE worker LIKE '{other}@%'"));
    assert_eq!(jobs_of_other.trim(), "0", "a worker of another protocol version took none of this version's work");
    assert_eq!(p.query_records("SELECT COUNT(*) FROM compression_jobs WHERE submitted_at IS NOT NULL").trim(), "2");

    // Operators find batches by their search attributes.
    let listed = temporal(&["workflow", "list", "--query", &format!("BatchNumber = 2 AND ProtocolVersion = '0.1.0' AND ProvingStage = 'proven' AND WorkflowId = '{}batch-2'", p.deployment)]);
    assert!(listed.contains(&format!("{}batch-2", p.deployment)), "{listed}");
    // And the proofs verify on their own.
    let verdict = p.prover(&["verify", "--batch", "2", "--core", &format!("http://127.0.0.1:{}", p.core_port)]);
    assert!(verdict.contains("batch 2: valid proof"), "{verdict}");
}

#[test]
fn two_batches_end_to_end_on_postgres_and_s3() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("s3", Backends::S3AndPostgres);
    // The worker starts with no keys of its own, as a fresh node would: it fetches what
    // `prover keys publish` put in the object store.
    let published = p.prover(&["keys", "publish"]);
    assert!(published.contains("published the keys of protocol version 0.1.0"), "{published}");
    let worker_keys = p.path().join("worker-keys");
    p.start("core", &["core-devnet"]);
    p.start("gateway", &["gateway"]);
    p.start_with("worker", &["worker"], &[("PROVER_PROVER__KEYS_DIR", worker_keys.to_str().unwrap())]);
    p.wait_proven(&[1, 2], Duration::from_secs(900));
    let status = p.status();
    assert!(status.contains("batch 2 (protocol 0.1.0): proven, submitted"), "{status}");
    assert!(p.log("worker").contains("fetched keys from the object store"), "{}", p.log("worker"));
    assert!(worker_keys.join("0.1.0/manifest.json").exists(), "the fetched keys stay for the next start");
    // The blobs went to S3: the bucket is a directory of s3s-fs.
    let bucket = p.s3_prefix.as_ref().unwrap();
    assert!(bucket.join("0.1.0/batches/2/round_5/final_proof.bin").exists(), "final proof in S3 under {}", bucket.display());
}

/// Waits until `done` holds, checking every 100 ms.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "{what} did not happen within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ONE_BATCH: &[(&str, &str)] = &[("PROVER_CORE_DEVNET__MAX_UNPROVEN_BATCHES", "1")];

#[test]
fn a_malformed_witness_input_fails_its_first_stage_once_with_the_reason() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("malformed", Backends::LocalAndSqlite);
    // The core seals a batch; its stored witness input is then damaged before any prover sees it.
    p.start_with("core", &["core-devnet"], ONE_BATCH);
    let core_db = format!("sqlite://{}/core.db", p.path().display());
    wait_for("the first seal", Duration::from_secs(30), || p.batch(1).is_some());
    p.kill("core");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&core_db).await.unwrap();
        let wrong_root = format!("0x{}", "00000000000000ab".repeat(4));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE batches SET proof_generation_data = replace(proof_generation_data, json_extract(proof_generation_data, '$.witness_input_data.previous_state_root'), '{wrong_root}') WHERE number = 1"
        )))
        .execute(&pool)
        .await
        .unwrap();
    });
    p.start_with("core", &["core-devnet"], ONE_BATCH);
    p.start("gateway", &["gateway"]);
    p.start("worker", &["worker", "--pools", ALL_POOLS]);
    let workflow = format!("{}batch-1", p.deployment);
    wait_for("the batch workflow to fail", Duration::from_secs(120), || temporal(&["workflow", "describe", "-w", &workflow]).contains("FAILED"));
    let described = temporal(&["workflow", "describe", "-w", &workflow]);
    assert!(described.contains("does not match the previous state root"), "the reason is visible in the workflow: {described}");
    let history = temporal(&["workflow", "show", "-w", &workflow]);
    assert_eq!(history.matches("ActivityTaskStarted").count(), 1, "witness generation ran once, not again: {history}");
    let status = p.status();
    assert!(status.contains("batch 1 (protocol 0.1.0): failed") && status.contains("does not match the previous state root"), "{status}");
}

#[test]
fn a_worker_killed_mid_proof_is_replaced_and_the_proof_submitted_once() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("killed", Backends::LocalAndSqlite);
    p.start_with("core", &["core-devnet"], ONE_BATCH);
    p.start("gateway", &["gateway"]);
    let doomed = p.start("doomed-worker", &["worker", "--pools", ALL_POOLS]);
    let mut caught = String::new();
    wait_for("a proof in progress on the doomed worker", Duration::from_secs(300), || {
        caught = p.query_records(&format!("SELECT aggregation_round, circuit_id, depth, sequence FROM prover_jobs WHERE status = 'in_progress' AND worker LIKE '{doomed}@%'"));
        !caught.trim().is_empty()
    });
    p.kill("doomed-worker");
    let survivor = p.start("survivor", &["worker", "--pools", ALL_POOLS]);
    p.wait_proven(&[1], Duration::from_secs(600));

    let job = caught.lines().next().unwrap().replace('|', " AND ");
    let mut keys = caught.lines().next().unwrap().split('|');
    let (round, circuit, depth, sequence) = (keys.next().unwrap(), keys.next().unwrap(), keys.next().unwrap(), keys.next().unwrap());
    let finished = p.query_records(&format!(
        "SELECT attempts, status, worker FROM prover_jobs WHERE l1_batch_number = 1 AND aggregation_round = {round} AND circuit_id = {circuit} AND depth = {depth} AND sequence = {sequence}"
    ));
    assert!(finished.starts_with("2|successful|") && finished.contains(&format!("{survivor}@")), "job {job} was finished by the survivor on a second attempt: {finished}");
    assert_eq!(p.log("core").matches("batch finished").count(), 1, "the core took exactly one proof");
    assert_eq!(p.query_records("SELECT COUNT(*) FROM compression_jobs WHERE submitted_at IS NOT NULL").trim(), "1");
}

#[test]
fn the_gateway_backs_off_while_the_core_is_down_and_catches_up() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("core-down", Backends::LocalAndSqlite);
    p.start("gateway", &["gateway"]);
    p.start("worker", &["worker", "--pools", ALL_POOLS]);
    wait_for("the gateway to notice", Duration::from_secs(30), || p.log("gateway").matches("backing off").count() >= 3);
    p.start_with("core", &["core-devnet"], ONE_BATCH);
    p.wait_proven(&[1], Duration::from_secs(600));
    assert!(p.status().contains("batch 1 (protocol 0.1.0): proven, submitted"));
}

/// Waits until every job of `rounds` is successful (at least one), `ready` holds, and the
/// records have not changed for five seconds.
fn wait_settled(p: &Pipeline, what: &str, rounds: &str, ready: impl Fn() -> bool) {
    let mut stable_since = Instant::now();
    let mut last = String::new();
    wait_for(what, Duration::from_secs(300), || {
        let done = p.query_records(&format!("SELECT COUNT(*), SUM(CASE WHEN status = 'successful' THEN 1 ELSE 0 END) FROM prover_jobs WHERE aggregation_round IN ({rounds})"));
        if done != last {
            last = done.clone();
            stable_since = Instant::now();
        }
        let mut parts = done.trim().split('|');
        let (all, ok) = (parts.next().unwrap_or("0").to_owned(), parts.next().unwrap_or("").to_owned());
        all != "0" && all == ok && ready() && stable_since.elapsed() > Duration::from_secs(5)
    });
}

#[test]
fn a_corrupted_blob_is_detected_and_regenerated() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut p = Pipeline::new("corrupt", Backends::LocalAndSqlite);
    // Three prover groups, so each round can be held back while a blob it reads is damaged.
    let mut config = std::fs::OpenOptions::new().append(true).open(p.path().join("prover.toml")).unwrap();
    std::io::Write::write_all(
        &mut config,
        b"\n[[prover.prover_groups]]\nid = \"basic\"\ncircuits = [{ round = 0 }]\n\n[[prover.prover_groups]]\nid = \"aggregation\"\ncircuits = [{ round = 1 }, { round = 2 }]\n\n[[prover.prover_groups]]\nid = \"tip\"\ncircuits = [{ round = 3 }, { round = 4 }]\n",
    )
    .unwrap();
    p.start_with("core", &["core-devnet"], ONE_BATCH);
    p.start("gateway", &["gateway"]);
    // A basic proof read by a leaf: its producer runs again, then the leaf.
    p.start("basic-worker", &["worker", "--pools", "witness-generator,compressor,prover-group-basic"]);
    let leaf_input = p.path().join("blobs/0.1.0/batches/1/round_0/1/0/proof.bin");
    wait_settled(&p, "every basic proof", "0", || leaf_input.exists());
    std::fs::write(&leaf_input, b"a disk that lies").unwrap();
    p.start("aggregation-worker", &["worker", "--groups", "aggregation"]);

    // A circuit type's root read by the recursion tip (here a lone leaf): its job runs again.
    wait_settled(&p, "every leaf and node", "0, 1, 2", || true);
    let lone = p.query_records("SELECT circuit_id FROM prover_jobs WHERE l1_batch_number = 1 AND aggregation_round = 1 AND circuit_id <> 1 AND circuit_id NOT IN (SELECT circuit_id FROM prover_jobs WHERE l1_batch_number = 1 AND aggregation_round = 2) GROUP BY circuit_id HAVING COUNT(*) = 1 ORDER BY circuit_id LIMIT 1");
    let lone = lone.trim().to_owned();
    assert!(!lone.is_empty(), "some circuit type has a single leaf as its root");
    let root = p.path().join(format!("blobs/0.1.0/batches/1/round_1/{lone}/0/proof.bin"));
    std::fs::write(&root, b"bits flipped at rest").unwrap();
    p.start("tip-worker", &["worker", "--groups", "tip"]);
    p.wait_proven(&[1], Duration::from_secs(600));

    // Batch 1's jobs only: once it is proven the core seals batch 2, which the workers may start.
    let attempts = |round: u8, circuit: &str| p.query_records(&format!("SELECT attempts, status FROM prover_jobs WHERE l1_batch_number = 1 AND aggregation_round = {round} AND circuit_id = {circuit} AND sequence = 0")).trim().to_owned();
    assert_eq!(attempts(0, "1"), "2|successful", "the corrupted proof's producer ran again");
    assert_eq!(attempts(1, "1"), "2|successful", "its consumer failed once, then succeeded");
    assert_eq!(attempts(1, &lone), "2|successful", "the corrupted root's job ran again");
    let tip = p.query_records("SELECT attempts, status FROM prover_jobs WHERE l1_batch_number = 1 AND aggregation_round = 3").trim().to_owned();
    assert_eq!(tip, "2|successful", "the recursion tip failed once on the corrupt root, then succeeded");
}

#[test]
fn prover_dev_proves_batches_end_to_end_on_the_embedded_stack() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let p = Pipeline::new("dev", Backends::LocalAndSqlite);
    let out = Command::new(PROVER).args(["dev", "--batches", "1"]).current_dir(p.path()).env("RUST_LOG", "warn").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("temporal ui: http://127.0.0.1:8233"), "{text}");
    assert!(text.contains("batch 1: proven and verified by the core"), "{text}");
    assert!(text.contains("final proof") && text.contains("compression"), "{text}");
}
