//! The credentials vigia reads from files others write:
//! - `vigia_schema::identity::parse_seed`, a credentials file (the nkey seed
//!   `vigiactl enroll` writes), as the publisher, the sink, vigiactl and
//!   vigia-auth read theirs;
//! - `vigia_auth::registry::parse`, the registry of enrolled identities
//!   vigia-auth reads at every connect (whoever can write it can enrol).
//!
//! The first byte chooses which (even: a seed file, odd: a registry).
//!
//! Beyond "never panics":
//! - a seed that reads is the file's text without the whitespace around it,
//!   of a user key whose seed gives the same key again; an error never
//!   quotes the file (it is a secret);
//! - a registry that reads holds only user keys under valid names and
//!   roles, and written out again (`render`, as `vigiactl enroll` writes
//!   it) reads back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nkeys::KeyPair;
use vigia_auth::registry;
use vigia_schema::identity::parse_seed;
use vigia_schema::HostToken;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        match parse_seed(text) {
            Ok(seed) => {
                assert_eq!(seed, text.trim());
                let key = KeyPair::from_seed(&seed).expect("a seed that read");
                assert!(key.public_key().starts_with('U'), "not a user key");
                let again = KeyPair::from_seed(&key.seed().expect("a seed")).expect("its own seed");
                assert_eq!(again.public_key(), key.public_key());
            }
            Err(e) => {
                let shown = e.to_string();
                let seed = text.trim();
                // Long enough to be a key, the message must not carry it.
                if seed.len() >= 16 {
                    assert!(!shown.contains(seed), "the error quotes the file: {shown}");
                }
            }
        }
    } else if let Ok(entries) = registry::parse(text, "fuzz") {
        for e in &entries {
            assert_eq!(
                HostToken::parse(e.identity.name.as_str()).as_ref(),
                Ok(&e.identity.name)
            );
            let key = KeyPair::from_public_key(&e.public_key).expect("a public key");
            assert!(key.public_key().starts_with('U'));
        }
        let again = registry::parse(&registry::render(&entries), "fuzz")
            .expect("what render writes reads back");
        assert_eq!(again, entries);
    }
});
