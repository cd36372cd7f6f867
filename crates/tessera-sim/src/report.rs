//! What one run reports: Jepsen-style write counts, convergence, faults injected, and
//! every invariant that failed (empty when the run passed).

use std::collections::BTreeMap;
use std::time::Duration;

/// Writes, from the operator's point of view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Actions an operator started.
    pub attempted: u64,
    /// Saved: the envelope was durable on the operator's node when it answered.
    pub acknowledged: u64,
    /// Acknowledged and present on every node at the end.
    pub survivors: u64,
    /// Acknowledged and missing somewhere at the end (must be 0).
    pub lost: u64,
    /// Acknowledged, then destroyed with the last disk that held it: a node restored
    /// from an older backup, a relay's disk replaced, a copied machine switched off
    /// (disasters, not sync faults).
    pub destroyed_by_restore: u64,
    /// Acknowledged by a device later revoked at an earlier envelope: excluded by design.
    pub excluded_revoked: u64,
    /// Acknowledged by a device whose data directory was copied and which signed two
    /// histories: excluded from the fork on, and the fork reported.
    pub excluded_forked: u64,
    /// Refused: the node was restored from a backup and had not caught up yet.
    pub refused_restoring: u64,
    /// Refused: the node's device was revoked.
    pub refused_revoked: u64,
    /// Refused: the disk damaged one of the node's own envelopes and no peer had sent
    /// it back yet (signing could reuse a seq).
    pub refused_damaged: u64,
    /// The action found nothing to do (e.g. a loan with no device known yet).
    pub nothing_to_do: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub node_crashes: u64,
    pub relay_crashes: u64,
    pub relay_store_losses: u64,
    pub restores: u64,
    pub partitions: u64,
    pub one_way_links: u64,
    pub clones: u64,
    /// Envelopes whose bodies a relay's copy lost (a carrier stripping them).
    pub bodies_stripped: u64,
    /// Envelopes whose record a node's disk damaged mid-log (holes).
    pub records_damaged: u64,
}

/// Erasures (GDPR art. 17) during the run, and what the stores did with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    /// Attendees registered with a personal-details document (erasable).
    pub persons_with_details: u64,
    /// Erasures signed (acknowledged) by the node that registered the person.
    pub by_registrar: u64,
    /// ... by another node of the registering partner.
    pub by_colleague: u64,
    /// ... of which the colleague did not hold the person's details yet.
    pub colleague_before_details: u64,
    /// ... by a node of another partner (effective nowhere).
    pub by_other_partner: u64,
    /// Erasures the registering node refused to sign (its details were not its
    /// partner's: a node restored from an older backup).
    pub refused_by_node: u64,
    /// Persons erased on every store at the end.
    pub persons_erased: u64,
    /// Persons whose every erasure by their registering partner counts for nothing at
    /// the end (destroyed with its last disk, past its device's revocation or fork).
    pub void: u64,
    /// Envelopes a store lacks bodies of at the end that are on no store: erased
    /// everywhere before the erasure stopped counting (counted per store).
    pub bodies_gone_with_void_erasures: u64,
    /// Bodies of erased persons stripped from entries on arrival, on any store.
    pub refused_on_arrival: u64,
    /// Bodies dropped from held records when an erasure became effective.
    pub scrubbed: u64,
    /// Bodies dropped when a store reopened still holding them (a torn image).
    pub scrubbed_at_open: u64,
    /// Times an erasure started counting on a store; of those, on a store holding
    /// nothing of the person yet; times a store stopped erasing a person (its erasure's
    /// device revoked before it, or forked) and asked for their bodies again.
    pub became_effective: u64,
    pub before_registration: u64,
    pub no_longer_counting: u64,
    /// Backups copied while a scrub ran, and the erased bodies they held again.
    pub torn_backups: u64,
    pub bodies_in_torn_backups: u64,
    /// Relay disks replaced by an old copy of themselves.
    pub relay_restores: u64,
    /// Bodies of erased persons at the end in records the disk damaged (kept in place,
    /// never rewritten, as in the real log): not readable, not counted as held.
    pub left_in_damaged_records: u64,
}

/// The result of one seed.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    /// Hash of every event processed, in order: equal for two runs of one seed.
    pub trace: [u8; 32],
    pub events: u64,
    pub writes: WriteCounts,
    pub faults: FaultCounts,
    pub erasures: ErasureCounts,
    pub stream_faults: u64,
    pub revocations: u64,
    pub resolutions: u64,
    /// Devices left marked lent with no open loan at the end (two hubs resolved one
    /// double loan differently), each reported as a conflict on every node.
    pub lent_without_loan: u64,
    /// Virtual time from the heal until every store held the same entries.
    pub converged_after: Option<Duration>,
    pub sessions: u64,
    pub sessions_after_heal: u64,
    pub session_ends: BTreeMap<String, u64>,
    pub refusals: BTreeMap<String, u64>,
    pub fork_events: u64,
    /// Restored nodes that caught up with a relay and could write again.
    pub unfenced: u64,
    pub forks_seen: u64,
    pub max_relay_backlog: usize,
    pub max_disk_queue: usize,
    pub disk_ops_lost_in_crashes: u64,
    /// Virtual time from convergence to the last Entries message (batches in flight, a
    /// forked author's envelopes past its fork).
    pub quiescent_after: Option<Duration>,
    /// Documents digest shared by every node at the end.
    pub documents: Option<[u8; 32]>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line for a summary table.
    pub fn line(&self) -> String {
        let w = &self.writes;
        format!(
            "seed {:>6}: {} | writes attempted {} acked {} survivors {} lost {} (destroyed with their last disk {}, \
             revoked {}, forked {}) | converged {} | sessions {} | erased {} of {} asked ({} by other partners, {} stopped counting) | \
             faults {:?}",
            self.seed,
            if self.passed() { "ok  " } else { "FAIL" },
            w.attempted,
            w.acknowledged,
            w.survivors,
            w.lost,
            w.destroyed_by_restore,
            w.excluded_revoked,
            w.excluded_forked,
            self.converged_after.map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64())),
            self.sessions,
            self.erasures.persons_erased,
            self.erasures.by_registrar + self.erasures.by_colleague + self.erasures.by_other_partner,
            self.erasures.by_other_partner,
            self.erasures.no_longer_counting,
            self.faults,
        )
    }
}
