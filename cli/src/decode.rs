//! `vigiactl decode`: one MessagePack sample on stdin, its JSON on stdout.
//!
//! Made for `nats sub 'telemetry.>' --translate 'vigiactl decode'`, which
//! runs it once per message with the payload on stdin.

use std::io::{Read, Write};

use anyhow::Context as _;
use vigia_schema::Sample;

use crate::args::DecodeArgs;

pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let mut payload = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut payload)
        .context("reading stdin")?;
    let json = to_json(&payload, args.pretty)?;
    let mut out = std::io::stdout().lock();
    out.write_all(json.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("writing stdout")
}

/// The JSON of one payload; the error says why it is not a sample.
pub fn to_json(payload: &[u8], pretty: bool) -> anyhow::Result<String> {
    let sample = Sample::decode(payload)
        .with_context(|| format!("stdin ({} bytes) is not a vigia sample", payload.len()))?;
    let json = if pretty {
        serde_json::to_string_pretty(&sample)
    } else {
        serde_json::to_string(&sample)
    };
    json.map(|json| terminal_safe(&json))
        .context("writing the sample as JSON")
}

/// `json` with every character a terminal would obey (DEL, C1 controls,
/// bidi overrides; serde_json already escapes C0) written as a JSON
/// `\uXXXX` escape: the same JSON value, safe on a screen. All of them are
/// in the Basic Multilingual Plane, so one escape each. A raw newline can
/// only be `--pretty`'s own layout (serde_json escapes C0 inside strings),
/// so it stays a newline.
fn terminal_safe(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c != '\n' && vigia_schema::text::is_unsafe(c) {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_json_keeps_its_lines_and_stays_json() {
        use vigia_schema::{ByeBody, Sample, SampleBody};
        let sample = Sample::new(
            "web-1",
            "b1",
            1,
            1,
            SampleBody::Bye(ByeBody {
                reason: "line\nbreak\u{202e}".into(),
                ..ByeBody::default()
            }),
        );
        let pretty = to_json(&sample.encode(), true).unwrap();
        assert!(pretty.lines().count() > 3, "{pretty}");
        assert!(!pretty.contains('\u{202e}'), "{pretty}");
        let value: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(value["body"]["reason"], "line\nbreak\u{202e}");
    }

    #[test]
    fn terminal_escapes_and_bidi_overrides_leave_as_json_escapes() {
        use vigia_schema::{HelloBody, Sample, SampleBody};
        let hostile = "\u{1b}]0;pwned\u{7}\u{9b}2J evil\u{202e}gpj\u{7f}";
        let sample = Sample::new(
            "web-1",
            "b",
            1,
            1,
            SampleBody::Hello(HelloBody {
                source: hostile.into(),
                ..HelloBody::default()
            }),
        );
        let json = to_json(&sample.encode(), false).unwrap();
        assert!(!json.chars().any(vigia_schema::text::is_unsafe), "{json:?}");
        assert!(
            json.contains(r#""source":"\u001b]0;pwned\u0007\u009b2J evil\u202egpj\u007f""#),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["body"]["source"], hostile);
    }

    #[test]
    fn garbage_is_a_one_line_error() {
        let e = to_json(b"hello", false).unwrap_err();
        let line = format!("{e:#}");
        assert!(
            line.starts_with("stdin (5 bytes) is not a vigia sample"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
    }
}
