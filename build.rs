//! Tells the test suite whether PostgreSQL is to be tested.
//!
//! With `TEST_DATABASE_URL` set (non-empty) the crate is compiled with `cfg(postgres_tests)`;
//! without it the PostgreSQL half of every test is marked `#[ignore]`, so `cargo test`
//! counts it as ignored instead of reporting a test that did nothing as passed. Only test
//! code reads this cfg: the library and the binary compile to the same code either way.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
