//! A deterministic simulator of a whole Tessera deployment: 45 nodes and 2 relays in
//! one thread, under seeded faults, checked against the promises made to operators.
//!
//! **What.** [`World`] drives every node's and relay's real sync sessions
//! (`tessera-sync`), real admission and verification (`tessera_log::admit`), real
//! automerge records (`tessera-records`) and the operators' workload over a simulated
//! network and disks, in virtual time. Faults are drawn from the seed (crashes that
//! lose what was not yet durable, partitions, one-way links, flapping links, stream
//! faults, relay store loss, restore from an old backup, a copied data directory,
//! clock skew, erasures signed by the registering partner, a colleague or another
//! partner, torn backups holding erased bodies again). After the heal,
//! [`check`](crate::check) asserts convergence, quiescence, no lost acknowledged write,
//! no unverifiable entry stored, forks reported, identical documents, and that every
//! store erases the same persons and holds no body of theirs.
//!
//! **Why.** Sync bugs hide in interleavings no hand-written test reaches; a seeded
//! simulation (TigerBeetle's VOPR, FoundationDB) reaches millions of them and replays
//! any failure exactly from its seed: the trace hash of a run is part of its report.
//!
//! **What not.** QUIC, TLS and the real disk are not simulated (their tests are in
//! `tessera-net`, `tessera-store` and the process-level kill tests); the simulated
//! store keeps the durable store's admission rules, not its file format.

mod check;
mod debug;
pub mod report;
pub mod rng;
pub mod store;
pub mod workload;
pub mod world;

pub use report::{ErasureCounts, FaultCounts, Report, WriteCounts};
pub use world::{SimConfig, World};

/// Runs one seed of `config` and returns its report; a panic anywhere in the run is
/// caught and reported as a failure of that seed.
pub fn run(config: SimConfig) -> Report {
    let seed = config.seed;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| World::new(config).run())) {
        Ok(report) => report,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            Report { seed, failures: vec![format!("panic: {what}")], ..Report::default() }
        }
    }
}
