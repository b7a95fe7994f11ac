//! Property-test case counts: the default for `make test`, or
//! `PLAYGATE_FUZZ_CASES` (what `scripts/fuzz.sh` sets, 100,000).

pub fn cases(default: u32) -> u32 {
    std::env::var("PLAYGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
