//! The IO shell around a [`tessera_sync::Session`]: feeds it the frames of one
//! authenticated [`Channel`], writes what it wants sent, stores the batches it hands
//! over, arms its timer, and pushes entries stored by other sessions to the peer
//! (live mode). All protocol decisions are the session's; this file only moves bytes
//! and calls the store.
//!
//! Store calls (fsync'd ingest) run on the async task itself: they take milliseconds,
//! and keeping them in line keeps the order "store, then Ack" obvious.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_log::{DeviceKey, Envelope, LogEntry, Seq, TrustState, VersionVector};
use tessera_store::{Policy, Store, StoreError};
use tessera_sync::{
    CloseReason, Event, IngestFailure, LocalLog, LocalLogError, Session, SessionConfig, SessionError,
    SessionStats, WantKind, Wanted,
};
use tokio::sync::{broadcast, mpsc};

use crate::{Channel, NetError, Peer};

/// Frames read ahead of the session (the reader task's queue).
const INBOUND_FRAMES_MAX: usize = 8;
/// Stored batches kept for live fan-out to other sessions; a session that falls
/// further behind is closed and resumes from version vectors when it reconnects.
pub const FANOUT_BATCHES_MAX: usize = 256;

/// A store a session can read and write.
pub trait SyncStore: Send + 'static {
    /// Runs `f` with the node's log as the session reads it.
    fn with_log(&self, f: &mut dyn FnMut(&dyn LocalLog));
    /// Verifies and durably stores a batch, all or nothing. Returns the entries that
    /// were new to this store (to push to other peers).
    fn ingest_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<LogEntry>, IngestFailure>;
    /// The trust state the transport checks peers against.
    fn trust(&self) -> TrustState;
}

/// [`LocalLog`] over a [`Store`].
#[derive(Debug)]
pub struct StoreLog<'a>(pub &'a Store);

impl LocalLog for StoreLog<'_> {
    fn heads(&self) -> &VersionVector {
        self.0.heads()
    }
    fn trust(&self) -> &TrustState {
        self.0.trust()
    }
    fn envelope(&self, author: &DeviceKey, seq: Seq) -> Result<Option<Envelope>, LocalLogError> {
        self.0.get(author, seq).map_err(|e| LocalLogError { reason: e.to_string() })
    }
    fn forks_known(&self) -> usize {
        self.0.forks().len()
    }
    fn fork_evidence(&self) -> Result<Vec<Envelope>, LocalLogError> {
        self.0.fork_evidence().map_err(|e| LocalLogError { reason: e.to_string() })
    }
    /// Holes first (envelopes the log lost to damage), then stripped bodies, of
    /// envelopes that still count: nobody passes on one past a revocation or a fork,
    /// and asking for it every minute would only ask in vain.
    fn wanted(&self, limit: usize) -> Result<Vec<Wanted>, LocalLogError> {
        let error = |e: tessera_store::StoreError| LocalLogError { reason: e.to_string() };
        let store = self.0;
        let counts = |(author, seq): &(DeviceKey, Seq)| {
            tessera_log::still_counts(store.trust(), store.forks(), author, *seq)
        };
        let holes = store.holes(usize::MAX).map_err(error)?.into_iter().filter(counts);
        let mut out: Vec<Wanted> =
            holes.take(limit).map(|(author, seq)| Wanted { author, seq, kind: WantKind::Envelope }).collect();
        let missing = store.bodies_missing(usize::MAX).map_err(error)?.into_iter().filter(counts);
        out.extend(missing.take(limit - out.len()).map(|(author, seq)| Wanted {
            author,
            seq,
            kind: WantKind::Bodies,
        }));
        Ok(out)
    }
}

/// Stores a batch in `store` for a session: the entries written, or why not.
pub fn ingest_into_store(store: &mut Store, entries: &[LogEntry]) -> Result<Vec<LogEntry>, IngestFailure> {
    match store.ingest(entries, Policy::AllOrNothing) {
        Ok(report) => {
            let new: std::collections::BTreeSet<(DeviceKey, Seq)> = report.appended.iter().copied().collect();
            Ok(entries
                .iter()
                .filter(|e| match e {
                    LogEntry::Envelope(env) => new.contains(&(env.author(), env.seq())),
                    LogEntry::Trust(t) => report.trust_added > 0 && store.trust().contains(&t.id()),
                })
                .cloned()
                .collect())
        }
        Err(StoreError::Rejected { index, error }) => {
            Err(IngestFailure::Rejected { index, reason: error.to_string() })
        }
        Err(e) => Err(IngestFailure::Local { reason: e.to_string() }),
    }
}

