//! A node: its identity, its store and its materialized records, and the one way to
//! change them ([`Node::transact`]: one signed, durable envelope per operator action).
//!
//! Opening a node takes the store's lock; the `tessera` command opens, acts and closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use tessera_log::{
    DeviceKey, DeviceRole, DocId, Envelope, LogEntry, NetworkId, NewChange, PartnerKey, PublicKey, Salt,
    SecretKey, Seq, Timestamp,
};
use tessera_records::{Record, RecordDoc, RecordKind};
use tessera_seal::{Grant, Scope};
use tessera_store::{IngestReport, Policy, Store, StoreOpenReport};

use crate::config::{NodeConfig, DEVICE_KEY_FILE, KEYS_DIR, STORE_DIR};
use crate::materialize::{CatchUp, Materializer};
use crate::msg::SaidContext as _;

/// Grant changes in one envelope, at most (each holds up to 256 grants).
const GRANT_CHANGES_PER_ENVELOPE_MAX: usize = 8;

/// The wall clock, as the log's informational timestamp.
pub fn now() -> Timestamp {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        Err(_) => Timestamp(0),
    }
}

/// An open node.
#[derive(Debug)]
pub struct Node {
    dir: PathBuf,
    pub config: NodeConfig,
    key: Arc<SecretKey>,
    device: DeviceKey,
    store: Store,
    docs: Materializer,
    pub open_report: StoreOpenReport,
    /// Who is working: recorded with every change ([`Node::set_operator`]); an error
    /// in words, said at the first write, when the hub's list of operators does not
    /// know them or nobody said.
    by: std::result::Result<Option<String>, String>,
}

impl Node {
    /// Opens the node in `dir` (made by `init`).
    pub fn open(dir: &Path) -> Result<Node> {
        let config = NodeConfig::load(dir)?;
        let network = crate::trust_file::parse_network(&config.network)?;
        let key =
            Arc::new(tessera_store::read_secret_key(&dir.join(KEYS_DIR).join(DEVICE_KEY_FILE), "device")?);
        let device = DeviceKey(key.public());
        if device.0.to_hex() != config.device {
            let dir = dir.display();
            bail!(crate::said!(
                "the device key in {dir} does not match node.json: the data directory is damaged",
                "la chiave del dispositivo in {dir} non corrisponde a node.json: la cartella dei dati è danneggiata"
            ));
        }
        let (store, open_report) = Store::open(&dir.join(STORE_DIR), Some(network)).with_said(|| {
            let dir = dir.display();
            (format!("cannot open the store in {dir}"), format!("non riesco ad aprire l'archivio in {dir}"))
        })?;
        if let Some(torn) = &open_report.log.torn_tail {
            tracing::warn!(bytes = torn.bytes_cut, "an unfinished write from a crash was set aside");
        }
        if !open_report.log.damaged.is_empty() {
            tracing::warn!(
                ranges = open_report.log.damaged.len(),
                "the log has damaged records (set aside in store/log/quarantine); `tessera status` tells more"
            );
        }
        let mut docs = Materializer::open(&store, device, key.clone())?;
        docs.catch_up(&store)?;
        Ok(Node { dir: dir.to_path_buf(), config, key, device, store, docs, open_report, by: Ok(None) })
    }

    /// Says who is working (`None`: nobody said), checked against the hub's list of
    /// operators ([`crate::operators`]); their name goes with every change from now on.
    /// A name the list does not know, or none while the list holds names, is refused
    /// at the first write, not here: reading needs no name.
    pub fn set_operator(&mut self, named: Option<&str>, ui: &crate::ui::Ui) {
        self.by = crate::operators::Operators::load(&self.dir, ui)
            .and_then(|list| list.working(named, ui))
            .map_err(|e| format!("{e:#}"));
    }

    /// Who is working, when someone said.
    pub fn operator(&self) -> Option<&str> {
        self.by.as_ref().ok().and_then(|by| by.as_deref())
    }

