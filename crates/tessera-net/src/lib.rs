//! QUIC transport for Tessera: endpoints, device authentication bound to the TLS
//! session, and length-limited framing. It moves opaque sync messages between two
//! authenticated devices; it does not know what they mean (that is `tessera-sync`).
//!
//! TLS certificates here are throwaway (made at start, never checked): the identity of
//! a peer is its device key, proven inside each TLS session by a signature over the
//! session's exported keying material ([`tessera_log::channel`]). So there is no PKI to
//! run, a man in the middle or a replayed handshake fails, and only devices certified
//! for the network and not revoked get past [`Endpoint::connect`] / [`Endpoint::accept`].
//!
//! One session = one QUIC connection with one bidirectional stream of frames:
//! `u32` little-endian length, then a payload of at most [`FRAME_BYTES_MAX`] bytes whose
//! first byte says what it is ([`FrameKind`]). Sync messages of
//! [`COMPRESS_MIN_BYTES`] or more travel DEFLATE-compressed when that is smaller: a batch
//! of records repeats field names, actor ids and hashes, and hubs sit on slow links.
//! Inflating is bounded by the sync message limit, whatever the frame claims.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tessera_log::channel::{ChannelAuth, ChannelError, EXPORTER_BYTES, EXPORTER_LABEL};
use tessera_log::{DeviceCertificate, NetworkId, SecretKey, TrustEntry, TrustState};
// The largest sync message; a compressed frame inflates to at most this.
use tessera_sync::limits::MESSAGE_BYTES_MAX;

/// Largest frame payload (a sync message plus its kind byte).
pub const FRAME_BYTES_MAX: usize = MESSAGE_BYTES_MAX + 1;
/// Time allowed for the QUIC and device handshakes together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection with no traffic for this long is closed (keep-alives prevent it
/// while both peers are up).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Concurrent incoming connections a server keeps in the handshake at once (the
/// default of [`gate::GateLimits::handshakes_max`]).
pub const PENDING_HANDSHAKES_MAX: usize = 64;
/// Sessions of one device a server serves at once (the default of
/// [`gate::GateLimits::sessions_per_device`]): a hub's daemon and one `tessera sync`.
pub const SESSIONS_PER_DEVICE_MAX: usize = 2;
/// The protocol versions this node speaks (TLS ALPN), preferred first. `tessera/2`
/// adds compressed sync messages, `tessera/3` the Want message (asking for holes and
/// stripped bodies); a `tessera/2` or `tessera/1` peer (an older release) still syncs,
/// without what it lacks, so hubs can be upgraded one by one. A peer that speaks none
/// fails the TLS handshake with [`NetError::ProtocolVersion`].
const ALPN_V3: &[u8] = b"tessera/3";
const ALPN_V2: &[u8] = b"tessera/2";
const ALPN_V1: &[u8] = b"tessera/1";
const ALPNS: [&[u8]; 3] = [ALPN_V3, ALPN_V2, ALPN_V1];

pub mod driver;
pub mod gate;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A [`ChannelAuth`]: the sender's proof of identity.
    Auth = 1,
    /// The sender refuses the session; UTF-8 reason follows.
    Refused = 2,
    /// A sync message.
    Data = 3,
    /// A sync message compressed with raw DEFLATE: its length (`u32` little-endian),
    /// then the compressed stream.
    DataDeflate = 4,
}

/// Sync messages at least this long are compressed (when that saves bytes).
pub const COMPRESS_MIN_BYTES: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot set up the network endpoint: {0}")]
    Setup(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("connection lost: {0}")]
    Connection(quinn::ConnectionError),
    #[error("stream error: {0}")]
    Write(quinn::WriteError),
    #[error("stream error: {0}")]
    Read(String),
    #[error("the peer sent a frame of {len} bytes, the limit is {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("the peer sent a malformed frame: {0}")]
    BadFrame(&'static str),
    #[error("the peer was refused: {0}")]
    PeerRefused(#[from] ChannelError),
    #[error("the peer refused this node: {0}")]
    RefusedByPeer(String),
    #[error("the handshake took longer than {0:?}")]
    HandshakeTimeout(Duration),
    #[error(
        "{addr} is too busy to take a new connection now (too many connections are being set up \
         at once): try again in a minute"
    )]
    Busy { addr: SocketAddr },
    #[error(
        "{addr} speaks another version of the Tessera protocol (this node speaks tessera/3, \
         tessera/2 and tessera/1): run the same Tessera release on both"
    )]
    ProtocolVersion { addr: SocketAddr },
    #[error("the peer announced a compressed sync message of {len} bytes, the limit is {max}")]
    MessageTooLarge { len: usize, max: usize },
}

