//! Loopback tests: real QUIC on 127.0.0.1, bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use tessera_log::testkit::TestNetwork;
use tessera_log::Seq;

use super::*;

fn identity(net: &TestNetwork, device: usize) -> Identity {
    let trust = net.trust();
    let chain = trust.chain_of(&net.devices[device].id).into_iter().cloned().collect();
    let seed = net.devices[device].key.to_seed();
    Identity { network: net.network, key: SecretKey::from_seed(seed), chain }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.expect("test took too long")
}

#[tokio::test]
async fn certified_devices_authenticate_and_exchange_frames() {
    within(async {
        let net = TestNetwork::new(1, 2, 1);
        let server = Endpoint::bind(loopback(), identity(&net, 0)).unwrap();
        let client = Endpoint::bind(loopback(), identity(&net, 1)).unwrap();
        let addr = server.local_addr().unwrap();
        // The server knows only the network: the client's certificates come with it.
        let server_trust = TrustState::new(net.network);
        let accept = tokio::spawn({
            let server = server.clone();
            async move {
                let incoming = server.accept().await.unwrap();
                let channel = incoming.handshake(&server_trust).await.unwrap();
                let peer = channel.peer().unwrap().certificate.device;
                let (mut tx, mut rx) = channel.split();
                let got = rx.recv().await.unwrap().unwrap();
                tx.send(&[got.as_slice(), b" back"].concat()).await.unwrap();
                assert_eq!(rx.recv().await.unwrap(), None, "clean end");
                peer
            }
        });
        let channel = client.connect(addr, &net.trust()).await.unwrap();
        assert_eq!(channel.peer().unwrap().certificate.device, net.devices[0].id);
        let (mut tx, mut rx) = channel.split();
        tx.send(b"hello").await.unwrap();
        assert_eq!(rx.recv().await.unwrap().unwrap(), b"hello back");
        let _ = tx.send.finish();
        assert_eq!(accept.await.unwrap(), net.devices[1].id);
    })
    .await;
}

#[tokio::test]
async fn an_uncertified_or_revoked_device_is_refused_with_a_reason_on_both_sides() {
    within(async {
        let net = TestNetwork::new(1, 1, 2);
        let stranger_net = TestNetwork::new(2, 1, 1);
        let server = Endpoint::bind(loopback(), identity(&net, 0)).unwrap();
        let addr = server.local_addr().unwrap();
        let mut trust = net.trust();
        trust.add(net.revoke_device(0, net.devices[1].id, Seq(3), "stolen")).unwrap();
        let server_task = tokio::spawn({
            let server = server.clone();
            async move {
                let mut reasons = Vec::new();
                for _ in 0..2 {
                    let incoming = server.accept().await.unwrap();
                    match incoming.handshake(&trust).await {
                        Err(NetError::PeerRefused(e)) => reasons.push(e.to_string()),
                        other => panic!("expected a refusal, got {other:?}"),
                    }
                }
                reasons
            }
        });
        // A device of another network, presenting its own (valid, foreign) chain.
        let stranger = Endpoint::bind(loopback(), identity(&stranger_net, 0)).unwrap();
        let err = stranger.connect(addr, &stranger_net.trust()).await.unwrap_err();
        // Told from its own side: which network it reached, and which is its own.
        let told =
            format!("belongs to network {}, and this node to network {}", net.network, stranger_net.network);
        assert!(matches!(err, NetError::RefusedByPeer(ref r) if r.contains(&told)), "{err}");
        // The revoked device.
        let revoked = Endpoint::bind(loopback(), identity(&net, 1)).unwrap();
        let err = revoked.connect(addr, &net.trust()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer(ref r) if r.contains("revoked")), "{err}");
        let reasons = server_task.await.unwrap();
        let logged = format!("the peer belongs to network {}, not to this network", stranger_net.network);
        assert!(reasons[0].contains(&logged), "{reasons:?}");
        assert!(reasons[1].contains("revoked"), "{reasons:?}");
    })
    .await;
}

