//! Who a server lets in, and why not. A peer first takes a place in the handshake
//! budget (small, held for at most the handshake's time limit, so unauthenticated
//! clients cannot hold sessions); only once it has proved which certified device it is
//! does it take a session place, within the server's total and the per-device cap.
//! At the per-device cap the device's oldest session is closed for the new one: a hub
//! whose laptop crashed has sessions the server still thinks alive (until the idle
//! timeout), and must not be locked out by them; a key copied onto many machines
//! still holds at most the cap. A peer refused or closed is told why in words
//! ([`Refusal`]). No sockets here: the gate is plain counting, tested on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tessera_log::DeviceKey;
use tokio::sync::watch;

/// Limits of a [`SessionGate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateLimits {
    /// Connections in the handshake at once (not yet authenticated).
    pub handshakes_max: usize,
    /// Authenticated sessions at once.
    pub sessions_max: usize,
    /// Authenticated sessions of one device at once.
    pub sessions_per_device: usize,
}

/// Why an authenticated peer is not served, or no longer; the words are sent to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this server takes no session from this device (its limit per device is {max})")]
    DeviceSessions { max: usize },
    #[error("this server is serving its maximum of {max} sessions: try again in a few minutes")]
    Sessions { max: usize },
    #[error(
        "a newer session of this device started here, and a device may hold {max} at once: \
         this one is closed (another Tessera process on this device, or a copy of its key)"
    )]
    Replaced { max: usize },
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::DeviceSessions { .. } => "too_many_sessions_for_device",
            Refusal::Sessions { .. } => "too_many_sessions",
            Refusal::Replaced { .. } => "replaced_by_newer_session",
        }
    }
}

/// Set to the reason when the gate closes a session.
type CloseSignal = watch::Sender<Option<Refusal>>;

#[derive(Debug, Default)]
struct Counts {
    handshakes: usize,
    sessions: usize,
    next_id: u64,
    /// Per device, its counted sessions oldest first, each with the signal that
    /// closes it.
    by_device: HashMap<DeviceKey, VecDeque<(u64, CloseSignal)>>,
}

/// Counts handshakes and sessions against [`GateLimits`]. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct SessionGate {
    limits: GateLimits,
    counts: Arc<Mutex<Counts>>,
}

/// A place in the handshake budget, given back when dropped.
#[derive(Debug)]
pub struct HandshakePlace {
    counts: Arc<Mutex<Counts>>,
}

/// A session place (total and per device), given back when dropped.
#[derive(Debug)]
pub struct SessionPlace {
    counts: Arc<Mutex<Counts>>,
    device: DeviceKey,
    id: u64,
    closed: watch::Receiver<Option<Refusal>>,
}

