//! The Temporal stack end to end: our SDK build, a worker on one of our task queues, and the dev
//! server `infra/stack.sh` started with our search attributes. A workflow runs an activity and
//! upserts every attribute; the server would fail the workflow task for an unregistered one.

use std::str::FromStr;
use std::time::Duration;

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult};
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};
use via_workflows::naming::{BATCH_NUMBER, PROTOCOL_VERSION, PROVING_STAGE, Pool, batch_workflow_id, task_queue};

struct StackActivities;

#[activities]
impl StackActivities {
    #[activity]
    async fn describe(_ctx: ActivityContext, batch: u32) -> Result<String, ActivityError> {
        Ok(format!("batch {batch} reached the worker"))
    }
}

#[workflow]
#[derive(Default)]
struct StackCheckWorkflow;

#[workflow_methods]
impl StackCheckWorkflow {
    #[run]
    async fn run(ctx: &mut WorkflowContext<Self>, batch: u32) -> WorkflowResult<String> {
        ctx.upsert_search_attributes([
            BATCH_NUMBER.value_set(i64::from(batch)),
            PROTOCOL_VERSION.value_set("0.1.0".into()),
            PROVING_STAGE.value_set("stack-check".into()),
        ]);
        let answer = ctx
            .execute_activity(StackActivities::describe, batch, ActivityOptions::start_to_close_timeout(Duration::from_secs(10)))
            .await?;
        Ok(answer)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn workflow_and_activity_run_on_the_dev_server() {
    let address = std::env::var("VIA_TEST_TEMPORAL_ADDRESS")
        .expect("VIA_TEST_TEMPORAL_ADDRESS is not set: run the tests with infra/test.sh, which starts the Temporal dev server");
    let connection = Connection::connect(ConnectionOptions::new(Url::from_str(&address).unwrap()).build()).await.expect("dev server reachable");
    let client = Client::new(connection, ClientOptions::new("default").build()).unwrap();

    // A queue of our naming scheme, unique per run so stale workers of earlier runs cannot answer.
    let version = ProtocolSemanticVersion { minor: 0, patch: std::process::id() };
    let queue = task_queue(version, &Pool::WitnessGenerator);
    let runtime = Runtime::from_current_tokio(Default::default()).unwrap();
    let options = WorkerOptions::new(queue.as_str())
        .register_workflow::<StackCheckWorkflow>()
        .unwrap()
        .register_activities(StackActivities)
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), options).unwrap();
    let stop_worker = worker.shutdown_handle();

    let workflow_id = format!("{}-{}", batch_workflow_id(L1BatchNumber(7)), std::process::id());
    let starter = async {
        let handle = client
            .start_workflow(StackCheckWorkflow::run, 7u32, WorkflowStartOptions::new(queue.as_str(), workflow_id.as_str()).build())
            .await
            .expect("workflow starts");
        let result = tokio::time::timeout(Duration::from_secs(60), handle.get_result(WorkflowGetResultOptions::default())).await;
        stop_worker();
        result
    };
    // The worker is not Send: drive it on this task beside the starter.
    let (ran, result) = tokio::join!(worker.run(), starter);
    ran.expect("worker ran cleanly");
    let result = result.expect("workflow finished within a minute").expect("workflow succeeded");
    assert_eq!(result, "batch 7 reached the worker");
}
