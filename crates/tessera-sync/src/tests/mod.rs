//! Session tests: two real stores synced through two sessions in memory (see
//! [`util::Pair`]), plus sessions fed hostile bytes directly.

mod util;

use std::time::Duration;

use proptest::prelude::*;
use tessera_log::testkit::TestNetwork;
use tessera_log::{LogEntry, Seq};

use crate::limits::MESSAGE_BYTES_MAX;
use crate::{
    BatchId, CloseCode, CloseReason, Event, Message, ProtocolViolation, Session, SessionConfig, SessionError,
    SessionLimits, WantKind, Wanted,
};
use util::{chain, envelope_count, trust_entries, Node, Pair};

fn limits() -> SessionLimits {
    SessionLimits::default()
}

fn small_batches(entries: usize, window: usize) -> SessionLimits {
    SessionLimits {
        entries_per_batch_max: entries,
        batches_in_flight_max: window,
        ..SessionLimits::default()
    }
}

/// Same heads, trust and envelopes on both sides.
fn assert_same_logs(pair: &Pair) {
    assert_eq!(pair.a.store.heads(), pair.b.store.heads());
    let ids = |n: &Node| n.store.trust().ids().copied().collect::<Vec<_>>();
    assert_eq!(ids(&pair.a), ids(&pair.b));
    for (author, head) in pair.a.store.heads().iter() {
        for seq in 1..=head.seq.0 {
            let a = pair.a.store.get(author, Seq(seq)).unwrap().unwrap();
            let b = pair.b.store.get(author, Seq(seq)).unwrap().unwrap();
            assert_eq!(a, b);
        }
    }
}

fn both_live(pair: &Pair) {
    for node in [&pair.a, &pair.b] {
        assert!(node.session.is_live(), "not live; closed: {:?}", node.closed);
        assert!(node.saw(|e| matches!(e, Event::CaughtUp)));
        assert!(node.saw(|e| matches!(e, Event::Live)));
    }
}

#[test]
fn two_nodes_sync_both_ways() {
    let mut net = TestNetwork::new(1, 2, 2);
    let from_a = chain(&mut net, 0, 40, 64);
    let from_b = chain(&mut net, 1, 25, 64);
    let mut a = Node::new(&net, 0, small_batches(16, 4));
    let mut b = Node::new(&net, 1, small_batches(16, 4));
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&from_a);
    b.hold(&from_b);
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert_same_logs(&pair);
    assert_eq!(envelope_count(&pair.a.store), 65);
    let (sa, sb) = (pair.a.session.stats(), pair.b.session.stats());
    assert_eq!((sa.envelopes_sent, sa.envelopes_received), (40, 25));
    assert_eq!((sb.envelopes_sent, sb.envelopes_received), (25, 40));
    assert_eq!((sa.envelopes_to_send, sa.envelopes_to_receive), (40, 25));
    assert_eq!(sa.round_trips_to_difference, Some(1));
    assert_eq!(sa.bytes_sent, sb.bytes_received);
    assert_eq!(pair.a.session.peer_device(), Some(net.devices[1].id));
}

#[test]
fn an_empty_node_receives_everything_after_one_round_trip() {
    let mut net = TestNetwork::new(2, 2, 2);
    let mut a = Node::new(&net, 0, limits());
    a.hold(&trust_entries(&net));
    for device in 0..4 {
        let envelopes = chain(&mut net, device, 300, 120);
        a.hold(&envelopes);
    }
    // b holds nothing at all, not even the certificates.
    let b = Node::new(&net, 1, limits());
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert_same_logs(&pair);
    assert_eq!(envelope_count(&pair.b.store), 1200);
    let received = pair.b.session.stats();
    assert_eq!(received.round_trips_to_difference, Some(1));
    assert_eq!(received.envelopes_to_receive, 1200);
    assert_eq!(received.envelopes_received, 1200);
    assert_eq!(received.trust_entries_received, net.entries.len() as u64);
    assert!(pair.b.saw(|e| matches!(e, Event::DifferenceKnown { envelopes_to_receive: 1200, .. })));
    // Wire bytes stay within the target: 1.10 × entry bytes + 4 KiB.
    let sent = pair.a.session.stats();
    let wire = sent.bytes_sent + 4 * sent.messages_sent; // with the transport's frame prefixes
    assert!(
        (wire as f64) <= 1.10 * sent.entry_bytes_sent as f64 + 4096.0,
        "{wire} wire bytes for {} entry bytes",
        sent.entry_bytes_sent
    );
}

#[test]
fn peers_in_sync_exchange_only_hellos_and_caught_up() {
    let mut net = TestNetwork::new(3, 1, 2);
    let history = chain(&mut net, 0, 20, 32);
    let mut a = Node::new(&net, 0, limits());
    let mut b = Node::new(&net, 1, limits());
    for node in [&mut a, &mut b] {
        node.hold(&trust_entries(&net));
        node.hold(&history);
    }
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.sent, vec!["Hello", "Want", "CaughtUp"]);
        let stats = node.session.stats();
        assert_eq!(stats.envelopes_sent + stats.trust_entries_sent + stats.batches_sent, 0);
    }
}

