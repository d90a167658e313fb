//! The `prover` binary as an operator runs it.

use std::process::{Command, Output};

fn prover(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prover"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("prover runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn config_layers_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prover.toml"), "[core_devnet]\ntxs_per_batch = 32\nseed = 5\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prover"))
        .arg("config")
        .current_dir(dir.path())
        .env("PROVER_CORE_DEVNET__SEED", "6")
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(out.contains("txs_per_batch = 32"), "file applies: {out}");
    assert!(out.contains("seed = 6"), "environment overrides the file: {out}");
}

#[test]
fn bad_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prover"))
        .arg("config")
        .current_dir(dir.path())
        .env("PROVER_CORE_DEVNET__TXS_PER_BATCH", "many")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("TXS_PER_BATCH"), "{err}");

    std::fs::write(dir.path().join("prover.toml"), "[core_devnet]\ntxs_per_bach = 3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prover")).arg("config").current_dir(dir.path()).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("txs_per_bach"), "unknown keys are refused by name");
}

#[test]
fn keys_generate_writes_every_circuit_of_the_protocol_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let output = prover(dir.path(), &["keys", "generate", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    // Four basic circuits, their four leaves, the node, the tip, the scheduler, the final wrap.
    assert_eq!(manifest["keys"].as_array().unwrap().len(), 12);
    assert!(out.join("final_verifier.bin").exists());
    let text = stdout(&output);
    for name in ["TxExecution", "leaf of SignatureVerifier", "node", "recursion tip", "scheduler", "compression layer 0", "scheduler key hash"] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn bench_basic_reports_every_circuit_against_plonky2() {
    let dir = tempfile::tempdir().unwrap();
    let output = prover(dir.path(), &["bench", "basic", "--shape", "small"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(") ")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    for row in rows {
        let ratio: f64 = row.split_whitespace().nth(8).unwrap().parse().unwrap();
        assert!(ratio > 0.0, "{row}");
    }
}
