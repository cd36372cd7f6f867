//! Erasure in the store (see [`tessera_log::erasure`]): which persons are erased, the
//! bodies of their documents refused on arrival, and the log rewritten without the
//! bodies it already holds (every header kept, in place, so the chain still verifies
//! and every log position stays valid).
//!
//! Whether an erasure is effective is decided from headers alone (who wrote the
//! person's details, who signed the erasure), so a relay, which reads no body, decides
//! as a hub does. Rows `x` mark the persons whose bodies are already gone from this
//! log: a person effective but not marked (a crash mid-rewrite, a rebuilt sled) is
//! scrubbed again at the next open; scrubbing twice changes nothing.

use std::collections::BTreeSet;
use std::fs;

use tessera_log::erasure::{erases_body_of, is_erasure_doc, ERASURE_DOC_KIND};
use tessera_log::{Body, DocId, Envelope, Erasure, LogEntry, Person};

use super::{Store, LOG_DIR};
use crate::derived;
use crate::error::StoreError;
use crate::segments::RecordLocation;

/// Persons scrubbed by byte search (one finder each) rather than by decoding every
/// record: below this many, searching is faster.
const SEARCHED_PERSONS_MAX: usize = 32;

/// What one scrub removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Persons whose bodies were looked for.
    pub persons: usize,
    /// Log records rewritten without bodies.
    pub records_rewritten: usize,
    /// Bodies removed.
    pub bodies_removed: usize,
    /// Quarantined copies of damaged or torn bytes that named an erased person, deleted.
    pub quarantine_files_removed: usize,
}

impl Store {
    /// Persons whose erasure is effective here: their bodies are refused and gone.
    pub fn erased(&self) -> &BTreeSet<Person> {
        &self.erased
    }

    /// Whether the body of a change of `doc` is erased here.
    pub(crate) fn body_erased(&self, doc: &DocId) -> bool {
        !self.erased.is_empty() && erases_body_of(&|p: &Person| self.erased.contains(p), doc)
    }

    /// Whether `env` lacks a body that is not erased (one a peer can give back).
    pub(crate) fn lacks_wanted_bodies(&self, env: &Envelope) -> bool {
        env.changes()
            .iter()
            .zip(env.bodies())
            .any(|(c, b)| matches!(b, Body::Absent) && !self.body_erased(&c.doc))
    }

    /// `entry` without the bodies of erased persons (refused on arrival), if it has any.
    pub(crate) fn without_erased_bodies(&self, entry: &LogEntry) -> Option<LogEntry> {
        let LogEntry::Envelope(env) = entry else { return None };
        if self.erased.is_empty() {
            return None;
        }
        let mut stripped = env.clone();
        if stripped.strip_bodies_where(|doc| self.body_erased(doc)) == 0 {
            return None;
        }
        Some(LogEntry::Envelope(stripped))
    }

    /// The erasure of `person` that counts here, if any: the first, in (author, seq)
    /// order, of the changes of their erasure document whose envelope still counts
    /// (not past a revocation, not at or after a fork) and whose signer the rule of
    /// [`tessera_log::erasure_counts`] allows; else the network key's erasure of them
    /// (a trust entry: no nonce, no stub). The same on every store holding the same
    /// entries.
    pub fn erasure_of(&self, person: &Person) -> Result<Option<Erasure>, StoreError> {
        for (author, seq, index) in self.doc_changes(&person.erasure_doc())? {
            if !tessera_log::still_counts(&self.trust, &self.forks, &author, seq) {
                continue;
            }
            let Some(env) = self.get(&author, seq)? else { continue };
            let Some(Body::Present { bytes, .. }) = env.bodies().get(usize::from(index)) else { continue };
            let Ok(erasure) = Erasure::decode(bytes) else { continue };
            if tessera_log::erasure_counts(&self.trust, &author, person, &erasure) {
                return Ok(Some(erasure));
            }
        }
        Ok(self.trust.network_erasures().find(|e| e.person == *person).map(|e| Erasure {
            erased_on: e.erased_on.clone(),
            reason: e.reason,
            nonce: [0; tessera_log::erasure::NONCE_BYTES],
            stub: Vec::new(),
        }))
    }

