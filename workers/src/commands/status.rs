//! `prover status [BATCH]`: where batches stand, from the job records.

use via_activities::records::JobRecords;
use via_schemas::config::Config;
use via_schemas::prover_interface::L1BatchNumber;

const ROUNDS: [&str; 5] = ["basic", "leaf", "node", "recursion tip", "scheduler"];

pub async fn run(batch: Option<u32>, config: &Config) -> anyhow::Result<()> {
    let records = JobRecords::open(&config.records.database_url).await?;
    let batches = records.status(batch.map(L1BatchNumber)).await?;
    if batches.is_empty() {
        println!("no batches recorded{}", batch.map_or(String::new(), |b| format!(" for batch {b}")));
    }
    for b in batches {
        let submitted = if b.submitted { ", submitted" } else { "" };
        println!("batch {} (protocol {}): {}{submitted}", b.l1_batch_number, b.protocol_version, b.witness_input);
        if let Some(error) = &b.error {
            println!("  error: {error}");
        }
        for (round, status, count) in &b.jobs {
            let name = usize::try_from(*round).ok().and_then(|r| ROUNDS.get(r)).copied().unwrap_or("?");
            println!("  {name:<14} {status:<12} {count}");
        }
        if let Some(compression) = &b.compression {
            println!("  {:<14} {compression}", "compression");
        }
    }
    Ok(())
}
