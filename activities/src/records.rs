//! Job records in SQL (SQLite by default, Postgres by URL, one schema through sqlx's `Any`
//! driver): zkSync's prover tables, trimmed to our rounds. Temporal is the source of truth for
//! progress; these tables are the durable record SREs and dashboards query.
//!
//! - `protocol_versions`: what each version's keys commit to.
//! - `witness_inputs`: one row per batch: its status through the pipeline and its blob.
//! - `prover_jobs`: one row per proof of rounds 0 to 4: round, circuit id, sequence (level and
//!   index for nodes), status, attempts, timings, the worker, the blob, the last error.
//! - `compression_jobs`: one row per batch's final proof, and its submission.

use chrono::Utc;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

use crate::blob_store::{BlobKey, ProofSlot};

/// A records failure (always worth a retry: the records are not what a job is about).
#[derive(Debug, thiserror::Error)]
#[error("job records: {0}")]
pub struct RecordsError(#[from] sqlx::Error);

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS protocol_versions (
        id TEXT PRIMARY KEY,
        scheduler_vk_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS witness_inputs (
        l1_batch_number BIGINT PRIMARY KEY,
        protocol_version TEXT NOT NULL,
        status TEXT NOT NULL,
        blob_key TEXT NOT NULL,
        error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS prover_jobs (
        l1_batch_number BIGINT NOT NULL,
        aggregation_round BIGINT NOT NULL,
        circuit_id BIGINT NOT NULL,
        depth BIGINT NOT NULL,
        sequence BIGINT NOT NULL,
        protocol_version TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        worker TEXT,
        blob_key TEXT,
        error TEXT,
        started_at BIGINT,
        finished_at BIGINT,
        time_taken_ms BIGINT,
        PRIMARY KEY (l1_batch_number, aggregation_round, circuit_id, depth, sequence))",
    "CREATE INDEX IF NOT EXISTS prover_jobs_by_status ON prover_jobs (status, aggregation_round)",
    "CREATE TABLE IF NOT EXISTS compression_jobs (
        l1_batch_number BIGINT PRIMARY KEY,
        protocol_version TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        worker TEXT,
        blob_key TEXT,
        proof_bytes BIGINT,
        error TEXT,
        started_at BIGINT,
        finished_at BIGINT,
        submitted_at BIGINT)",
];

/// The job records.
#[derive(Clone, Debug)]
pub struct JobRecords {
    pool: AnyPool,
}

/// A proof job's identity in `prover_jobs`.
#[derive(Clone, Copy, Debug)]
pub struct JobKey {
    pub batch: L1BatchNumber,
    pub slot: ProofSlot,
}

impl JobKey {
    /// `(round, circuit id, depth, sequence)`.
    pub fn columns(&self) -> (i64, i64, i64, i64) {
        match self.slot {
            ProofSlot::Basic { circuit_id, sequence } => (0, circuit_id.id().into(), 0, sequence as i64),
            ProofSlot::Leaf { circuit_id, index } => (1, circuit_id.id().into(), 0, index as i64),
            ProofSlot::Node { circuit_id, level, index } => (2, circuit_id.id().into(), level as i64, index as i64),
            ProofSlot::RecursionTip => (3, 0, 0, 0),
            ProofSlot::Scheduler => (4, 0, 0, 0),
            ProofSlot::Final => (5, 0, 0, 0),
        }
    }
}

/// Where a batch stands, as the records tell it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchStatus {
    pub l1_batch_number: u32,
    pub protocol_version: String,
    pub witness_input: String,
    pub error: Option<String>,
    /// `(round, status, count)`.
    pub jobs: Vec<(i64, String, i64)>,
    pub compression: Option<String>,
    pub submitted: bool,
}

fn now() -> i64 {
    Utc::now().timestamp_millis()
}