/// How this node presents itself.
#[derive(Debug)]
pub struct Identity {
    pub network: NetworkId,
    pub key: SecretKey,
    /// This device's certificates (partner's and its own).
    pub chain: Vec<TrustEntry>,
}

/// The authenticated peer of a session.
#[derive(Clone, Debug)]
pub struct Peer {
    pub certificate: DeviceCertificate,
    /// The certificates it presented (a node that did not know it may store them).
    pub chain: Vec<TrustEntry>,
    pub address: SocketAddr,
}

/// A QUIC endpoint that can both accept and open sessions.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    identity: Arc<Identity>,
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // Durations this small always fit QUIC's varint; fall back to no limit otherwise.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    t.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
    t.max_concurrent_bidi_streams(1u8.into());
    t.max_concurrent_uni_streams(0u8.into());
    t
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any server certificate but checks the handshake signature with it: the
/// certificate is a throwaway; identity comes from the channel binding.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn server_config() -> Result<quinn::ServerConfig, NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let certified = rcgen::generate_simple_self_signed(vec!["tessera".to_string()]).map_err(|e| setup(&e))?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key.into())
        .map_err(|e| setup(&e))?;
    tls.alpn_protocols = ALPNS.iter().map(|p| p.to_vec()).collect();
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| setup(&e))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The endpoint's stateless-reset key and connection-id key, derived from the device
/// key. A process that restarts (same device, same port) then recognizes the
/// connection ids it handed out before, and answers their packets with resets its peers
/// can check, so they fail at once instead of waiting out the idle timeout. quinn's
/// defaults are random keys per start: the restarted process drops those packets.
fn endpoint_config(key: &SecretKey) -> quinn::EndpointConfig {
    let reset_key = blake3::derive_key("tessera 2026-11 QUIC stateless reset key", &key.to_seed());
    let cid_key = blake3::derive_key("tessera 2026-11 QUIC connection id key", &key.to_seed());
    let cid_key = u64::from_le_bytes([
        cid_key[0], cid_key[1], cid_key[2], cid_key[3], cid_key[4], cid_key[5], cid_key[6], cid_key[7],
    ]);
    let mut config =
        quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset_key)));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

fn client_config() -> Result<quinn::ClientConfig, NetError> {
    client_config_with_alpn(&ALPNS)
}

fn client_config_with_alpn(alpns: &[&[u8]]) -> Result<quinn::ClientConfig, NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider())))
        .with_no_client_auth();
    tls.alpn_protocols = alpns.iter().map(|p| p.to_vec()).collect();
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| setup(&e))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

impl Endpoint {
    /// Binds a UDP socket at `addr` (port 0: any) for both directions. Must be called
    /// inside a tokio runtime.
    pub fn bind(addr: SocketAddr, identity: Identity) -> Result<Endpoint, NetError> {
        let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
        let socket = std::net::UdpSocket::bind(addr).map_err(|e| setup(&e))?;
        let runtime =
            quinn::default_runtime().ok_or_else(|| setup(&"no tokio runtime to run the endpoint on"))?;
        let mut inner =
            quinn::Endpoint::new(endpoint_config(&identity.key), Some(server_config()?), socket, runtime)
                .map_err(|e| setup(&e))?;
        inner.set_default_client_config(client_config()?);
        Ok(Endpoint { inner, identity: Arc::new(identity) })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.inner.local_addr().map_err(|e| NetError::Setup(e.to_string()))
    }

