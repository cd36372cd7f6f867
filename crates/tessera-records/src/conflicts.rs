//! Domain conflicts: rules a CRDT merge cannot enforce, found after the merge and shown
//! to an operator, with the pure builders of the records that resolve them.
//!
//! Two hubs offline can lend the same device, register the same person, or book the
//! same help desk twice; automerge merges all of it without complaint, and it must:
//! refusing a signed change would split the network's view of the truth. So
//! [`detect`] looks at the merged records and names each problem with a stable id; the
//! operator picks a resolution, and the node writes it as ordinary signed changes built
//! here ([`close_loan`], [`merge_attendees`] with [`repoint_references`],
//! [`mark_not_duplicate`], [`move_appointment`]). Once written, the conflict is no
//! longer detected, on every node. Nothing here deletes a record or picks a winner on
//! its own.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime};
use tessera_log::DocId;

use crate::model::{format_date, format_date_time, parse_date, Attendee, Loan, Record, RecordRef, Session};
use crate::text::fold;
use crate::vocab::{DeviceStatus, SessionKind};

/// A problem found in the merged records. The ids in each list are sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// More than one open loan of one device (two hubs lent it while offline).
    DeviceLentTwice { device: DocId, loans: Vec<DocId> },
    /// Attendees with the same name (folded: case, accents, spacing, and given/family
    /// order ignored) and birth year, registered at different sites, none merged away
    /// and none marked as another person.
    ProbableDuplicateAttendee { attendees: Vec<DocId> },
    /// Help-desk appointments at one site whose times overlap.
    DoubleBookedAppointment { site: DocId, sessions: Vec<DocId> },
    /// A device marked lent with no open loan. Two hubs resolved a
    /// [`Conflict::DeviceLentTwice`] differently (each closed the loan the other kept):
    /// `closed` are the device's loans closed by a resolution, one of which is with
    /// the borrower. Never a silent state: it stays a conflict until an operator says
    /// which loan is open ([`reopen_loan`]) or that the device is back.
    DeviceLentWithoutLoan { device: DocId, closed: Vec<DocId> },
}

impl Conflict {
    /// A short stable name for the CLI (`tessera conflicts resolve lent-1a2b3c4d ...`):
    /// a word for the kind and 8 hex digits of a hash of the sorted ids involved. The
    /// same conflict has the same id on every node; it changes if another record joins
    /// the conflict (then it is, for the operator, a new one).
    pub fn id(&self) -> String {
        let mut hash = Fnv64::new();
        hash.write(self.word().as_bytes());
        for id in self.records() {
            hash.write(&id.0);
        }
        format!("{}-{:08x}", self.word(), hash.finish() >> 32)
    }

    /// The word that starts the id.
    pub fn word(&self) -> &'static str {
        match self {
            Conflict::DeviceLentTwice { .. } => "lent",
            Conflict::ProbableDuplicateAttendee { .. } => "dup",
            Conflict::DoubleBookedAppointment { .. } => "overlap",
            Conflict::DeviceLentWithoutLoan { .. } => "unlent",
        }
    }

    /// The records in conflict (loans, attendees or sessions), sorted.
    pub fn records(&self) -> &[DocId] {
        match self {
            Conflict::DeviceLentTwice { loans, .. } => loans,
            Conflict::ProbableDuplicateAttendee { attendees } => attendees,
            Conflict::DoubleBookedAppointment { sessions, .. } => sessions,
            Conflict::DeviceLentWithoutLoan { device, closed } if closed.is_empty() => {
                std::slice::from_ref(device)
            }
            Conflict::DeviceLentWithoutLoan { closed, .. } => closed,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Conflict::DeviceLentTwice { .. } => 0,
            Conflict::ProbableDuplicateAttendee { .. } => 1,
            Conflict::DoubleBookedAppointment { .. } => 2,
            Conflict::DeviceLentWithoutLoan { .. } => 3,
        }
    }
}

/// Every conflict among `records`, in a fixed order (kind, then ids) whatever the order
/// of the input.
pub fn detect(records: &[(DocId, Record)]) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    conflicts.extend(devices_lent_twice(records));
    conflicts.extend(probable_duplicates(records));
    conflicts.extend(double_bookings(records));
    conflicts.extend(devices_lent_without_loan(records));
    conflicts.sort_by(|a, b| (a.rank(), a.records()).cmp(&(b.rank(), b.records())));
    conflicts
}