impl SyncStore for Store {
    fn with_log(&self, f: &mut dyn FnMut(&dyn LocalLog)) {
        f(&StoreLog(self))
    }
    fn ingest_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<LogEntry>, IngestFailure> {
        ingest_into_store(self, entries)
    }
    fn trust(&self) -> TrustState {
        Store::trust(self).clone()
    }
}

/// Entries stored by some session, announced to the others.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The session that stored them (it does not push them back).
    pub by: u64,
    pub entries: Arc<Vec<LogEntry>>,
}

/// How a session ended.
#[derive(Debug)]
pub struct Summary {
    pub peer: Peer,
    pub stats: SessionStats,
    /// Bytes on the stream, frames included, after compression (`stats` counts the
    /// sync messages themselves).
    pub wire_bytes_sent: u64,
    pub wire_bytes_received: u64,
    pub elapsed: Duration,
    pub outcome: CloseReason,
}

/// Options of one session.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// End the session once both sides hold everything (one-shot `tessera sync`);
    /// otherwise stay live until the peer leaves or `shutdown` fires.
    pub stop_when_caught_up: bool,
    /// This session's id among the node's sessions (for fan-out).
    pub id: u64,
    /// Counters kept up to date while the session runs (a relay's metrics); the
    /// [`Summary`] has them all at the end.
    pub meter: Option<Arc<SessionMeter>>,
    /// Changes to `Some(why)` when the server closes this session (a newer session of
    /// the same device took its place, see [`crate::gate::SessionPlace::closed`]):
    /// the session ends telling the peer why.
    pub closed: Option<tokio::sync::watch::Receiver<Option<crate::gate::Refusal>>>,
}

/// What a session sent so far, readable from another task while it runs: a live
/// session can last for days, and its progress events stop once it is live.
#[derive(Debug, Default)]
pub struct SessionMeter {
    envelopes_sent: AtomicU64,
    message_bytes_sent: AtomicU64,
}

impl SessionMeter {
    pub fn envelopes_sent(&self) -> u64 {
        self.envelopes_sent.load(Ordering::Relaxed)
    }
    /// Bytes of sync messages, before framing and compression.
    pub fn message_bytes_sent(&self) -> u64 {
        self.message_bytes_sent.load(Ordering::Relaxed)
    }
    fn update(&self, stats: &SessionStats) {
        self.envelopes_sent.store(stats.envelopes_sent, Ordering::Relaxed);
        self.message_bytes_sent.store(stats.bytes_sent, Ordering::Relaxed);
    }
}