    /// Opens a session to `addr` and authenticates both sides against `trust`.
    pub async fn connect(&self, addr: SocketAddr, trust: &TrustState) -> Result<Channel, NetError> {
        let work = async {
            let connecting = self
                .inner
                .connect(addr, "tessera")
                .map_err(|e| NetError::Connect { addr, reason: e.to_string() })?;
            let conn = connecting.await.map_err(|e| handshake_failure(addr, &e))?;
            let (send, recv) = conn.open_bi().await?;
            let mut channel = Channel::new(conn, send, recv);
            // The opener speaks first: the stream exists for the peer only once written.
            channel.write_frame(FrameKind::Auth, &self.own_auth(&channel.conn)?.encode()).await?;
            let peer = channel.read_peer_auth(trust).await?;
            channel.peer = Some(peer);
            Ok(channel)
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
            .await
            .map_err(|_| NetError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
    }

    /// Waits for the next incoming connection; `None` when the endpoint is closed.
    /// The returned future completes the handshake of that connection.
    pub async fn accept(&self) -> Option<Incoming> {
        let incoming = self.inner.accept().await?;
        Some(Incoming { incoming, endpoint: self.clone() })
    }

    fn own_auth(&self, conn: &quinn::Connection) -> Result<ChannelAuth, NetError> {
        let exported = exported(conn)?;
        Ok(ChannelAuth::sign(
            self.identity.network,
            &self.identity.key,
            self.identity.chain.clone(),
            &exported,
        ))
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.inner.close(0u8.into(), b"shutting down");
    }

    /// Waits until every connection is closed (after [`Endpoint::close`]).
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await;
    }
}

/// A connection being accepted.
#[derive(Debug)]
pub struct Incoming {
    incoming: quinn::Incoming,
    endpoint: Endpoint,
}

impl Incoming {
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Completes the QUIC and device handshakes within [`HANDSHAKE_TIMEOUT`].
    pub async fn handshake(self, trust: &TrustState) -> Result<Channel, NetError> {
        self.handshake_within(trust, HANDSHAKE_TIMEOUT).await
    }

    /// Completes the QUIC and device handshakes within `limit` (a server that must not
    /// let unauthenticated peers hold its handshake budget picks a short one).
    pub async fn handshake_within(self, trust: &TrustState, limit: Duration) -> Result<Channel, NetError> {
        let addr = self.incoming.remote_address();
        let work = async {
            let conn = self.incoming.await.map_err(|e| handshake_failure(addr, &e))?;
            let (send, recv) = conn.accept_bi().await?;
            let mut channel = Channel::new(conn, send, recv);
            let peer = channel.read_peer_auth(trust).await?;
            channel.write_frame(FrameKind::Auth, &self.endpoint.own_auth(&channel.conn)?.encode()).await?;
            channel.peer = Some(peer);
            Ok(channel)
        };
        tokio::time::timeout(limit, work).await.map_err(|_| NetError::HandshakeTimeout(limit))?
    }

    /// Refuses the connection without a handshake (too many peers being set up); the
    /// peer reads [`NetError::Busy`].
    pub fn refuse(self) {
        self.incoming.refuse();
    }
}

fn exported(conn: &quinn::Connection) -> Result<[u8; EXPORTER_BYTES], NetError> {
    let mut out = [0u8; EXPORTER_BYTES];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| NetError::Setup("TLS keying material export failed".into()))?;
    Ok(out)
}

/// An authenticated session: frames in both directions.
#[derive(Debug)]
pub struct Channel {
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    peer: Option<Peer>,
    wire: Arc<WireBytes>,
    /// The protocol version agreed (1, 2 or 3).
    version: u8,
    /// Whether the peer speaks `tessera/2` or later (compressed sync messages).
    compress: bool,
}

