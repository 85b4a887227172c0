//! The command line: every subcommand, and the flags each reads from the
//! environment as the other vigia binaries do.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vigia_schema::Kind;

#[derive(Debug, Parser)]
#[command(
    name = "vigiactl",
    version,
    about = "vigia's operator CLI: signal processes on hosts, list hosts, watch and decode telemetry"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask a host's publisher to signal one of its processes. Exit code 0
    /// when signalled, 1 when refused (or the host token is shared and no
    /// --boot names a machine), 2 when no answer came within 5 s.
    Kill(KillArgs),
    /// The hosts heard from recently, with their source, CPUs, RAM and the
    /// age of their last sample.
    Hosts(HostsArgs),
    /// Live telemetry, decoded, one line per sample.
    Watch(WatchArgs),
    /// Enrol an identity: make its nkey, write the seed to a file for it
    /// (a standard NATS nkey seed file) and its public key to the registry
    /// vigia-auth reads. Enrolling again rotates the key.
    Enroll(EnrollArgs),
    /// Revoke an identity: its key is refused from its next connect.
    Revoke(RevokeArgs),
    /// Read one MessagePack sample on stdin and write it as JSON on stdout
    /// (for `nats sub 'telemetry.>' --translate 'vigiactl decode'`).
    Decode(DecodeArgs),
}

/// Where NATS is, as for vigia-publisher and vigia-sink.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server; several, comma-separated, for a cluster.
    #[arg(long, env = "VIGIA_NATS_URL", default_value = vigia_schema::servers::DEFAULT_URL)]
    pub nats_url: String,

    /// Token for NATS, when the server requires one.
    #[arg(long, env = "VIGIA_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// This operator's (or watcher's) nkey seed file, from `vigiactl
    /// enroll`: needed when vigia-auth guards the server.
    #[arg(long, env = "VIGIA_NATS_NKEY", conflicts_with = "nats_token")]
    pub nats_nkey: Option<std::path::PathBuf>,

    /// The name the key was enrolled under (commands are sent, and
    /// audited, in this name); default: the key file's name without its
    /// extension.
    #[arg(long = "as", env = "VIGIA_AS")]
    pub as_name: Option<String>,

    /// CA certificate that signed the NATS server's certificate (TLS).
    #[arg(long, env = "VIGIA_NATS_CA")]
    pub nats_ca: Option<std::path::PathBuf>,
}

/// Who to enrol or revoke: exactly one of the roles.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// A monitored host (its host token).
    #[arg(long)]
    pub host: Option<String>,
    /// A person who may send commands and watch.
    #[arg(long)]
    pub operator: Option<String>,
    /// A person who may only watch.
    #[arg(long)]
    pub watcher: Option<String>,
    /// A vigia-sink.
    #[arg(long)]
    pub sink: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub who: Who,
    /// The registry vigia-auth reads.
    #[arg(long, env = "VIGIA_IDENTITIES", default_value = vigia_auth::registry::DEFAULT_PATH)]
    pub registry: std::path::PathBuf,
    /// Where to write the seed (mode 0600); default: ./<name>.nk.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub who: Who,
    /// The registry vigia-auth reads.
    #[arg(long, env = "VIGIA_IDENTITIES", default_value = vigia_auth::registry::DEFAULT_PATH)]
    pub registry: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub nats: NatsArgs,

    /// The host token of the target host (as in telemetry.<host>.*).
    #[arg(long)]
    pub host: String,

    /// The process to signal.
    #[arg(long, allow_negative_numbers = true)]
    pub pid: i64,

    /// The boot (one run of a publisher) to send the kill to, as `vigiactl
    /// hosts` lists them; needed when two machines share the host token.
    /// Default: the one publisher that answers on cmd.<host>.
    #[arg(long)]
    pub boot: Option<String>,

    /// TERM, KILL, INT, HUP (with or without SIG), or a signal number.
    #[arg(long, default_value = "TERM")]
    pub signal: String,

    /// Who asks, for the audit trail; default: $USER@<this host>.
    #[arg(long, env = "VIGIA_REQUESTED_BY")]
    pub requested_by: Option<String>,

    /// How long to wait for the answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(flatten)]
    pub nats: NatsArgs,

    /// Read the sink's `hosts` table instead of live telemetry, e.g.
    /// mysql://root@127.0.0.1:3306/vigia.
    #[arg(long, env = "VIGIA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// How recent a host's last sample must be to be listed (live only).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub within: Duration,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub nats: NatsArgs,

    /// Only this host token.
    #[arg(long)]
    pub host: Option<String>,

    /// Only this kind: cpu, ram, procs, hello, bye or event.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<Kind>,

    /// Stop after this many samples (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("not a duration ({e}); use e.g. 5s"))
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    Kind::from_token(text).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("not a kind; use one of {}", kinds.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("vigiactl").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn kill_defaults_to_term_and_five_seconds() {
        let Command::Kill(k) = parse(&["kill", "--host", "web-1", "--pid", "42"])
            .unwrap()
            .command
        else {
            panic!("not kill");
        };
        assert_eq!(k.signal, "TERM");
        assert_eq!(k.timeout, Duration::from_secs(5));
        assert_eq!(k.pid, 42);
    }

    #[test]
    fn a_negative_pid_reaches_the_publisher_to_be_refused() {
        let Command::Kill(k) = parse(&["kill", "--host", "h", "--pid", "-1"])
            .unwrap()
            .command
        else {
            panic!("not kill");
        };
        assert_eq!(k.pid, -1);
    }

    #[test]
    fn watch_takes_a_kind_and_names_the_bad_one() {
        let Command::Watch(w) = parse(&["watch", "--kind", "procs"]).unwrap().command else {
            panic!("not watch");
        };
        assert_eq!(w.kind, Some(Kind::Procs));
        let e = parse(&["watch", "--kind", "disk"]).unwrap_err();
        assert!(e.contains("'disk'") && e.contains("cpu, ram, procs"), "{e}");
    }
}
