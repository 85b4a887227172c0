//! Replies from a publisher, as `vigiactl kill` reads them:
//! `CommandReply::decode` (JSON or MessagePack by the first byte).
//!
//! Beyond "never panics": a reply that decodes re-encodes in both
//! encodings, each detected as itself and decoding to the same reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_schema::{CommandReply, Encoding};
use vigiactl::kill::KillOutcome;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = CommandReply::decode(data) else {
        return;
    };
    for encoding in [Encoding::Json, Encoding::MessagePack] {
        let bytes = reply.encode(encoding);
        assert_eq!(Encoding::detect(&bytes), encoding);
        match CommandReply::decode(&bytes) {
            Ok(back) => assert_eq!(back, reply),
            Err(e) => panic!("{encoding:?} of {reply:?} does not decode: {e}"),
        }
    }
    // What the operator sees: the line vigiactl prints for it.
    let outcome = if reply.ok {
        KillOutcome::Signalled(reply)
    } else {
        KillOutcome::Refused {
            host: "fuzz".into(),
            reply,
        }
    };
    // Whatever the reply held, the line shows no control or bidi character.
    let line = outcome.line();
    assert!(!line.chars().any(vigia_schema::text::is_unsafe), "{line:?}");
});