fn devices_lent_twice(records: &[(DocId, Record)]) -> Vec<Conflict> {
    let mut open: BTreeMap<DocId, BTreeSet<DocId>> = BTreeMap::new();
    for (id, record) in records {
        if let Record::Loan(loan) = record {
            if loan.is_open() {
                open.entry(loan.device.id()).or_default().insert(*id);
            }
        }
    }
    open.into_iter()
        .filter(|(_, loans)| loans.len() > 1)
        .map(|(device, loans)| Conflict::DeviceLentTwice { device, loans: loans.into_iter().collect() })
        .collect()
}

fn devices_lent_without_loan(records: &[(DocId, Record)]) -> Vec<Conflict> {
    let mut open: BTreeSet<DocId> = BTreeSet::new();
    let mut closed: BTreeMap<DocId, BTreeSet<DocId>> = BTreeMap::new();
    for (id, record) in records {
        if let Record::Loan(loan) = record {
            if loan.is_open() {
                open.insert(loan.device.id());
            } else if loan.closed_reason.is_some() {
                closed.entry(loan.device.id()).or_default().insert(*id);
            }
        }
    }
    records
        .iter()
        .filter(|(id, record)| {
            matches!(record, Record::Device(d) if d.status == DeviceStatus::Lent) && !open.contains(id)
        })
        .map(|(device, _)| Conflict::DeviceLentWithoutLoan {
            device: *device,
            closed: closed.remove(device).unwrap_or_default().into_iter().collect(),
        })
        .collect()
}

/// Longest chain of merges followed (a person merged into one merged into another...).
pub const MERGE_CHAIN_MAX: usize = 16;

/// The person `id` stands for after merges; `merged_into` gives an attendee's
/// `merged_into`. Two hubs that resolved one duplicate in opposite directions (X into
/// Y on one, Y into X on the other, both offline) leave a cycle after the merge: its
/// smallest id is then the person, on every node, whatever arrived first. Nothing is
/// written for it: every reader settles the cycle the same way.
pub fn person_of(id: DocId, merged_into: impl Fn(&DocId) -> Option<DocId>) -> DocId {
    let mut path = vec![id];
    let mut current = id;
    for _ in 0..MERGE_CHAIN_MAX {
        match merged_into(&current) {
            Some(next) if next != current => {
                if let Some(at) = path.iter().position(|p| *p == next) {
                    return path[at..].iter().copied().min().unwrap_or(next);
                }
                path.push(next);
                current = next;
            }
            _ => return current,
        }
    }
    current
}

/// Settles the merges of `records` as [`person_of`] does: each merged attendee points
/// at the person it stands for, and the person a cycle of merges leaves is not merged.
pub fn settle_merges(records: &mut [(DocId, Record)]) {
    let merged: BTreeMap<DocId, DocId> = records
        .iter()
        .filter_map(|(id, r)| match r {
            Record::Attendee(a) => a.merged_into.map(|m| (*id, m.id())),
            _ => None,
        })
        .collect();
    for (id, record) in records.iter_mut() {
        let Record::Attendee(a) = record else { continue };
        if a.merged_into.is_none() {
            continue;
        }
        let person = person_of(*id, |x| merged.get(x).copied());
        a.merged_into = (person != *id).then_some(RecordRef(person));
    }
}

/// The loan `loan`, closed by a resolution, open again: the operator found it is the
/// one with the borrower (two hubs had resolved a device lent twice differently).
pub fn reopen_loan(loan: &Loan) -> Loan {
    Loan { returned_at: None, return_condition: None, closed_reason: None, ..loan.clone() }
}

/// What makes two attendees probably the same person: the blind index of their folded
/// names (in either order) and birth year ([`crate::match_key`]), computed from the
/// names when they are readable here, else the one their record carries (a person
/// registered by another partner). `None`: nameless, says nothing.
fn identity(attendee: &Attendee) -> Option<String> {
    if attendee.given_name.trim().is_empty() && attendee.family_name.trim().is_empty() {
        return attendee.match_key.clone();
    }
    Some(crate::model::match_key(&attendee.given_name, &attendee.family_name, attendee.birth_year))
}

/// The attendees on record that are probably the person `new` about to be registered
/// (same names, in either order, and birth year, at any site, this one included; not
/// merged away, not erased): asked before saving, so a hub does not register the same
/// person twice. A conflict is raised only across sites ([`detect`]).
pub fn probable_duplicates_of(new: &Attendee, records: &[(DocId, Record)]) -> Vec<DocId> {
    let Some(key) = identity(new) else { return Vec::new() };
    records
        .iter()
        .filter_map(|(id, record)| match record {
            Record::Attendee(a)
                if !a.is_merged()
                    && !a.is_erased()
                    && !new.not_duplicates_of.contains(&RecordRef(*id))
                    && identity(a).as_deref() == Some(key.as_str()) =>
            {
                Some(*id)
            }
            _ => None,
        })
        .collect()
}