impl JobRecords {
    /// Connects (`sqlite://PATH`, created if missing, or `postgres://...`) and creates the tables.
    pub async fn open(url: &str) -> Result<Self, RecordsError> {
        sqlx::any::install_default_drivers();
        let url = match url.strip_prefix("sqlite://") {
            Some(rest) => {
                let path = rest.split('?').next().unwrap_or(rest);
                if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::create_dir_all(dir);
                }
                if rest.contains("mode=") { url.to_owned() } else { format!("{url}{}mode=rwc", if rest.contains('?') { '&' } else { '?' }) }
            }
            None => url.to_owned(),
        };
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new().max_connections(if sqlite { 1 } else { 8 }).connect(&url).await?;
        // Every process of a fleet creates the tables on start; Postgres races concurrent
        // `CREATE ... IF NOT EXISTS`, so they take turns under an advisory lock.
        let mut tx = pool.begin().await?;
        if !sqlite {
            sqlx::query("SELECT pg_advisory_xact_lock(7723)").execute(&mut *tx).await?;
        }
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { pool })
    }

    /// Records a protocol version's scheduler key hash (first write wins).
    pub async fn protocol_version(&self, pv: ProtocolSemanticVersion, scheduler_vk_hash: &str) -> Result<(), RecordsError> {
        sqlx::query("INSERT INTO protocol_versions (id, scheduler_vk_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(pv.to_string())
            .bind(scheduler_vk_hash)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets a batch's witness input status (`received`, `witness_generation`, `proving`, `proven`,
    /// `failed`), creating the row on first sight.
    pub async fn batch_status(&self, batch: L1BatchNumber, pv: ProtocolSemanticVersion, status: &str, blob: &BlobKey, error: Option<&str>) -> Result<(), RecordsError> {
        sqlx::query(
            "INSERT INTO witness_inputs (l1_batch_number, protocol_version, status, blob_key, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (l1_batch_number) DO UPDATE SET status = excluded.status, error = excluded.error, updated_at = excluded.updated_at",
        )
        .bind(i64::from(batch.0))
        .bind(pv.to_string())
        .bind(status)
        .bind(&blob.0)
        .bind(error)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A proof job started on `worker` (counting the attempt).
    pub async fn job_started(&self, job: JobKey, pv: ProtocolSemanticVersion, worker: &str) -> Result<(), RecordsError> {
        let (round, circuit, depth, sequence) = job.columns();
        let table = if job.slot == ProofSlot::Final { "compression_jobs" } else { "prover_jobs" };
        let sql = if table == "compression_jobs" {
            "INSERT INTO compression_jobs (l1_batch_number, protocol_version, status, attempts, worker, started_at)
             VALUES ($1, $2, 'in_progress', 1, $3, $4)
             ON CONFLICT (l1_batch_number) DO UPDATE SET status = 'in_progress', attempts = compression_jobs.attempts + 1, worker = excluded.worker, started_at = excluded.started_at, error = NULL"
                .to_string()
        } else {
            "INSERT INTO prover_jobs (l1_batch_number, aggregation_round, circuit_id, depth, sequence, protocol_version, status, attempts, worker, started_at)
             VALUES ($1, $5, $6, $7, $8, $2, 'in_progress', 1, $3, $4)
             ON CONFLICT (l1_batch_number, aggregation_round, circuit_id, depth, sequence) DO UPDATE SET status = 'in_progress', attempts = prover_jobs.attempts + 1, worker = excluded.worker, started_at = excluded.started_at, error = NULL"
                .to_string()
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(job.batch.0)).bind(pv.to_string()).bind(worker).bind(now());
        if table == "prover_jobs" {
            query = query.bind(round).bind(circuit).bind(depth).bind(sequence);
        }
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// A proof job finished: `Ok(blob)` or `Err(reason)`.
    pub async fn job_finished(&self, job: JobKey, outcome: Result<(&BlobKey, usize), &str>) -> Result<(), RecordsError> {
        let (round, circuit, depth, sequence) = job.columns();
        let (status, blob, bytes, error) = match outcome {
            Ok((blob, bytes)) => ("successful", Some(blob.0.clone()), Some(bytes as i64), None),
            Err(reason) => ("failed", None, None, Some(reason.to_owned())),
        };
        let finished = now();
        if job.slot == ProofSlot::Final {
            sqlx::query("UPDATE compression_jobs SET status = $1, blob_key = $2, proof_bytes = $3, error = $4, finished_at = $5 WHERE l1_batch_number = $6")
                .bind(status)
                .bind(blob)
                .bind(bytes)
                .bind(error)
                .bind(finished)
                .bind(i64::from(job.batch.0))
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query(
                "UPDATE prover_jobs SET status = $1, blob_key = $2, error = $3, finished_at = $4, time_taken_ms = $4 - started_at
                 WHERE l1_batch_number = $5 AND aggregation_round = $6 AND circuit_id = $7 AND depth = $8 AND sequence = $9",
            )
            .bind(status)
            .bind(blob)
            .bind(error)
            .bind(finished)
            .bind(i64::from(job.batch.0))
            .bind(round)
            .bind(circuit)
            .bind(depth)
            .bind(sequence)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The final proof was accepted by the core.
    pub async fn submitted(&self, batch: L1BatchNumber) -> Result<(), RecordsError> {
        sqlx::query("UPDATE compression_jobs SET submitted_at = $1 WHERE l1_batch_number = $2").bind(now()).bind(i64::from(batch.0)).execute(&self.pool).await?;
        Ok(())
    }

    /// Where one batch stands, or every batch (newest first) when `batch` is `None`.
    pub async fn status(&self, batch: Option<L1BatchNumber>) -> Result<Vec<BatchStatus>, RecordsError> {
        let rows = match batch {
            Some(b) => sqlx::query("SELECT l1_batch_number, protocol_version, status, error FROM witness_inputs WHERE l1_batch_number = $1").bind(i64::from(b.0)).fetch_all(&self.pool).await?,
            None => sqlx::query("SELECT l1_batch_number, protocol_version, status, error FROM witness_inputs ORDER BY l1_batch_number DESC").fetch_all(&self.pool).await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let n: i64 = row.try_get("l1_batch_number")?;
            let jobs = sqlx::query("SELECT aggregation_round, status, COUNT(*) AS n FROM prover_jobs WHERE l1_batch_number = $1 GROUP BY aggregation_round, status ORDER BY aggregation_round, status")
                .bind(n)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("aggregation_round")?, r.try_get("status")?, r.try_get("n")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let compression = sqlx::query("SELECT status, submitted_at FROM compression_jobs WHERE l1_batch_number = $1").bind(n).fetch_optional(&self.pool).await?;
            let (compression, submitted) = match compression {
                Some(r) => (Some(r.try_get::<String, _>("status")?), r.try_get::<Option<i64>, _>("submitted_at")?.is_some()),
                None => (None, false),
            };
            out.push(BatchStatus {
                l1_batch_number: u32::try_from(n).unwrap_or(u32::MAX),
                protocol_version: row.try_get("protocol_version")?,
                witness_input: row.try_get("status")?,
                error: row.try_get("error")?,
                jobs,
                compression,
                submitted,
            });
        }
        Ok(out)
    }
}

/// How a batch's proving went, round by round.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BatchTimings {
    /// `(round, proofs, summed proving seconds, wall seconds from first start to last finish)`.
    pub rounds: Vec<(i64, i64, f64, f64)>,
    /// The final proof's size in bytes, once compressed.
    pub final_proof_bytes: Option<i64>,
    /// Wall seconds from the batch's arrival to its submission.
    pub total_seconds: Option<f64>,
}

impl JobRecords {
    /// Per-round figures of a batch, for summaries.
    pub async fn timings(&self, batch: L1BatchNumber) -> Result<BatchTimings, RecordsError> {
        let n = i64::from(batch.0);
        let rows = sqlx::query(
            "SELECT aggregation_round, COUNT(*) AS proofs, SUM(time_taken_ms) AS busy, MIN(started_at) AS first, MAX(finished_at) AS last
             FROM prover_jobs WHERE l1_batch_number = $1 AND status = 'successful' GROUP BY aggregation_round ORDER BY aggregation_round",
        )
        .bind(n)
        .fetch_all(&self.pool)
        .await?;
        let mut rounds = Vec::new();
        for r in &rows {
            let (first, last): (Option<i64>, Option<i64>) = (r.try_get("first")?, r.try_get("last")?);
            let busy: Option<i64> = r.try_get("busy")?;
            rounds.push((r.try_get("aggregation_round")?, r.try_get("proofs")?, busy.unwrap_or(0) as f64 / 1e3, (last.unwrap_or(0) - first.unwrap_or(0)) as f64 / 1e3));
        }
        let compression = sqlx::query("SELECT c.started_at AS started, c.finished_at AS finished, c.proof_bytes AS bytes, c.submitted_at AS submitted, w.created_at AS created FROM compression_jobs c JOIN witness_inputs w ON w.l1_batch_number = c.l1_batch_number WHERE c.l1_batch_number = $1")
            .bind(n)
            .fetch_optional(&self.pool)
            .await?;
        let (final_proof_bytes, total_seconds) = match compression {
            Some(r) => {
                let (started, finished): (Option<i64>, Option<i64>) = (r.try_get("started")?, r.try_get("finished")?);
                rounds.push((5, 1, (finished.unwrap_or(0) - started.unwrap_or(0)) as f64 / 1e3, (finished.unwrap_or(0) - started.unwrap_or(0)) as f64 / 1e3));
                let (submitted, created): (Option<i64>, i64) = (r.try_get("submitted")?, r.try_get("created")?);
                (r.try_get("bytes")?, submitted.map(|s| (s - created) as f64 / 1e3))
            }
            None => (None, None),
        };
        Ok(BatchTimings { rounds, final_proof_bytes, total_seconds })
    }
}
