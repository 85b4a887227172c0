//! `Sample::decode`: every telemetry payload from NATS, as the sink, `vigiactl
//! watch`, `vigiactl hosts` and `vigiactl decode` read it.
//!
//! Beyond "never panics": a payload that decodes is a sample of a supported
//! version, and re-encoding it gives bytes that decode to the same sample
//! and re-encode to the same bytes (nothing a decoder accepts is lost or
//! changed by a publisher writing it back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_schema::{Sample, SCHEMA_VERSION};

fuzz_target!(|data: &[u8]| {
    let Ok(sample) = Sample::decode(data) else {
        return;
    };
    assert!(
        (1..=SCHEMA_VERSION).contains(&sample.v),
        "decoded an unsupported version {}",
        sample.v
    );
    let bytes = sample.encode();
    let again = match Sample::decode(&bytes) {
        Ok(again) => again,
        Err(e) => panic!("a re-encoded sample does not decode: {e}\n{sample:?}"),
    };
    // Compared through Debug, which tells every f32 apart but, unlike
    // PartialEq, takes a NaN to be equal to itself.
    assert_eq!(format!("{again:?}"), format!("{sample:?}"));
    assert_eq!(again.encode(), bytes, "encoding is not stable");
    assert_eq!(again.msg_id(), sample.msg_id());
});
