//! The core's prover interface, as a client.

use std::time::Duration;

use via_schemas::prover_interface::{L1BatchNumber, ProofGenerationData, ProofGenerationDataRequest, ProofGenerationDataResponse, SubmitProofRequest, SubmitProofResponse};

/// A failed call to the core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the core at {url} is unreachable: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the core answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the core's answer is not the prover interface: {0}")]
    Protocol(String),
}

impl CoreError {
    /// An unreachable core or a server error may pass; a refusal (4xx) will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Protocol(_) => true,
            Self::Refused { status, .. } => *status >= 500,
        }
    }
}

/// What a submission came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// The core took this submission.
    Accepted,
    /// The core already had a proof of the batch (a retried submission that landed before).
    AlreadyProven,
}

/// A client of one core.
#[derive(Clone, Debug)]
pub struct CoreClient {
    url: String,
    http: reqwest::Client,
}

impl CoreClient {
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("a plain HTTP client builds");
        Self { url: url.into().trim_end_matches('/').to_owned(), http }
    }

    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> Result<(u16, Vec<u8>), CoreError> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .map_err(|source| CoreError::Unreachable { url: self.url.clone(), source })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|source| CoreError::Unreachable { url: self.url.clone(), source })?;
        Ok((status, bytes.to_vec()))
    }

    /// The next batch awaiting a proof, if any.
    pub async fn proof_generation_data(&self) -> Result<Option<ProofGenerationData>, CoreError> {
        let (status, body) = self.post("/proof_generation_data", &ProofGenerationDataRequest {}).await?;
        match serde_json::from_slice::<ProofGenerationDataResponse>(&body) {
            Ok(ProofGenerationDataResponse::Success(data)) => Ok(data.map(|d| *d)),
            Ok(ProofGenerationDataResponse::Error(message)) => Err(CoreError::Refused { status, message }),
            Err(e) => Err(CoreError::Protocol(format!("status {status}: {e}"))),
        }
    }

    /// Submits a batch's proof (or its sampling skip). A 409 means an earlier submission of the
    /// same batch landed: the batch is proven, and nothing is submitted twice.
    pub async fn submit_proof(&self, batch: L1BatchNumber, request: &SubmitProofRequest) -> Result<Submitted, CoreError> {
        let (status, body) = self.post(&format!("/submit_proof/{batch}"), request).await?;
        match (status, serde_json::from_slice::<SubmitProofResponse>(&body)) {
            (200, Ok(SubmitProofResponse::Success)) => Ok(Submitted::Accepted),
            (409, _) => Ok(Submitted::AlreadyProven),
            (_, Ok(SubmitProofResponse::Error(message))) => Err(CoreError::Refused { status, message }),
            (_, Ok(SubmitProofResponse::Success)) => Err(CoreError::Protocol(format!("success with status {status}"))),
            (_, Err(e)) => Err(CoreError::Protocol(format!("status {status}: {e}"))),
        }
    }
}