impl Channel {
    fn new(conn: quinn::Connection, send: quinn::SendStream, recv: quinn::RecvStream) -> Channel {
        let protocol = conn
            .handshake_data()
            .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|data| data.protocol);
        let version = match protocol.as_deref() {
            Some(ALPN_V3) => 3,
            Some(ALPN_V2) => 2,
            _ => 1,
        };
        Channel { conn, send, recv, peer: None, wire: Arc::default(), version, compress: version >= 2 }
    }

    /// Whether the peer speaks the Want message (`tessera/3`).
    pub fn takes_wants(&self) -> bool {
        self.version >= 3
    }

    /// The protocol version agreed with the peer (`tessera/3`, `tessera/2` or `tessera/1`).
    pub fn protocol(&self) -> &'static str {
        match self.version {
            3 => "tessera/3",
            2 => "tessera/2",
            _ => "tessera/1",
        }
    }

    /// The bytes this session's frames take on the stream after the handshake, as they
    /// go (the handshake's auth frames are not counted).
    pub fn wire(&self) -> Arc<WireBytes> {
        self.wire.clone()
    }

    async fn read_peer_auth(&mut self, trust: &TrustState) -> Result<Peer, NetError> {
        let frame =
            read_frame(&mut self.recv).await?.ok_or(NetError::BadFrame("closed before the handshake"))?;
        match frame.split_first() {
            Some((&k, body)) if k == FrameKind::Auth as u8 => {
                let exported = exported(&self.conn)?;
                let verified = ChannelAuth::decode(body)
                    .map_err(ChannelError::from)
                    .and_then(|auth| auth.verify(trust, &exported).map(|cert| (auth, cert)));
                match verified {
                    Ok((auth, certificate)) => {
                        Ok(Peer { certificate, chain: auth.chain, address: self.conn.remote_address() })
                    }
                    Err(e) => {
                        // Say why, so the peer's operator can read it: in a frame (a
                        // peer of an older release reads that) and in the close frame,
                        // which arrives even when the connection closes before the
                        // frame (no waiting here: a refused peer must not hold the
                        // handshake budget).
                        let words = e.peer_text();
                        let _ = write_frame(&mut self.send, FrameKind::Refused, words.as_bytes()).await;
                        let _ = self.send.finish();
                        self.conn.close(CLOSE_REFUSED.into(), close_reason(&words));
                        Err(NetError::PeerRefused(e))
                    }
                }
            }
            Some((&k, body)) if k == FrameKind::Refused as u8 => {
                Err(NetError::RefusedByPeer(String::from_utf8_lossy(body).chars().take(500).collect()))
            }
            _ => Err(NetError::BadFrame("expected the peer's identity")),
        }
    }

    async fn write_frame(&mut self, kind: FrameKind, body: &[u8]) -> Result<(), NetError> {
        write_frame(&mut self.send, kind, body).await
    }

    /// Ends an authenticated session before it starts, telling the peer why (it reads
    /// [`NetError::RefusedByPeer`] with `reason`).
    pub async fn refuse(self, reason: &str) {
        let (sender, _receiver) = self.split();
        sender.close(reason).await;
    }

    /// The authenticated peer.
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    /// Splits into a sending and a receiving half, usable from two tasks.
    pub fn split(self) -> (Sender, Receiver) {
        (
            Sender {
                send: self.send,
                conn: self.conn.clone(),
                wire: self.wire.clone(),
                compress: self.compress,
            },
            Receiver { recv: self.recv, conn: self.conn, wire: self.wire, compress: self.compress },
        )
    }
}

/// Bytes a session moved on its stream (frames with their length prefixes, after
/// compression): what the link carried, short of QUIC and UDP headers.
#[derive(Debug, Default)]
pub struct WireBytes {
    sent: AtomicU64,
    received: AtomicU64,
}

impl WireBytes {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// The sending half of a session.
#[derive(Debug)]
pub struct Sender {
    send: quinn::SendStream,
    conn: quinn::Connection,
    wire: Arc<WireBytes>,
    compress: bool,
}

impl Sender {
    /// Sends one sync message (compressed when the peer speaks `tessera/2` and that is
    /// smaller). A large message is compressed off the async threads.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), NetError> {
        let frame = if !self.compress {
            encode_frame(FrameKind::Data, message)?
        } else if message.len() < COMPRESS_INLINE_MAX {
            encode_data_frame(message)?
        } else {
            let message = message.to_vec();
            tokio::task::spawn_blocking(move || encode_data_frame(&message))
                .await
                .map_err(|e| NetError::Setup(format!("the compression task failed: {e}")))??
        };
        self.write(&frame).await
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.send.write_all(frame).await?;
        self.wire.sent.fetch_add(frame.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Tells the peer why the session ends, then closes it.
    pub async fn close(mut self, reason: &str) {
        if let Ok(frame) = encode_frame(FrameKind::Refused, reason.as_bytes()) {
            let _ = self.write(&frame).await;
        }
        let _ = self.send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.send.stopped()).await;
        // The words again in the close frame: a peer whose write fails first still
        // reads them.
        self.conn.close(CLOSE_REFUSED.into(), close_reason(reason));
    }

    /// Ends this direction of the session cleanly (the peer reads the end of stream).
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// Closes at once (the peer sees the connection end).
    pub fn abort(&self, reason: &str) {
        let reason: Vec<u8> = reason.bytes().take(200).collect();
        self.conn.close(0u8.into(), &reason);
    }
}

/// The receiving half of a session.
#[derive(Debug)]
pub struct Receiver {
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    wire: Arc<WireBytes>,
    compress: bool,
}

impl Receiver {
    /// The next sync message; `Ok(None)` when the peer finished the session cleanly.
    /// Not cancel-safe: read from one task and forward through a bounded channel.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        match read_frame(&mut self.recv).await? {
            None => Ok(None),
            Some(frame) => {
                self.wire.received.fetch_add(4 + frame.len() as u64, Ordering::Relaxed);
                match split_frame(&frame)? {
                    (FrameKind::Data, body) => Ok(Some(body.to_vec())),
                    (FrameKind::DataDeflate, body) if self.compress => inflate_message(body).map(Some),
                    (FrameKind::DataDeflate, _) => {
                        Err(NetError::BadFrame("a compressed frame on a tessera/1 session"))
                    }
                    (FrameKind::Refused, body) => Err(NetError::RefusedByPeer(
                        String::from_utf8_lossy(body).chars().take(500).collect(),
                    )),
                    (FrameKind::Auth, _) => Err(NetError::BadFrame("unexpected frame kind")),
                }
            }
        }
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }
}

