//! [`RecordDoc`]: the automerge document of one record, and the only way records become
//! changes and changes become records.
//!
//! A local edit reconciles the whole new value of the record into the document and
//! commits exactly one automerge change, whose bytes the node signs into an envelope.
//! A change from elsewhere arrives as untrusted bytes (signed, but its author's software
//! may be buggy): it is size-checked, its checksum verified, and applied only once every
//! change it depends on is in the document. Until then it waits in the document's own
//! pending set, which the caller persists through [`RecordDoc::pending_changes`] and
//! re-applies after [`RecordDoc::load`] (a saved document holds applied changes only).
//!
//! This module does not decide which changes count (trust, revocation, forks: that is
//! the log's job) nor whether a record is valid (see [`crate::validate()`]): it keeps the
//! CRDT, whose merge never fails and is the same on every node for the same changes.

use std::collections::BTreeMap;
use std::fmt;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use tessera_log::limits::BODY_BYTES_MAX;
use tessera_log::DeviceKey;

use crate::kind::RecordKind;
use crate::model::{Record, KIND_KEY};

/// The first bytes of every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Offset of the chunk type byte: after the magic bytes and the 4-byte checksum.
const CHUNK_TYPE_OFFSET: usize = 8;
/// Chunk type of an uncompressed change. Compressed changes (type 2) are refused: this
/// crate writes none, and inflating one would let a few bytes claim gigabytes.
const CHUNK_TYPE_CHANGE: u8 = 1;

/// The automerge actor of a node: the first 16 bytes of its device key, so that every
/// change a node makes is attributable to its device and a node uses one actor for all
/// of its documents.
pub fn actor_for(device: &DeviceKey) -> ActorId {
    ActorId::from(&device.as_bytes()[..16])
}

