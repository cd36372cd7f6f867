//! Who a server lets in, and why not. A peer first takes a place in the handshake
//! budget (small, held for at most the handshake's time limit, so unauthenticated
//! clients cannot hold sessions); only once it has proved which certified device it is
//! does it take a session place, within the server's total and the per-device cap. A
//! refused peer is told why in words ([`Refusal`]). No sockets here: the gate is plain
//! counting, tested on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tessera_log::DeviceKey;

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

/// Why an authenticated peer is not served; the words are sent to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "this device already has {max} sessions open here (the limit per device): another \
         Tessera process on this device may be syncing; wait for it to finish or stop it"
    )]
    DeviceSessions { max: usize },
    #[error("this server is serving its maximum of {max} sessions: try again in a few minutes")]
    Sessions { max: usize },
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::DeviceSessions { .. } => "too_many_sessions_for_device",
            Refusal::Sessions { .. } => "too_many_sessions",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    handshakes: usize,
    sessions: usize,
    by_device: HashMap<DeviceKey, usize>,
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

    /// A session place for `device`, which has just authenticated.
    pub fn admit(&self, device: DeviceKey) -> Result<SessionPlace, Refusal> {
        let mut counts = lock(&self.counts);
        let of_device = counts.by_device.get(&device).copied().unwrap_or(0);
        if of_device >= self.limits.sessions_per_device {
            return Err(Refusal::DeviceSessions { max: self.limits.sessions_per_device });
        }
        if counts.sessions >= self.limits.sessions_max {
            return Err(Refusal::Sessions { max: self.limits.sessions_max });
        }
        counts.sessions += 1;
        *counts.by_device.entry(device).or_insert(0) += 1;
        Ok(SessionPlace { counts: self.counts.clone(), device })
    }

    /// (handshakes, sessions) in progress.
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
        if let Some(n) = counts.by_device.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
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
    fn one_device_cannot_take_every_session() {
        let gate = gate();
        let shared = device(1);
        let held: Vec<_> = (0..2).map(|_| gate.admit(shared).unwrap()).collect();
        assert_eq!(gate.admit(shared).unwrap_err(), Refusal::DeviceSessions { max: 2 });
        let hub = gate.admit(device(2)).unwrap();
        assert_eq!(gate.admit(device(3)).unwrap_err(), Refusal::Sessions { max: 3 });
        drop(hub);
        let _hub = gate.admit(device(3)).unwrap();
        drop(held);
        assert_eq!(gate.in_use(), (0, 1));
        assert!(gate.admit(shared).is_ok());
    }

    #[test]
    fn refusals_are_in_words() {
        let text = Refusal::DeviceSessions { max: 2 }.to_string();
        assert!(text.contains("already has 2 sessions"), "{text}");
        assert!(Refusal::Sessions { max: 8 }.to_string().contains("maximum of 8 sessions"));
    }
}