impl SessionPlace {
    /// Changes to `Some(why)` when the gate closes this session (a newer one of the
    /// same device took its place): end the session with those words.
    pub fn closed(&self) -> watch::Receiver<Option<Refusal>> {
        self.closed.clone()
    }
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    // Plain counters: a panic elsewhere leaves them consistent.
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionGate {
    pub fn new(limits: GateLimits) -> Self {
        SessionGate { limits, counts: Arc::default() }
    }

    pub fn limits(&self) -> GateLimits {
        self.limits
    }

    /// A place for one more handshake, or `None` when the budget is spent (refuse the
    /// connection before its handshake).
    pub fn begin_handshake(&self) -> Option<HandshakePlace> {
        let mut counts = lock(&self.counts);
        if counts.handshakes >= self.limits.handshakes_max {
            return None;
        }
        counts.handshakes += 1;
        Some(HandshakePlace { counts: self.counts.clone() })
    }

    /// A session place for `device`, which has just authenticated. At the device's cap
    /// its oldest session is told to close ([`SessionPlace::closed`]) and stops
    /// counting against the device at once.
    pub fn admit(&self, device: DeviceKey) -> Result<SessionPlace, Refusal> {
        let per_device = self.limits.sessions_per_device;
        if per_device == 0 {
            return Err(Refusal::DeviceSessions { max: 0 });
        }
        let mut counts = lock(&self.counts);
        let held = counts.by_device.get(&device).map_or(0, VecDeque::len);
        // A session being replaced frees its total place only when it ends; replacing
        // does not need a free one.
        if held < per_device && counts.sessions >= self.limits.sessions_max {
            return Err(Refusal::Sessions { max: self.limits.sessions_max });
        }
        let id = counts.next_id;
        counts.next_id += 1;
        let (signal, closed) = watch::channel(None);
        let sessions = counts.by_device.entry(device).or_default();
        while sessions.len() >= per_device {
            if let Some((_, oldest)) = sessions.pop_front() {
                let _ = oldest.send(Some(Refusal::Replaced { max: per_device }));
            }
        }
        sessions.push_back((id, signal));
        counts.sessions += 1;
        debug_assert!(counts.by_device.values().all(|s| s.len() <= per_device));
        Ok(SessionPlace { counts: self.counts.clone(), device, id, closed })
    }

    /// (handshakes, sessions) in progress; sessions told to close count until they end.
    pub fn in_use(&self) -> (usize, usize) {
        let counts = lock(&self.counts);
        (counts.handshakes, counts.sessions)
    }
}

impl Drop for HandshakePlace {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        debug_assert!(counts.handshakes > 0);
        counts.handshakes = counts.handshakes.saturating_sub(1);
    }
}

impl Drop for SessionPlace {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        debug_assert!(counts.sessions > 0);
        counts.sessions = counts.sessions.saturating_sub(1);
        if let Some(sessions) = counts.by_device.get_mut(&self.device) {
            sessions.retain(|(id, _)| *id != self.id);
            if sessions.is_empty() {
                counts.by_device.remove(&self.device);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_log::SecretKey;

    fn device(seed: u8) -> DeviceKey {
        DeviceKey(SecretKey::from_seed([seed; 32]).public())
    }

    fn gate() -> SessionGate {
        SessionGate::new(GateLimits { handshakes_max: 2, sessions_max: 3, sessions_per_device: 2 })
    }

    #[test]
    fn handshakes_have_their_own_budget() {
        let gate = gate();
        let first = gate.begin_handshake().unwrap();
        let _second = gate.begin_handshake().unwrap();
        assert!(gate.begin_handshake().is_none());
        // Sessions are counted apart: authenticated peers still get in.
        let _session = gate.admit(device(1)).unwrap();
        drop(first);
        assert!(gate.begin_handshake().is_some());
    }

    #[test]
    fn a_device_holds_at_most_its_cap_and_the_newest_session_wins() {
        let gate = gate();
        let shared = device(1);
        let first = gate.admit(shared).unwrap();
        let second = gate.admit(shared).unwrap();
        assert_eq!(*first.closed().borrow(), None);
        // A third copy of the key: the oldest session is told to close, in words.
        let third = gate.admit(shared).unwrap();
        assert_eq!(*first.closed().borrow(), Some(Refusal::Replaced { max: 2 }));
        assert_eq!(*second.closed().borrow(), None);
        assert_eq!(*third.closed().borrow(), None);
        // Until it ends it holds its total place: the server is full for others.
        assert_eq!(gate.admit(device(2)).unwrap_err(), Refusal::Sessions { max: 3 });
        drop(first);
        let hub = gate.admit(device(2)).unwrap();
        // Replacing needs no free place: the shared key keeps cycling, the hub stays.
        let fourth = gate.admit(shared).unwrap();
        assert_eq!(*second.closed().borrow(), Some(Refusal::Replaced { max: 2 }));
        assert_eq!(*hub.closed().borrow(), None);
        drop((second, third, fourth, hub));
        assert_eq!(gate.in_use(), (0, 0));
    }

    #[test]
    fn refusals_are_in_words() {
        let text = Refusal::Replaced { max: 2 }.to_string();
        assert!(text.contains("a newer session of this device"), "{text}");
        assert!(Refusal::Sessions { max: 8 }.to_string().contains("maximum of 8 sessions"));
    }
}
