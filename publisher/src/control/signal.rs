//! Which signals a command may send, by name or number.
//!
//! Names are the kernel's without `SIG`, matched case-insensitively with or
//! without the prefix (`TERM`, `sigterm`, `SIGTERM`); numbers are looked up
//! in the same table, so `9` is KILL on every architecture and a number
//! that names no standard signal (0, which only probes; real-time signals,
//! whose meaning is private to each program) is refused.

use rustix::process::Signal;
use vigia_schema::SignalSpec;

/// The signal sent when a request names none: ask politely first.
pub const DEFAULT: NamedSignal = NamedSignal {
    name: "TERM",
    signal: Signal::TERM,
};

const TABLE: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABORT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CHLD", Signal::CHILD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALARM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("PWR", Signal::POWER),
    ("SYS", Signal::SYS),
];

/// A signal with the name replies and the audit trail show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedSignal {
    pub name: &'static str,
    pub signal: Signal,
}

/// Resolves what a request asked for; the error says what was wrong.
pub fn resolve(spec: Option<&SignalSpec>) -> Result<NamedSignal, String> {
    let found = match spec {
        None => return Ok(DEFAULT),
        Some(SignalSpec::Name(text)) => {
            let upper = text.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            TABLE.iter().find(|(name, _)| *name == bare)
        }
        Some(SignalSpec::Number(n)) => TABLE
            .iter()
            .find(|(_, signal)| i64::from(signal.as_raw()) == *n),
    };
    found
        .map(|&(name, signal)| NamedSignal { name, signal })
        .ok_or_else(|| {
            let spec = spec.map(ToString::to_string).unwrap_or_default();
            format!(
                "unknown signal {spec:?}: use a name such as TERM, KILL, INT or HUP, or its number"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(spec: SignalSpec) -> Result<&'static str, String> {
        resolve(Some(&spec)).map(|s| s.name)
    }

    #[test]
    fn term_by_default() {
        assert_eq!(resolve(None).unwrap(), DEFAULT);
    }

    #[test]
    fn names_with_or_without_sig_in_any_case() {
        for text in ["KILL", "kill", "SIGKILL", "SigKill", " KILL "] {
            assert_eq!(
                name(SignalSpec::Name(text.into())).unwrap(),
                "KILL",
                "{text}"
            );
        }
        assert_eq!(name(SignalSpec::Name("hup".into())).unwrap(), "HUP");
        assert_eq!(name(SignalSpec::Name("INT".into())).unwrap(), "INT");
    }

    #[test]
    fn numbers_map_to_this_architectures_names() {
        assert_eq!(name(SignalSpec::Number(9)).unwrap(), "KILL");
        assert_eq!(name(SignalSpec::Number(15)).unwrap(), "TERM");
        assert_eq!(name(SignalSpec::Number(1)).unwrap(), "HUP");
        assert_eq!(name(SignalSpec::Number(2)).unwrap(), "INT");
    }

    #[test]
    fn non_signals_are_refused() {
        for spec in [
            SignalSpec::Number(0),
            SignalSpec::Number(-9),
            SignalSpec::Number(40),
            SignalSpec::Name("".into()),
            SignalSpec::Name("NOPE".into()),
            SignalSpec::Name("SIG".into()),
        ] {
            let e = resolve(Some(&spec)).unwrap_err();
            assert!(e.starts_with("unknown signal"), "{e}");
        }
    }
}