#[tokio::test]
async fn the_client_refuses_a_server_it_cannot_verify() {
    within(async {
        let net = TestNetwork::new(1, 1, 2);
        let server = Endpoint::bind(loopback(), Identity { chain: vec![], ..identity(&net, 0) }).unwrap();
        let addr = server.local_addr().unwrap();
        let server_task = tokio::spawn({
            let server = server.clone();
            let trust = net.trust();
            async move {
                // Keep the session open until the client has judged it.
                let channel = server.accept().await.unwrap().handshake(&trust).await.unwrap();
                let (_tx, mut rx) = channel.split();
                rx.recv().await
            }
        });
        let client = Endpoint::bind(loopback(), identity(&net, 1)).unwrap();
        // The client knows only the network, and the server presents no certificate.
        let err = client.connect(addr, &TrustState::new(net.network)).await.unwrap_err();
        assert!(matches!(err, NetError::PeerRefused(ChannelError::NotCertified(_))), "{err}");
        // And the server is told why.
        let told = server_task.await.unwrap();
        assert!(
            matches!(told, Err(NetError::RefusedByPeer(ref r)) if r.contains("not certified")),
            "{told:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame_ends_the_session_without_allocating_it() {
    within(async {
        let net = TestNetwork::new(1, 1, 2);
        let server = Endpoint::bind(loopback(), identity(&net, 0)).unwrap();
        let addr = server.local_addr().unwrap();
        let trust = net.trust();
        let server_task = tokio::spawn({
            let server = server.clone();
            let trust = trust.clone();
            async move {
                let channel = server.accept().await.unwrap().handshake(&trust).await.unwrap();
                let (_tx, mut rx) = channel.split();
                rx.recv().await
            }
        });
        let channel = client_connect(&net, addr, &trust).await;
        let (mut tx, _rx) = channel.split();
        // A length prefix far above the limit, written raw.
        tx.send.write_all(&(u32::MAX).to_le_bytes()).await.unwrap();
        let result = server_task.await.unwrap();
        assert!(matches!(result, Err(NetError::FrameTooLarge { .. })), "{result:?}");
        assert!(matches!(tx.send(&vec![0u8; FRAME_BYTES_MAX]).await, Err(NetError::FrameTooLarge { .. })));
    })
    .await;
}

/// A relay that restarts on its port answers the packets of a connection it lost with
/// a stateless reset its clients recognize (the reset key comes from the device key),
/// so they fail at once instead of waiting out the idle timeout (60 s, past `within`).
#[tokio::test]
async fn a_client_learns_at_once_that_its_server_restarted() {
    within(async {
        let net = TestNetwork::new(1, 2, 1);
        // The first server process: its own runtime on its own thread, so that it can
        // die without a word (a dropped runtime polls nothing again, so no close).
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (server_identity, trust) = (identity(&net, 0), net.trust());
        let first = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let state = runtime.block_on(async {
                let server = Endpoint::bind(loopback(), server_identity).unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                let channel = server.accept().await.unwrap().handshake(&trust).await.unwrap();
                let (tx, mut rx) = channel.split();
                assert_eq!(rx.recv().await.unwrap().unwrap(), b"ready");
                (server, tx, rx)
            });
            drop(runtime);
            drop(state);
        });
        let addr = addr_rx.await.unwrap();
        let channel = client_connect(&net, addr, &net.trust()).await;
        let (mut tx, mut rx) = channel.split();
        tx.send(b"ready").await.unwrap();
        tokio::task::spawn_blocking(move || first.join().unwrap()).await.unwrap();
        // The same device starts again on the port.
        let _restarted = Endpoint::bind(addr, identity(&net, 0)).unwrap();
        let _ = tx.send(b"still there?").await;
        match rx.recv().await {
            Err(NetError::Connection(quinn::ConnectionError::Reset)) => {}
            other => panic!("expected a stateless reset, got {other:?}"),
        }
    })
    .await;
}

/// Connects a client that offers `alpns` to `server` and sends `message` both ways;
/// returns the protocol each side agreed on and the bytes the client sent.
async fn exchange_with_alpns(
    net: &TestNetwork,
    server: &Endpoint,
    alpns: &[&[u8]],
    message: &[u8],
) -> Result<(&'static str, &'static str, u64), (NetError, NetError)> {
    let addr = server.local_addr().unwrap();
    let accept = tokio::spawn({
        let server = server.clone();
        let trust = net.trust();
        async move {
            let channel = server.accept().await.unwrap().handshake(&trust).await?;
            let protocol = channel.protocol();
            let (mut tx, mut rx) = channel.split();
            let got = rx.recv().await?.expect("a message");
            tx.send(&got).await?;
            let _ = rx.recv().await;
            Ok::<_, NetError>(protocol)
        }
    });
    let mut client = Endpoint::bind(loopback(), identity(net, 1)).unwrap();
    client.inner.set_default_client_config(client_config_with_alpn(alpns).unwrap());
    let channel = match client.connect(addr, &net.trust()).await {
        Ok(channel) => channel,
        Err(client_error) => return Err((client_error, accept.await.unwrap().unwrap_err())),
    };
    let protocol = channel.protocol();
    let wire = channel.wire();
    let (mut tx, mut rx) = channel.split();
    tx.send(message).await.unwrap();
    assert!(rx.recv().await.unwrap().unwrap() == message, "the message came back changed");
    tx.finish();
    let server_protocol = accept.await.unwrap().unwrap();
    Ok((protocol, server_protocol, wire.sent()))
}

/// Peers agree on the newest protocol both speak: `tessera/3` asks for what it lacks,
/// `tessera/2` compresses, a
/// `tessera/1` peer (an older release) still syncs, uncompressed, and a peer that
/// speaks neither is refused at the TLS handshake with a reason an operator can act on.
#[tokio::test]
async fn peers_agree_on_a_protocol_version_or_are_told_why_not() {
    within(async {
        let net = TestNetwork::new(1, 2, 1);
        let server = Endpoint::bind(loopback(), identity(&net, 0)).unwrap();
        let message: Vec<u8> =
            (0..400u32).flat_map(|i| format!("given_name family_name school {i};").into_bytes()).collect();

        let (client, server_side, sent) = exchange_with_alpns(&net, &server, &ALPNS, &message).await.unwrap();
        assert_eq!((client, server_side), ("tessera/3", "tessera/3"));
        assert!(sent * 2 < message.len() as u64, "tessera/3 compresses: {sent} bytes sent");

        let (client, server_side, sent) =
            exchange_with_alpns(&net, &server, &[b"tessera/2"], &message).await.unwrap();
        assert_eq!((client, server_side), ("tessera/2", "tessera/2"));
        assert!(sent * 2 < message.len() as u64, "tessera/2 compresses: {sent} bytes sent");

        let (client, server_side, sent) =
            exchange_with_alpns(&net, &server, &[b"tessera/1"], &message).await.unwrap();
        assert_eq!((client, server_side), ("tessera/1", "tessera/1"));
        assert_eq!(sent, 5 + message.len() as u64, "tessera/1 sends the message as it is");

        let (client, server_side) =
            exchange_with_alpns(&net, &server, &[b"tessera/9"], &message).await.unwrap_err();
        for error in [client, server_side] {
            assert!(matches!(error, NetError::ProtocolVersion { .. }), "{error:?}");
            assert!(error.to_string().contains("another version of the Tessera protocol"), "{error}");
        }
    })
    .await;
}

async fn client_connect(net: &TestNetwork, addr: SocketAddr, trust: &TrustState) -> Channel {
    let client = Endpoint::bind(loopback(), identity(net, 1)).unwrap();
    client.connect(addr, trust).await.unwrap()
}

mod sessions {
    use std::sync::{Arc, Mutex};

    use tessera_log::LogEntry;
    use tessera_store::{Policy, Store};
    use tessera_sync::{CloseReason, SessionConfig};
    use tokio::sync::{broadcast, watch};

    use super::*;
    use crate::driver::{run_session, RunOptions};

    pub(super) struct Side {
        pub(super) _dir: tempfile::TempDir,
        pub(super) store: Arc<Mutex<Store>>,
        pub(super) endpoint: Endpoint,
    }

    /// A store holding the network's certificates and `envelopes` of `device`, with an
    /// endpoint presenting that device.
    pub(super) fn side(net: &mut TestNetwork, device: usize, envelopes: u64) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(net.network)).unwrap();
        let certs: Vec<LogEntry> = net.entries.iter().cloned().map(LogEntry::Trust).collect();
        store.ingest(&certs, Policy::AllOrNothing).unwrap();
        let network = net.network;
        let batch: Vec<LogEntry> = (0..envelopes)
            .map(|n| LogEntry::Envelope(net.devices[device].next_simple(&network, n, 200)))
            .collect();
        if !batch.is_empty() {
            store.ingest(&batch, Policy::AllOrNothing).unwrap();
        }
        let endpoint = Endpoint::bind(loopback(), identity(net, device)).unwrap();
        Side { _dir: dir, store: Arc::new(Mutex::new(store)), endpoint }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_sync_both_ways_over_quic() {
        within(async {
            let mut net = TestNetwork::new(3, 1, 2);
            let a = side(&mut net, 0, 300);
            let b = side(&mut net, 1, 120);
            let addr = a.endpoint.local_addr().unwrap();
            let (_stop_tx, stop) = watch::channel(false);
            let (fan_a, _) = broadcast::channel(16);
            let (fan_b, _) = broadcast::channel(16);
            let server = tokio::spawn({
                let endpoint = a.endpoint.clone();
                let store = a.store.clone();
                let stop = stop.clone();
                let trust = store.lock().unwrap().trust().clone();
                let config = SessionConfig::new(net.network, net.devices[0].id);
                async move {
                    let channel = endpoint.accept().await.unwrap().handshake(&trust).await.unwrap();
                    run_session(
                        channel,
                        store,
                        config,
                        fan_a,
                        stop,
                        RunOptions { stop_when_caught_up: true, id: 1, meter: None, closed: None },
                        |_, _| {},
                    )
                    .await
                }
            });
            let trust = b.store.lock().unwrap().trust().clone();
            let channel = b.endpoint.connect(addr, &trust).await.unwrap();
            let config = SessionConfig::new(net.network, net.devices[1].id);
            let summary = run_session(
                channel,
                b.store.clone(),
                config,
                fan_b,
                stop,
                RunOptions { stop_when_caught_up: true, id: 2, meter: None, closed: None },
                |_, _| {},
            )
            .await
            .unwrap();
            let server_summary = server.await.unwrap().unwrap();
            assert!(matches!(summary.outcome, CloseReason::Finished { .. }), "{:?}", summary.outcome);
            assert_eq!(summary.stats.envelopes_received, 300);
            assert_eq!(summary.stats.envelopes_sent, 120);
            assert_eq!(server_summary.stats.envelopes_received, 120);
            let heads_a = a.store.lock().unwrap().heads().clone();
            let heads_b = b.store.lock().unwrap().heads().clone();
            assert_eq!(heads_a, heads_b);
            assert_eq!(heads_a.total_envelopes(), 420);
        })
        .await;
    }
}

