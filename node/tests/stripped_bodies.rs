//! A carrier that empties the bodies of a bundle's envelopes (a USB stick passed on by
//! anyone, re-signed with a key nobody certified) must not make records vanish: the
//! import is refused unless asked for, and when the emptied copy is taken anyway, the
//! genuine bundle or a sync with a peer brings the record back.

mod common;

use std::path::Path;

use common::{add_person, field, joined_hub_of_same_partner, ok, tessera, Daemon};
use tessera_log::bundle::{read_all, BundleWriter};
use tessera_log::{LogEntry, SecretKey};

/// The bundle at `genuine` with every envelope's bodies removed, signed by a key that
/// no certificate vouches for.
fn stripped_copy(genuine: &Path, out: &Path) {
    let (header, entries) = read_all(&std::fs::read(genuine).unwrap()).unwrap();
    let stranger = SecretKey::from_seed([9; 32]);
    let mut writer = BundleWriter::new(
        Vec::new(),
        header.network,
        &stranger,
        header.created_at,
        &header.base,
        &header.heads,
    )
    .unwrap();
    for entry in &entries {
        let entry = match entry {
            LogEntry::Envelope(env) => {
                let mut env = env.clone();
                for index in 0..env.bodies().len() {
                    env.strip_body(index);
                }
                LogEntry::Envelope(env)
            }
            other => other.clone(),
        };
        writer.write_entry(&entry).unwrap();
    }
    std::fs::write(out, writer.finish().unwrap()).unwrap();
}

fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tessera(data).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

const WITHOUT_CONTENT: &str = "Changes without their content";

/// Hub A (holding one attendee) and two more hubs of its network, A's genuine export
/// and the same bundle emptied by a stranger.
struct Hubs {
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    c: std::path::PathBuf,
    genuine: std::path::PathBuf,
    stripped: std::path::PathBuf,
}

fn hubs(dir: &Path) -> Hubs {
    let a = dir.join("a");
    ok(&a, &["init", "--site", "Polo A"]);
    let b = joined_hub_of_same_partner(&a, dir, "Sportello B");
    let c = joined_hub_of_same_partner(&a, dir, "Sportello C");
    add_person(&a, "Visibile");
    let genuine = dir.join("genuine.tessera");
    ok(&a, &["export", genuine.to_str().unwrap()]);
    let stripped = dir.join("stripped.tessera");
    stripped_copy(&genuine, &stripped);
    Hubs { a, b, c, genuine, stripped }
}

#[test]
fn a_stripped_bundle_from_a_stranger_is_refused_and_cannot_hide_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let Hubs { a, b, c, genuine, stripped } = hubs(dir.path());

    // import and audit verify agree: the exporter is certified by nobody.
    let (imported, _, err) = run(&b, &["import", stripped.to_str().unwrap()]);
    assert!(!imported, "an uncertified exporter's bundle was imported");
    assert!(err.contains("no certificate") && err.contains("--allow-unknown-exporter"), "{err}");
    let (verified, out, _) = run(&b, &["audit", "verify", stripped.to_str().unwrap()]);
    assert!(!verified && out.contains("unknown-exporter"), "{out}");
    assert!(!ok(&b, &["attendee", "list"]).contains("Visibile"));

    // Taken anyway: the record is held without its content, and the node says so.
    let (imported, _, err) = run(&b, &["import", stripped.to_str().unwrap(), "--allow-unknown-exporter"]);
    assert!(imported, "{err}");
    assert!(err.contains("warning"), "{err}");
    assert!(!ok(&b, &["attendee", "list"]).contains("Visibile"));
    assert_ne!(field(&ok(&b, &["status"]), WITHOUT_CONTENT), "0");

    // The genuine bundle fills the bodies in, although every envelope is "already here".
    let out = ok(&b, &["import", genuine.to_str().unwrap()]);
    assert!(out.contains("Content restored for"), "{out}");
    assert!(ok(&b, &["attendee", "list"]).contains("Visibile"));
    assert_eq!(field(&ok(&b, &["status"]), WITHOUT_CONTENT), "0");

    // Over sync: the version vectors match, the node asks for what it lacks.
    ok(&c, &["import", stripped.to_str().unwrap(), "--allow-unknown-exporter"]);
    assert!(!ok(&c, &["attendee", "list"]).contains("Visibile"));
    let daemon = Daemon::start(&a);
    ok(&c, &["sync", "--peer", &daemon.addr]);
    daemon.stop();
    assert!(ok(&c, &["attendee", "list"]).contains("Visibile"));
    assert_eq!(field(&ok(&c, &["status"]), WITHOUT_CONTENT), "0");
    assert_eq!(
        field(&ok(&a, &["status"]), "Records fingerprint"),
        field(&ok(&c, &["status"]), "Records fingerprint")
    );
}

/// Through a relay: a hub holding the emptied copy asks the relay for the bodies, and
/// a relay that took an emptied copy first gets them from the next hub that syncs.
#[test]
fn a_relay_sync_brings_back_what_a_stripped_copy_hid() {
    let dir = tempfile::tempdir().unwrap();
    let Hubs { a, b, c, stripped, .. } = hubs(dir.path());
    let relay_dir = common::certified_relay(&a, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let args = tessera_relay::ServeArgs {
        listen: "127.0.0.1:0".into(),
        metrics: "127.0.0.1:0".into(),
        ..tessera_relay::ServeArgs::default()
    };
    let relay = runtime.block_on(tessera_relay::Relay::start(&relay_dir, args)).unwrap();
    let addr = relay.addr.to_string();

    // B took the emptied copy and is the first to reach the relay: the relay now holds
    // the envelopes without their content too.
    ok(&b, &["import", stripped.to_str().unwrap(), "--allow-unknown-exporter"]);
    ok(&b, &["sync", "--peer", &addr]);
    // A, which has the content, syncs: the relay asks for what it lacks.
    ok(&a, &["sync", "--peer", &addr]);
    // B and C get it from the relay.
    ok(&b, &["sync", "--peer", &addr]);
    ok(&c, &["sync", "--peer", &addr]);
    for hub in [&b, &c] {
        assert!(ok(hub, &["attendee", "list"]).contains("Visibile"));
        assert_eq!(field(&ok(hub, &["status"]), WITHOUT_CONTENT), "0");
        assert_eq!(
            field(&ok(&a, &["status"]), "Records fingerprint"),
            field(&ok(hub, &["status"]), "Records fingerprint")
        );
    }
    runtime.block_on(relay.shutdown()).unwrap();
}
