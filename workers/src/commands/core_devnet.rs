//! `prover core-devnet`: the devnet core as a service.

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use via_core_devnet::CoreDevnet;
use via_schemas::config::CoreDevnetConfig;

pub async fn run(config: CoreDevnetConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await.with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    let core = CoreDevnet::open(config).await?;
    core.run(listener, shutdown).await?;
    Ok(())
}