fn stripped(entry: &LogEntry) -> LogEntry {
    let LogEntry::Envelope(env) = entry else { panic!("not an envelope") };
    let mut env = env.clone();
    for index in 0..env.bodies().len() {
        env.strip_body(index);
    }
    LogEntry::Envelope(env)
}

#[test]
fn bodies_a_carrier_stripped_are_asked_for_and_come_back_though_heads_match() {
    let mut net = TestNetwork::new(3, 1, 3);
    let history = chain(&mut net, 0, 20, 32);
    let mut a = Node::new(&net, 1, limits());
    let mut b = Node::new(&net, 2, limits());
    a.hold(&trust_entries(&net));
    a.hold(&history);
    // b got envelopes 5 and 12 from a carrier that emptied their bodies.
    let carried: Vec<LogEntry> = history
        .iter()
        .enumerate()
        .map(|(i, e)| if i == 4 || i == 11 { stripped(e) } else { e.clone() })
        .collect();
    b.hold(&trust_entries(&net));
    b.hold(&carried);
    let device = net.devices[0].id;
    assert_eq!(b.store.bodies_missing(10).unwrap(), vec![(device, Seq(5)), (device, Seq(12))]);
    assert_eq!(a.store.heads(), b.store.heads());
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert!(pair.b.store.bodies_missing(10).unwrap().is_empty());
    for (i, entry) in history.iter().enumerate() {
        let LogEntry::Envelope(env) = entry else { unreachable!() };
        assert_eq!(pair.b.store.get(&device, env.seq()).unwrap().as_ref(), Some(env), "envelope {i}");
    }
    // Only the two asked for travelled.
    assert_eq!(pair.b.session.stats().wanted_asked, 2);
    assert_eq!(pair.a.session.stats().wanted_sent, 2);
    assert_eq!(pair.a.session.stats().envelopes_sent, 2);
}

#[test]
fn a_body_no_peer_has_stays_asked_for_and_the_session_still_ends_well() {
    let mut net = TestNetwork::new(3, 1, 3);
    let history = chain(&mut net, 0, 6, 32);
    let carried: Vec<LogEntry> =
        history.iter().enumerate().map(|(i, e)| if i == 2 { stripped(e) } else { e.clone() }).collect();
    let mut a = Node::new(&net, 1, limits());
    let mut b = Node::new(&net, 2, limits());
    for node in [&mut a, &mut b] {
        node.hold(&trust_entries(&net));
        node.hold(&carried);
    }
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.store.bodies_missing(10).unwrap().len(), 1);
        assert_eq!(node.session.stats().wanted_asked, 1);
        // Neither sends its own stripped copy: it would bring nothing.
        assert_eq!(node.session.stats().envelopes_sent, 0);
    }
}

/// Builds a pair where `a` holds 30 envelopes of device 0 that `b` lacks and sends
/// envelope `tampered` altered; `b` holds the certificates.
fn tampered_pair(tampered: u64, entries_per_batch: usize) -> (TestNetwork, Pair) {
    let mut net = TestNetwork::new(4, 1, 2);
    let history = chain(&mut net, 0, 30, 48);
    let mut a = Node::new(&net, 0, small_batches(entries_per_batch, 2));
    let mut b = Node::new(&net, 1, small_batches(entries_per_batch, 2));
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&history);
    a.tamper = Some((net.devices[0].id, Seq(tampered)));
    (net, Pair::new(a, b))
}

#[test]
fn a_tampered_envelope_ends_the_session_and_nothing_of_its_batch_is_stored() {
    // One batch holds everything: the receiver stores nothing at all.
    let (net, mut pair) = tampered_pair(5, 1024);
    let heads_before = pair.b.store.heads().clone();
    let log_before = pair.b.store.log_bytes();
    pair.drive();
    assert_eq!(pair.b.store.heads(), &heads_before);
    assert_eq!(pair.b.store.log_bytes(), log_before);
    let short = net.devices[0].id.short();
    match pair.b.error() {
        Some(SessionError::RejectedEnvelope { author, seq, reason }) => {
            assert_eq!((*author, *seq), (net.devices[0].id, Seq(5)));
            assert!(reason.contains("does not match its signed commitment"), "{reason}");
        }
        other => panic!("receiver: {other:?}"),
    }
    let message = pair.b.error().unwrap().to_string();
    assert!(message.contains(&short) && message.contains("envelope 5"), "{message}");
    // The sender learns which envelope and why.
    match pair.a.error() {
        Some(SessionError::PeerClosed { code: CloseCode::RejectedEntry, text }) => {
            assert!(text.contains(&short) && text.contains("envelope 5"), "{text}");
            assert!(text.contains("nothing from its batch was stored"), "{text}");
        }
        other => panic!("sender: {other:?}"),
    }
}

#[test]
fn batches_before_a_tampered_one_stay_stored() {
    // Batches of 4: [1-4] [5-8] [9-12] …; envelope 10 is altered.
    let (net, mut pair) = tampered_pair(10, 4);
    pair.drive();
    assert!(matches!(pair.b.error(), Some(SessionError::RejectedEnvelope { seq: Seq(10), .. })));
    // 1..=8 came in earlier batches; nothing of 9..=12 was stored, and the batch
    // behind it (13..=16, in flight) was withdrawn from the application.
    assert_eq!(pair.b.store.head(&net.devices[0].id).map(|h| h.seq), Some(Seq(8)));
    assert!(pair.a.session.is_closed() && pair.b.session.is_closed());
}

