//! The relay's metrics, in Prometheus text format on a local HTTP port
//! (`GET /metrics`). A tiny HTTP responder: one request per connection, requests
//! longer than a few KiB or slower than a few seconds are dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_log::DeviceKey;
use tessera_net::driver::SessionMeter;
use tessera_net::WireBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Largest HTTP request read.
const REQUEST_BYTES_MAX: usize = 4096;
/// Devices listed in `last seen` (the most recent ones are kept).
const DEVICES_LISTED_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub struct Metrics {
    pub envelopes_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub store_bytes: AtomicU64,
    /// What sessions sent: the ended ones' totals plus, at each scrape, the live ones'.
    sessions: Mutex<Sessions>,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
    last_seen: Mutex<BTreeMap<DeviceKey, u64>>,
}

/// One session's live counters.
#[derive(Clone, Debug)]
pub struct SessionCounters {
    pub meter: Arc<SessionMeter>,
    pub wire: Arc<WireBytes>,
}

/// A session being counted; its counts move to the totals when this is dropped.
#[derive(Debug)]
pub struct CountedSession {
    metrics: Arc<Metrics>,
    session: SessionCounters,
}

impl CountedSession {
    pub fn counters(&self) -> &SessionCounters {
        &self.session
    }
}

impl Drop for CountedSession {
    fn drop(&mut self) {
        self.metrics.session_ended(&self.session);
    }
}

#[derive(Debug, Default)]
struct Sessions {
    live: Vec<SessionCounters>,
    ended: Totals,
}

#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    envelopes_out: u64,
    bytes_out: u64,
    wire_in: u64,
    wire_out: u64,
}

impl Totals {
    fn add(&mut self, session: &SessionCounters) {
        self.envelopes_out += session.meter.envelopes_sent();
        self.bytes_out += session.meter.message_bytes_sent();
        self.wire_in += session.wire.received();
        self.wire_out += session.wire.sent();
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Metrics {
    /// Counts a session's traffic from now on (at most `--sessions-max` at once), until
    /// the returned guard is dropped (also if the session task panics).
    pub fn session_started(self: &Arc<Self>, session: SessionCounters) -> CountedSession {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).live.push(session.clone());
        CountedSession { metrics: self.clone(), session }
    }

    /// Moves an ended session's final counts to the totals, in one step for scrapes.
    fn session_ended(&self, session: &SessionCounters) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = sessions.live.iter().position(|s| Arc::ptr_eq(&s.meter, &session.meter)) {
            let ended = sessions.live.swap_remove(i);
            sessions.ended.add(&ended);
        }
    }

    /// What sessions sent so far, and how many are open now.
    fn sent_totals(&self) -> (Totals, usize) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut totals = sessions.ended;
        for session in &sessions.live {
            totals.add(session);
        }
        (totals, sessions.live.len())
    }

    /// Sessions open now.
    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).live.len()
    }

    pub fn reject(&self, reason: &'static str) {
        *self.rejects.lock().unwrap_or_else(PoisonError::into_inner).entry(reason).or_default() += 1;
    }

    pub fn seen(&self, device: &DeviceKey) {
        let mut seen = self.last_seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(*device, unix_now());
        if seen.len() > DEVICES_LISTED_MAX {
            if let Some(oldest) = seen.iter().min_by_key(|(_, t)| **t).map(|(d, _)| *d) {
                seen.remove(&oldest);
            }
        }
    }

    /// The metrics in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let (sent, connected) = self.sent_totals();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric("tessera_relay_connected_peers", "gauge", "Sessions open now.", connected as u64);
        metric(
            "tessera_relay_envelopes_received_total",
            "counter",
            "Envelopes received and stored (new to the relay).",
            self.envelopes_in.load(Ordering::Relaxed),
        );
        metric(
            "tessera_relay_envelopes_sent_total",
            "counter",
            "Envelopes sent to peers.",
            sent.envelopes_out,
        );
        metric(
            "tessera_relay_bytes_received_total",
            "counter",
            "Bytes of envelopes received and stored.",
            self.bytes_in.load(Ordering::Relaxed),
        );
        metric("tessera_relay_bytes_sent_total", "counter", "Bytes of sync messages sent.", sent.bytes_out);
        metric(
            "tessera_relay_wire_bytes_received_total",
            "counter",
            "Bytes received on session streams (compressed frames as they came).",
            sent.wire_in,
        );
        metric(
            "tessera_relay_wire_bytes_sent_total",
            "counter",
            "Bytes sent on session streams (compressed frames as they went).",
            sent.wire_out,
        );
        metric(
            "tessera_relay_store_bytes",
            "gauge",
            "Size of the relay's log on disk.",
            self.store_bytes.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP tessera_relay_rejects_total Refused sessions or batches, by reason.\n# TYPE tessera_relay_rejects_total counter"
        );
        for (reason, count) in self.rejects.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "tessera_relay_rejects_total{{reason=\"{reason}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP tessera_relay_device_last_seen_seconds Unix time a device last connected or sent.\n# TYPE tessera_relay_device_last_seen_seconds gauge"
        );
        for (device, time) in self.last_seen.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(
                out,
                "tessera_relay_device_last_seen_seconds{{device=\"{}\"}} {time}",
                device.short()
            );
        }
        out
    }
}

/// Answers `GET /metrics` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((mut socket, _)) = accepted else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; REQUEST_BYTES_MAX];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < request.len() {
                    match socket.read(&mut request[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if request[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&request[..len]);
            let response = if head.starts_with("GET /metrics ") || head.starts_with("GET / ") {
                let body = metrics.render();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            };
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