/// Why a document could not be read, written or changed. Messages never quote document
/// content: they name what went wrong, not whose data it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a change of {bytes} bytes is larger than the {max} bytes a change may have")]
    ChangeTooLarge { bytes: usize, max: usize },
    #[error("a change is damaged or is not a change of a record ({reason})")]
    DamagedChange { reason: &'static str },
    #[error(
        "a change takes a place in this record's history that another change of the same device already \
         holds; that device may have been restored from an old backup"
    )]
    ConflictingChange,
    #[error("a change could not be applied to its record ({reason})")]
    ChangeRejected { reason: &'static str },
    #[error("the stored document of a record is damaged and cannot be read")]
    DamagedDocument,
    #[error("this record has no content yet: its first change has not arrived")]
    Empty,
    #[error("the document does not hold a readable record ({detail})")]
    Schema { detail: String },
    #[error("this record is a {stored}; it cannot be turned into a {given}")]
    KindChanged { stored: RecordKind, given: RecordKind },
    #[error("the record could not be written into its document ({reason})")]
    Write { reason: &'static str },
}

/// The automerge document of one record, with the changes from elsewhere that wait for
/// a change they depend on.
pub struct RecordDoc {
    doc: AutoCommit,
    /// Changes whose dependencies are not all in `doc` yet, by hash. Automerge's own
    /// queue is never used, so that these can be listed and persisted by the caller.
    pending: BTreeMap<ChangeHash, Change>,
}

impl fmt::Debug for RecordDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordDoc")
            .field("actor", &self.doc.get_actor().to_hex_string())
            .field("empty", &self.doc.is_empty())
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// Longest name a change says it was made by.
pub const BY_CHARS_MAX: usize = 80;

/// Who a change says made it (its commit message, [`RecordDoc::update_by`]); `None`
/// for a change that names nobody or bytes that are not a change.
pub fn change_by(change: &[u8]) -> Option<String> {
    // Bytes from a log or a bundle: a decoder that panics is a change that names nobody.
    let decoded = std::panic::catch_unwind(|| automerge::Change::from_bytes(change.to_vec()).ok()).ok()??;
    decoded.message().filter(|m| !m.is_empty()).map(|m| m.chars().take(BY_CHARS_MAX).collect())
}

impl RecordDoc {
    /// A document with no changes, writing as `actor`.
    pub fn empty(actor: ActorId) -> RecordDoc {
        RecordDoc { doc: AutoCommit::new().with_actor(actor), pending: BTreeMap::new() }
    }

    /// A new document holding `record`, and the bytes of the one change that made it.
    /// `time_ms` is the wall-clock time in milliseconds since the Unix epoch.
    pub fn create(
        actor: ActorId,
        record: &Record,
        time_ms: i64,
    ) -> Result<(RecordDoc, Vec<u8>), RecordError> {
        RecordDoc::create_by(actor, record, time_ms, None)
    }

    /// [`RecordDoc::create`], its change saying who made it ([`RecordDoc::update_by`]).
    pub fn create_by(
        actor: ActorId,
        record: &Record,
        time_ms: i64,
        by: Option<&str>,
    ) -> Result<(RecordDoc, Vec<u8>), RecordError> {
        let mut doc = RecordDoc::empty(actor);
        // A new document always gets at least its `kind` key, so there is a change.
        let change = doc
            .update_by(record, time_ms, by)?
            .ok_or(RecordError::Write { reason: "nothing was written" })?;
        Ok((doc, change))
    }

    /// Makes the document hold `record` (the whole new value: fields that did not change
    /// make no operations) and returns the bytes of the one new change, or `None` when
    /// the document already held exactly this value.
    ///
    /// The change's time is `time_ms` in whole seconds, the unit automerge documents for
    /// change times; the log's envelope keeps the milliseconds.
    pub fn update(&mut self, record: &Record, time_ms: i64) -> Result<Option<Vec<u8>>, RecordError> {
        self.update_by(record, time_ms, None)
    }

    /// [`RecordDoc::update`], the change's commit message naming `by`, the person who
    /// made it (an operator of the hub), when given; [`change_by`] reads it back.
    pub fn update_by(
        &mut self,
        record: &Record,
        time_ms: i64,
        by: Option<&str>,
    ) -> Result<Option<Vec<u8>>, RecordError> {
        if self.doc.is_empty() && !self.pending.is_empty() {
            // Writing now would create a second root record beside the one on its way,
            // and one of the two would lose every field at the merge.
            return Err(RecordError::Empty);
        }
        if let Some(stored) = self.stored_kind() {
            if stored != record.kind() {
                return Err(RecordError::KindChanged { stored, given: record.kind() });
            }
        }
        if autosurgeon::reconcile(&mut self.doc, record).is_err() {
            self.doc.rollback();
            return Err(RecordError::Write { reason: "the document refused an operation" });
        }
        let mut options = CommitOptions::default().with_time(time_ms.div_euclid(1000));
        if let Some(by) = by {
            options = options.with_message(by.chars().take(BY_CHARS_MAX).collect::<String>());
        }
        let Some(hash) = self.doc.commit_with(options) else {
            return Ok(None);
        };
        let change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or(RecordError::Write { reason: "the new change is missing from the document" })?;
        Ok(Some(change.raw_bytes().to_vec()))
    }

    /// A document saved by [`RecordDoc::save`], writing as `actor`. Pending changes are
    /// not part of a saved document: re-apply those kept from
    /// [`RecordDoc::pending_changes`].
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<RecordDoc, RecordError> {
        // Stored documents come from a cache that may be damaged: like a change (see
        // `apply_ready`), a load that panics inside automerge is a damaged document.
        let loaded = std::panic::catch_unwind(|| AutoCommit::load(bytes));
        let doc = loaded.ok().and_then(Result::ok).ok_or(RecordError::DamagedDocument)?;
        Ok(RecordDoc { doc: doc.with_actor(actor), pending: BTreeMap::new() })
    }

    /// The applied changes in automerge's compact form (pending changes excluded).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Applies a change made elsewhere. The bytes are untrusted: a damaged, oversized or
    /// compressed change is refused with an error and leaves the document as it was. A
    /// change already applied or already pending is accepted again without effect. A
    /// change whose dependencies have not all arrived is kept pending (see
    /// [`RecordDoc::pending_changes`]) and applied, with everything that waited on it,
    /// once they have.
    ///
    /// A pending change that automerge refuses once its dependencies arrive is dropped:
    /// the error is a property of that change, which stays in the log as evidence.
    pub fn apply_change(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        let change = decode_change(bytes)?;
        let hash = change.hash();
        if self.pending.contains_key(&hash) || has_change(&mut self.doc, &hash) {
            return Ok(());
        }
        if !deps_present(&mut self.doc, &change) {
            self.pending.insert(hash, change);
            return Ok(());
        }
        apply_ready(&mut self.doc, change)?;
        self.apply_ready_pending();
        Ok(())
    }

    /// Applies every pending change whose dependencies are now present, until none is.
    fn apply_ready_pending(&mut self) {
        loop {
            let doc = &mut self.doc;
            let ready: Vec<ChangeHash> = self
                .pending
                .iter()
                .filter(|(_, change)| deps_present(doc, change))
                .map(|(hash, _)| *hash)
                .collect();
            if ready.is_empty() {
                return;
            }
            for hash in ready {
                if let Some(change) = self.pending.remove(&hash) {
                    // Dropped on error: see `apply_change`.
                    let _ = apply_ready(&mut self.doc, change);
                }
            }
        }
    }

    /// Whether some received change waits for a change it depends on.
    pub fn has_missing_deps(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The raw bytes of the changes waiting for their dependencies, in hash order. The
    /// caller keeps them beside the saved document and passes each to
    /// [`RecordDoc::apply_change`] again after [`RecordDoc::load`].
    pub fn pending_changes(&self) -> Vec<Vec<u8>> {
        self.pending.values().map(|change| change.raw_bytes().to_vec()).collect()
    }

    /// The record the document holds now.
    pub fn hydrate(&self) -> Result<Record, RecordError> {
        if self.doc.is_empty() {
            return Err(RecordError::Empty);
        }
        autosurgeon::hydrate(&self.doc).map_err(|e| RecordError::Schema { detail: describe(&e) })
    }

    /// The hashes of the changes no other change depends on yet.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The kind stored at the root, if the document has a readable one.
    fn stored_kind(&self) -> Option<RecordKind> {
        autosurgeon::hydrate_prop(&self.doc, automerge::ROOT, KIND_KEY).ok()
    }
}

/// Checks the envelope of a change before automerge parses it, then parses it and
/// verifies its checksum (automerge's parser does not).
fn decode_change(bytes: &[u8]) -> Result<Change, RecordError> {
    if bytes.len() > BODY_BYTES_MAX {
        return Err(RecordError::ChangeTooLarge { bytes: bytes.len(), max: BODY_BYTES_MAX });
    }
    if bytes.get(..4) != Some(&CHUNK_MAGIC[..]) {
        return Err(RecordError::DamagedChange { reason: "it does not start like an automerge change" });
    }
    if bytes.get(CHUNK_TYPE_OFFSET) != Some(&CHUNK_TYPE_CHANGE) {
        return Err(RecordError::DamagedChange { reason: "it is not a single uncompressed change" });
    }
    let change =
        Change::try_from(bytes).map_err(|_| RecordError::DamagedChange { reason: "it cannot be parsed" })?;
    if change.hash().0.get(..4) != bytes.get(4..8) {
        return Err(RecordError::DamagedChange { reason: "its checksum does not match its content" });
    }
    Ok(change)
}

fn has_change(doc: &mut AutoCommit, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

fn deps_present(doc: &mut AutoCommit, change: &Change) -> bool {
    change.deps().iter().all(|dep| has_change(doc, dep))
}

/// Applies a change whose dependencies are all in `doc`.
///
/// automerge 0.12 checks the encoding of a change but not the consistency of its
/// operations, and panics on some inconsistent ones (an `unwrap` in its batch apply,
/// found by `damaged_real_changes_never_panic`). So the change is applied to a copy of
/// the document (one record: small) under `catch_unwind`, and the copy replaces the
/// document only if it applied cleanly; a panic leaves the document as it was. This
/// relies on the default `panic = "unwind"`; the panic hook still prints the panic.
fn apply_ready(doc: &mut AutoCommit, change: Change) -> Result<(), RecordError> {
    use automerge::AutomergeError as E;
    let mut trial = doc.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let result = trial.apply_changes([change]);
        (trial, result)
    }));
    let (trial, result) =
        outcome.map_err(|_| RecordError::ChangeRejected { reason: "its operations are inconsistent" })?;
    result.map_err(|e| match e {
        E::DuplicateSeqNumber(..) | E::DuplicateActorId(..) | E::DuplicateAuthor(..) => {
            RecordError::ConflictingChange
        }
        E::MissingDeps | E::ChangeGraph(_) | E::MissingHash(_) => {
            RecordError::ChangeRejected { reason: "it depends on a change that is not there" }
        }
        _ => RecordError::ChangeRejected { reason: "its operations do not fit the document" },
    })?;
    *doc = trial;
    Ok(())
}