#[test]
fn a_peer_of_another_network_is_refused_on_both_sides() {
    let net = TestNetwork::new(5, 1, 2);
    let other = TestNetwork::new(6, 1, 2);
    let a = Node::new(&net, 0, limits());
    let b = Node::new(&other, 1, limits());
    let mut pair = Pair::new(a, b);
    pair.drive();
    for (node, ours, peer) in [(&pair.a, net.network, other.network), (&pair.b, other.network, net.network)] {
        assert_eq!(node.error(), Some(&SessionError::WrongNetwork { ours, peer }));
        let text = node.error().unwrap().to_string();
        assert!(text.contains("not to this node's network"), "{text}");
        // Each sent its Hello, its (empty) Want and its refusal; nothing else.
        assert_eq!(node.sent, vec!["Hello", "Want", "Close"]);
    }
}

#[test]
fn a_peer_of_another_protocol_version_is_refused_on_both_sides() {
    let net = TestNetwork::new(7, 1, 2);
    let a = Node::new(&net, 0, limits());
    let b = Node::new(&net, 1, limits());
    let mut pair = Pair::new(a, b);
    // `a` claims version 2 in its Hello.
    pair.rewrite_a_to_b = Some(Box::new(|mut message: Vec<u8>| {
        if message[0] == 0x01 {
            message[1] = 2;
        }
        message
    }));
    pair.drive();
    assert_eq!(pair.b.error(), Some(&SessionError::UnsupportedVersion { ours: 1, peer: 2 }));
    match pair.a.error() {
        Some(SessionError::PeerClosed { code: CloseCode::UnsupportedVersion, text }) => {
            assert!(text.contains("version 1, not version 2"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(pair.b.error().unwrap().to_string().contains("update the older"));
}

/// A session that has sent its Hello and accepted a valid Hello from the peer.
fn session_after_hello(net: &TestNetwork, store: &tessera_store::Store) -> Session {
    let mut session = Session::new(SessionConfig::new(net.network, net.devices[0].id), Duration::ZERO);
    session.poll_transmit(Duration::ZERO, store).unwrap();
    let mut peer = Session::new(SessionConfig::new(net.network, net.devices[1].id), Duration::ZERO);
    let hello = peer.poll_transmit(Duration::ZERO, store).unwrap();
    session.handle_message(Duration::ZERO, &hello).unwrap();
    session
}

fn empty_store(net: &TestNetwork) -> (tempfile::TempDir, tessera_store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = tessera_store::Store::open(dir.path(), Some(net.network)).unwrap();
    (dir, store)
}

fn closes_with(session: &mut Session, store: &tessera_store::Store, code: CloseCode) {
    assert!(session.is_closed());
    let mut closing = None;
    while let Some(message) = session.poll_transmit(Duration::ZERO, store) {
        closing = Some(Message::decode(&message).unwrap());
    }
    assert!(matches!(closing, Some(Message::Close { code: c, .. }) if c == code), "{closing:?}");
    assert!(session.is_drained());
    assert!(std::iter::from_fn(|| session.poll_event()).any(|e| matches!(e, Event::Closed { .. })));
}

#[test]
fn oversized_and_garbage_messages_end_the_session_without_panic() {
    let net = TestNetwork::new(8, 1, 2);
    let (_dir, store) = empty_store(&net);

    let mut session = session_after_hello(&net, &store);
    let huge = vec![0x02u8; MESSAGE_BYTES_MAX + 1];
    let err = session.handle_message(Duration::ZERO, &huge).unwrap_err();
    assert!(matches!(err, SessionError::MessageTooLarge { .. }), "{err}");
    closes_with(&mut session, &store, CloseCode::ProtocolViolation);

    let mut session = session_after_hello(&net, &store);
    let err = session.handle_message(Duration::ZERO, b"\x02garbage").unwrap_err();
    assert!(matches!(err, SessionError::Malformed { what: "Entries", .. }), "{err}");
    assert!(err.to_string().starts_with("malformed Entries message from the peer"), "{err}");
    closes_with(&mut session, &store, CloseCode::ProtocolViolation);

    let mut session = session_after_hello(&net, &store);
    let err = session.handle_message(Duration::ZERO, &[]).unwrap_err();
    assert!(matches!(err, SessionError::Malformed { .. }), "{err}");

    // An unknown message kind.
    let mut session = session_after_hello(&net, &store);
    assert!(session.handle_message(Duration::ZERO, &[0x7f, 0, 0]).is_err());

    // After the close, more bytes are ignored.
    assert!(session.handle_message(Duration::ZERO, b"\x05").is_ok());
}

#[test]
fn peer_messages_out_of_order_are_protocol_violations() {
    let net = TestNetwork::new(9, 1, 2);
    let (_dir, store) = empty_store(&net);

    // Anything but a Hello first.
    let mut session = Session::new(SessionConfig::new(net.network, net.devices[0].id), Duration::ZERO);
    let err = session.handle_message(Duration::ZERO, &Message::Ping { nonce: 1 }.encode()).unwrap_err();
    assert_eq!(err, SessionError::Protocol(ProtocolViolation::HelloFirst { got: "Ping" }));

    // A second Hello.
    let mut session = session_after_hello(&net, &store);
    let mut peer = Session::new(SessionConfig::new(net.network, net.devices[1].id), Duration::ZERO);
    let hello = peer.poll_transmit(Duration::ZERO, &store).unwrap();
    let err = session.handle_message(Duration::ZERO, &hello).unwrap_err();
    assert_eq!(err, SessionError::Protocol(ProtocolViolation::SecondHello));

    // A batch that skips a number, an Ack for nothing, a CaughtUp naming a batch
    // never sent.
    let mut envelope_net = TestNetwork::new(9, 1, 2);
    let one = chain(&mut envelope_net, 0, 1, 8);
    type Check = fn(&SessionError) -> bool;
    let cases: Vec<(Message, Check)> = vec![
        (Message::Entries { batch: BatchId(2), entries: one.clone() }, |e| {
            matches!(e, SessionError::Protocol(ProtocolViolation::BatchOutOfOrder { .. }))
        }),
        (Message::Ack { batch: BatchId(1), heads: Default::default() }, |e| {
            matches!(e, SessionError::Protocol(ProtocolViolation::AckOutOfOrder { expected: None, .. }))
        }),
        (Message::CaughtUp { last_batch: BatchId(3) }, |e| {
            matches!(e, SessionError::Protocol(ProtocolViolation::CaughtUpMismatch { .. }))
        }),
    ];
    for (message, expected) in cases {
        let mut session = session_after_hello(&net, &store);
        let err = session.handle_message(Duration::ZERO, &message.encode()).unwrap_err();
        assert!(expected(&err), "{err}");
        closes_with(&mut session, &store, CloseCode::ProtocolViolation);
    }
}

#[test]
fn a_peer_ignoring_flow_control_or_batch_limits_is_cut_off() {
    let mut net = TestNetwork::new(10, 1, 2);
    let (_dir, store) = empty_store(&net);
    let envelopes = chain(&mut net, 0, 10, 8);
    let limits = crate::SessionLimits { batches_in_flight_max: 2, entries_per_batch_max: 4, ..limits() };
    let config = SessionConfig { limits, ..SessionConfig::new(net.network, net.devices[0].id) };

    // Three batches without waiting for an Ack, where two were allowed.
    let mut session = Session::new(config.clone(), Duration::ZERO);
    let hello = Session::new(SessionConfig::new(net.network, net.devices[1].id), Duration::ZERO)
        .poll_transmit(Duration::ZERO, &store)
        .unwrap();
    session.handle_message(Duration::ZERO, &hello).unwrap();
    for (n, batch) in envelopes[..3].iter().enumerate() {
        let message = Message::Entries { batch: BatchId(n as u64 + 1), entries: vec![batch.clone()] };
        let result = session.handle_message(Duration::ZERO, &message.encode());
        if n < 2 {
            result.unwrap();
        } else {
            assert_eq!(
                result.unwrap_err(),
                SessionError::Protocol(ProtocolViolation::TooManyBatchesInFlight { limit: 2 })
            );
        }
    }
    // More entries in one batch than announced.
    let mut session = Session::new(config, Duration::ZERO);
    session.handle_message(Duration::ZERO, &hello).unwrap();
    let message = Message::Entries { batch: BatchId(1), entries: envelopes[..5].to_vec() };
    assert_eq!(
        session.handle_message(Duration::ZERO, &message.encode()).unwrap_err(),
        SessionError::Protocol(ProtocolViolation::TooManyEntries { count: 5, limit: 4 })
    );
}

#[test]
fn flow_control_keeps_batches_in_flight_within_the_window() {
    let mut net = TestNetwork::new(11, 1, 2);
    let history = chain(&mut net, 0, 200, 32);
    let mut a = Node::new(&net, 0, small_batches(8, 2));
    let mut b = Node::new(&net, 1, small_batches(8, 2));
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&history);
    let mut pair = Pair::new(a, b);
    pair.window = 2; // asserted at every step by the harness
    pair.drive();
    both_live(&pair);
    assert_same_logs(&pair);
    assert_eq!(pair.a.max_in_flight, 2, "the window should fill");
    assert_eq!(pair.a.session.stats().batches_sent, 25);
}

#[test]
fn the_batch_byte_target_splits_batches() {
    let mut net = TestNetwork::new(12, 1, 2);
    let history = chain(&mut net, 0, 20, 1000);
    let limits = SessionLimits { batch_bytes_target: 4096, ..limits() };
    let mut a = Node::new(&net, 0, limits);
    let mut b = Node::new(&net, 1, limits);
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&history);
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert_same_logs(&pair);
    // About 1.2 kB per envelope: three per 4 KiB batch.
    assert_eq!(pair.a.session.stats().batches_sent, 7);
}

#[test]
fn live_mode_pushes_new_local_envelopes() {
    let mut net = TestNetwork::new(13, 1, 2);
    let first = chain(&mut net, 0, 5, 32);
    let mut a = Node::new(&net, 0, limits());
    let mut b = Node::new(&net, 1, limits());
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&first);
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);

    let later = chain(&mut net, 0, 3, 32);
    pair.a.append(&later);
    pair.drive();
    assert_eq!(pair.b.store.head(&net.devices[0].id).map(|h| h.seq), Some(Seq(8)));
    // And the other way, by another device; an entry already sent is not resent.
    let from_b = chain(&mut net, 1, 2, 32);
    pair.b.append(&from_b);
    pair.b.session.handle_local_append(&from_b).unwrap();
    pair.drive();
    assert_same_logs(&pair);
    assert_eq!(pair.b.session.stats().envelopes_sent, 2);
    assert!(pair.a.session.is_live() && pair.b.session.is_live());
}

