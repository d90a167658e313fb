//! The core's durable state in SQL (through sqlx's `Any` driver, so SQLite and Postgres share
//! one schema): accounts, sealed batches with their proving status, and the genesis parameters a
//! database was created with.

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use via_schemas::l2::{Account, AccountId, BatchPublicData};
use via_schemas::primitives::{Hash, PublicKey};
use via_schemas::prover_interface::{L1BatchNumber, L1BatchProofForL1, ProofGenerationData};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
}

fn corrupt(what: impl Into<String>, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.into(), reason: reason.to_string() }
}

/// Where a batch stands with the prover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Sealed, not yet handed to a prover.
    Sealed,
    /// Handed to a prover, no proof yet.
    Picked,
    /// A proof was accepted.
    Proven,
    /// The prover sampled the batch out, and the core allowed it.
    Skipped,
}

impl BatchStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sealed => "sealed",
            Self::Picked => "picked",
            Self::Proven => "proven",
            Self::Skipped => "skipped",
        }
    }
}

impl FromStr for BatchStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Sealed, Self::Picked, Self::Proven, Self::Skipped].into_iter().find(|v| v.as_str() == s).ok_or_else(|| format!("unknown batch status {s:?}"))
    }
}

/// A sealed batch as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub number: L1BatchNumber,
    pub status: BatchStatus,
    pub public_data: BatchPublicData,
    /// The public input a valid proof of this batch must carry.
    pub commitment: Hash,
    pub sealed_at: DateTime<Utc>,
    pub picked_at: Option<DateTime<Utc>>,
    pub proven_at: Option<DateTime<Utc>>,
}

/// The genesis parameters; a database is only ever reopened with the same ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub seed: u64,
    pub chain_id: u32,
    pub fee_account: u32,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS genesis (id BIGINT PRIMARY KEY, params TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS accounts (
        id BIGINT PRIMARY KEY,
        public_key TEXT NOT NULL,
        balance BIGINT NOT NULL,
        nonce BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS batches (
        number BIGINT PRIMARY KEY,
        status TEXT NOT NULL,
        sealed_at BIGINT NOT NULL,
        picked_at BIGINT,
        proven_at BIGINT,
        public_data TEXT NOT NULL,
        commitment TEXT NOT NULL,
        proof_generation_data TEXT NOT NULL,
        proof TEXT)",
    "CREATE INDEX IF NOT EXISTS batches_by_status ON batches (status, number)",
];

/// Opens `sqlite://PATH` (creating the file and its directory) or `postgres://...`.
pub async fn connect(url: &str) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let url = match url.strip_prefix("sqlite://") {
        Some(rest) => {
            let path = rest.split('?').next().unwrap_or(rest);
            if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
            }
            if rest.contains("mode=") { url.to_owned() } else { format!("{url}{}mode=rwc", if rest.contains('?') { '&' } else { '?' }) }
        }
        None => url.to_owned(),
    };
    // SQLite allows one writer; a single connection keeps the core's writes serialised.
    let max = if url.starts_with("sqlite:") { 1 } else { 4 };
    Ok(AnyPoolOptions::new().max_connections(max).connect(&url).await?)
}

/// The core's tables.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(what: &str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(what, format!("timestamp {ms} out of range")))
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("our wire types always serialize")
}

fn parse_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

impl Store {
    /// Connects and creates the tables if they are missing.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = connect(url).await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// The genesis parameters, if the database has been initialised.
    pub async fn genesis(&self) -> Result<Option<Genesis>, StoreError> {
        let row = sqlx::query("SELECT params FROM genesis WHERE id = 0").fetch_optional(&self.pool).await?;
        row.map(|r| parse_json("genesis", &r.try_get::<String, _>("params")?)).transpose()
    }