/// What went wrong while reading a record, without the value found (which could be a
/// person's data in the wrong place).
fn describe(error: &autosurgeon::HydrateError) -> String {
    use autosurgeon::hydrate::Unexpected as U;
    use autosurgeon::HydrateError as H;
    match error {
        H::Automerge(_) => "the document could not be read".to_string(),
        H::ParseMapKey(_) => "a key of a map could not be read".to_string(),
        H::Unexpected(unexpected) => match unexpected {
            U::Other { expected, .. } => format!("expected {expected}"),
            U::None => "a required field is missing".to_string(),
            U::Map => "found a map where a value belongs".to_string(),
            U::Seq => "found a list where a value belongs".to_string(),
            U::Text => "found collaborative text where a value belongs".to_string(),
            U::Boolean => "found a yes/no value where something else belongs".to_string(),
            U::Bytes => "found raw bytes where text belongs".to_string(),
            U::Counter => "found a counter where a value belongs".to_string(),
            U::F64 | U::Int | U::Uint => "found a number where something else belongs".to_string(),
            U::String => "found text where something else belongs".to_string(),
            U::Timestamp => "found a timestamp where something else belongs".to_string(),
            U::Unknown => "found a value of an unknown type".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::samples::*;
    use crate::model::{Attendee, Participant};
    use automerge::transaction::Transactable;
    use proptest::prelude::*;
    use tessera_log::SecretKey;

    fn device_key(seed: u8) -> DeviceKey {
        DeviceKey(SecretKey::from_seed([seed; 32]).public())
    }

    fn actor(seed: u8) -> ActorId {
        actor_for(&device_key(seed))
    }

    fn attendee_of(doc: &RecordDoc) -> Attendee {
        match doc.hydrate().unwrap() {
            Record::Attendee(a) => a,
            other => panic!("not an attendee: {other:?}"),
        }
    }

    const T0: i64 = 1_740_000_000_000;

    #[test]
    fn actor_is_the_first_half_of_the_device_key() {
        let key = device_key(1);
        assert_eq!(actor_for(&key).to_bytes(), &key.as_bytes()[..16]);
        assert_ne!(actor_for(&key), actor(2));
    }

    #[test]
    fn create_update_hydrate_round_trip_for_every_kind() {
        for record in one_of_each() {
            let (mut doc, change) = RecordDoc::create(actor(1), &record, T0).unwrap();
            assert_eq!(doc.hydrate().unwrap(), record);

            // The change alone rebuilds the record on another node.
            let mut other = RecordDoc::empty(actor(2));
            other.apply_change(&change).unwrap();
            assert_eq!(other.hydrate().unwrap(), record);

            // Saved and loaded, it is the same record.
            let saved = doc.save();
            let mut loaded = RecordDoc::load(&saved, actor(1)).unwrap();
            assert_eq!(loaded.hydrate().unwrap(), record);
            assert_eq!(loaded.heads(), doc.heads());
        }
    }

    #[test]
    fn update_makes_exactly_one_change_or_none() {
        let records = one_of_each();
        let Record::Session(mut session) = records[4].clone() else { unreachable!() };
        let (mut doc, _) = RecordDoc::create(actor(1), &Record::Session(session.clone()), T0).unwrap();

        assert_eq!(doc.update(&Record::Session(session.clone()), T0 + 1000).unwrap(), None);

        session.topic = "CIE".into();
        session.headcount = 0;
        session.participants.push(Participant { attendee: r(RecordKind::Attendee, 9), present: true });
        session.mediator = None;
        let bytes = doc.update(&Record::Session(session.clone()), T0 + 61_000).unwrap().unwrap();
        let change = Change::try_from(&bytes[..]).unwrap();
        assert_eq!(change.seq(), 2, "one change per update");
        assert_eq!(change.actor_id(), &actor(1));
        assert_eq!(change.timestamp(), (T0 + 61_000) / 1000, "automerge times are in seconds");
        assert_eq!(doc.heads(), vec![change.hash()]);
        assert_eq!(doc.hydrate().unwrap(), Record::Session(session));
    }

    #[test]
    fn a_record_cannot_change_kind() {
        let records = one_of_each();
        let (mut doc, _) = RecordDoc::create(actor(1), &records[0], T0).unwrap();
        let err = doc.update(&records[1], T0).unwrap_err();
        assert_eq!(err, RecordError::KindChanged { stored: RecordKind::Site, given: RecordKind::Attendee });
    }

    #[test]
    fn concurrent_edits_of_different_fields_both_survive() {
        let base = student("Giulia", "Esempio", r(RecordKind::Site, 1));
        let (mut a, create) = RecordDoc::create(actor(1), &Record::Attendee(base.clone()), T0).unwrap();
        let mut b = RecordDoc::empty(actor(2));
        b.apply_change(&create).unwrap();

        let mut on_a = base.clone();
        on_a.phone = Some("333 1111111".into());
        let change_a = a.update(&Record::Attendee(on_a), T0 + 1).unwrap().unwrap();
        let mut on_b = base.clone();
        on_b.plan_notes = "Segue il corso SPID".into();
        on_b.languages.push("francese".into());
        let change_b = b.update(&Record::Attendee(on_b), T0 + 2).unwrap().unwrap();

        a.apply_change(&change_b).unwrap();
        b.apply_change(&change_a).unwrap();
        let merged = attendee_of(&a);
        assert_eq!(merged, attendee_of(&b));
        assert_eq!(merged.phone.as_deref(), Some("333 1111111"));
        assert_eq!(merged.plan_notes, "Segue il corso SPID");
        assert_eq!(merged.languages, vec!["italiano", "arabo", "francese"]);
    }

    #[test]
    fn concurrent_edits_of_the_same_field_converge() {
        let base = adult("Ahmed", "Prova", r(RecordKind::Site, 1));
        let (mut a, create) = RecordDoc::create(actor(1), &Record::Attendee(base.clone()), T0).unwrap();
        let mut b = RecordDoc::empty(actor(2));
        b.apply_change(&create).unwrap();
        let change_a = a
            .update(
                &Record::Attendee(Attendee { email: Some("a@example.invalid".into()), ..base.clone() }),
                T0,
            )
            .unwrap()
            .unwrap();
        let change_b = b
            .update(
                &Record::Attendee(Attendee { email: Some("b@example.invalid".into()), ..base.clone() }),
                T0,
            )
            .unwrap()
            .unwrap();
        a.apply_change(&change_b).unwrap();
        b.apply_change(&change_a).unwrap();
        let (on_a, on_b) = (attendee_of(&a), attendee_of(&b));
        assert_eq!(on_a, on_b);
        assert!(["a@example.invalid", "b@example.invalid"].contains(&on_a.email.as_deref().unwrap()));
    }

    #[test]
    fn a_change_waits_for_its_dependency_and_then_applies() {
        let base = adult("Ahmed", "Prova", r(RecordKind::Site, 1));
        let (mut a, create) = RecordDoc::create(actor(1), &Record::Attendee(base.clone()), T0).unwrap();
        let edited = Attendee { phone: None, ..base.clone() };
        let edit = a.update(&Record::Attendee(edited.clone()), T0).unwrap().unwrap();

        let mut b = RecordDoc::empty(actor(2));
        b.apply_change(&edit).unwrap();
        assert!(b.has_missing_deps());
        assert_eq!(b.pending_changes(), vec![edit.clone()]);
        assert_eq!(b.hydrate(), Err(RecordError::Empty));
        assert_eq!(b.update(&Record::Attendee(base.clone()), T0), Err(RecordError::Empty));

        // The caller persists the pending bytes with the saved document...
        let saved = b.save();
        let pending = b.pending_changes();
        let mut reloaded = RecordDoc::load(&saved, actor(2)).unwrap_or_else(|_| RecordDoc::empty(actor(2)));
        for change in &pending {
            reloaded.apply_change(change).unwrap();
        }
        assert!(reloaded.has_missing_deps());

        // ...and once the dependency arrives, both apply.
        reloaded.apply_change(&create).unwrap();
        assert!(!reloaded.has_missing_deps());
        assert!(reloaded.pending_changes().is_empty());
        assert_eq!(attendee_of(&reloaded), edited);
        assert_eq!(reloaded.heads(), a.heads());
    }

    #[test]
    fn duplicates_are_accepted_without_effect() {
        let record = one_of_each().remove(2);
        let (mut a, create) = RecordDoc::create(actor(1), &record, T0).unwrap();
        let heads = a.heads();
        a.apply_change(&create).unwrap();
        a.apply_change(&create).unwrap();
        assert_eq!(a.heads(), heads);
        assert_eq!(a.hydrate().unwrap(), record);
    }

    #[test]
    fn damaged_changes_are_refused_with_errors() {
        let record = one_of_each().remove(0);
        let (_, create) = RecordDoc::create(actor(1), &record, T0).unwrap();
        let mut doc = RecordDoc::empty(actor(2));

        let mut flipped = create.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(doc.apply_change(&flipped), Err(RecordError::DamagedChange { .. })));

        let mut compressed = create.clone();
        compressed[CHUNK_TYPE_OFFSET] = 2;
        assert_eq!(
            doc.apply_change(&compressed),
            Err(RecordError::DamagedChange { reason: "it is not a single uncompressed change" })
        );
        assert!(matches!(doc.apply_change(b"hello"), Err(RecordError::DamagedChange { .. })));
        assert!(matches!(doc.apply_change(&[]), Err(RecordError::DamagedChange { .. })));
        let huge = vec![0u8; BODY_BYTES_MAX + 1];
        assert!(matches!(doc.apply_change(&huge), Err(RecordError::ChangeTooLarge { .. })));

        // A whole saved document is not a change either.
        let (mut full, _) = RecordDoc::create(actor(1), &record, T0).unwrap();
        assert!(matches!(doc.apply_change(&full.save()), Err(RecordError::DamagedChange { .. })));

        assert!(doc.pending_changes().is_empty());
        assert_eq!(doc.hydrate(), Err(RecordError::Empty));
        assert!(matches!(RecordDoc::load(b"not a document", actor(1)), Err(RecordError::DamagedDocument)));
    }

    #[test]
    fn a_document_of_another_shape_is_an_error_without_its_content() {
        let mut raw = AutoCommit::new().with_actor(actor(3));
        raw.put(automerge::ROOT, "kind", "attendee").unwrap();
        let record = raw.put_object(automerge::ROOT, "record", automerge::ObjType::Map).unwrap();
        raw.put(&record, "given_name", "Giulia").unwrap();
        raw.put(&record, "family_name", 12_i64).unwrap();
        raw.put(&record, "birth_year", "Esempio").unwrap();
        raw.commit();
        let doc = RecordDoc { doc: raw, pending: BTreeMap::new() };
        let err = doc.hydrate().unwrap_err();
        assert!(matches!(err, RecordError::Schema { .. }));
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("Giulia") && !text.contains("Esempio"), "{text}");
        }

        let mut unknown = AutoCommit::new().with_actor(actor(3));
        unknown.put(automerge::ROOT, "kind", "Giulia Esempio").unwrap();
        unknown.commit();
        let err = RecordDoc { doc: unknown, pending: BTreeMap::new() }.hydrate().unwrap_err();
        assert_eq!(err, RecordError::Schema { detail: "expected a record kind".into() });
    }

    #[test]
    fn a_change_says_who_made_it_and_a_later_one_may_say_someone_else() {
        let record = Record::Site(site("Polo Esempio", "Cooperativa Esempio"));
        let (mut doc, first) = RecordDoc::create_by(actor(4), &record, 1_000, Some("Anna Rossi")).unwrap();
        assert_eq!(change_by(&first).as_deref(), Some("Anna Rossi"));
        let (_, nobody) = RecordDoc::create(actor(5), &record, 1_000).unwrap();
        assert_eq!(change_by(&nobody), None);
        let renamed = Record::Site(site("Polo Esempio Nord", "Cooperativa Esempio"));
        let second = doc.update_by(&renamed, 2_000, Some("Luca Bianchi")).unwrap().unwrap();
        assert_eq!(change_by(&second).as_deref(), Some("Luca Bianchi"));
        assert_eq!(change_by(b"not a change"), None);
    }

    #[test]
    fn optional_fields_absent_from_an_older_document_hydrate_empty() {
        let mut raw = AutoCommit::new().with_actor(actor(3));
        raw.put(automerge::ROOT, "kind", "site").unwrap();
        let record = raw.put_object(automerge::ROOT, "record", automerge::ObjType::Map).unwrap();
        raw.put(&record, "name", "Polo Esempio").unwrap();
        raw.put(&record, "kind", "library").unwrap();
        raw.put(&record, "partner", "Cooperativa Esempio").unwrap();
        raw.commit();
        let doc = RecordDoc { doc: raw, pending: BTreeMap::new() };
        let Record::Site(site) = doc.hydrate().unwrap() else { panic!("not a site") };
        assert_eq!(site.kind, crate::vocab::SiteKind::Library);
        assert_eq!((site.address.as_str(), site.opening_hours.as_str()), ("", ""));
    }

    /// Every byte of real changes inverted in turn, with the checksum made to agree so
    /// that automerge itself sees them: some make automerge 0.12 panic inside
    /// `apply_changes`; each must come back as an error and leave the document intact.
    #[test]
    fn inconsistent_changes_are_refused_not_panicked() {
        let mut caught = 0;
        for record in one_of_each() {
            let (mut source, create) = RecordDoc::create(actor(1), &record, T0).unwrap();
            let mut target = RecordDoc::empty(actor(2));
            target.apply_change(&create).unwrap();
            let heads = target.heads();
            let edited = match &record {
                Record::Session(s) => Record::Session(crate::model::Session { headcount: 7, ..s.clone() }),
                other => other.clone(),
            };
            let edit = source.update(&edited, T0).unwrap().unwrap_or_else(|| create.clone());
            for original in [&create, &edit] {
                for at in CHUNK_TYPE_OFFSET + 1..original.len() {
                    for mask in [0xff_u8] {
                        let mut damaged = original.clone();
                        damaged[at] ^= mask;
                        let Ok(parsed) = Change::try_from(&damaged[..]) else { continue };
                        damaged[4..8].copy_from_slice(&parsed.hash().0[..4]);
                        for doc in [&mut RecordDoc::empty(actor(3)), &mut target.clone_for_test()] {
                            let result = doc.apply_change(&damaged);
                            if result
                                == Err(RecordError::ChangeRejected {
                                    reason: "its operations are inconsistent",
                                })
                            {
                                caught += 1;
                            }
                            let _ = doc.hydrate();
                        }
                    }
                }
            }
            assert_eq!(target.heads(), heads);
            assert_eq!(target.hydrate().unwrap(), record);
        }
        assert!(caught > 0, "the sweep should reach automerge's panics");
    }

    impl RecordDoc {
        fn clone_for_test(&self) -> RecordDoc {
            RecordDoc { doc: self.doc.clone(), pending: self.pending.clone() }
        }
    }

    /// Two actors' edit scripts on one attendee: (actor 0 or 1, field, value).
    fn edit(base: &Attendee, field: u8, value: u8) -> Attendee {
        let mut a = base.clone();
        match field % 6 {
            0 => a.given_name = format!("Giulia{value}"),
            1 => a.phone = if value.is_multiple_of(3) { None } else { Some(format!("333 {value:07}")) },
            2 => a.languages.push(format!("lingua{value}")),
            3 => a.not_duplicates_of.push(r(RecordKind::Attendee, value)),
            4 => a.plan_notes = format!("nota {value}"),
            _ => a.birth_year = 1950 + u16::from(value % 50),
        }
        a
    }

    /// The changes of a little history: a creation, then edits by two actors that see
    /// each other's changes only when the script says so.
    fn history(script: &[(bool, u8, u8, bool)]) -> (Vec<Vec<u8>>, Record) {
        let base = adult("Giulia", "Esempio", r(RecordKind::Site, 1));
        let (mut a, create) = RecordDoc::create(actor(1), &Record::Attendee(base), T0).unwrap();
        let mut b = RecordDoc::empty(actor(2));
        b.apply_change(&create).unwrap();
        let mut changes = vec![create];
        for (i, &(on_b, field, value, sync)) in script.iter().enumerate() {
            let doc = if on_b { &mut b } else { &mut a };
            let next = edit(&attendee_of(doc), field, value);
            if let Some(change) = doc.update(&Record::Attendee(next), T0 + i as i64).unwrap() {
                changes.push(change);
            }
            if sync {
                for change in &changes {
                    a.apply_change(change).unwrap();
                    b.apply_change(change).unwrap();
                }
            }
        }
        for change in &changes {
            a.apply_change(change).unwrap();
        }
        (changes, a.hydrate().unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn same_changes_in_any_order_give_the_same_record(
            script in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..12),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..40),
        ) {
            let (changes, expected) = history(&script);
            // Deliver in an arbitrary order with duplicates, then everything once more
            // in reverse (so every change arrives at least once).
            let mut delivery: Vec<&Vec<u8>> = order.iter().map(|i| i.get(&changes)).collect();
            delivery.extend(changes.iter().rev());
            let mut doc = RecordDoc::empty(actor(3));
            for change in delivery {
                doc.apply_change(change).unwrap();
            }
            prop_assert!(!doc.has_missing_deps());
            prop_assert_eq!(doc.hydrate().unwrap(), expected);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut doc = RecordDoc::empty(actor(1));
            let _ = doc.apply_change(&bytes);
            let _ = doc.hydrate();
            let _ = RecordDoc::load(&bytes, actor(1)).map(|d| d.hydrate());
            let mut with_magic = CHUNK_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = doc.apply_change(&with_magic);
            let _ = RecordDoc::load(&with_magic, actor(1)).map(|d| d.hydrate());
        }

        #[test]
        fn damaged_real_changes_never_panic(
            which in 0usize..5,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            fix_checksum in any::<bool>(),
        ) {
            let record = one_of_each().remove(which);
            let (mut doc, create) = RecordDoc::create(actor(1), &record, T0).unwrap();
            let mut other = RecordDoc::empty(actor(2));
            other.apply_change(&create).unwrap();
            let mut damaged = create.clone();
            for (index, mask) in &flips {
                let at = 9 + index.index(damaged.len() - 9);
                damaged[at] ^= mask;
            }
            if fix_checksum {
                // Make the checksum agree with the damaged body, so that the change gets
                // past the envelope checks into automerge itself.
                if let Ok(parsed) = Change::try_from(&damaged[..]) {
                    damaged[4..8].copy_from_slice(&parsed.hash().0[..4]);
                }
            }
            let _ = other.apply_change(&damaged);
            let _ = other.hydrate();
            let _ = doc.apply_change(&damaged);
            let _ = doc.hydrate();
            let mut fresh = RecordDoc::empty(actor(3));
            let _ = fresh.apply_change(&damaged);
            let _ = fresh.hydrate();
            let _ = RecordDoc::load(&fresh.save(), actor(3)).map(|d| d.hydrate());
            let saved = other.save();
            let _ = RecordDoc::load(&saved, actor(2)).map(|d| d.hydrate());
        }
    }
}