#[test]
fn a_new_certificate_and_its_devices_envelopes_are_pushed_live_in_order() {
    let mut net = TestNetwork::new(14, 1, 3);
    // Both start knowing only the first two devices.
    let mut a = Node::new(&net, 0, limits());
    let mut b = Node::new(&net, 1, limits());
    let known: Vec<LogEntry> = trust_entries(&net)[..3].to_vec();
    a.hold(&known);
    b.hold(&known);
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    // The third device's certificate, then its envelopes, appended at `a`.
    let certificate = trust_entries(&net)[3].clone();
    let envelopes = chain(&mut net, 2, 4, 16);
    pair.a.append(std::slice::from_ref(&certificate));
    pair.a.append(&envelopes);
    pair.drive();
    assert_same_logs(&pair);
    assert_eq!(pair.b.store.head(&net.devices[2].id).map(|h| h.seq), Some(Seq(4)));
}

/// Device 0 signs envelope 1, then two different envelopes 2 (and `a` continues its
/// branch for `extra_on_a` more envelopes).
fn forked_pair(extra_on_a: usize) -> (TestNetwork, Pair) {
    let mut net = TestNetwork::new(15, 1, 3);
    let network = net.network;
    let first = net.devices[0].next_simple(&network, 1, 16);
    let branch_a = net.devices[0].next_simple(&network, 2, 16);
    let mut rest_a = Vec::new();
    for n in 0..extra_on_a {
        rest_a.push(LogEntry::Envelope(net.devices[0].next_simple(&network, 10 + n as u64, 16)));
    }
    net.devices[0].head = Some((first.seq(), first.id()));
    let branch_b = net.devices[0].next_simple(&network, 99, 16);
    assert_ne!(branch_a.id(), branch_b.id());
    let others = chain(&mut net, 1, 5, 16);
    let mut a = Node::new(&net, 1, limits());
    let mut b = Node::new(&net, 2, limits());
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&[LogEntry::Envelope(first.clone()), LogEntry::Envelope(branch_a)]);
    a.hold(&rest_a);
    b.hold(&[LogEntry::Envelope(first), LogEntry::Envelope(branch_b)]);
    b.hold(&others);
    (net, Pair::new(a, b))
}

