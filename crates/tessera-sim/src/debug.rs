//! What a failing seed needs a person to see, printed on request (environment
//! variables), kept apart from the checks; nothing here changes a run.
//!
//! - `TESSERA_SIM_AUTHOR=<key prefix>`: every store's chain, forks and fork evidence of
//!   the devices whose key starts with the prefix.
//! - `TESSERA_SIM_DEBUG=1`: when the stores did not converge, the groups of stores
//!   with the same digest (revocations, forks and heads of each).

use std::collections::BTreeMap;

use tessera_log::Seq;

use crate::world::World;

/// Prints what the environment asks for, at the end of a run.
pub(crate) fn after_run(world: &World, peers: &[usize]) {
    if let Some(prefix) = std::env::var_os("TESSERA_SIM_AUTHOR") {
        author(world, peers, &prefix.to_string_lossy());
    }
    if world.converged_at.is_none() && std::env::var_os("TESSERA_SIM_DEBUG").is_some() {
        digest_groups(world, peers);
    }
}

fn author(world: &World, peers: &[usize], prefix: &str) {
    for &p in peers {
        let s = world.store(p);
        for (a, h) in s.heads().iter().filter(|(a, _)| a.short().starts_with(prefix)) {
            let chain: Vec<String> = (1..=h.seq.0)
                .map(|q| {
                    s.envelope_at(a, Seq(q)).map_or("-".to_string(), |e| e.id().0.to_hex()[..4].to_string())
                })
                .collect();
            let ev: Vec<String> = tessera_sync::LocalLog::fork_evidence(s)
                .unwrap()
                .iter()
                .filter(|e| e.author() == *a)
                .map(|e| format!("{}@{}<{}", &e.id().0.to_hex()[..4], e.seq(), &e.prev().0.to_hex()[..4]))
                .collect();
            eprintln!(
                "AUTHOR peer {p}: chain {:?} forks {:?} evidence {:?}",
                chain,
                s.forks().iter().filter(|f| f.author == *a).map(|f| f.seq).collect::<Vec<_>>(),
                ev
            );
        }
    }
}

fn digest_groups(world: &World, peers: &[usize]) {
    let mut groups: BTreeMap<[u8; 32], Vec<usize>> = BTreeMap::new();
    for &p in peers {
        groups.entry(world.store(p).digest()).or_default().push(p);
    }
    // Trust entries some stores hold and others do not.
    let all: Vec<_> = peers
        .iter()
        .map(|&p| world.store(p).trust().ids().copied().collect::<std::collections::BTreeSet<_>>())
        .collect();
    for (i, ids) in all.iter().enumerate() {
        for id in ids {
            let missing = all.iter().filter(|other| !other.contains(id)).count();
            if missing > 0 {
                let entry =
                    world.store(peers[i]).trust().entries_in_order().into_iter().find(|e| e.id() == *id);
                eprintln!(
                    "trust entry held by peer {} and missing on {missing} stores: {}",
                    peers[i],
                    entry.map(|e| e.statement.describe().to_string()).unwrap_or_default()
                );
            }
        }
    }
    for (digest, members) in &groups {
        let s = world.store(members[0]);
        eprintln!(
            "digest {}: peers {members:?} revoked {:?} forks {:?} heads {}",
            &blake3::Hash::from(*digest).to_hex()[..8],
            s.heads()
                .iter()
                .filter_map(|(a, _)| s.trust().device_revoked_after(a).map(|last| (a.short(), last)))
                .collect::<Vec<_>>(),
            s.forks().iter().map(|f| (f.author.short(), f.seq)).collect::<Vec<_>>(),
            s.heads()
                .iter()
                .map(|(a, h)| format!("{}:{}", &a.short()[..4], h.seq))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (holes, stripped) = s.incomplete();
        let headless: Vec<String> = s
            .heads()
            .iter()
            .filter(|(a, h)| s.envelope_at(a, h.seq).is_none())
            .map(|(a, h)| format!("{}:{}", &a.short()[..4], h.seq))
            .collect();
        eprintln!(
            "  holes {holes}, stripped {stripped}, heads not held {headless:?}, trust entries {} ({} waiting)",
            s.trust().len(),
            s.trust().waiting().count()
        );
    }
}
