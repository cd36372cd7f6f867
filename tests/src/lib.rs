//! Cross-crate tests live in `tests/tests/`. This library holds what the fuzz targets
//! (`fuzz/`) share with those tests: the property checks of every decoder of untrusted
//! bytes ([`fuzz_checks`]) and the seed inputs made from real encodings ([`fuzz_seeds`]).

pub mod fuzz_checks;
pub mod fuzz_seeds;