#[test]
fn a_fork_is_detected_and_its_evidence_stored_on_both_sides() {
    let (net, mut pair) = forked_pair(0);
    pair.drive();
    both_live(&pair);
    let author = net.devices[0].id;
    for node in [&pair.a, &pair.b] {
        let forks = node.store.forks();
        assert!(forks.iter().any(|f| f.author == author && f.seq == Seq(2)), "{forks:?}");
        assert!(node.saw(|e| matches!(e, Event::ForkDetected { author: a, seq: Seq(2) } if *a == author)));
    }
    // Each kept its own branch; the unrelated device synced normally.
    assert_ne!(pair.a.store.head(&author), pair.b.store.head(&author));
    assert_eq!(pair.a.store.head(&net.devices[1].id).map(|h| h.seq), Some(Seq(5)));
}

#[test]
fn a_fork_behind_the_peers_head_is_answered_with_evidence() {
    // `a` is at seq 4 on its branch, `b` at seq 2 on the other: only `a` can see the
    // fork from the vectors; `b` learns it from a's evidence and answers with its own.
    let (net, mut pair) = forked_pair(2);
    pair.drive();
    both_live(&pair);
    let author = net.devices[0].id;
    for node in [&pair.a, &pair.b] {
        assert!(node.store.forks().iter().any(|f| f.author == author && f.seq == Seq(2)), "no fork evidence");
    }
    assert_eq!(pair.b.store.head(&author).map(|h| h.seq), Some(Seq(2)), "nothing streamed past the fork");
}