    /// Whether the bodies of erased `person` are known to be gone from this log (its
    /// scrub finished).
    pub fn erasure_scrubbed(&self, person: &Person) -> Result<bool, StoreError> {
        Ok(self.row(&derived::erased_key(person))?.is_some())
    }

    /// Every person an erasure change held here names, effective or not, and every
    /// person the network key erased.
    fn persons_with_erasures(&self) -> Result<BTreeSet<Person>, StoreError> {
        let mut out: BTreeSet<Person> = self.trust.network_erasures().map(|e| e.person).collect();
        for key in self.rows_with_prefix(&[derived::DOC, ERASURE_DOC_KIND])?.into_keys() {
            let doc = derived::array_at::<16>(&key, 1)
                .ok_or_else(|| StoreError::CorruptDerived("bad document index row".into()))?;
            out.insert(Person::of(&DocId(doc)));
        }
        Ok(out)
    }

    /// At open, and after trust or forks changed: which erasures count now. Persons
    /// newly erased are scrubbed, and so is any erased person whose scrub did not
    /// finish (a crash, a full disk). A person no longer erased (the erasure's device
    /// was revoked before it, or forked) has their bodies asked for again. A scrub that
    /// fails is logged and retried at the next open: bodies stay refused meanwhile.
    pub(crate) fn refresh_erasures(&mut self) -> Result<(), StoreError> {
        let mut erased = BTreeSet::new();
        for person in self.persons_with_erasures()? {
            if self.erasure_of(&person)?.is_some() {
                erased.insert(person);
            }
        }
        let mut gone: BTreeSet<Person> = self.erased.difference(&erased).copied().collect();
        // A "scrubbed" mark of a person not erased now is stale (a backup's derived
        // rows beside a newer log, a crash before the mark's removal was written):
        // left, it would skip the scrub when the erasure counts again.
        for key in self.rows_with_prefix(&[derived::ERASED])?.into_keys() {
            if let Some(person) = derived::array_at::<15>(&key, 1).map(Person) {
                if !erased.contains(&person) {
                    gone.insert(person);
                }
            }
        }
        self.erased = erased;
        for person in gone {
            self.want_again(&person)?;
        }
        let mut due = BTreeSet::new();
        for person in &self.erased {
            if !self.erasure_scrubbed(person)? {
                due.insert(*person);
            }
        }
        if !due.is_empty() {
            if let Err(e) = self.scrub(&due) {
                tracing::error!(error = %e, "erased bodies could not be removed from the log yet; retried at the next open");
            }
        }
        self.forget_erased_wants()?;
        if self.pending_applied.is_none() && !self.derived_lagging && !self.pending_rows.is_empty() {
            self.pending_applied = Some(self.log.end());
        }
        Ok(())
    }

    /// After a batch: erasures that count since it (`docs`: the documents of the
    /// envelopes it added), scrubbed from the log at once; every erasure again when
    /// trust or forks changed.
    pub(crate) fn erasures_after_batch(
        &mut self,
        docs: &BTreeSet<DocId>,
        trust_or_forks_changed: bool,
    ) -> Result<Option<ScrubReport>, StoreError> {
        if trust_or_forks_changed && !self.persons_with_erasures()?.is_empty() {
            let before = self.erased.len();
            self.refresh_erasures()?;
            let persons = self.erased.len().saturating_sub(before);
            return Ok((persons > 0).then(|| ScrubReport { persons, ..ScrubReport::default() }));
        }
        let mut newly = BTreeSet::new();
        for doc in docs.iter().filter(|doc| is_erasure_doc(doc)) {
            let person = Person::of(doc);
            if !self.erased.contains(&person) && self.erasure_of(&person)?.is_some() {
                newly.insert(person);
            }
        }
        if newly.is_empty() {
            return Ok(None);
        }
        self.erased.extend(newly.iter().copied());
        self.scrub(&newly).map(Some)
    }

