//! Hostile input never panics or overflows the stack: each gets a clear error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use stepup_dsl::{Source, load_sources};

fn codes(bytes: Vec<u8>) -> Vec<&'static str> {
    let src = Source {
        name: "x.policy".into(),
        bytes,
        base_dir: ".".into(),
    };
    load_sources(&[src])
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn ten_thousand_nested_parentheses() {
    let text = format!(
        "when {}new_device{} require aal2",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(codes(text.into_bytes()), vec!["E019"]);
}

#[test]
fn sixty_nested_parentheses_still_parse() {
    let text = format!(
        "when {}new_device{} require aal2",
        "(".repeat(60),
        ")".repeat(60)
    );
    assert_eq!(codes(text.into_bytes()), Vec::<&str>::new());
}

#[test]
fn a_ten_megabyte_file() {
    let line = "when new_device require aal2\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    assert_eq!(codes(text.into_bytes()), vec!["E020"]);
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        codes(b"when new_device require aal2 # \xff\xfe".to_vec()),
        vec!["E021"]
    );
}

#[test]
fn an_empty_file() {
    assert_eq!(codes(Vec::new()), vec!["E023"]);
    assert_eq!(codes(b"  \n\n # nothing\n".to_vec()), vec!["E023"]);
}

#[test]
fn a_nul_byte() {
    assert_eq!(
        codes(b"when new_device\0 require aal2".to_vec()),
        vec!["E024"]
    );
}

#[test]
fn a_long_chain_of_operators_parses_without_recursion_trouble() {
    let text = format!(
        "when {} require aal2",
        vec!["new_device"; 5_000].join(" or ")
    );
    assert_eq!(codes(text.into_bytes()), Vec::<&str>::new());
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2_000 {
        let len = (state % 200) as usize;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let alphabet = b"when require aal2 factor totp|sms not and or ( ) [ ] { } \" # \n 30d 5m risk >= 70 policy tenant x";
            v.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = codes(v);
    }
}