/// Three histories of one copied device: 1 then a2 | b2 b3 b4, and c4 after b3. A
/// hub on branch a holds b2 and b3 only as fork evidence; a relay on branch b also
/// knows the second fork, at 4. The evidence the hub passes on must not make the relay
/// believe the hub's chain reaches 3: the relay would send its envelope 4 (before the
/// evidence at 4), which the hub can only refuse as a gap, ending the session the same
/// way at every reconnection (simulator seed 2037).
#[test]
fn evidence_the_peer_passes_on_does_not_count_as_its_chain() {
    let mut net = TestNetwork::new(19, 1, 3);
    let network = net.network;
    let first = net.devices[0].next_simple(&network, 1, 16);
    let a2 = net.devices[0].next_simple(&network, 2, 16);
    net.devices[0].head = Some((first.seq(), first.id()));
    let b2 = net.devices[0].next_simple(&network, 20, 16);
    let b3 = net.devices[0].next_simple(&network, 30, 16);
    let b4 = net.devices[0].next_simple(&network, 40, 16);
    net.devices[0].head = Some((b3.seq(), b3.id()));
    let c4 = net.devices[0].next_simple(&network, 41, 16);
    let envelopes = |list: &[&tessera_log::Envelope]| -> Vec<LogEntry> {
        list.iter().map(|e| LogEntry::Envelope((*e).clone())).collect()
    };
    // The relay streams another device's history first, in small batches, so the
    // hub's evidence reaches it before it passes on its own.
    let others = chain(&mut net, 1, 30, 16);
    let mut hub = Node::new(&net, 1, limits());
    let mut relay = Node::new(&net, 2, small_batches(3, 1));
    hub.hold(&trust_entries(&net));
    relay.hold(&trust_entries(&net));
    hub.hold(&envelopes(&[&first, &a2, &b2, &b3]));
    relay.hold(&envelopes(&[&first, &b2, &b3, &b4, &a2, &c4]));
    relay.hold(&others);
    let author = net.devices[0].id;
    assert_eq!(hub.store.head(&author).map(|h| h.seq), Some(Seq(2)));
    let mut pair = Pair::new(hub, relay);
    pair.drive();
    both_live(&pair);
    assert_eq!(
        pair.a.store.head(&author).map(|h| h.seq),
        Some(Seq(2)),
        "nothing past the fork joins the hub's chain"
    );
}

#[test]
fn envelopes_the_peers_revocation_refuses_are_not_sent() {
    let mut net = TestNetwork::new(16, 1, 3);
    let history = chain(&mut net, 2, 10, 16);
    let revocation = net.revoke_device(0, net.devices[2].id, Seq(5), "stolen");
    // `a` stored all ten before hearing of the revocation; `b` holds the revocation.
    let mut a = Node::new(&net, 0, small_batches(3, 2));
    let mut b = Node::new(&net, 1, small_batches(3, 2));
    a.hold(&trust_entries(&net));
    a.hold(&history);
    b.hold(&trust_entries(&net));
    b.hold(&[LogEntry::Trust(revocation)]);
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert_eq!(pair.b.store.head(&net.devices[2].id).map(|h| h.seq), Some(Seq(5)));
    assert_eq!(pair.a.session.stats().envelopes_sent, 5);
    assert!(pair.a.store.trust().device_revoked_after(&net.devices[2].id).is_some());
}

/// A relay that stored a device's envelopes before its revocation arrived keeps them
/// (evidence), but neither offers them nor does a hub count them as to come.
#[test]
fn envelopes_past_a_revocation_both_sides_hold_are_neither_offered_nor_counted() {
    let mut net = TestNetwork::new(18, 1, 3);
    let history = chain(&mut net, 2, 10, 16);
    let revocation = LogEntry::Trust(net.revoke_device(0, net.devices[2].id, Seq(5), "stolen"));
    let mut relay = Node::new(&net, 0, small_batches(3, 2));
    let mut hub = Node::new(&net, 1, small_batches(3, 2));
    relay.hold(&trust_entries(&net));
    relay.hold(&history);
    relay.hold(std::slice::from_ref(&revocation));
    hub.hold(&trust_entries(&net));
    hub.hold(&history[..5]);
    hub.hold(&[revocation]);
    let mut pair = Pair::new(relay, hub);
    pair.drive();
    both_live(&pair);
    assert_eq!(pair.a.store.head(&net.devices[2].id).map(|h| h.seq), Some(Seq(10)));
    assert_eq!(pair.b.store.head(&net.devices[2].id).map(|h| h.seq), Some(Seq(5)));
    assert_eq!(pair.a.session.stats().envelopes_sent, 0);
    for side in [&pair.a, &pair.b] {
        assert!(side.saw(|e| matches!(
            e,
            Event::DifferenceKnown { envelopes_to_send: 0, envelopes_to_receive: 0, .. }
        )));
    }
}