/// One whole frame: length prefix, kind byte, body. Pure (shared with the fuzzer).
pub fn encode_frame(kind: FrameKind, body: &[u8]) -> Result<Vec<u8>, NetError> {
    let len = body.len() + 1;
    if len > FRAME_BYTES_MAX {
        return Err(NetError::FrameTooLarge { len, max: FRAME_BYTES_MAX });
    }
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Checks a frame's 4-byte length prefix (from the peer) before anything is
/// allocated: the payload length, at least 1 and at most [`FRAME_BYTES_MAX`].
pub fn frame_payload_len(prefix: [u8; 4]) -> Result<usize, NetError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len == 0 {
        return Err(NetError::BadFrame("empty frame"));
    }
    if len > FRAME_BYTES_MAX {
        return Err(NetError::FrameTooLarge { len, max: FRAME_BYTES_MAX });
    }
    Ok(len)
}

/// Splits a frame payload (after its length prefix) into its kind and body.
pub fn split_frame(payload: &[u8]) -> Result<(FrameKind, &[u8]), NetError> {
    match payload.split_first() {
        Some((&k, body)) if k == FrameKind::Auth as u8 => Ok((FrameKind::Auth, body)),
        Some((&k, body)) if k == FrameKind::Refused as u8 => Ok((FrameKind::Refused, body)),
        Some((&k, body)) if k == FrameKind::Data as u8 => Ok((FrameKind::Data, body)),
        Some((&k, body)) if k == FrameKind::DataDeflate as u8 => Ok((FrameKind::DataDeflate, body)),
        Some(_) => Err(NetError::BadFrame("unknown frame kind")),
        None => Err(NetError::BadFrame("empty frame")),
    }
}

/// The frame of one sync message: [`FrameKind::DataDeflate`] when the message is at
/// least [`COMPRESS_MIN_BYTES`] and compresses, [`FrameKind::Data`] otherwise. Pure.
pub fn encode_data_frame(message: &[u8]) -> Result<Vec<u8>, NetError> {
    if message.len() >= COMPRESS_MIN_BYTES && message.len() <= MESSAGE_BYTES_MAX {
        let mut body = Vec::with_capacity(message.len() / 2);
        body.extend_from_slice(&(message.len() as u32).to_le_bytes());
        let mut encoder =
            flate2::write::DeflateEncoder::new(body, flate2::Compression::new(COMPRESSION_LEVEL));
        // Writing into a Vec cannot fail; fall back to the plain frame if it ever did.
        if let Ok(body) = encoder.write_all(message).and_then(|()| encoder.finish()) {
            // Smaller, and within what a receiver accepts (see `inflate_message`).
            let stream = body.len() - 4;
            if body.len() < message.len() && message.len() <= stream * INFLATE_RATIO_MAX {
                return encode_frame(FrameKind::DataDeflate, &body);
            }
        }
    }
    encode_frame(FrameKind::Data, message)
}

/// DEFLATE level 6 (zlib's default). Measured on `tessera-bench compare` at N = 3,000:
/// 9 % fewer bytes than level 1, level 9 only 0.6 % fewer than 6, and the push and pull
/// times (0.2-0.3 s) did not move.
const COMPRESSION_LEVEL: u32 = 6;

/// Messages shorter than this are compressed on the calling task; longer ones on a
/// blocking thread (level 6 takes a few ms per 100 KiB: a relay's async threads serve
/// every other session meanwhile).
const COMPRESS_INLINE_MAX: usize = 64 * 1024;
/// A compressed sync message may claim at most this many bytes per compressed byte.
/// Every sync message is mostly signatures, hashes and keys, which do not compress:
/// real batches come to 3-5x. DEFLATE itself reaches about 1,000x, which would let a
/// peer make this node inflate 8 MiB for every 8 KiB it sends.
pub const INFLATE_RATIO_MAX: usize = 32;

