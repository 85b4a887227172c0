//! The publisher's settings: every flag also reads an environment variable,
//! so a systemd unit or a container sets them the same way.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use vigia_schema::sample;

#[derive(Debug, Parser)]
#[command(
    name = "vigia-publisher",
    version,
    about = "Samples this host's CPU, RAM and processes and publishes them to NATS JetStream"
)]
pub struct Config {
    /// NATS server to publish to; several, comma-separated, for a cluster.
    #[arg(long, env = "VIGIA_NATS_URL", default_value = vigia_schema::servers::DEFAULT_URL)]
    pub nats_url: String,

    /// Token for NATS, when the server requires one.
    #[arg(long, env = "VIGIA_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// File holding this host's nkey seed (from `vigiactl enroll --host`):
    /// the host proves it is itself by signing the server's nonce.
    #[arg(long, env = "VIGIA_NATS_NKEY", conflicts_with_all = ["nats_token", "gce_identity"])]
    pub nats_nkey: Option<std::path::PathBuf>,

    /// Prove this host's identity with the GCE instance identity token
    /// (fetched fresh at every connect); no key or secret on the VM.
    #[arg(long, env = "VIGIA_GCE_IDENTITY", value_parser = clap::builder::BoolishValueParser::new(),
          action = clap::ArgAction::SetTrue, conflicts_with = "nats_token")]
    pub gce_identity: bool,

    /// Audience of the identity token: what vigia-auth expects
    /// (--gce-audience there); default: --nats-url.
    #[arg(long, env = "VIGIA_GCE_AUDIENCE")]
    pub gce_audience: Option<String>,

    /// The metadata server (tests point it elsewhere).
    #[arg(long, env = "VIGIA_METADATA_URL", default_value = crate::gce_token::METADATA_URL)]
    pub metadata_url: String,

    /// CA certificate that signed the NATS server's certificate: the
    /// connection is then TLS and the server is verified.
    #[arg(long, env = "VIGIA_NATS_CA")]
    pub nats_ca: Option<std::path::PathBuf>,

    /// Host name to publish as (reduced to a host token); default: this
    /// machine's host name.
    #[arg(long, env = "VIGIA_HOST")]
    pub host: Option<String>,

    /// How often to sample CPU and RAM.
    #[arg(long, env = "VIGIA_INTERVAL", default_value = default_text(sample::DEFAULT_INTERVAL),
          value_parser = parse_interval)]
    pub interval: Duration,

    /// How often to sample the process table.
    #[arg(long, env = "VIGIA_PROCS_INTERVAL",
          default_value = default_text(sample::DEFAULT_PROCS_INTERVAL), value_parser = parse_interval)]
    pub procs_interval: Duration,

    /// How often to send the publisher's own health (outbox depth and
    /// drops, reconnects, source, version).
    #[arg(long, env = "VIGIA_HEALTH_INTERVAL",
          default_value = default_text(sample::DEFAULT_HEALTH_INTERVAL), value_parser = parse_interval)]
    pub health_interval: Duration,

    /// Serve /metrics (Prometheus text format) and /healthz on this
    /// address, e.g. 127.0.0.1:9465; off when unset.
    #[arg(long, env = "VIGIA_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Samples kept while NATS is unreachable; beyond it the oldest are dropped.
    #[arg(long, env = "VIGIA_QUEUE_CAPACITY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub queue_capacity: u32,

    /// Payload bytes kept while NATS is unreachable, in MiB; beyond it the
    /// oldest samples are dropped.
    #[arg(long, env = "VIGIA_QUEUE_MAX_MIB", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub queue_max_mib: u32,

    /// Where to read from: the vigia kernel module, procfs, or the module
    /// when it is loaded.
    #[arg(long, env = "VIGIA_SOURCE", value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,

    /// Take one sample of each kind, print them as JSON lines and exit
    /// (needs no NATS).
    #[arg(long)]
    pub once: bool,

    /// Refuse every command on cmd.<host> (each refusal is still answered
    /// and audited).
    #[arg(long, env = "VIGIA_NO_CONTROL", value_parser = clap::builder::BoolishValueParser::new(),
          action = clap::ArgAction::SetTrue)]
    pub no_control: bool,

    /// Process names never signalled, comma-separated; matched against the
    /// name (comm) and the executable's file name, exactly, or by prefix
    /// when a name ends in '*'.
    #[arg(
        long,
        env = "VIGIA_DENY",
        value_delimiter = ',',
        default_values = crate::control::policy::DEFAULT_DENY
    )]
    pub deny: Vec<String>,

    /// Most commands taken per second from each requester; beyond it
    /// requests get an error reply. `who` (vigiactl asks it before each
    /// kill) has an allowance of the same size of its own, so it never
    /// uses up a kill's.
    #[arg(long, env = "VIGIA_CONTROL_RATE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub control_rate: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceChoice {
    Auto,
    Module,
    Procfs,
}

/// A default interval as `--help` shows it and [`parse_interval`] reads
/// it back (`1s`, `1m`).
fn default_text(interval: Duration) -> String {
    humantime::format_duration(interval).to_string()
}

/// A sampling interval: a duration such as `500ms`, `1s` or `1m`, from
/// 100 ms to 1 h.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("not a duration ({e}); use e.g. 500ms, 1s, 1m"))?;
    if d < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    if d > Duration::from_secs(3600) {
        return Err("must be at most 1h".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::try_parse_from(std::iter::once("vigia-publisher").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.procs_interval, Duration::from_secs(5));
        assert_eq!(c.health_interval, Duration::from_secs(60));
        assert_eq!(c.metrics_addr, None, "no port opened unless asked");
        assert_eq!(c.queue_capacity, 10_000);
        assert!(!c.no_control);
        assert_eq!(c.deny, crate::control::policy::DEFAULT_DENY);
        assert_eq!(c.control_rate, 10);
    }

    #[test]
    fn help_shows_the_default_intervals_as_typed() {
        use clap::CommandFactory;
        let command = Config::command();
        let default = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_default_values()[0].to_string_lossy().into_owned()
        };
        assert_eq!(default("interval"), "1s");
        assert_eq!(default("procs_interval"), "5s");
        assert_eq!(default("health_interval"), "1m");
    }

    #[test]
    fn control_flags() {
        let c = parse(&[
            "--no-control",
            "--deny",
            "sshd,kube*",
            "--control-rate",
            "3",
        ])
        .unwrap();
        assert!(c.no_control);
        assert_eq!(c.deny, ["sshd", "kube*"]);
        assert_eq!(c.control_rate, 3);
        let e = parse(&["--control-rate", "0"]).unwrap_err();
        assert!(e.contains("--control-rate"), "{e}");
    }

    #[test]
    fn bad_values_name_the_flag_and_the_value() {
        let e = parse(&["--interval", "0s"]).unwrap_err();
        assert!(
            e.contains("--interval") && e.contains("'0s'") && e.contains("at least 100ms"),
            "{e}"
        );
        let e = parse(&["--procs-interval", "soon"]).unwrap_err();
        assert!(
            e.contains("--procs-interval") && e.contains("'soon'"),
            "{e}"
        );
        let e = parse(&["--queue-capacity", "0"]).unwrap_err();
        assert!(e.contains("--queue-capacity") && e.contains("'0'"), "{e}");
    }
}
