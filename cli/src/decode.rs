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
    json.context("writing the sample as JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

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
