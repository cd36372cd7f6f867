//! Loopback tests: real QUIC on 127.0.0.1, bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use tessera_log::testkit::TestNetwork;
use tessera_log::{DeviceRevocation, Seq, TrustStatement};

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
        trust
            .add(net.sign_as_partner(
                0,
                TrustStatement::RevokeDevice(DeviceRevocation {
                    issuer: net.partner_keys[0].public(),
                    device: net.devices[1].id,
                    last_valid: Seq(3),
                    reason: "stolen".into(),
                }),
            ))
            .unwrap();
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
        assert!(matches!(err, NetError::RefusedByPeer(ref r) if r.contains("network")), "{err}");
        // The revoked device.
        let revoked = Endpoint::bind(loopback(), identity(&net, 1)).unwrap();
        let err = revoked.connect(addr, &net.trust()).await.unwrap_err();
        assert!(matches!(err, NetError::RefusedByPeer(ref r) if r.contains("revoked")), "{err}");
        let reasons = server_task.await.unwrap();
        assert!(reasons[0].contains("network"), "{reasons:?}");
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

async fn client_connect(net: &TestNetwork, addr: SocketAddr, trust: &TrustState) -> Channel {
    let client = Endpoint::bind(loopback(), identity(net, 1)).unwrap();
    client.connect(addr, trust).await.unwrap()
}