    /// Initialises a new database with its genesis parameters and accounts, atomically.
    pub async fn init_genesis(&self, genesis: &Genesis, accounts: &[(AccountId, Account)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO genesis (id, params) VALUES (0, $1)").bind(json(genesis)).execute(&mut *tx).await?;
        for (id, account) in accounts {
            upsert_account(&mut tx, *id, account).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every account.
    pub async fn accounts(&self) -> Result<Vec<(AccountId, Account)>, StoreError> {
        let rows = sqlx::query("SELECT id, public_key, balance, nonce FROM accounts ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = || format!("account {id}");
                let public_key: PublicKey = r.try_get::<String, _>("public_key")?.parse().map_err(|e| corrupt(what(), e))?;
                let balance = u64::try_from(r.try_get::<i64, _>("balance")?).map_err(|e| corrupt(what(), e))?;
                let nonce = u32::try_from(r.try_get::<i64, _>("nonce")?).map_err(|e| corrupt(what(), e))?;
                let id = u32::try_from(id).map_err(|e| corrupt(what(), e))?;
                Ok((AccountId(id), Account { public_key, balance, nonce }))
            })
            .collect()
    }

    /// Records a sealed batch and the accounts it changed, atomically.
    pub async fn insert_batch(&self, data: &ProofGenerationData, public_data: &BatchPublicData, commitment: Hash, changed: &[(AccountId, Account)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, account) in changed {
            upsert_account(&mut tx, *id, account).await?;
        }
        sqlx::query(
            "INSERT INTO batches (number, status, sealed_at, public_data, commitment, proof_generation_data)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i64::from(data.l1_batch_number.0))
        .bind(BatchStatus::Sealed.as_str())
        .bind(millis(data.batch_sealed_at))
        .bind(json(public_data))
        .bind(commitment.to_string())
        .bind(json(data))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The highest sealed batch number, if any.
    pub async fn last_batch(&self) -> Result<Option<L1BatchNumber>, StoreError> {
        let row = sqlx::query("SELECT MAX(number) AS n FROM batches").fetch_one(&self.pool).await?;
        let n: Option<i64> = row.try_get("n")?;
        n.map(|n| u32::try_from(n).map(L1BatchNumber).map_err(|e| corrupt("batch number", e))).transpose()
    }

    /// How many batches await a proof.
    pub async fn unproven_batches(&self) -> Result<u32, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM batches WHERE status IN ('sealed', 'picked')").fetch_one(&self.pool).await?;
        let n: i64 = row.try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Picks the oldest batch that awaits a prover (never handed out, or handed out before
    /// `stale_before` with no proof since) and marks it picked at `now`.
    pub async fn pick_batch(&self, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<Option<ProofGenerationData>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT number, proof_generation_data FROM batches
             WHERE status = 'sealed' OR (status = 'picked' AND picked_at < $1)
             ORDER BY number LIMIT 1",
        )
        .bind(millis(stale_before))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let number: i64 = row.try_get("number")?;
        let data = parse_json(&format!("batch {number}"), &row.try_get::<String, _>("proof_generation_data")?)?;
        sqlx::query("UPDATE batches SET status = 'picked', picked_at = $1 WHERE number = $2").bind(millis(now)).bind(number).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(data))
    }

    /// A batch's record.
    pub async fn batch(&self, number: L1BatchNumber) -> Result<Option<BatchRecord>, StoreError> {
        let row = sqlx::query("SELECT number, status, sealed_at, picked_at, proven_at, public_data, commitment FROM batches WHERE number = $1")
            .bind(i64::from(number.0))
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let what = format!("batch {number}");
        let optional_time = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> { r.try_get::<Option<i64>, _>(col)?.map(|ms| from_millis(&what, ms)).transpose() };
        Ok(Some(BatchRecord {
            number,
            status: r.try_get::<String, _>("status")?.parse().map_err(|e: String| corrupt(&what, e))?,
            public_data: parse_json(&what, &r.try_get::<String, _>("public_data")?)?,
            commitment: r.try_get::<String, _>("commitment")?.parse().map_err(|e| corrupt(&what, e))?,
            sealed_at: from_millis(&what, r.try_get("sealed_at")?)?,
            picked_at: optional_time("picked_at")?,
            proven_at: optional_time("proven_at")?,
        }))
    }

    /// Records a batch's outcome: `Proven` with its proof, or `Skipped`. Only a batch that is not
    /// yet proven or skipped changes; returns whether this call changed it.
    pub async fn finish_batch(&self, number: L1BatchNumber, status: BatchStatus, proof: Option<&L1BatchProofForL1>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE batches SET status = $1, proof = $2, proven_at = $3
             WHERE number = $4 AND status IN ('sealed', 'picked')",
        )
        .bind(status.as_str())
        .bind(proof.map(json))
        .bind(millis(now))
        .bind(i64::from(number.0))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The proof recorded for a batch.
    pub async fn proof(&self, number: L1BatchNumber) -> Result<Option<L1BatchProofForL1>, StoreError> {
        let row = sqlx::query("SELECT proof FROM batches WHERE number = $1").bind(i64::from(number.0)).fetch_optional(&self.pool).await?;
        match row.map(|r| r.try_get::<Option<String>, _>("proof")).transpose()?.flatten() {
            Some(text) => parse_json(&format!("proof of batch {number}"), &text).map(Some),
            None => Ok(None),
        }
    }
}

async fn upsert_account(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: AccountId, account: &Account) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO accounts (id, public_key, balance, nonce) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, balance = excluded.balance, nonce = excluded.nonce",
    )
    .bind(i64::from(id.0))
    .bind(account.public_key.to_string())
    .bind(i64::try_from(account.balance).expect("balances are at most 2^60"))
    .bind(i64::from(account.nonce))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