    /// Envelopes held without erased bodies only (stripped by a carrier, on arrival,
    /// or replayed at open before the erased set was known) no longer wait for them.
    fn forget_erased_wants(&mut self) -> Result<(), StoreError> {
        if self.erased.is_empty() {
            return Ok(());
        }
        for key in self.rows_with_prefix(&[derived::BODIES_MISSING])?.into_keys() {
            let Some((author, seq)) = derived::decode_author_seq(&key) else { continue };
            if let Some(env) = self.get(&author, seq)? {
                if !self.lacks_wanted_bodies(&env) {
                    self.pending_rows.insert(key, None);
                }
            }
        }
        Ok(())
    }

    /// `person` is no longer erased: envelopes lacking their bodies wait for them again.
    fn want_again(&mut self, person: &Person) -> Result<(), StoreError> {
        self.pending_rows.insert(derived::erased_key(person), None);
        for kind in (0..=u8::MAX).filter(|k| *k != ERASURE_DOC_KIND) {
            for (author, seq, _) in self.doc_changes(&person.doc(kind))? {
                if let Some(env) = self.get(&author, seq)? {
                    if self.lacks_wanted_bodies(&env) {
                        self.pending_rows.insert(derived::bodies_missing_key(&author, seq), Some(Vec::new()));
                    }
                }
            }
        }
        tracing::warn!("an erasure no longer counts (its device was revoked before it, or forked)");
        if self.pending_applied.is_none() && !self.derived_lagging {
            self.pending_applied = Some(self.log.end());
        }
        Ok(())
    }