mod fanout {
    use tessera_sync::{CloseReason, SessionConfig};
    use tokio::sync::{broadcast, watch};

    use super::sessions::{side, Side};
    use super::*;
    use crate::driver::{run_session, RunOptions};

    /// A live session stores hundreds of batches while its own fan-out channel holds
    /// only two: its own announcements must not make it lag and stop early.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_live_session_does_not_lag_on_its_own_batches() {
        within(async {
            let mut net = TestNetwork::new(4, 1, 2);
            let network = net.network;
            let Side { _dir: _da, store: a, endpoint: server } = side(&mut net, 0, 0);
            let Side { _dir: _db, store: b, endpoint: client } = side(&mut net, 1, 2000);
            let addr = server.local_addr().unwrap();
            let (stop_tx, stop) = watch::channel(false);
            let (fan_a, _) = broadcast::channel(2);
            let device_a = net.devices[0].id;
            let server_task = tokio::spawn({
                let a = a.clone();
                let stop = stop.clone();
                let trust = a.lock().unwrap().trust().clone();
                async move {
                    let channel = server.accept().await.unwrap().handshake(&trust).await.unwrap();
                    let config = SessionConfig::new(network, device_a);
                    run_session(
                        channel,
                        a,
                        config,
                        fan_a,
                        stop,
                        RunOptions { stop_when_caught_up: false, id: 1, meter: None, closed: None },
                        |_, _| {},
                    )
                    .await
                }
            });
            let trust = b.lock().unwrap().trust().clone();
            let channel = client.connect(addr, &trust).await.unwrap();
            let mut config = SessionConfig::new(network, net.devices[1].id);
            config.limits.entries_per_batch_max = 8;
            let (fan_b, _) = broadcast::channel(2);
            let summary = run_session(
                channel,
                b,
                config,
                fan_b,
                stop,
                RunOptions { stop_when_caught_up: true, id: 2, meter: None, closed: None },
                |_, _| {},
            )
            .await
            .unwrap();
            assert!(matches!(summary.outcome, CloseReason::Finished { .. }), "{:?}", summary.outcome);
            assert_eq!(summary.stats.envelopes_sent, 2000);
            let _ = stop_tx.send(true);
            let server_summary = server_task.await.unwrap().unwrap();
            assert!(
                matches!(server_summary.outcome, CloseReason::Finished { .. }),
                "{:?}",
                server_summary.outcome
            );
            assert_eq!(a.lock().unwrap().heads().total_envelopes(), 2000);
        })
        .await;
    }
}