#[test]
fn the_idle_timeout_closes_a_silent_session() {
    let mut net = TestNetwork::new(17, 1, 2);
    let mut a = Node::new(&net, 0, limits());
    let mut b = Node::new(&net, 1, limits());
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&chain(&mut net, 0, 3, 8));
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    pair.b_silent = true;
    for _ in 0..29 {
        pair.advance(Duration::from_secs(1));
    }
    assert!(!pair.a.session.is_closed(), "closed before the idle timeout");
    pair.advance(Duration::from_secs(1));
    match pair.a.error() {
        Some(SessionError::IdleTimeout { idle }) => assert_eq!(*idle, Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    assert!(pair.a.session.stats().pings_sent >= 2);
    // `b` heard a's Close (only b's direction was dead).
    assert!(matches!(pair.b.error(), Some(SessionError::PeerClosed { code: CloseCode::IdleTimeout, .. })));
    assert_eq!(pair.a.session.poll_timeout(), None);
}

#[test]
fn keep_alive_pings_keep_a_live_session_open() {
    let net = TestNetwork::new(18, 1, 2);
    let mut pair = Pair::new(Node::new(&net, 0, limits()), Node::new(&net, 1, limits()));
    pair.drive();
    both_live(&pair);
    for _ in 0..300 {
        pair.advance(Duration::from_secs(1));
    }
    assert!(pair.a.session.is_live() && pair.b.session.is_live());
    let pings = pair.a.session.stats().pings_sent + pair.b.session.stats().pings_sent;
    assert!(pings >= 30, "{pings} pings in 5 minutes");
}

#[test]
fn a_normal_close_is_reported_as_finished_on_both_sides() {
    let net = TestNetwork::new(19, 1, 2);
    let mut pair = Pair::new(Node::new(&net, 0, limits()), Node::new(&net, 1, limits()));
    pair.drive();
    pair.a.session.close();
    pair.drive();
    assert_eq!(pair.a.closed, Some(CloseReason::Finished { by_peer: false }));
    assert_eq!(pair.b.closed, Some(CloseReason::Finished { by_peer: true }));
    assert!(pair.a.session.is_drained() && pair.b.session.is_drained());
}

#[test]
fn a_refused_peer_reads_the_reason() {
    let net = TestNetwork::new(20, 1, 2);
    let mut pair = Pair::new(Node::new(&net, 0, limits()), Node::new(&net, 1, limits()));
    pair.step();
    pair.b.session.refuse("device 1234 is revoked in this network");
    pair.drive();
    match pair.a.error() {
        Some(SessionError::PeerClosed { code: CloseCode::Refused, text }) => {
            assert!(text.contains("revoked"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn batches_must_be_reported_in_order() {
    let mut net = TestNetwork::new(21, 1, 2);
    let (_dir, store) = empty_store(&net);
    let envelopes = chain(&mut net, 0, 2, 8);
    let mut session = session_after_hello(&net, &store);
    for n in 0..2 {
        let message =
            Message::Entries { batch: BatchId(n + 1), entries: vec![envelopes[n as usize].clone()] };
        session.handle_message(Duration::ZERO, &message.encode()).unwrap();
    }
    let err = session.handle_ingested(BatchId(2), Ok(())).unwrap_err();
    assert_eq!(err, SessionError::UnknownBatch { batch: BatchId(2) });
    closes_with(&mut session, &store, CloseCode::InternalError);
}

#[test]
fn a_session_never_panics_on_hostile_message_sequences() {
    let mut net = TestNetwork::new(22, 1, 2);
    let (_dir, store) = empty_store(&net);
    let envelopes = chain(&mut net, 0, 3, 8);
    let valid: Vec<Vec<u8>> = vec![
        Message::Entries { batch: BatchId(1), entries: envelopes.clone() }.encode(),
        Message::Ack { batch: BatchId(1), heads: store.heads().clone() }.encode(),
        Message::CaughtUp { last_batch: BatchId(0) }.encode(),
        Message::Ping { nonce: 7 }.encode(),
        Message::close(CloseCode::Done, "bye").encode(),
    ];
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases: 64, ..Default::default() });
    let strategy =
        proptest::collection::vec((0..valid.len(), any::<usize>(), any::<u8>(), any::<bool>()), 1..8);
    runner
        .run(&strategy, |steps| {
            let mut session = session_after_hello(&net, &store);
            for (which, at, byte, mutate) in steps {
                let mut message = valid[which].clone();
                if mutate {
                    let at = at % message.len();
                    message[at] ^= byte | 1;
                }
                let _ = session.handle_message(Duration::ZERO, &message);
                while session.poll_transmit(Duration::ZERO, &store).is_some() {}
                while let Some(event) = session.poll_event() {
                    if let Event::Ingest { batch, .. } = event {
                        let _ = session.handle_ingested(batch, Ok(()));
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Each side holds a random prefix of each device's chain (a store only holds
    /// contiguous chains); after one session both hold the union.
    #[test]
    fn a_random_split_converges_to_the_union(prefixes in proptest::collection::vec((0usize..=12, 0usize..=12), 3)) {
        let mut net = TestNetwork::new(23, 1, 3);
        let chains: Vec<Vec<LogEntry>> = (0..3).map(|d| chain(&mut net, d, 12, 24)).collect();
        let mut a = Node::new(&net, 0, small_batches(5, 3));
        let mut b = Node::new(&net, 1, small_batches(5, 3));
        a.hold(&trust_entries(&net));
        b.hold(&trust_entries(&net));
        for (device, (in_a, in_b)) in prefixes.iter().enumerate() {
            a.hold(&chains[device][..*in_a]);
            b.hold(&chains[device][..*in_b]);
        }
        let mut pair = Pair::new(a, b);
        pair.drive();
        both_live(&pair);
        assert_same_logs(&pair);
        let union: usize = prefixes.iter().map(|(x, y)| *x.max(y)).sum();
        prop_assert_eq!(envelope_count(&pair.a.store), union as u64);
        let moved = pair.a.session.stats().envelopes_sent + pair.b.session.stats().envelopes_sent;
        let needed: usize = prefixes.iter().map(|(x, y)| x.abs_diff(*y)).sum();
        prop_assert_eq!(moved, needed as u64, "only missing envelopes travel");
    }
}

#[test]
fn a_want_round_trips_and_its_limits_hold() {
    let net = TestNetwork::new(1, 1, 2);
    let items: Vec<Wanted> = (1..=3)
        .map(|n| Wanted {
            author: net.devices[n as usize % 2].id,
            seq: Seq(n),
            kind: if n == 2 { WantKind::Envelope } else { WantKind::Bodies },
        })
        .collect();
    let bytes = Message::Want { items: items.clone() }.encode();
    assert_eq!(bytes.len(), 3 + crate::message::WANTED_ITEM_BYTES * 3);
    assert_eq!(Message::decode(&bytes).unwrap(), Message::Want { items });
    // Seq 0 and an unknown kind are refused; so is a count past the limit.
    let mut zero = bytes.clone();
    zero[3 + 32..3 + 40].copy_from_slice(&0u64.to_le_bytes());
    assert!(Message::decode(&zero).is_err());
    let mut kind = bytes.clone();
    kind[3 + 40] = 7;
    assert!(Message::decode(&kind).is_err());
    let mut many = bytes;
    many[1..3].copy_from_slice(&(crate::limits::WANT_ITEMS_MAX as u16 + 1).to_le_bytes());
    assert!(Message::decode(&many).is_err());
}

#[test]
fn peers_of_an_older_release_sync_without_wants() {
    let mut net = TestNetwork::new(3, 1, 2);
    let history = chain(&mut net, 0, 5, 32);
    let mut a = Node::new(&net, 0, limits());
    a.hold(&trust_entries(&net));
    a.hold(&history);
    let mut b = Node::new(&net, 1, limits());
    b.hold(&trust_entries(&net));
    for (node, device) in [(&mut a, 0), (&mut b, 1)] {
        let device = net.devices[device].id;
        node.session = Session::new(
            SessionConfig { peer_takes_wants: false, ..SessionConfig::new(net.network, device) },
            Duration::ZERO,
        );
    }
    let mut pair = Pair::new(a, b);
    pair.drive();
    both_live(&pair);
    assert!(!pair.a.sent.contains(&"Want") && !pair.b.sent.contains(&"Want"));
    assert_eq!(pair.b.store.heads(), pair.a.store.heads());
}

#[test]
fn the_protocol_document_matches_the_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md")).unwrap();
    let section = doc.find("\n## Sync protocol\n").expect("docs/protocol.md has a Sync protocol section");
    assert!(section < doc.find("\n## Test vectors\n").unwrap());
    let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for example in [
        hex(Message::Ping { nonce: 1 }.encode()),
        hex(Message::CaughtUp { last_batch: BatchId(3) }.encode()),
        hex(Message::close(CloseCode::Done, "sync finished").encode()),
        hex(Message::Want { items: Vec::new() }.encode()),
    ] {
        assert!(doc.contains(&format!("`{example}`")), "docs/protocol.md lacks the example {example}");
    }
    assert_eq!(crate::limits::ACK_VECTOR_BYTES_MAX, 294_917);
    assert!(doc.contains("≤ 294 917 = 5 + 72 × 4096"));
    // The largest Hello: fixed part, a full vector, a full trust id list.
    let hello_max =
        74 + tessera_log::limits::VERSION_VECTOR_BYTES_MAX + 4 + 32 * crate::limits::HELLO_TRUST_IDS_MAX;
    assert_eq!(hello_max, 8_248_659);
    assert!(hello_max <= MESSAGE_BYTES_MAX && doc.contains("8 248 659 bytes"));
}

/// Found by the simulator (seed 517): a batch lost under the session (a buggy or
/// hostile transport) left both sides waiting forever, kept open by pings. A peer that
/// answers pings but acknowledges nothing is now dropped after the idle timeout.
#[test]
fn a_peer_that_answers_pings_but_never_acknowledges_is_dropped() {
    let mut net = TestNetwork::new(31, 1, 2);
    let limits = SessionLimits {
        idle_timeout: Duration::from_secs(30),
        keep_alive_interval: Duration::from_secs(5),
        ..SessionLimits::default()
    };
    let mut a = Node::new(&net, 0, limits);
    let mut b = Node::new(&net, 1, limits);
    a.hold(&trust_entries(&net));
    b.hold(&trust_entries(&net));
    a.hold(&chain(&mut net, 0, 5, 40));
    let mut now = Duration::ZERO;
    let mut ingests_ignored = 0;
    for _ in 0..120 {
        while let Some(m) = a.session.poll_transmit(now, &a.store) {
            let _ = b.session.handle_message(now, &m);
        }
        // `b` never stores what it is given, and so never acknowledges it.
        while let Some(event) = b.session.poll_event() {
            if matches!(event, Event::Ingest { .. }) {
                ingests_ignored += 1;
            }
        }
        while let Some(m) = b.session.poll_transmit(now, &b.store) {
            let _ = a.session.handle_message(now, &m);
        }
        if a.session.is_closed() {
            break;
        }
        now += Duration::from_secs(1);
        a.session.handle_timeout(now);
        b.session.handle_timeout(now);
    }
    assert!(ingests_ignored > 0, "the batch never reached the peer");
    let closed = std::iter::from_fn(|| a.session.poll_event()).find_map(|e| match e {
        Event::Closed { reason } => Some(reason),
        _ => None,
    });
    match closed {
        Some(CloseReason::Error(SessionError::AckTimeout { waited })) => {
            assert!(waited >= Duration::from_secs(30) && now <= Duration::from_secs(40))
        }
        other => panic!("expected an acknowledgement timeout, got {other:?}"),
    }
}