/// The sync message in a [`FrameKind::DataDeflate`] body. The announced length must
/// be within [`MESSAGE_BYTES_MAX`] and [`INFLATE_RATIO_MAX`] times the compressed bytes;
/// nothing past it is inflated; the message must have exactly that length and the
/// compressed stream must end where the frame does. Pure.
pub fn inflate_message(body: &[u8]) -> Result<Vec<u8>, NetError> {
    let (len, stream) =
        body.split_first_chunk::<4>().ok_or(NetError::BadFrame("compressed frame too short"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MESSAGE_BYTES_MAX {
        return Err(NetError::MessageTooLarge { len, max: MESSAGE_BYTES_MAX });
    }
    if len > stream.len().saturating_mul(INFLATE_RATIO_MAX) {
        return Err(NetError::BadFrame("a compressed sync message claims an implausible size"));
    }
    let mut message = Vec::with_capacity(len);
    let mut decoder = flate2::read::DeflateDecoder::new(stream);
    (&mut decoder)
        .take(len as u64 + 1)
        .read_to_end(&mut message)
        .map_err(|_| NetError::BadFrame("corrupt compressed sync message"))?;
    if message.len() != len {
        return Err(NetError::BadFrame("compressed sync message of another length than announced"));
    }
    if decoder.total_in() != stream.len() as u64 {
        return Err(NetError::BadFrame("bytes after the end of a compressed sync message"));
    }
    Ok(message)
}

async fn write_frame(send: &mut quinn::SendStream, kind: FrameKind, body: &[u8]) -> Result<(), NetError> {
    let frame = encode_frame(kind, body)?;
    send.write_all(&frame).await?;
    Ok(())
}

/// Why a QUIC handshake failed; [`NetError::ProtocolVersion`] when the two ends share
/// no protocol version (TLS alert 120, no application protocol).
fn handshake_failure(addr: SocketAddr, e: &quinn::ConnectionError) -> NetError {
    let no_common_version = quinn::TransportErrorCode::crypto(120);
    let code = match e {
        quinn::ConnectionError::ConnectionClosed(close) => Some(close.error_code),
        quinn::ConnectionError::TransportError(error) => Some(error.code),
        _ => None,
    };
    if code == Some(no_common_version) {
        NetError::ProtocolVersion { addr }
    } else if code == Some(quinn::TransportErrorCode::CONNECTION_REFUSED) {
        NetError::Busy { addr }
    } else {
        NetError::Connect { addr, reason: e.to_string() }
    }
}

/// The QUIC application error code of a connection closed because the peer was
/// refused; the close frame's reason carries the words (see [`Channel::refuse`]).
const CLOSE_REFUSED: u32 = 2;
/// Bytes of a refusal's words sent in the QUIC close frame (it must fit in a packet).
const CLOSE_REASON_BYTES_MAX: usize = 400;

/// The words of a connection the peer closed because it refused this node.
fn refusal_words(e: &quinn::ConnectionError) -> Option<String> {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) if close.error_code == CLOSE_REFUSED.into() => {
            Some(String::from_utf8_lossy(&close.reason).into_owned())
        }
        _ => None,
    }
}

impl From<quinn::ConnectionError> for NetError {
    fn from(e: quinn::ConnectionError) -> Self {
        match refusal_words(&e) {
            Some(words) => NetError::RefusedByPeer(words),
            None => NetError::Connection(e),
        }
    }
}

impl From<quinn::WriteError> for NetError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(lost) => lost.into(),
            other => NetError::Write(other),
        }
    }
}

/// A lost connection keeps its reason (timed out, reset by the peer, closed by it...).
fn read_error(e: quinn::ReadExactError) -> NetError {
    match e {
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(lost)) => lost.into(),
        other => NetError::Read(other.to_string()),
    }
}

/// `reason` cut to at most [`CLOSE_REASON_BYTES_MAX`] bytes on a character boundary.
fn close_reason(reason: &str) -> &[u8] {
    let mut end = reason.len().min(CLOSE_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason.as_bytes()[..end]
}

/// Reads one frame; `None` at a clean end of stream before a frame starts.
async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Option<Vec<u8>>, NetError> {
    let mut len_bytes = [0u8; 4];
    match recv.read_exact(&mut len_bytes).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(read_error(e)),
    }
    let len = frame_payload_len(len_bytes)?;
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame).await.map_err(read_error)?;
    Ok(Some(frame))
}

/// Registers for SIGINT (Ctrl-C) and SIGTERM (systemd's stop) at once and returns a
/// future that completes on either. Call it before announcing that a daemon is up, so
/// that a signal sent right after the announcement still stops it cleanly rather than
/// killing it. Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests;