mod compression {
    use std::io::Write;

    use super::*;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Text shaped like a batch of records: compresses about 5-10x, as real ones do.
    fn records_text() -> Vec<u8> {
        (0..300u32)
            .flat_map(|i| format!("given_name {i} family_name {} school;", i * 7919 % 1000).into_bytes())
            .collect()
    }

    fn body(len: u32, stream: &[u8]) -> Vec<u8> {
        [&len.to_le_bytes()[..], stream].concat()
    }

    fn message_of(frame: &[u8]) -> (FrameKind, Vec<u8>) {
        assert_eq!(frame_payload_len(frame[..4].try_into().unwrap()).unwrap(), frame.len() - 4);
        match split_frame(&frame[4..]).unwrap() {
            (FrameKind::DataDeflate, body) => (FrameKind::DataDeflate, inflate_message(body).unwrap()),
            (kind, body) => (kind, body.to_vec()),
        }
    }

    #[test]
    fn a_repetitive_message_travels_compressed_and_comes_back_whole() {
        let message: Vec<u8> = (0..200u32)
            .flat_map(|i| format!("given_name family_name birth_year {i};").into_bytes())
            .collect();
        let frame = encode_data_frame(&message).unwrap();
        assert!(frame.len() * 4 < message.len(), "{} bytes framed as {}", message.len(), frame.len());
        let (kind, back) = message_of(&frame);
        assert_eq!(kind, FrameKind::DataDeflate);
        assert!(back == message, "inflate(deflate(x)) != x");
    }

