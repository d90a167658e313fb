//! What every role shares: configuration, tracing, the async runtime and graceful shutdown.

use std::path::Path;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use via_schemas::config::Config;

use crate::commands::Cli;

/// The config file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG_FILE: &str = "prover.toml";

/// Loads the configuration: defaults, then the TOML file, then `PROVER_` environment variables
/// (`__` separates sections: `PROVER_CORE_DEVNET__TXS_PER_BATCH=16`).
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match path {
        Some(path) => {
            anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
            figment = figment.merge(Toml::file(path));
        }
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        None => {}
    }
    figment.merge(Env::prefixed("PROVER_").split("__")).extract().context("invalid configuration")
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Colours on a terminal only: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
}

/// A token cancelled on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
        #[cfg(unix)]
        let terminate = term.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}

/// Runs the chosen command with its configuration, tracing and shutdown wired.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = load_config(cli.config.as_deref())?;
    if let Some(backend) = cli.backend {
        config.prover.backend = backend;
    }
    init_tracing();
    if cli.command.proves() {
        let prover = via_circuits::proving::Prover::of_kind(config.prover.backend).with_context(|| format!("cannot prove with the {:?} backend", config.prover.backend))?;
        tracing::info!(backend = ?config.prover.backend, prover = %prover.name(), "proving with");
        via_circuits::proving::use_prover(prover);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_on_signal();
        cli.command.run(config, shutdown).await
    })
}
