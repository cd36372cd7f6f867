//! Seed inputs for the fuzz targets: real encodings made with the deterministic
//! testkit (certificates, revocations, envelopes with present and stripped bodies,
//! bundles, handshakes, every sync message, a session's worth of peer messages), so
//! that the fuzzer starts from bytes that decode and mutates its way outwards.
//! Written to `fuzz/corpus/<target>/` by the ignored test `write_seed_corpus`.

use tessera_log::channel::ChannelAuth;
use tessera_log::testkit::time;
use tessera_log::{
    BundleWriter, DeviceRevocation, LogEntry, PartnerKey, PartnerRevocation, Seq, TrustEntry, TrustStatement,
    VersionVector,
};
use tessera_net::{encode_frame, FrameKind};
use tessera_sync::{BatchId, CloseCode, Message};

use crate::fuzz_checks::fixture;

/// Seeds per target name (the names of [`crate::fuzz_checks::TARGETS`]).
pub fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let fx = fixture();
    let net = &fx.net;
    let network = net.network;

    let mut trust: Vec<TrustEntry> = net.entries.clone();
    let partner = PartnerKey(net.partner_keys[0].public());
    trust.push(net.sign_as_partner(
        0,
        TrustStatement::RevokeDevice(DeviceRevocation {
            issuer: partner.0,
            device: net.devices[1].id,
            last_valid: Seq(2),
            reason: "tablet lost".into(),
        }),
    ));
    let mut last_valid = vec![(net.devices[0].id, Seq(3)), (net.devices[1].id, Seq(1))];
    last_valid.sort();
    trust.push(net.sign_as_network(TrustStatement::RevokePartner(PartnerRevocation {
        partner,
        last_valid,
        reason: "partnership ended".into(),
    })));

    let mut envelopes: Vec<_> = fx.local.envelopes.values().cloned().collect();
    envelopes.extend(fx.peer_envelopes.iter().cloned());
    let mut stripped = envelopes[0].clone();
    stripped.strip_body(0);
    envelopes.push(stripped);

    let entries: Vec<LogEntry> = trust
        .iter()
        .cloned()
        .map(LogEntry::Trust)
        .chain(envelopes.iter().cloned().map(LogEntry::Envelope))
        .collect();

    let local_heads = fx.local.heads.clone();
    let mut base = VersionVector::new();
    let first = &envelopes[0];
    base.advance(first.author(), tessera_log::Head { seq: first.seq(), id: first.id() });

    let key = &net.devices[0].key;
    let bundle = |base: &VersionVector, entries: &[LogEntry]| {
        let mut w = BundleWriter::new(Vec::new(), network, key, time(9), base, &local_heads).expect("bundle");
        for entry in entries {
            w.write_entry(entry).expect("bundle entry");
        }
        w.finish().expect("bundle end")
    };
    let bundles = vec![
        bundle(&VersionVector::new(), &entries),
        bundle(&base, &entries[entries.len() - 2..]),
        bundle(&base, &[]),
    ];

    let chain: Vec<TrustEntry> = net.entries.clone();
    let auth = ChannelAuth::sign(network, key, chain.clone(), &[7; 32]).encode();
    let auth_short = ChannelAuth::sign(network, &net.devices[1].key, chain[..1].to_vec(), &[7; 32]).encode();

    let ack = Message::Ack { batch: BatchId(1), heads: local_heads.clone() };
    let peer_batch = Message::Entries {
        batch: BatchId(1),
        entries: fx.peer_envelopes.iter().cloned().map(LogEntry::Envelope).collect(),
    };
    let messages: Vec<Vec<u8>> = vec![
        fx.peer_hello.clone(),
        Message::Entries { batch: BatchId(3), entries: entries.clone() }.encode(),
        peer_batch.encode(),
        ack.encode(),
        Message::CaughtUp { last_batch: BatchId(1) }.encode(),
        Message::CaughtUp { last_batch: BatchId(0) }.encode(),
        Message::Ping { nonce: 7 }.encode(),
        Message::Pong { nonce: 7 }.encode(),
        Message::close(CloseCode::ProtocolViolation, "entry 2 of batch 3 refused").encode(),
        Message::close(CloseCode::Unknown(42), "").encode(),
    ];

    let frames = |parts: &[(FrameKind, &[u8])]| {
        parts.iter().flat_map(|(kind, body)| encode_frame(*kind, body).expect("frame")).collect::<Vec<u8>>()
    };
    let net_frames = vec![
        frames(&[(FrameKind::Auth, &auth), (FrameKind::Data, &messages[0]), (FrameKind::Data, &messages[2])]),
        frames(&[(FrameKind::Refused, b"device is revoked"), (FrameKind::Data, &messages[6])]),
        frames(&[(FrameKind::Auth, &auth_short)]),
        // Entries messages as a sender frames them: compressed once they are long enough.
        messages[1..3].iter().flat_map(|m| tessera_net::encode_data_frame(m).expect("frame")).collect(),
    ];

    let trust_file = |entries: &[TrustEntry]| {
        let mut text = format!("{}\nnetwork {}\n", tessera_store::trust_file::MAGIC_LINE, network.0.to_hex());
        for entry in entries {
            text.push_str(&hex::encode(entry.encode()));
            text.push('\n');
        }
        text.into_bytes()
    };

    let key_file =
        |seed: [u8; 32]| format!("TESSERA SECRET KEY v1\ndevice\n{}\n", hex::encode(seed)).into_bytes();

    // Session inputs: flags, then u16-length-prefixed messages.
    let session = |flags: u8, messages: &[&Message]| {
        let mut out = vec![flags];
        for m in messages {
            let bytes = m.encode();
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    };
    let caught_up = Message::CaughtUp { last_batch: BatchId(1) };
    let ping = Message::Ping { nonce: 1 };
    let sessions = vec![
        session(0, &[&peer_batch, &caught_up, &ack, &ping]),
        session(0, &[&ack, &peer_batch, &caught_up]),
        session(1, &[&peer_batch, &caught_up]),
        session(2, &[&ping, &ping]),
        session(0, &[&Message::close(CloseCode::Done, "bye")]),
        session(4, &[&Message::decode(&fx.peer_hello).expect("hello"), &peer_batch, &caught_up]),
    ];

    vec![
        ("envelope", envelopes.iter().map(|e| e.encode()).collect()),
        ("trust_entry", trust.iter().map(TrustEntry::encode).collect()),
        ("log_entry", entries.iter().map(LogEntry::encode).collect()),
        ("version_vector", vec![VersionVector::new().encode(), local_heads.encode(), base.encode()]),
        ("channel_auth", vec![auth.clone(), auth_short.clone()]),
        ("sync_message", messages),
        ("bundle", bundles),
        ("net_frames", net_frames),
        ("trust_file", vec![trust_file(&trust), trust_file(&[])]),
        ("key_file", vec![key_file(net.devices[0].key.to_seed()), key_file([0xab; 32])]),
        ("sync_session", sessions),
    ]
}
