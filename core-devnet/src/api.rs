//! The core's HTTP API: the prover interface plus a read-only view of batches for operators.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use via_schemas::prover_interface::{L1BatchNumber, ProofGenerationDataRequest, ProofGenerationDataResponse, SubmitProofRequest, SubmitProofResponse};

use crate::{CoreDevnet, CoreError, SubmitError};

/// The routes, over a shared core.
pub fn router(core: Arc<CoreDevnet>) -> Router {
    Router::new()
        .route("/proof_generation_data", post(proof_generation_data))
        .route("/submit_proof/{l1_batch_number}", post(submit_proof))
        .route("/batches/{l1_batch_number}", get(batch))
        .route("/batches/{l1_batch_number}/proof", get(proof))
        .route("/health", get(|| async { "ok" }))
        .with_state(core)
}

/// A JSON body whose rejection answers in the interface's own error shape, naming what was wrong.
struct WireJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for WireJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let message = match &rejection {
                    JsonRejection::JsonDataError(e) => format!("malformed request: {}", std::error::Error::source(e).map_or(e.body_text(), |s| s.to_string())),
                    other => format!("malformed request: {}", other.body_text()),
                };
                Err((StatusCode::BAD_REQUEST, Json(SubmitProofResponse::Error(message))).into_response())
            }
        }
    }
}

fn internal(e: CoreError) -> (StatusCode, String) {
    tracing::error!(error = %e, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn proof_generation_data(State(core): State<Arc<CoreDevnet>>, WireJson(_): WireJson<ProofGenerationDataRequest>) -> Response {
    match core.next_proof_generation_data().await {
        Ok(data) => Json(ProofGenerationDataResponse::Success(data.map(Box::new))).into_response(),
        Err(e) => {
            let (status, message) = internal(e);
            (status, Json(ProofGenerationDataResponse::Error(message))).into_response()
        }
    }
}

async fn submit_proof(State(core): State<Arc<CoreDevnet>>, Path(number): Path<u32>, WireJson(request): WireJson<SubmitProofRequest>) -> Response {
    let status = match core.submit_proof(L1BatchNumber(number), request).await {
        Ok(()) => return Json(SubmitProofResponse::Success).into_response(),
        Err(SubmitError::Core(e)) => return respond_error(internal(e)),
        Err(e @ SubmitError::UnknownBatch(_)) => (StatusCode::NOT_FOUND, e),
        Err(e @ SubmitError::AlreadyFinished { .. }) => (StatusCode::CONFLICT, e),
        Err(
            e @ (SubmitError::ProtocolVersionMismatch { .. }
            | SubmitError::CommitmentMismatch { .. }
            | SubmitError::EmptyProof(_)
            | SubmitError::SkipNotAllowed(_)
            | SubmitError::InvalidProof { .. }),
        ) => (StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    respond_error((status.0, status.1.to_string()))
}

fn respond_error((status, message): (StatusCode, String)) -> Response {
    (status, Json(SubmitProofResponse::Error(message))).into_response()
}

/// What `GET /batches/{n}` answers.
#[derive(Serialize)]
struct BatchView {
    #[serde(flatten)]
    record: crate::store::BatchRecord,
    has_proof: bool,
}

async fn batch(State(core): State<Arc<CoreDevnet>>, Path(number): Path<u32>) -> Response {
    let number = L1BatchNumber(number);
    let found = match core.batch(number).await {
        Ok(found) => found,
        Err(e) => return respond_error(internal(e)),
    };
    match found {
        Some(record) => {
            let has_proof = record.status == crate::store::BatchStatus::Proven;
            Json(BatchView { record, has_proof }).into_response()
        }
        None => respond_error((StatusCode::NOT_FOUND, format!("batch {number} does not exist"))),
    }
}

async fn proof(State(core): State<Arc<CoreDevnet>>, Path(number): Path<u32>) -> Response {
    let number = L1BatchNumber(number);
    match core.proof(number).await {
        Ok(Some(proof)) => Json(proof).into_response(),
        Ok(None) => respond_error((StatusCode::NOT_FOUND, format!("batch {number} has no proof"))),
        Err(e) => respond_error(internal(e)),
    }
}
