//! `vigiactl decode`'s path from stdin bytes to JSON (`decode::to_json`),
//! and the line `vigiactl watch` prints for a decoded sample.
//!
//! Beyond "never panics": a payload gives JSON exactly when it is a sample;
//! that JSON is an object with the envelope's fields, the sample's kind and
//! seq, and the pretty and compact forms hold the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vigia_schema::Sample;
use vigiactl::{decode, render};

fuzz_target!(|data: &[u8]| {
    let sample = Sample::decode(data).ok();
    let compact = decode::to_json(data, false);
    let pretty = decode::to_json(data, true);
    let Some(sample) = sample else {
        assert!(compact.is_err() && pretty.is_err());
        return;
    };
    let compact = compact.expect("a sample that decodes gives JSON");
    let pretty = pretty.expect("a sample that decodes gives pretty JSON");
    let value: Value = serde_json::from_str(&compact).expect("to_json wrote invalid JSON");
    let pretty_value: Value = serde_json::from_str(&pretty).expect("pretty JSON is invalid");
    assert_eq!(value, pretty_value);
    for field in ["v", "host", "boot", "kind", "seq", "ts", "body"] {
        assert!(value.get(field).is_some(), "JSON lacks {field}: {compact}");
    }
    assert_eq!(value["kind"], sample.kind().as_str());
    assert_eq!(value["seq"], sample.seq);
    assert_eq!(value["host"], sample.host.as_str());

    let line = render::line(&sample);
    assert!(line.contains(sample.kind().as_str()));
});