    #[test]
    fn short_or_incompressible_messages_travel_as_they_are() {
        let short = vec![7u8; COMPRESS_MIN_BYTES - 1];
        assert_eq!(message_of(&encode_data_frame(&short).unwrap()), (FrameKind::Data, short));
        // Hash output does not compress: the plain frame is smaller.
        let mut noise = vec![0u8; 4096];
        blake3::Hasher::new().update(b"noise").finalize_xof().fill(&mut noise);
        let (kind, back) = message_of(&encode_data_frame(&noise).unwrap());
        assert_eq!(kind, FrameKind::Data);
        assert!(back == noise);
    }

    #[test]
    fn a_sender_never_claims_more_than_a_receiver_accepts() {
        // Zeros compress about 1,000x: past INFLATE_RATIO_MAX, so they go plain.
        let zeros = vec![0u8; 100_000];
        let (kind, back) = message_of(&encode_data_frame(&zeros).unwrap());
        assert_eq!(kind, FrameKind::Data);
        assert!(back == zeros);
    }

    #[test]
    fn inflating_is_bounded_whatever_the_frame_claims() {
        // 64 MiB of zeros deflate to about 64 KiB: a "zip bomb" the limit must stop.
        let bomb = deflate(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < FRAME_BYTES_MAX);
        // Announced as what it is: refused before inflating anything.
        assert!(matches!(
            inflate_message(&body(64 * 1024 * 1024, &bomb)),
            Err(NetError::MessageTooLarge { .. })
        ));
        // Within the message limit but far past any real compression ratio: refused too.
        let small_bomb = deflate(&vec![0u8; 4 * 1024 * 1024]);
        assert!(small_bomb.len() * INFLATE_RATIO_MAX < 4 * 1024 * 1024);
        assert!(matches!(inflate_message(&body(4 * 1024 * 1024, &small_bomb)), Err(NetError::BadFrame(_))));
        // Announced as small: inflating stops one byte past the announced length.
        assert!(matches!(inflate_message(&body(1000, &bomb)), Err(NetError::BadFrame(_))));
        // Announced longer than it is.
        assert!(matches!(inflate_message(&body(5000, &deflate(&[1u8; 4000]))), Err(NetError::BadFrame(_))));
    }

    #[test]
    fn a_corrupt_compressed_message_is_an_error() {
        let text = records_text();
        let len = text.len() as u32;
        let mut stream = deflate(&text);
        assert!(inflate_message(&body(len, &stream)).unwrap() == text);
        stream.truncate(stream.len() / 2);
        assert!(inflate_message(&body(len, &stream)).is_err());
        assert!(inflate_message(&body(10, &[0xff; 40])).is_err());
        // Bytes after the end of the stream.
        let mut trailing = deflate(&text);
        trailing.extend_from_slice(b"extra");
        assert!(matches!(inflate_message(&body(len, &trailing)), Err(NetError::BadFrame(_))));
        assert!(inflate_message(&[1, 2]).is_err());
        assert!(inflate_message(&[]).is_err());
    }
}