    /// Rewrites every log record holding a body of `persons` without it, updates the
    /// rows that point at those records, deletes quarantined copies naming them, and
    /// marks them scrubbed. `persons` must be in `self.erased`.
    fn scrub(&mut self, persons: &BTreeSet<Person>) -> Result<ScrubReport, StoreError> {
        let mut report = ScrubReport { persons: persons.len(), ..ScrubReport::default() };
        let finders: Vec<memchr::memmem::Finder<'_>> = if persons.len() <= SEARCHED_PERSONS_MAX {
            persons.iter().map(|p| memchr::memmem::Finder::new(&p.0[..])).collect()
        } else {
            Vec::new()
        };
        let erased_here = |doc: &DocId| erases_body_of(&|p: &Person| persons.contains(p), doc);
        let mut rewrites: Vec<(RecordLocation, Envelope)> = Vec::new();
        for item in self.log.iter_from(self.log.start()) {
            let (at, bytes) = item?;
            if !finders.is_empty() && !finders.iter().any(|f| f.find(&bytes).is_some()) {
                continue;
            }
            let Ok(LogEntry::Envelope(mut env)) = LogEntry::decode(&bytes) else { continue };
            let dropped = env.strip_bodies_where(erased_here);
            if dropped == 0 {
                continue;
            }
            report.bodies_removed += dropped;
            rewrites.push((at, env));
        }
        drop(finders);
        report.records_rewritten = rewrites.len();
        if !rewrites.is_empty() {
            let replacements: Vec<(RecordLocation, Vec<u8>)> =
                rewrites.iter().map(|(at, env)| (*at, LogEntry::Envelope(env.clone()).encode())).collect();
            let moved = self.log.rewrite_records(&replacements)?;
            let forks = self.rows_with_prefix(&[derived::FORK])?;
            for ((old, env), new) in rewrites.iter().zip(moved) {
                let (author, seq) = (env.author(), env.seq());
                let chain_key = derived::chain_key(&author, seq);
                if let Some((held, id)) = self.row(&chain_key)?.and_then(|v| derived::decode_chain(&v)) {
                    if held == *old {
                        self.pending_rows.insert(chain_key, Some(derived::encode_chain(&new, &id)));
                        let missing = self.lacks_wanted_bodies(env).then(Vec::new);
                        self.pending_rows.insert(derived::bodies_missing_key(&author, seq), missing);
                    }
                }
                for (key, value) in &forks {
                    if derived::decode_location(value) == Some(*old) {
                        self.pending_rows.insert(key.clone(), Some(derived::encode_location(&new).to_vec()));
                    }
                }
            }
        }
        self.forget_erased_wants()?;
        report.quarantine_files_removed = self.remove_quarantined(persons)?;
        for person in persons {
            self.pending_rows.insert(derived::erased_key(person), Some(Vec::new()));
        }
        if self.pending_applied.is_none() && !self.derived_lagging {
            self.pending_applied = Some(self.log.end());
        }
        self.flush_derived()?;
        tracing::info!(
            persons = report.persons,
            records = report.records_rewritten,
            bodies = report.bodies_removed,
            "erased bodies removed from the log"
        );
        Ok(report)
    }

    /// Deletes quarantined copies (torn or damaged bytes set aside) that name any of
    /// `persons`: they may hold their bodies.
    fn remove_quarantined(&self, persons: &BTreeSet<Person>) -> Result<usize, StoreError> {
        let dir = self.dir.join(LOG_DIR).join("quarantine");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io("list", &dir)(e)),
        };
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(StoreError::io("list", &dir))?.path();
            let bytes = fs::read(&path).map_err(StoreError::io("read", &path))?;
            if persons.iter().any(|p| memchr::memmem::find(&bytes, &p.0).is_some()) {
                fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(StoreError::io("sync", &dir))?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tessera_log::erasure::{Erasure, ErasureReason};
    use tessera_log::testkit::TestNetwork;
    use tessera_log::{LogEntry, Person};

    use crate::{Policy, Store};

    const CARD: &[u8] = b"CANARY-CARD Pesenti 2011";
    const DETAILS: &[u8] = b"CANARY-DETAILS guardian 333 1234567";
    const MERGE: &[u8] = b"CANARY-MERGE by another partner";

    fn open_new(dir: &Path, net: &TestNetwork) -> Store {
        let (mut store, _) = Store::open(dir, Some(net.network)).unwrap();
        let trust: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
        store.ingest(&trust, Policy::AllOrNothing).unwrap();
        store
    }

    const NONCE: [u8; 16] = [0x5A; 16];

    fn erasure_body() -> Vec<u8> {
        Erasure {
            erased_on: "2026-12-07".into(),
            reason: ErasureReason::Request,
            nonce: NONCE,
            stub: vec![0xAB; 48],
        }
        .encode()
        .unwrap()
    }

    /// A person registered by partner 0 (device 0's).
    fn person_of_partner0(net: &TestNetwork) -> Person {
        tessera_log::person_id(&net.devices[0].partner, &NONCE)
    }

    /// Device 0 (partner 0) registers the person (card, details and an unrelated
    /// record in one envelope); device 1 (partner 1) edits the card.
    fn person_history(net: &mut TestNetwork, person: Person) -> Vec<LogEntry> {
        person_history_with(net, person, 1)
    }

    fn person_history_with(net: &mut TestNetwork, person: Person, other_partner: usize) -> Vec<LogEntry> {
        let network = net.network;
        let other = tessera_log::testkit::test_doc(5, 5);
        vec![
            LogEntry::Envelope(net.devices[0].next(
                &network,
                &[(person.doc(2), CARD), (person.personal_doc(), DETAILS), (other, b"a site")],
            )),
            LogEntry::Envelope(net.devices[other_partner].next(&network, &[(person.doc(2), MERGE)])),
        ]
    }

    fn erasure_by(net: &mut TestNetwork, device: usize, person: Person) -> LogEntry {
        let network = net.network;
        LogEntry::Envelope(net.devices[device].next(&network, &[(person.erasure_doc(), &erasure_body())]))
    }

    /// Every file under `dir` that holds `needle`.
    fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if memchr::memmem::find(&std::fs::read(&path).unwrap(), needle).is_some() {
                    out.push(path.display().to_string());
                }
            }
        }
        out
    }

    fn canaries_in(dir: &Path) -> Vec<String> {
        files_holding(&dir.join("log"), b"CANARY")
    }

    #[test]
    fn an_erasure_removes_the_bodies_keeps_the_headers_and_refuses_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(41, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let mut store = open_new(dir.path(), &net);
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        assert!(!canaries_in(dir.path()).is_empty(), "the canaries are written first");
        let end_before = store.log_end();

        let report = store.ingest(&[erasure_by(&mut net, 0, person)], Policy::AllOrNothing).unwrap();
        assert_eq!(report.erased, 1);
        assert!(store.erased().contains(&person));
        assert_eq!(canaries_in(dir.path()), Vec::<String>::new());
        // The log grew by the erasure, not by a copy: the rewritten records kept their place.
        assert!(
            store.log_end().offset - end_before.offset < 400,
            "{:?} -> {:?}",
            end_before,
            store.log_end()
        );
        // Every header stays; the unrelated body stays; nothing is asked for again.
        let (a, b) = (net.devices[0].id, net.devices[1].id);
        let first = store.get(&a, tessera_log::Seq(1)).unwrap().unwrap();
        assert!(LogEntry::Envelope(first.clone()).encode().len() < history[0].encode().len());
        assert_eq!(
            first.present_changes().map(|(_, body)| body.to_vec()).collect::<Vec<_>>(),
            vec![b"a site".to_vec()]
        );
        assert!(store.get(&b, tessera_log::Seq(1)).unwrap().is_some());
        assert!(store.bodies_missing(10).unwrap().is_empty());

        // An old copy (a bundle, a stale hub) brings nothing back.
        let again = store.ingest(&history, Policy::AllOrNothing).unwrap();
        assert!(again.bodies_filled.is_empty());
        assert_eq!(canaries_in(dir.path()), Vec::<String>::new());

        // After a restart, and after sled is rebuilt from the log, the same.
        drop(store);
        let (store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(store.erased().contains(&person));
        drop(store);
        std::fs::remove_dir_all(dir.path().join("derived")).unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(store.erased().contains(&person));
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        assert_eq!(canaries_in(dir.path()), Vec::<String>::new());
        // The log still verifies from its start: every record replays.
        let contents = crate::read_store(dir.path()).unwrap();
        assert!(contents.damaged.is_empty() && contents.unread_tail.is_none());
        let trust = net.trust();
        for entry in &contents.entries {
            if let LogEntry::Envelope(env) = entry {
                trust.verify_envelope_signature(env).unwrap();
                env.verify_bodies().unwrap();
            }
        }
    }

    #[test]
    fn another_partner_cannot_forge_the_right_to_erase() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(46, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let mut store = open_new(dir.path(), &net);
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        // Partner 1 writes junk "details" of the person and an erasure in one envelope.
        let network = net.network;
        let forged = LogEntry::Envelope(
            net.devices[1]
                .next(&network, &[(person.personal_doc(), b"junk"), (person.erasure_doc(), &erasure_body())]),
        );
        let report = store.ingest(&[forged], Policy::AllOrNothing).unwrap();
        assert_eq!(report.erased, 0);
        assert!(store.erased().is_empty());
        assert!(!canaries_in(dir.path()).is_empty(), "nothing erased");
        assert_eq!(store.erasure_of(&person).unwrap(), None);
    }

    #[test]
    fn a_stale_scrubbed_mark_does_not_skip_the_scrub_when_the_erasure_counts_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(53, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let mut store = open_new(dir.path(), &net);
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        // A mark "scrubbed" beside a log that holds the person's bodies: what a backup
        // of the derived rows taken at another time than the log leaves.
        store.tree.insert(crate::derived::erased_key(&person), Vec::<u8>::new()).unwrap();
        store.tree.flush().unwrap();
        drop(store);
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(store.erased().is_empty());
        // The erasure arrives with a trust change (the erased set is recomputed).
        let revocation =
            LogEntry::Trust(net.revoke_device(1, net.devices[1].id, tessera_log::Seq(9), "replaced"));
        store.ingest(&[erasure_by(&mut net, 0, person), revocation], Policy::AllOrNothing).unwrap();
        assert!(store.erased().contains(&person));
        assert_eq!(canaries_in(dir.path()), Vec::<String>::new(), "the bodies are scrubbed");
    }

    #[test]
    fn an_erasure_past_its_devices_revocation_counts_nowhere_whatever_the_order() {
        let mut net = TestNetwork::new(47, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let erasure = erasure_by(&mut net, 0, person);
        // Device 0 is revoked as of its envelope 1: the erasure (its envelope 2) is
        // after the theft.
        let revocation =
            LogEntry::Trust(net.revoke_device(0, net.devices[0].id, tessera_log::Seq(1), "stolen"));
        let device0 = net.devices[0].id;
        for order in [
            vec![history.clone(), vec![erasure.clone()], vec![revocation.clone()]],
            vec![history.clone(), vec![revocation.clone()], vec![erasure.clone()]],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = open_new(dir.path(), &net);
            for batch in &order {
                store.ingest(batch, Policy::AllOrNothing).unwrap();
            }
            assert!(store.erased().is_empty(), "the erasure does not count");
            // Where it counted for a while, the bodies are asked for again, and the
            // registering envelope (before the revocation) gets them back from a copy.
            store.ingest(&history, Policy::AllOrNothing).unwrap();
            assert!(store.bodies_missing(10).unwrap().is_empty());
            let first = store.get(&device0, tessera_log::Seq(1)).unwrap().unwrap();
            assert!(first.has_all_bodies());
        }
    }

    #[test]
    fn an_erasure_by_another_partner_erases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(42, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let mut store = open_new(dir.path(), &net);
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        // Partner 1 only edited the card: it did not register the person.
        let report = store.ingest(&[erasure_by(&mut net, 1, person)], Policy::AllOrNothing).unwrap();
        assert_eq!(report.erased, 0);
        assert!(store.erased().is_empty());
        assert!(!canaries_in(dir.path()).is_empty());
    }

    #[test]
    fn an_erasure_that_arrives_first_refuses_the_details() {
        // Two devices per partner: the registering hub's colleague erases.
        let mut net = TestNetwork::new(43, 2, 2);
        let person = person_of_partner0(&net);
        let history = person_history_with(&mut net, person, 2);
        let erasure = erasure_by(&mut net, 1, person);
        // The erasure before the person (another order of the same entries), and all
        // in one batch: both end with no body of the person in the log.
        for batches in [
            vec![vec![erasure.clone()], history.clone()],
            vec![[history.clone(), vec![erasure.clone()]].concat()],
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = open_new(dir.path(), &net);
            for batch in &batches {
                store.ingest(batch, Policy::SkipInvalid).unwrap();
            }
            assert!(store.erased().contains(&person));
            assert_eq!(canaries_in(dir.path()), Vec::<String>::new());
            assert!(store.bodies_missing(10).unwrap().is_empty());
        }
    }

    #[test]
    fn quarantined_copies_naming_an_erased_person_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut net = TestNetwork::new(44, 2, 1);
        let person = person_of_partner0(&net);
        let history = person_history(&mut net, person);
        let mut store = open_new(dir.path(), &net);
        store.ingest(&history, Policy::AllOrNothing).unwrap();
        drop(store);
        // A torn write set aside that held the person's first envelope.
        let quarantine = dir.path().join("log").join("quarantine");
        std::fs::create_dir_all(&quarantine).unwrap();
        std::fs::write(quarantine.join("0000000000000001-99.torn"), history[0].encode()).unwrap();
        std::fs::write(quarantine.join("0000000000000001-12.torn"), b"someone else").unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        store.ingest(&[erasure_by(&mut net, 0, person)], Policy::AllOrNothing).unwrap();
        assert_eq!(canaries_in(dir.path()), Vec::<String>::new());
        assert!(quarantine.join("0000000000000001-12.torn").exists());
    }

    #[test]
    fn a_derived_database_of_an_older_release_is_deleted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(45, 1, 1);
        let store = open_new(dir.path(), &net);
        // An older node kept attendees in clear in a tree of this database.
        store.derived_tree("docs").unwrap().insert(b"r-attendee", &b"CANARY-OLD-RELEASE"[..]).unwrap();
        store.tree.insert(crate::derived::META_LAYOUT, &3u32.to_be_bytes()).unwrap();
        store.db.flush().unwrap();
        drop(store);
        assert!(!files_holding(&dir.path().join("derived"), b"CANARY-OLD-RELEASE").is_empty());
        let (store, report) = Store::open(dir.path(), Some(net.network)).unwrap();
        assert!(matches!(report.derived, crate::DerivedStatus::Rebuilt { .. }), "{:?}", report.derived);
        assert!(store.derived_tree("docs").unwrap().is_empty());
        store.db.flush().unwrap();
        assert_eq!(files_holding(&dir.path().join("derived"), b"CANARY-OLD-RELEASE"), Vec::<String>::new());
        assert_eq!(store.trust().devices().count(), 1, "rebuilt from the log");
    }
}