    /// See [`Store::accept_unknown_damage`].
    pub fn accept_unknown_damage(&mut self) -> Result<usize> {
        Ok(self.store.accept_unknown_damage()?)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn device(&self) -> DeviceKey {
        self.device
    }
    pub fn network(&self) -> NetworkId {
        self.store.network()
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn docs(&self) -> &Materializer {
        &self.docs
    }

    /// Whether this node's device is certified (it can write).
    pub fn is_certified(&self) -> bool {
        let next = self.store.head(&self.device).map(|h| Seq(h.seq.0 + 1)).unwrap_or(Seq::FIRST);
        self.store.trust().authorize(&self.device, next).is_ok()
    }

    /// Writes the new values of `records` as one signed transaction. Returns once the
    /// envelope is durable; the materialized records are updated in the background, and
    /// every read of them waits for that.
    pub fn transact(&mut self, records: &[(DocId, Record)]) -> Result<Option<Envelope>> {
        self.check_may_sign()?;
        let by = match &self.by {
            Ok(by) => by.clone(),
            Err(why) => bail!("{why}"),
        };
        let time = now();
        let actor = tessera_records::actor_for(&self.device);
        let own_partner = self.partner().said(
            "this node's device has no certificate",
            "il dispositivo di questo nodo non ha un certificato",
        )?;
        let scopes = scopes_written(own_partner);
        let (grants, made) = self.docs.keys().owed(self.store.trust(), &scopes)?;
        let mut ring = self.docs.keys().ring().clone();
        for key in made {
            ring.insert(key);
        }
        let network = self.network();
        // Each record as the documents it is kept in, with the scope each is sealed in:
        // an attendee is split, its personal details in the registering partner's scope.
        let mut parts: Vec<(DocId, Record, Scope)> = Vec::with_capacity(records.len() + 1);
        for (doc, record) in records {
            if matches!(record, Record::Attendee(_) | Record::Personal(_))
                && self.store.erased().contains(&tessera_log::Person::of(doc))
            {
                bail!(crate::said!(
                    "not saved: this person was erased, nothing of them can be written again",
                    "non salvato: questa persona è stata cancellata, nulla di lei può essere scritto di nuovo"
                ));
            }
            match record {
                Record::Attendee(attendee) => {
                    let stored = self.docs.record(doc)?;
                    let named = match &stored {
                        Some(Record::Attendee(card)) => card.registered_by.clone(),
                        _ => None,
                    }
                    .or_else(|| attendee.registered_by.clone());
                    let registered_by = match (named, &stored) {
                        (Some(named), _) => named,
                        (None, Some(_)) => self.first_writer_partner(doc)?.unwrap_or(own_partner).0.to_hex(),
                        (None, None) => own_partner.0.to_hex(),
                    };
                    let partner = crate::identity::parse_public_key(&registered_by).map(PartnerKey).said(
                        "the attendee names a partner that is not a key",
                        "l'iscritto indica un ente che non è una chiave",
                    )?;
                    let scope = Scope::Partner(partner);
                    if attendee.is_reserved() {
                        // Not readable here (another partner's person): only what every
                        // hub reads changes (a merge, "not duplicates"); the personal
                        // details stay as their partner wrote them.
                        let (mut card, _) = tessera_records::split_attendee(attendee);
                        card.match_key.clone_from(&attendee.match_key);
                        card.registered_by = Some(registered_by);
                        parts.push((*doc, Record::Attendee(card), Scope::Network));
                        continue;
                    }
                    if ring.current(&scope).is_none() {
                        let name = self.store.trust().partner(&partner).map(|p| p.name.clone());
                        let (en, it) = match &name {
                            Some(name) => (name.as_str(), name.as_str()),
                            None => ("another organisation", "un altro ente"),
                        };
                        bail!(crate::said!(
                            "not saved: this person was registered by {en}, and only that organisation's hubs \
                             (or those it gives access) may read and change their personal details",
                            "non salvato: questa persona è stata iscritta da {it}, e solo le sedi di quell'ente \
                             (o quelle a cui dà accesso) possono leggere e cambiare i suoi dati personali"
                        ));
                    }
                    let (mut card, personal) = tessera_records::split_attendee(attendee);
                    card.registered_by = Some(registered_by);
                    parts.push((*doc, Record::Attendee(card), Scope::Network));
                    parts.push((tessera_records::personal_doc_id(doc), Record::Personal(personal), scope));
                }
                other => parts.push((*doc, other.clone(), Scope::Network)),
            }
        }
        let mut changes = Vec::with_capacity(parts.len());
        for (doc, record, scope) in &parts {
            let change = match self.docs.load(doc)? {
                Some(mut existing) => existing.update_by(record, time.0, by.as_deref())?,
                None => Some(RecordDoc::create_by(actor.clone(), record, time.0, by.as_deref())?.1),
            };
            if let Some(body) = change {
                let key = ring.current(scope).with_said(|| {
                    (
                        format!("no read key of {scope} to seal with"),
                        format!("nessuna chiave di lettura di {scope} con cui cifrare"),
                    )
                })?;
                let sealed = tessera_seal::seal_body(key, &network, doc, &body).said(
                    "the operating system's random source failed",
                    "la sorgente casuale del sistema operativo non ha funzionato",
                )?;
                changes.push(NewChange { doc: *doc, salt: random_salt()?, body: sealed });
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        // Grants first: a reader meets the key before the bodies sealed with it.
        let mut all = grant_changes(grants)?;
        all.extend(changes);
        self.append(time, all).map(Some)
    }

    /// Erases the attendee `doc` (whose current value is `attendee`); see
    /// [`Node::erase_all`].
    pub fn erase(
        &mut self,
        doc: &DocId,
        attendee: &tessera_records::Attendee,
        on: &str,
        reason: tessera_log::ErasureReason,
    ) -> Result<Envelope> {
        self.erase_all(&[(*doc, attendee.clone())], on, reason)
    }

    /// Erases these attendees in one envelope: one signed erasure change each, after
    /// which the store drops every body of their documents from its log (and refuses
    /// them from any copy), and the people database is made again without them. Only
    /// a device of the partner that registered each person may (its id proves it).
    /// Fails if the log could not be rewritten yet (the erasure is saved, bodies are
    /// refused, and the rewrite is retried at the next open).
    pub fn erase_all(
        &mut self,
        attendees: &[(DocId, tessera_records::Attendee)],
        on: &str,
        reason: tessera_log::ErasureReason,
    ) -> Result<Envelope> {
        self.check_may_sign()?;
        let own = self.partner().said(
            "this node's device has no certificate",
            "il dispositivo di questo nodo non ha un certificato",
        )?;
        let scopes = scopes_written(own);
        let (grants, made) = self.docs.keys().owed(self.store.trust(), &scopes)?;
        let mut ring = self.docs.keys().ring().clone();
        for key in made {
            ring.insert(key);
        }
        let key = ring.current(&Scope::Network).said(
            "no read key of the network to seal with",
            "nessuna chiave di lettura della rete con cui cifrare",
        )?;
        let mut changes = grant_changes(grants)?;
        let mut persons = Vec::new();
        for (doc, attendee) in attendees {
            let person = tessera_log::Person::of(doc);
            let nonce = attendee
                .id_nonce
                .as_deref()
                .and_then(|hex_nonce| hex::decode(hex_nonce).ok())
                .and_then(|bytes| <[u8; tessera_log::erasure::NONCE_BYTES]>::try_from(bytes).ok());
            let Some(nonce) = nonce else {
                let id = tessera_records::short_id(doc);
                bail!(crate::said!(
                    "not erased: {id} was registered by a release before erasure existed, and its id cannot \
                     prove which organisation registered it: the network's coordinator erases it with \
                     the network key (`tessera attendee erase ID --yes --network-key FILE`)",
                    "non cancellato: {id} è stato iscritto con una versione di Tessera precedente alla \
                     cancellazione, e il suo codice non può dimostrare quale ente l'ha iscritto: lo cancella il \
                     coordinatore della rete con la chiave della rete \
                     (`tessera attendee erase ID --yes --network-key FILE`)"
                ));
            };
            if tessera_log::person_id(&own, &nonce) != person {
                let id = tessera_records::short_id(doc);
                bail!(crate::said!(
                    "not erased: only the organisation that registered {id} may erase it",
                    "non cancellato: solo l'ente che ha iscritto {id} può cancellarlo"
                ));
            }
            let stub = tessera_records::erased_stub(attendee, tessera_records::Erased::new(on, reason));
            let erasure_doc = person.erasure_doc();
            let sealed =
                tessera_seal::seal_body(key, &self.network(), &erasure_doc, &serde_json::to_vec(&stub)?)
                    .said(
                        "the operating system's random source failed",
                        "la sorgente casuale del sistema operativo non ha funzionato",
                    )?;
            let body = tessera_log::Erasure { erased_on: on.to_string(), reason, nonce, stub: sealed }
                .encode()
                .said("the erasure could not be encoded", "non riesco a codificare la cancellazione")?;
            changes.push(NewChange { doc: erasure_doc, salt: random_salt()?, body });
            persons.push(person);
        }
        let envelope = self.append(now(), changes)?;
        // The people database is made again before this returns (the catch-up after
        // the write sees the erasure).
        self.docs.catch_up(&self.store)?;
        for person in &persons {
            if !self.store.erased().contains(person) {
                bail!(crate::said!(
                    "the erasure was saved but does not count: `tessera audit log` tells why",
                    "la cancellazione è salvata ma non vale: `tessera audit log` dice perché"
                ));
            }
            if !self.store.erasure_scrubbed(person)? {
                bail!(crate::said!(
                    "the erasure is saved and the person's details are no longer shown or sent, but the log \
                     could not be rewritten without them yet (see the log of this command); it is retried \
                     each time Tessera opens this data directory",
                    "la cancellazione è salvata e i dati della persona non sono più mostrati né inviati, ma il \
                     registro non è ancora stato riscritto senza di loro (vedi i messaggi di questo comando); si \
                     riprova ogni volta che Tessera apre questa cartella dei dati"
                ));
            }
        }
        Ok(envelope)
    }

    /// Erases these attendees with the network key (the coordinator's): one trust
    /// entry each, which every node and relay takes like a revocation (it travels in
    /// every sync and bundle). For a person whose registering organisation cannot
    /// erase them.
    pub fn erase_by_network(
        &mut self,
        network_key: &SecretKey,
        attendees: &[DocId],
        on: &str,
        reason: tessera_log::ErasureReason,
    ) -> Result<()> {
        if network_key.public() != self.network().0 {
            bail!(crate::said!(
                "not erased: that key is not this network's key",
                "non cancellato: quella chiave non è la chiave di questa rete"
            ));
        }
        let mut entries = Vec::with_capacity(attendees.len());
        for doc in attendees {
            let statement = tessera_log::TrustStatement::ErasePerson(tessera_log::PersonErasure {
                person: tessera_log::Person::of(doc),
                erased_on: on.to_string(),
                reason,
            });
            entries.push(LogEntry::Trust(crate::identity::sign(self.network(), network_key, statement)?));
        }
        self.ingest(&entries, Policy::AllOrNothing)?;
        for doc in attendees {
            let person = tessera_log::Person::of(doc);
            if !self.store.erased().contains(&person) || !self.store.erasure_scrubbed(&person)? {
                bail!(crate::said!(
                    "the erasure is saved, but the log could not be rewritten without the person yet (see the \
                     log of this command); it is retried each time Tessera opens this data directory",
                    "la cancellazione è salvata, ma il registro non è ancora stato riscritto senza la persona \
                     (vedi i messaggi di questo comando); si riprova ogni volta che Tessera apre questa cartella \
                     dei dati"
                ));
            }
        }
        Ok(())
    }

    /// A new attendee id made from this node's partner key and a random nonce
    /// (returned in hex, for the attendee's `id_nonce`): what lets the partner erase
    /// the person later ([`tessera_log::person_id`]).
    pub fn new_attendee_id(&self) -> Result<(DocId, String)> {
        let partner = self.partner().said(
            "this node's device has no certificate",
            "il dispositivo di questo nodo non ha un certificato",
        )?;
        let mut nonce = [0u8; tessera_log::erasure::NONCE_BYTES];
        getrandom::getrandom(&mut nonce).said(
            "the operating system's random source failed",
            "la sorgente casuale del sistema operativo non ha funzionato",
        )?;
        let person = tessera_log::person_id(&partner, &nonce);
        Ok((person.doc(RecordKind::Attendee.byte()), hex::encode(nonce)))
    }

    /// Writes the grants this node owes (keys for readers that lack them, a new epoch
    /// after a revocation) as an envelope of their own, if there are any and this node
    /// may sign. Called while serving, and before and after a sync or an export.
    pub fn grant_owed(&mut self) -> Result<Option<Envelope>> {
        if self.role().is_none_or(|role| role == DeviceRole::Relay) || self.check_may_sign().is_err() {
            return Ok(None);
        }
        if self.docs.keys().ring().is_empty() {
            // Keys are made by the first write, not by reading.
            return Ok(None);
        }
        let Some(scopes) = self.partner().map(scopes_written) else { return Ok(None) };
        // A key made here (a new epoch) is granted to this device first: it is learned
        // from the envelope like any other.
        let (grants, _made) = self.docs.keys().owed(self.store.trust(), &scopes)?;
        if grants.is_empty() {
            return Ok(None);
        }
        let changes = grant_changes(grants)?;
        self.append(now(), changes).map(Some)
    }

    /// Wraps every key this node holds of the network's and its own partner's scopes
    /// for `device` (an explicit grant: an auditor, another partner's help desk), as an
    /// envelope of its own. Returns the number of keys given.
    pub fn grant_read(&mut self, device: DeviceKey) -> Result<usize> {
        self.check_may_sign()?;
        if self.store.trust().devices().any(|c| c.device == device && c.role == DeviceRole::Relay) {
            bail!(crate::said!(
                "that device is a relay: relays are never given a read key",
                "quel dispositivo è un relay: ai relay non si dà mai una chiave di lettura"
            ));
        }
        if self.store.trust().last_valid(&device).is_some() {
            bail!(crate::said!(
                "that device has been revoked: it is given no key",
                "quel dispositivo è stato revocato: non riceve chiavi"
            ));
        }
        let scopes = scopes_written(self.partner().said(
            "this node's device has no certificate",
            "il dispositivo di questo nodo non ha un certificato",
        )?);
        let grants = self.docs.keys().grants_to(device, &scopes)?;
        if grants.is_empty() {
            return Ok(0);
        }
        let n = grants.len();
        let changes = grant_changes(grants)?;
        self.append(now(), changes)?;
        Ok(n)
    }

    fn check_may_sign(&self) -> Result<()> {
        let next = self.store.head(&self.device).map(|h| Seq(h.seq.0 + 1)).unwrap_or(Seq::FIRST);
        if let Err(e) = self.store.trust().authorize(&self.device, next) {
            let why_it = match e {
                tessera_log::VerifyError::Revoked { .. } => "il suo dispositivo è stato revocato",
                _ => "il suo dispositivo non è certificato in questa rete",
            };
            bail!(crate::said!(
                "this node cannot write yet: {e}. Ask your partner's administrator for a certificate \
                 (`tessera admin certify-device`) and import it with `tessera import FILE`",
                "questo nodo non può ancora scrivere: {why_it}. Chiedi all'amministratore del tuo ente un \
                 certificato (`tessera admin certify-device`) e importalo con `tessera import FILE`"
            ));
        }
        if let Some(blocked) = self.store.signing_blocked(&self.device)? {
            let blocked_it = crate::msg::signing_blocked_text(
                &blocked,
                &crate::ui::Ui { lang: tessera_records::vocab::Lang::It },
            );
            bail!(crate::said!(
                "not saved: {blocked}, and writing now could sign a change number twice. Run \
                 `tessera sync --peer HOST:PORT` with another hub or the relay to get it back; \
                 `tessera status` shows what is missing",
                "non salvato: {blocked_it}, e scrivere adesso potrebbe firmare due volte lo stesso numero di \
                 modifica. Esegui `tessera sync --peer HOST:PORT` con un altro polo o il relay per \
                 recuperarla; `tessera status` mostra cosa manca"
            ));
        }
        Ok(())
    }

    fn append(&mut self, time: Timestamp, changes: Vec<NewChange>) -> Result<Envelope> {
        let envelope = self.store.append_local(&self.key, time, changes)?;
        self.docs.catch_up_in_background(&self.store)?;
        Ok(envelope)
    }

    /// Stores entries received from elsewhere (a bundle, a trust file), then updates
    /// the materialized records.
    pub fn ingest(&mut self, entries: &[LogEntry], policy: Policy) -> Result<(IngestReport, CatchUp)> {
        let mut total = IngestReport::default();
        for (n, chunk) in entries.chunks(tessera_store::INGEST_ENTRIES_MAX).enumerate() {
            let report = self.store.ingest(chunk, policy)?;
            total.appended.extend(report.appended);
            total.trust_added += report.trust_added;
            total.duplicates += report.duplicates;
            total.evidence_added += report.evidence_added;
            total.bodies_filled.extend(report.bodies_filled);
            total.forks.extend(report.forks);
            // Indexes into `entries`, not into the chunk.
            let offset = n * tessera_store::INGEST_ENTRIES_MAX;
            total.rejected.extend(
                report.rejected.into_iter().map(|r| tessera_store::Rejected { index: r.index + offset, ..r }),
            );
        }
        let catch_up = self.docs.catch_up(&self.store)?;
        Ok((total, catch_up))
    }

    /// Stores a batch received by a sync session (all or nothing) and returns the
    /// entries new to this node once they are durable, so the session can acknowledge
    /// them. The materialized records catch up in the background meanwhile (see
    /// `materialize`): the log is the truth, and every read waits for them.
    pub fn ingest_synced(
        &mut self,
        entries: &[LogEntry],
    ) -> Result<Vec<LogEntry>, tessera_sync::IngestFailure> {
        let new = tessera_net::driver::ingest_into_store(&mut self.store, entries)?;
        if let Err(e) = self.docs.catch_up_in_background(&self.store) {
            // The entries are durable; documents catch up at the next open.
            tracing::error!(error = %e, "materialized records could not be updated");
        }
        Ok(new)
    }

    /// Writes buffered derived rows to sled (see `Store::flush_derived`).
    pub fn flush_derived(&mut self) -> Result<()> {
        Ok(self.store.flush_derived()?)
    }

    /// How this node presents itself to peers.
    pub fn net_identity(&self) -> Result<tessera_net::Identity> {
        let key = tessera_store::read_secret_key(&self.dir.join(KEYS_DIR).join(DEVICE_KEY_FILE), "device")?;
        let chain = self.store.trust().chain_of(&self.device).into_iter().cloned().collect();
        Ok(tessera_net::Identity { network: self.network(), key, chain })
    }

    /// A new id for a record of `kind`.
    pub fn new_id(kind: RecordKind) -> Result<DocId> {
        let mut random = [0u8; 15];
        getrandom::getrandom(&mut random).said(
            "the operating system's random source failed",
            "la sorgente casuale del sistema operativo non ha funzionato",
        )?;
        Ok(tessera_records::new_doc_id(kind, random))
    }

    /// Whether changes this node should read (the network's, its own partner's) are
    /// sealed with a key it has not been given yet. Other partners' personal details
    /// are never readable here and do not count.
    pub fn lacks_read_keys(&self) -> bool {
        let own = self.partner();
        self.docs.unreadable_scopes().iter().any(|(scope, _)| match scope {
            Scope::Network => true,
            Scope::Partner(p) => Some(*p) == own,
        })
    }

    /// The partner of the device that wrote the first change of `doc` (by the time of
    /// its envelope): who registered an attendee written before attendees named it.
    fn first_writer_partner(&self, doc: &DocId) -> Result<Option<PartnerKey>> {
        let mut first: Option<(Timestamp, DeviceKey)> = None;
        for (author, seq, _) in self.store.doc_changes(doc)? {
            if let Some(env) = self.store.get(&author, seq)? {
                if first.is_none_or(|(t, _)| env.time() < t) {
                    first = Some((env.time(), author));
                }
            }
        }
        Ok(first.and_then(|(_, author)| {
            self.store.trust().devices().find(|c| c.device == author).map(|c| c.partner)
        }))
    }

    /// The partner this node's device is certified by.
    pub fn partner(&self) -> Option<PartnerKey> {
        self.store.trust().devices().find(|c| c.device == self.device).map(|c| c.partner)
    }

    /// The certificate role of this node, from the trust state.
    pub fn role(&self) -> Option<DeviceRole> {
        self.store.trust().devices().find(|c| c.device == self.device).map(|c| c.role)
    }

    pub fn secret_key_public(&self) -> PublicKey {
        self.key.public()
    }
}

/// The scopes a device of `partner` seals in, makes keys of and passes them on.
fn scopes_written(partner: PartnerKey) -> [Scope; 2] {
    [Scope::Network, Scope::Partner(partner)]
}

fn random_salt() -> Result<Salt> {
    Salt::random().said(
        "the operating system's random source failed",
        "la sorgente casuale del sistema operativo non ha funzionato",
    )
}

/// Grants as changes of new grant documents, at most [`GRANT_CHANGES_PER_ENVELOPE_MAX`]
/// (what does not fit is owed again at the next write).
fn grant_changes(grants: Vec<Grant>) -> Result<Vec<NewChange>> {
    let mut changes = Vec::new();
    for chunk in grants.chunks(tessera_seal::GRANTS_PER_BODY_MAX).take(GRANT_CHANGES_PER_ENVELOPE_MAX) {
        let mut random = [0u8; 15];
        getrandom::getrandom(&mut random).said(
            "the operating system's random source failed",
            "la sorgente casuale del sistema operativo non ha funzionato",
        )?;
        changes.push(NewChange {
            doc: tessera_seal::grant_doc_id(random),
            salt: random_salt()?,
            body: tessera_seal::encode_grants(chunk),
        });
    }
    Ok(changes)
}

impl Drop for Node {
    fn drop(&mut self) {
        // The documents first, while the store (and its lock) is still held.
        if let Err(e) = self.docs.close() {
            tracing::error!(error = %e, "materialized records could not be written; they catch up at the next open");
        }
    }
}

impl tessera_net::driver::SyncStore for Node {
    fn with_log(&self, f: &mut dyn FnMut(&dyn tessera_sync::LocalLog)) {
        f(&tessera_net::driver::StoreLog(&self.store))
    }
    fn ingest_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<LogEntry>, tessera_sync::IngestFailure> {
        self.ingest_synced(entries)
    }
    fn trust(&self) -> tessera_log::TrustState {
        self.store.trust().clone()
    }
}
