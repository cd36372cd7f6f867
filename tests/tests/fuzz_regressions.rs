//! Replays the fuzzing regression corpus on stable: every file under
//! `fuzz/regressions/<target>/` goes through the same property check as the fuzz
//! target of that name (`tessera_tests::fuzz_checks`), so a fixed finding stays fixed
//! without nightly or libFuzzer. Also checks that every seed input passes.

use std::path::{Path, PathBuf};

use tessera_tests::fuzz_checks::TARGETS;
use tessera_tests::fuzz_seeds::seeds;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn regression_corpus_passes_every_check() {
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let dir = fuzz_dir().join("regressions").join(name);
        let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for file in files {
            let path = file.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} fails its check", path.display());
            count += 1;
        }
        assert!(count > 0, "{name}: no regression inputs in {}", dir.display());
        replayed += count;
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn seeds_pass_every_check_and_name_a_target() {
    for (name, inputs) in seeds() {
        let (_, check) = TARGETS.iter().find(|(n, _)| *n == name).expect("a seed names a target");
        assert!(!inputs.is_empty());
        for input in inputs {
            check(&input);
        }
    }
}

/// The frame seeds include a compressed (`tessera/2`) frame, so the fuzzer starts
/// from real DEFLATE streams and not only from the plain kinds.
#[test]
fn the_frame_seeds_hold_a_compressed_frame() {
    let (_, inputs) = seeds().into_iter().find(|(name, _)| *name == "net_frames").expect("net_frames seeds");
    let compressed = inputs.iter().any(|input| {
        let mut rest = input.as_slice();
        while let Some((prefix, after)) = rest.split_first_chunk::<4>() {
            let Ok(len) = tessera_net::frame_payload_len(*prefix) else { return false };
            let Some(payload) = after.get(..len) else { return false };
            if let Ok((tessera_net::FrameKind::DataDeflate, body)) = tessera_net::split_frame(payload) {
                if tessera_net::inflate_message(body).is_ok() {
                    return true;
                }
            }
            rest = &after[len..];
        }
        false
    });
    assert!(compressed, "no seed holds a compressed frame that inflates");
}

/// Writes the seed corpus to `fuzz/corpus/<target>/` (the working corpus, not
/// committed): `cargo test -p tessera-tests --test fuzz_regressions -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    for (name, inputs) in seeds() {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), input).unwrap();
        }
    }
}