fn lock<S>(store: &Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    // A panic while holding the lock cannot leave the store inconsistent (the log is
    // the truth); keep serving.
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one sync session over `channel` until it ends.
pub async fn run_session<S: SyncStore>(
    channel: Channel,
    store: Arc<Mutex<S>>,
    config: SessionConfig,
    fanout: broadcast::Sender<Stored>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    options: RunOptions,
    mut progress: impl FnMut(&SessionStats, &Event) + Send,
) -> Result<Summary, NetError> {
    let peer = channel.peer().cloned().ok_or(NetError::BadFrame("session without an authenticated peer"))?;
    let config = SessionConfig { peer_takes_wants: channel.takes_wants(), ..config };
    let wire = channel.wire();
    let (mut tx, mut rx) = channel.split();
    let (inbound_tx, mut inbound) = mpsc::channel::<Result<Option<Vec<u8>>, NetError>>(INBOUND_FRAMES_MAX);
    let reader = tokio::spawn(async move {
        loop {
            let frame = rx.recv().await;
            let end = !matches!(frame, Ok(Some(_)));
            if inbound_tx.send(frame).await.is_err() || end {
                break;
            }
        }
    });
    // A one-shot session never pushes live, so it does not listen to the fan-out.
    let mut live = (!options.stop_when_caught_up).then(|| fanout.subscribe());
    let mut closed = options.closed.clone();
    const LAGGED: &str = "this node fell too far behind on live updates; reconnect to resume";
    let start = tokio::time::Instant::now();
    let now = || start.elapsed();
    let mut session = Session::new(config, now());
    let mut outcome: Option<CloseReason> = None;
    let result = 'session: loop {
        // Drain events and outgoing messages until the session has nothing to do.
        loop {
            let mut did_something = false;
            while let Some(event) = session.poll_event() {
                did_something = true;
                progress(session.stats(), &event);
                match event {
                    Event::Ingest { batch, entries } => {
                        let stored = lock(&store).ingest_batch(&entries);
                        let result = match stored {
                            Ok(new) => {
                                if !new.is_empty() {
                                    let _ = fanout.send(Stored { by: options.id, entries: Arc::new(new) });
                                }
                                Ok(())
                            }
                            Err(e) => Err(e),
                        };
                        let _ = session.handle_ingested(batch, result);
                    }
                    Event::Live if options.stop_when_caught_up => session.close(),
                    Event::Closed { reason } => outcome = Some(reason),
                    _ => {}
                }
            }
            let mut message = None;
            lock(&store).with_log(&mut |log| message = session.poll_transmit(now(), log));
            if let Some(message) = message {
                did_something = true;
                if let Some(meter) = &options.meter {
                    meter.update(session.stats());
                }
                if let Err(e) = tx.send(&message).await {
                    if session.is_closed() {
                        // Our last words could not be delivered because the peer
                        // already ended the session: a normal end.
                        break 'session Ok(());
                    }
                    break 'session Err(e);
                }
            }
            if !did_something {
                break;
            }
        }
        if session.is_drained() {
            break Ok(());
        }
        // Keep the fan-out receiver drained (it also carries this session's own
        // batches), so it lags only if other sessions outrun this one by the whole
        // channel between two turns of this loop.
        if let Some(mut rx) = live.take() {
            let mut lagged = false;
            let mut closed = false;
            let mut appended = false;
            loop {
                match rx.try_recv() {
                    Ok(stored) if stored.by != options.id => {
                        let _ = session.handle_local_append(&stored.entries);
                        appended = true;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {
                        lagged = true;
                        break;
                    }
                    Err(broadcast::error::TryRecvError::Closed) => {
                        closed = true;
                        break;
                    }
                    Err(broadcast::error::TryRecvError::Empty) => break,
                }
            }
            if lagged {
                // Not a normal end: the summary must not claim completeness. Nothing
                // is lost; the next session resumes from the version vectors.
                session.refuse(LAGGED);
                continue;
            }
            if !closed {
                live = Some(rx);
            }
            if appended {
                // Send what was just handed over before waiting: nothing else may
                // wake this loop until the next keep-alive (measured: a live push
                // through a relay stalled for up to two keep-alive intervals).
                continue;
            }
        }
        let timeout =
            session.poll_timeout().map(|t| t.saturating_sub(now())).unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            frame = inbound.recv() => match frame {
                Some(Ok(Some(bytes))) => {
                    let _ = session.handle_message(now(), &bytes);
                }
                Some(Ok(None)) | None => {
                    if session.is_closed() {
                        break Ok(());
                    }
                    session.refuse("the peer ended the connection");
                    outcome.get_or_insert(CloseReason::Error(SessionError::Refused {
                        reason: "the peer ended the connection before the session was complete".into(),
                    }));
                    break Ok(());
                }
                Some(Err(e)) => break Err(e),
            },
            stored = async { live.as_mut()?.recv().await.into() }, if live.is_some() => match stored {
                Some(Ok(stored)) if stored.by != options.id => {
                    let _ = session.handle_local_append(&stored.entries);
                }
                Some(Ok(_)) => {}
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    session.refuse(LAGGED);
                    live = None;
                }
                Some(Err(broadcast::error::RecvError::Closed)) | None => live = None,
            },
            _ = tokio::time::sleep(timeout) => session.handle_timeout(now()),
            _ = shutdown.changed() => session.close(),
            why = async { closed.as_mut()?.wait_for(Option::is_some).await.ok().and_then(|w| *w) }, if closed.is_some() => {
                match why {
                    Some(why) => session.refuse(&why.to_string()),
                    // The gate is gone (the server stops): as a shutdown.
                    None => session.close(),
                }
                closed = None;
            }
        }
    };
    // Flush a Close the session still holds, then end the stream.
    if !session.is_drained() {
        let mut message = None;
        lock(&store).with_log(&mut |log| message = session.poll_transmit(now(), log));
        if let Some(message) = message {
            let _ = tx.send(&message).await;
        }
    }
    while let Some(event) = session.poll_event() {
        if let Event::Closed { reason } = event {
            outcome = Some(reason);
        }
    }
    // End our direction, give the peer a moment to end its own, then close.
    tx.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(Some(_))) = inbound.recv().await {}
    })
    .await;
    tx.abort("done");
    reader.abort();
    result?;
    let outcome = outcome.unwrap_or(CloseReason::Finished { by_peer: true });
    if let Some(meter) = &options.meter {
        meter.update(session.stats());
    }
    Ok(Summary {
        peer,
        stats: session.stats().clone(),
        wire_bytes_sent: wire.sent(),
        wire_bytes_received: wire.received(),
        elapsed: start.elapsed(),
        outcome,
    })
}