/// The help-desk appointments on record that `new` (with id `new_id`) would overlap at
/// its site: the double booking [`detect`] would report once it is saved.
pub fn overlapping_appointments(new_id: DocId, new: &Session, records: &[(DocId, Record)]) -> Vec<DocId> {
    let mut with_new: Vec<(DocId, Record)> =
        records.iter().filter(|(_, r)| matches!(r, Record::Session(_))).cloned().collect();
    with_new.push((new_id, Record::Session(new.clone())));
    double_bookings(&with_new)
        .into_iter()
        .filter_map(|c| match c {
            Conflict::DoubleBookedAppointment { sessions, .. } if sessions.contains(&new_id) => {
                Some(sessions.into_iter().filter(|s| *s != new_id).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn probable_duplicates(records: &[(DocId, Record)]) -> Vec<Conflict> {
    let mut groups: BTreeMap<String, Vec<(DocId, &Attendee)>> = BTreeMap::new();
    for (id, record) in records {
        if let Record::Attendee(attendee) = record {
            // Nameless records (invalid, but possible after a merge of bad edits) say
            // nothing about who they are.
            if let (false, Some(key)) = (attendee.is_merged(), identity(attendee)) {
                groups.entry(key).or_default().push((*id, attendee));
            }
        }
    }
    let mut conflicts = Vec::new();
    for mut group in groups.into_values().filter(|group| group.len() > 1) {
        group.sort_by_key(|(id, _)| *id);
        group.dedup_by_key(|(id, _)| *id);
        // Two members are linked when registered at different sites and neither has been
        // marked as another person; a conflict is each linked set of two or more.
        let mut sets = DisjointSets::new(group.len());
        for (i, (id_a, a)) in group.iter().enumerate() {
            for (j, (id_b, b)) in group.iter().enumerate().skip(i + 1) {
                let marked = a.not_duplicates_of.contains(&RecordRef(*id_b))
                    || b.not_duplicates_of.contains(&RecordRef(*id_a));
                if a.site != b.site && !marked {
                    sets.join(i, j);
                }
            }
        }
        let mut linked: BTreeMap<usize, Vec<DocId>> = BTreeMap::new();
        for (i, (id, _)) in group.iter().enumerate() {
            linked.entry(sets.root(i)).or_default().push(*id);
        }
        conflicts.extend(
            linked
                .into_values()
                .filter(|ids| ids.len() > 1)
                .map(|attendees| Conflict::ProbableDuplicateAttendee { attendees }),
        );
    }
    conflicts
}

fn double_bookings(records: &[(DocId, Record)]) -> Vec<Conflict> {
    let mut by_site: BTreeMap<DocId, Vec<(NaiveDateTime, NaiveDateTime, DocId)>> = BTreeMap::new();
    for (id, record) in records {
        if let Record::Session(session) = record {
            if session.kind != SessionKind::HelpDeskAppointment || session.is_cancelled() {
                continue; // a cancelled appointment holds no time
            }
            // An appointment without readable times cannot be placed; validation
            // reports it where it is typed.
            if let (Some(start), Some(end)) = (session.start_time(), session.end_time()) {
                if start < end {
                    by_site.entry(session.site.id()).or_default().push((start, end, *id));
                }
            }
        }
    }
    let mut conflicts = Vec::new();
    for (site, mut appointments) in by_site {
        appointments.sort();
        appointments.dedup_by_key(|(_, _, id)| *id);
        // Sweep by start time: an appointment that starts before the latest end seen
        // so far overlaps the running cluster.
        let mut cluster: Vec<DocId> = Vec::new();
        let mut cluster_end: Option<NaiveDateTime> = None;
        for (start, end, id) in appointments {
            match cluster_end {
                Some(latest) if start < latest => {
                    cluster.push(id);
                    cluster_end = Some(latest.max(end));
                }
                _ => {
                    flush_cluster(&mut conflicts, site, &mut cluster);
                    cluster.push(id);
                    cluster_end = Some(end);
                }
            }
        }
        flush_cluster(&mut conflicts, site, &mut cluster);
    }
    conflicts
}

fn flush_cluster(conflicts: &mut Vec<Conflict>, site: DocId, cluster: &mut Vec<DocId>) {
    if cluster.len() > 1 {
        let mut sessions = std::mem::take(cluster);
        sessions.sort();
        conflicts.push(Conflict::DoubleBookedAppointment { site, sessions });
    }
    cluster.clear();
}

/// The loan closed today for `reason` (e.g. "closed resolving lent-1a2b3c4d: the device
/// is with another borrower"). The return date is today, or the start date if the
/// operator's clock is behind it, so that the closed loan still validates.
pub fn close_loan(loan: &Loan, today: NaiveDate, reason: &str) -> Loan {
    let closed_on = parse_date(&loan.start).map_or(today, |start| start.max(today));
    Loan {
        returned_at: Some(format_date(closed_on)),
        closed_reason: Some(reason.to_string()),
        ..loan.clone()
    }
}

/// The loan `loan`, void: recorded by mistake. It is closed on its start date (it
/// never was a loan) with the reason, so it counts in no figure (a closed reason is
/// what the reports leave out) and frees its device.
pub fn void_loan(loan: &Loan, reason: &str) -> Loan {
    Loan {
        returned_at: Some(loan.returned_at.clone().unwrap_or_else(|| loan.start.clone())),
        return_condition: None,
        closed_reason: Some(format!("void: {reason}")),
        ..loan.clone()
    }
}

/// Merges the duplicate `drop` into `keep`. Returns the kept attendee, with the fields
/// it lacked (empty or absent) taken from `drop` and their languages and "not a
/// duplicate" marks united, and the dropped attendee with `merged_into` set to
/// `keep_id`. Also rewrite every record that refers to `drop_id` with
/// [`repoint_references`].
pub fn merge_attendees(
    keep_id: DocId,
    keep: &Attendee,
    drop_id: DocId,
    drop: &Attendee,
) -> (Attendee, Attendee) {
    fn fill<T: Clone>(kept: &mut Option<T>, other: &Option<T>) {
        if kept.is_none() {
            kept.clone_from(other);
        }
    }
    let mut kept = keep.clone();
    fill(&mut kept.school, &drop.school);
    fill(&mut kept.class, &drop.class);
    fill(&mut kept.guardian, &drop.guardian);
    fill(&mut kept.phone, &drop.phone);
    fill(&mut kept.email, &drop.email);
    fill(&mut kept.referent_operator, &drop.referent_operator);
    if kept.plan_notes.trim().is_empty() {
        kept.plan_notes.clone_from(&drop.plan_notes);
    }
    for language in &drop.languages {
        if !kept.languages.iter().any(|known| fold(known) == fold(language)) {
            kept.languages.push(language.clone());
        }
    }
    for other in &drop.not_duplicates_of {
        if !kept.not_duplicates_of.contains(other) {
            kept.not_duplicates_of.push(*other);
        }
    }
    kept.not_duplicates_of.retain(|other| other.id() != keep_id && other.id() != drop_id);

    let mut dropped = drop.clone();
    dropped.merged_into = Some(RecordRef(keep_id));
    (kept, dropped)
}

/// `record` with every reference to the attendee `from` turned into `to` (the loan's
/// borrower, a session's participants, another attendee's marks and merge target), or
/// `None` when it does not refer to `from`. A session that lists both keeps one entry,
/// present if either was.
pub fn repoint_references(record: &Record, from: DocId, to: DocId) -> Option<Record> {
    let (from, to) = (RecordRef(from), RecordRef(to));
    match record {
        Record::Loan(loan) if loan.attendee == from => {
            Some(Record::Loan(Loan { attendee: to, ..loan.clone() }))
        }
        Record::Session(session) if session.participants.iter().any(|p| p.attendee == from) => {
            let mut session = session.clone();
            let was_present = session.participants.iter().any(|p| p.attendee == from && p.present);
            if let Some(existing) = session.participants.iter_mut().find(|p| p.attendee == to) {
                existing.present |= was_present;
                session.participants.retain(|p| p.attendee != from);
            } else {
                for participant in session.participants.iter_mut().filter(|p| p.attendee == from) {
                    participant.attendee = to;
                }
            }
            Some(Record::Session(session))
        }
        Record::Attendee(attendee)
            if attendee.merged_into == Some(from) || attendee.not_duplicates_of.contains(&from) =>
        {
            let mut attendee = attendee.clone();
            if attendee.merged_into == Some(from) {
                attendee.merged_into = Some(to);
            }
            let mut marks = Vec::with_capacity(attendee.not_duplicates_of.len());
            for mark in attendee.not_duplicates_of.iter().map(|m| if *m == from { to } else { *m }) {
                if !marks.contains(&mark) {
                    marks.push(mark);
                }
            }
            attendee.not_duplicates_of = marks;
            Some(Record::Attendee(attendee))
        }
        _ => None,
    }
}

/// The resolution "these are two different people": `attendee` marked as not a
/// duplicate of `other`. Writing one side is enough.
pub fn mark_not_duplicate(attendee: &Attendee, other: DocId) -> Attendee {
    let mut marked = attendee.clone();
    if !marked.not_duplicates_of.contains(&RecordRef(other)) {
        marked.not_duplicates_of.push(RecordRef(other));
    }
    marked
}

/// The appointment moved to a new time.
pub fn move_appointment(session: &Session, new_start: NaiveDateTime, new_end: NaiveDateTime) -> Session {
    Session { start: format_date_time(new_start), end: format_date_time(new_end), ..session.clone() }
}

/// Union-find over `0..n`, for grouping linked attendees.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets { parent: (0..n).collect() }
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        // The smaller root wins, so the grouping does not depend on join order.
        let (low, high) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[high] = low;
    }
}

/// FNV-1a, 64 bits: a fixed, dependency-free hash for naming conflicts. Not
/// cryptographic: a conflict id is a name, not a proof.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::RecordKind;
    use crate::model::samples::*;
    use crate::model::{parse_date_time, Participant};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
    }

    fn lent_twice() -> Vec<(DocId, Record)> {
        let device = r(RecordKind::Device, 1);
        let (hub_a, hub_b) = (r(RecordKind::Site, 1), r(RecordKind::Site, 2));
        vec![
            (id(RecordKind::Device, 1), Record::Device(crate::model::samples::device(hub_a))),
            (
                id(RecordKind::Loan, 2),
                Record::Loan(loan(device, r(RecordKind::Attendee, 2), hub_b, "2025-03-01", "2025-06-30")),
            ),
            (
                id(RecordKind::Loan, 1),
                Record::Loan(loan(device, r(RecordKind::Attendee, 1), hub_a, "2025-03-02", "2025-06-30")),
            ),
        ]
    }

    #[test]
    fn a_device_lent_twice_is_detected_until_one_loan_is_closed() {
        let mut records = lent_twice();
        let conflicts = detect(&records);
        assert_eq!(
            conflicts,
            vec![Conflict::DeviceLentTwice {
                device: id(RecordKind::Device, 1),
                loans: vec![id(RecordKind::Loan, 1), id(RecordKind::Loan, 2)],
            }]
        );
        let conflict_id = conflicts[0].id();
        assert!(conflict_id.starts_with("lent-") && conflict_id.len() == "lent-".len() + 8, "{conflict_id}");

        let Record::Loan(second) = &records[1].1 else { unreachable!() };
        let closed = close_loan(second, today(), "closed resolving a device lent twice");
        assert_eq!(closed.returned_at.as_deref(), Some("2025-06-15"));
        assert!(!closed.is_open());
        records[1].1 = Record::Loan(closed);
        assert!(detect(&records).is_empty());
    }

    #[test]
    fn two_hubs_that_resolve_a_double_loan_differently_leave_a_conflict_not_a_lent_device_without_loan() {
        let mut records = lent_twice();
        if let Record::Device(d) = &mut records[0].1 {
            d.status = DeviceStatus::Lent;
        }
        let lent = detect(&records)[0].clone();
        let today = parse_date("2025-03-10").unwrap();
        // Hub A closes loan 2, hub B closes loan 1, each offline: after the merge both
        // are closed and the device is still marked lent.
        for at in [1, 2] {
            let Record::Loan(l) = &records[at].1 else { unreachable!() };
            records[at].1 = Record::Loan(close_loan(l, today, &format!("closed resolving {}", lent.id())));
        }
        let conflicts = detect(&records);
        let device = id(RecordKind::Device, 1);
        let expected = Conflict::DeviceLentWithoutLoan {
            device,
            closed: vec![id(RecordKind::Loan, 1), id(RecordKind::Loan, 2)],
        };
        assert_eq!(conflicts, vec![expected.clone()]);
        assert!(expected.id().starts_with("unlent-"));
        // The operator reopens the loan that is with the borrower: nothing left.
        let Record::Loan(l) = &records[2].1 else { unreachable!() };
        let reopened = reopen_loan(l);
        assert!(reopened.is_open());
        assert_eq!(crate::validate::validate(&Record::Loan(reopened.clone()), today), Ok(()));
        records[2].1 = Record::Loan(reopened);
        assert!(detect(&records).is_empty());
    }

    #[test]
    fn opposite_merges_of_one_duplicate_leave_one_person_the_same_on_every_node() {
        let site = r(RecordKind::Site, 1);
        let (x, y, w) =
            (id(RecordKind::Attendee, 1), id(RecordKind::Attendee, 2), id(RecordKind::Attendee, 3));
        let card = |merged: Option<DocId>| {
            let mut a = adult("Giulia", "Esempio", site);
            a.merged_into = merged.map(RecordRef);
            Record::Attendee(a)
        };
        // Hub A merged Y into X, hub B X into Y; W had been merged into X before.
        let merged = [(x, card(Some(y))), (y, card(Some(x))), (w, card(Some(x)))];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut records: Vec<_> = order.iter().map(|i| merged[*i].clone()).collect();
            settle_merges(&mut records);
            let into = |id: DocId| match &records.iter().find(|(i, _)| *i == id).unwrap().1 {
                Record::Attendee(a) => a.merged_into.map(|m| m.id()),
                _ => unreachable!(),
            };
            assert_eq!(into(x), None, "the smallest id of the cycle is the person");
            assert_eq!(into(y), Some(x));
            assert_eq!(into(w), Some(x));
            assert!(detect(&records).is_empty(), "no duplicate is left to resolve");
        }
        // A plain chain is followed to its end; a chain longer than the limit stops.
        let chain = |n: &DocId| (n.0[1] < 40).then(|| id(RecordKind::Attendee, n.0[1] + 1));
        assert_eq!(
            person_of(id(RecordKind::Attendee, 1), chain),
            id(RecordKind::Attendee, 1 + MERGE_CHAIN_MAX as u8)
        );
        assert_eq!(person_of(x, |_| None), x);
    }

    #[test]
    fn a_person_already_registered_here_or_elsewhere_is_found_before_saving() {
        let (here, there) = (r(RecordKind::Site, 1), r(RecordKind::Site, 2));
        let records = vec![
            (id(RecordKind::Attendee, 1), Record::Attendee(adult("Giulia", "Esempio", here))),
            (id(RecordKind::Attendee, 2), Record::Attendee(adult("Marco", "Prova", there))),
        ];
        // Same names in the other order, other case and accents: found, at this site.
        let again = adult("ESEMPIO", "Giùlia", here);
        assert_eq!(probable_duplicates_of(&again, &records), vec![id(RecordKind::Attendee, 1)]);
        // Another birth year is another person; a mark "not a duplicate" is respected.
        let mut other = adult("Giulia", "Esempio", here);
        other.birth_year += 1;
        assert!(probable_duplicates_of(&other, &records).is_empty());
        let mut marked = adult("Giulia", "Esempio", here);
        marked.not_duplicates_of.push(r(RecordKind::Attendee, 1));
        assert!(probable_duplicates_of(&marked, &records).is_empty());
    }

    #[test]
    fn an_appointment_overlapping_another_at_the_same_desk_is_found_before_saving() {
        let desk = r(RecordKind::Site, 1);
        let kind = SessionKind::HelpDeskAppointment;
        let booked = session(desk, kind, "2025-05-05T10:00", "2025-05-05T10:30");
        let records = vec![(id(RecordKind::Session, 1), Record::Session(booked))];
        let new_id = id(RecordKind::Session, 9);
        let overlapping = session(desk, kind, "2025-05-05T10:15", "2025-05-05T10:45");
        assert_eq!(
            overlapping_appointments(new_id, &overlapping, &records),
            vec![id(RecordKind::Session, 1)]
        );
        let after = session(desk, kind, "2025-05-05T10:30", "2025-05-05T11:00");
        assert!(overlapping_appointments(new_id, &after, &records).is_empty(), "back to back is fine");
        let elsewhere = session(r(RecordKind::Site, 2), kind, "2025-05-05T10:15", "2025-05-05T10:45");
        assert!(overlapping_appointments(new_id, &elsewhere, &records).is_empty());
    }

    #[test]
    fn a_returned_loan_does_not_count() {
        let mut records = lent_twice();
        if let Record::Loan(loan) = &mut records[2].1 {
            loan.returned_at = Some("2025-04-01".into());
        }
        assert!(detect(&records).is_empty());
    }

    #[test]
    fn closing_before_the_start_date_closes_on_the_start_date() {
        let l = loan(
            r(RecordKind::Device, 1),
            r(RecordKind::Attendee, 1),
            r(RecordKind::Site, 1),
            "2025-07-01",
            "2025-09-01",
        );
        assert_eq!(close_loan(&l, today(), "x").returned_at.as_deref(), Some("2025-07-01"));
    }

    fn two_registrations() -> Vec<(DocId, Record)> {
        let a = adult("Niccolò", "D'Amico", r(RecordKind::Site, 1));
        let b = adult("  d amico ", "NICCOLO", r(RecordKind::Site, 2));
        vec![
            (id(RecordKind::Attendee, 2), Record::Attendee(b)),
            (id(RecordKind::Attendee, 1), Record::Attendee(a)),
        ]
    }

    #[test]
    fn the_same_person_at_two_sites_is_a_probable_duplicate() {
        let conflicts = detect(&two_registrations());
        assert_eq!(
            conflicts,
            vec![Conflict::ProbableDuplicateAttendee {
                attendees: vec![id(RecordKind::Attendee, 1), id(RecordKind::Attendee, 2)]
            }]
        );
        assert!(conflicts[0].id().starts_with("dup-"));
    }

    #[test]
    fn not_duplicates_when_details_differ_or_same_site() {
        let mut records = two_registrations();
        if let Record::Attendee(b) = &mut records[0].1 {
            b.birth_year = 1951;
        }
        assert!(detect(&records).is_empty(), "another birth year");

        let mut records = two_registrations();
        if let Record::Attendee(b) = &mut records[0].1 {
            b.site = r(RecordKind::Site, 1);
        }
        assert!(detect(&records).is_empty(), "same site: the operator there sees both");
    }

    #[test]
    fn a_merged_duplicate_is_no_longer_a_conflict() {
        let records = two_registrations();
        let (Record::Attendee(drop), Record::Attendee(keep)) = (&records[0].1, &records[1].1) else {
            unreachable!()
        };
        let keep_id = id(RecordKind::Attendee, 1);
        let drop_id = id(RecordKind::Attendee, 2);
        let mut keep = keep.clone();
        keep.phone = None;
        keep.languages = vec!["Italiano".into()];
        let mut drop = drop.clone();
        drop.email = Some("n.esempio@example.invalid".into());
        drop.languages = vec!["italiano".into(), "arabo".into()];
        drop.not_duplicates_of = vec![r(RecordKind::Attendee, 7), RecordRef(keep_id)];

        let (kept, dropped) = merge_attendees(keep_id, &keep, drop_id, &drop);
        assert_eq!(kept.phone, drop.phone, "filled from the duplicate");
        assert_eq!(kept.email.as_deref(), Some("n.esempio@example.invalid"));
        assert_eq!(kept.given_name, "Niccolò", "kept values stay");
        assert_eq!(kept.languages, vec!["Italiano", "arabo"]);
        assert_eq!(kept.not_duplicates_of, vec![r(RecordKind::Attendee, 7)]);
        assert_eq!(kept.merged_into, None);
        assert_eq!(dropped.merged_into, Some(RecordRef(keep_id)));

        let resolved = vec![(keep_id, Record::Attendee(kept)), (drop_id, Record::Attendee(dropped))];
        assert!(detect(&resolved).is_empty());
    }

    #[test]
    fn marking_two_people_as_different_resolves_the_conflict() {
        let mut records = two_registrations();
        let Record::Attendee(b) = &records[0].1 else { unreachable!() };
        records[0].1 = Record::Attendee(mark_not_duplicate(b, id(RecordKind::Attendee, 1)));
        assert!(detect(&records).is_empty());

        // A third registration of the same name at a third site is still linked to both.
        let c = adult("Niccolo", "D Amico", r(RecordKind::Site, 3));
        records.push((id(RecordKind::Attendee, 3), Record::Attendee(c)));
        let conflicts = detect(&records);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].records().len(), 3);
    }

    #[test]
    fn references_follow_a_merge() {
        let (from, to) = (id(RecordKind::Attendee, 2), id(RecordKind::Attendee, 1));
        let hub = r(RecordKind::Site, 1);
        let l = loan(r(RecordKind::Device, 1), RecordRef(from), hub, "2025-03-01", "2025-06-30");
        let Some(Record::Loan(moved)) = repoint_references(&Record::Loan(l.clone()), from, to) else {
            panic!("loan not repointed")
        };
        assert_eq!(moved.attendee, RecordRef(to));
        assert_eq!(repoint_references(&Record::Loan(moved), from, to), None);

        let mut s = session(hub, SessionKind::Course, "2025-03-03T15:00", "2025-03-03T17:00");
        s.participants = vec![
            Participant { attendee: RecordRef(to), present: false },
            Participant { attendee: RecordRef(from), present: true },
            Participant { attendee: r(RecordKind::Attendee, 3), present: true },
        ];
        let Some(Record::Session(merged)) = repoint_references(&Record::Session(s), from, to) else {
            panic!("session not repointed")
        };
        assert_eq!(
            merged.participants,
            vec![
                Participant { attendee: RecordRef(to), present: true },
                Participant { attendee: r(RecordKind::Attendee, 3), present: true },
            ]
        );

        let mut other = adult("Ahmed", "Prova", hub);
        other.not_duplicates_of = vec![RecordRef(from), RecordRef(to)];
        let Some(Record::Attendee(other)) = repoint_references(&Record::Attendee(other), from, to) else {
            panic!("marks not repointed")
        };
        assert_eq!(other.not_duplicates_of, vec![RecordRef(to)]);
        assert_eq!(repoint_references(&Record::Site(site("Polo", "Coop")), from, to), None);
    }

    fn appointment(site_n: u8, start: &str, end: &str) -> Record {
        Record::Session(session(r(RecordKind::Site, site_n), SessionKind::HelpDeskAppointment, start, end))
    }

    #[test]
    fn overlapping_appointments_at_one_desk_are_detected_until_moved() {
        let mut records = vec![
            (id(RecordKind::Session, 1), appointment(1, "2025-03-03T09:00", "2025-03-03T09:30")),
            (id(RecordKind::Session, 2), appointment(1, "2025-03-03T09:15", "2025-03-03T09:45")),
            // Back to back is fine.
            (id(RecordKind::Session, 3), appointment(1, "2025-03-03T09:45", "2025-03-03T10:15")),
            // Another desk at the same time is fine.
            (id(RecordKind::Session, 4), appointment(2, "2025-03-03T09:00", "2025-03-03T09:30")),
            // A course at the same site and time is not an appointment.
            (
                id(RecordKind::Session, 5),
                Record::Session(session(
                    r(RecordKind::Site, 1),
                    SessionKind::Course,
                    "2025-03-03T09:00",
                    "2025-03-03T11:00",
                )),
            ),
        ];
        let conflicts = detect(&records);
        assert_eq!(
            conflicts,
            vec![Conflict::DoubleBookedAppointment {
                site: id(RecordKind::Site, 1),
                sessions: vec![id(RecordKind::Session, 1), id(RecordKind::Session, 2)],
            }]
        );
        assert!(conflicts[0].id().starts_with("overlap-"));

        let Record::Session(second) = &records[1].1 else { unreachable!() };
        let moved = move_appointment(
            second,
            parse_date_time("2025-03-03T10:15").unwrap(),
            parse_date_time("2025-03-03T10:45").unwrap(),
        );
        assert_eq!((moved.start.as_str(), moved.end.as_str()), ("2025-03-03T10:15", "2025-03-03T10:45"));
        records[1].1 = Record::Session(moved);
        assert!(detect(&records).is_empty());
    }

    #[test]
    fn a_cancelled_appointment_holds_no_time() {
        let mut records = vec![
            (id(RecordKind::Session, 1), appointment(1, "2025-03-03T09:00", "2025-03-03T09:30")),
            (id(RecordKind::Session, 2), appointment(1, "2025-03-03T09:00", "2025-03-03T09:30")),
        ];
        assert_eq!(detect(&records).len(), 1);
        let Record::Session(second) = &mut records[1].1 else { unreachable!() };
        second.cancelled = Some("prenotato due volte".into());
        assert!(detect(&records).is_empty());
    }

    #[test]
    fn order_of_input_does_not_change_the_result() {
        let mut records = lent_twice();
        records.extend(two_registrations());
        records.push((id(RecordKind::Session, 1), appointment(1, "2025-03-03T09:00", "2025-03-03T09:30")));
        records.push((id(RecordKind::Session, 2), appointment(1, "2025-03-03T09:10", "2025-03-03T09:20")));
        let forward = detect(&records);
        records.reverse();
        let backward = detect(&records);
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), 3);
        let ids: BTreeSet<String> = forward.iter().map(Conflict::id).collect();
        assert_eq!(ids.len(), 3, "distinct ids");
        assert_eq!(forward.iter().map(Conflict::word).collect::<Vec<_>>(), vec!["lent", "dup", "overlap"]);
    }
}
