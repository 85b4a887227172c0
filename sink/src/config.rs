//! The sink's settings; every flag also reads an environment variable.

use std::time::Duration;

use clap::Parser;

use crate::retention::Retention;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "vigia-sink",
    version,
    about = "Consumes vigia telemetry from NATS JetStream and writes it to MySQL"
)]
pub struct Config {
    /// NATS server with JetStream; several, comma-separated, for a cluster
    /// (the sink fails over between them).
    #[arg(long, env = "VIGIA_NATS_URL", default_value = vigia_schema::servers::DEFAULT_URL)]
    pub nats_url: String,

    /// Token for NATS, when the server requires one.
    #[arg(long, env = "VIGIA_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// The sink's nkey seed file (`vigiactl enroll --sink NAME`), when
    /// vigia-auth guards the server.
    #[arg(long, env = "VIGIA_NATS_NKEY", conflicts_with = "nats_token")]
    pub nats_nkey: Option<std::path::PathBuf>,

    /// CA certificate that signed the NATS server's certificate (TLS).
    #[arg(long, env = "VIGIA_NATS_CA")]
    pub nats_ca: Option<std::path::PathBuf>,

    /// MySQL/MariaDB database; created when missing if the user may.
    #[arg(
        long,
        env = "VIGIA_DATABASE_URL",
        default_value = "mysql://root@127.0.0.1:3306/vigia",
        hide_env_values = true
    )]
    pub database_url: String,

    /// JetStream stream holding the telemetry (created or updated at start).
    #[arg(long, env = "VIGIA_STREAM", default_value = vigia_schema::subject::STREAM)]
    pub stream: String,

    /// How long the stream keeps telemetry that no sink has taken.
    #[arg(long, env = "VIGIA_STREAM_MAX_AGE", default_value = "24h", value_parser = parse_positive)]
    pub stream_max_age: Duration,

    /// Most bytes the stream keeps on disk; the oldest go first.
    #[arg(long, env = "VIGIA_STREAM_MAX_BYTES", default_value_t = 8 << 30,
          value_parser = clap::value_parser!(i64).range(1024 * 1024..))]
    pub stream_max_bytes: i64,

    /// Copies JetStream keeps of each stream: 1 on a single server, 3 on a
    /// three-node cluster (survives one node lost). The consumer inherits
    /// it. At most 5, as JetStream allows.
    #[arg(long, env = "VIGIA_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,

    /// Durable consumer shared by every sink.
    #[arg(long, env = "VIGIA_CONSUMER", default_value = vigia_schema::subject::CONSUMER)]
    pub consumer: String,

    /// Most messages written in one transaction.
    #[arg(long, env = "VIGIA_BATCH_SIZE", default_value_t = 5000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Longest wait for a batch to fill before writing what there is.
    #[arg(long, env = "VIGIA_BATCH_WAIT", default_value = "200ms", value_parser = parse_positive)]
    pub batch_wait: Duration,

    /// Most payload MiB in one batch, whatever its message count. Batches
    /// are pulled and decoded while the previous one is written, so the
    /// sink holds at most three: this bounds its memory, and smaller
    /// batches overlap decoding with writing more finely.
    #[arg(long, env = "VIGIA_BATCH_MAX_MIB", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch_max_mib: u32,

    /// How long raw samples are kept in MySQL (and the pipeline's health
    /// rows and boots): the first tier of retention. The sink refuses
    /// samples older than this (less an hour). Older ranges are drawn from
    /// the rollups.
    #[arg(long, env = "VIGIA_RETENTION", default_value = "48h", value_parser = parse_positive)]
    pub retention: Duration,

    /// How long the per-minute rollup (host_minutes) is kept; at least
    /// --retention. Unset: 35 days, or --retention if longer.
    #[arg(long, env = "VIGIA_MINUTE_RETENTION", value_parser = parse_positive)]
    pub minute_retention: Option<Duration>,

    /// How long the ten-minute rollups (host_ten_minutes,
    /// process_ten_minutes) are kept; at least --minute-retention. Unset:
    /// 90 days, or the minute tier's if longer. A year costs a host about as
    /// much disk as the raw tier's two days (README.md, "Disk").
    #[arg(long, env = "VIGIA_TEN_MINUTE_RETENTION", value_parser = parse_positive)]
    pub ten_minute_retention: Option<Duration>,

    /// How long the `commands` table (the audit trail of process control)
    /// is kept; unset, it is kept forever. Apart from --retention on
    /// purpose: who signalled what is asked after the telemetry around it
    /// has expired (see retention.rs).
    #[arg(long, env = "VIGIA_COMMANDS_RETENTION", value_parser = parse_positive)]
    pub commands_retention: Option<Duration>,

    /// Processes kept in the history per snapshot: the top N by CPU and the
    /// top N by RSS.
    #[arg(long, env = "VIGIA_HISTORY_TOP", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub history_top: u32,

    /// How often at most a host's current minute of the per-minute rollup
    /// is recomputed while it is open (a minute is always recomputed when
    /// it settles, up to a minute after it ends, and when a late sample
    /// reaches it); 0s recomputes it on every batch, and the process
    /// periods as they close instead of up to 2 minutes later. Up to 60s.
    /// See sink/src/store/open_minutes.rs.
    #[arg(long, env = "VIGIA_ROLLUP_REFRESH", default_value = "10s", value_parser = parse_refresh)]
    pub rollup_refresh: Duration,

    /// Serve /metrics (Prometheus text format) and /healthz on this
    /// address, e.g. 0.0.0.0:9464; off when unset.
    #[arg(long, env = "VIGIA_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// How often the sink records its own state in the sink_health table;
    /// `off` (zero here) records nothing.
    #[arg(long, env = "VIGIA_HEALTH_INTERVAL", default_value = "5s", value_parser = parse_or_off)]
    pub health_interval: Duration,

    /// This sink's name in sink_health; default: host name/pid.
    #[arg(long, env = "VIGIA_INSTANCE")]
    pub instance: Option<String>,
}

/// The default of --minute-retention.
pub const MINUTE_RETENTION: Duration = Duration::from_secs(35 * 86_400);
/// The default of --ten-minute-retention.
pub const TEN_MINUTE_RETENTION: Duration = Duration::from_secs(90 * 86_400);

impl Config {
    /// The retention tiers, each kept at least as long as the finer one
    /// before it: a rollup that expired before the samples it sums would
    /// leave long dashboard ranges nothing to read while the raw rows are
    /// still there.
    pub fn retention(&self) -> Result<Retention, String> {
        // An unset tier follows the finer one when that is longer than its
        // default, so a deployment that set only --retention 90d still
        // starts.
        let minutes = self
            .minute_retention
            .unwrap_or(MINUTE_RETENTION.max(self.retention));
        let ten_minutes = self
            .ten_minute_retention
            .unwrap_or(TEN_MINUTE_RETENTION.max(minutes));
        let tiers = [
            ("--retention", self.retention),
            ("--minute-retention", minutes),
            ("--ten-minute-retention", ten_minutes),
        ];
        for pair in tiers.windows(2) {
            let ((finer, short), (coarser, long)) = (pair[0], pair[1]);
            if long < short {
                return Err(format!(
                    "{coarser} {} is shorter than {finer} {}; a coarser tier is kept at least \
                     as long as the finer one",
                    shown(long),
                    shown(short),
                ));
            }
        }
        Ok(Retention {
            raw: self.retention,
            minutes,
            ten_minutes,
        })
    }
}

/// A duration as it would be written: whole days in days (humantime
/// would say 1month 4days 13h 26m 24s for 35d).
fn shown(d: Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86_400),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A positive duration, or `off` as zero.
fn parse_or_off(text: &str) -> Result<Duration, String> {
    if text == "off" {
        return Ok(Duration::ZERO);
    }
    parse_positive(text).map_err(|e| format!("{e}, or off"))
}

/// A duration from 0 to a minute.
fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("not a duration ({e}); use e.g. 0s, 500ms, 10s"))?;
    if d > Duration::from_secs(60) {
        return Err("must be at most 60s: a minute is recomputed when it closes".into());
    }
    Ok(d)
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("not a duration ({e}); use e.g. 200ms, 30s, 24h, 7d"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::try_parse_from(std::iter::once("vigia-sink").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.batch_size, 5000);
        assert_eq!(c.batch_wait, Duration::from_millis(200));
        assert_eq!(c.batch_max_mib, 8);
        assert_eq!(c.retention, Duration::from_secs(2 * 86_400));
        assert_eq!(
            c.retention(),
            Ok(Retention {
                raw: Duration::from_secs(2 * 86_400),
                minutes: Duration::from_secs(35 * 86_400),
                ten_minutes: Duration::from_secs(90 * 86_400),
            })
        );
        assert_eq!(c.commands_retention, None, "the audit trail is kept");
        assert_eq!(c.stream, "TELEMETRY");
        assert_eq!(c.consumer, "sink");
        assert_eq!(c.stream_replicas, 1);
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.health_interval, Duration::from_secs(5));
    }

    #[test]
    fn health_and_metrics_flags() {
        let c = parse(&[
            "--health-interval",
            "off",
            "--metrics-addr",
            "127.0.0.1:9464",
        ])
        .unwrap();
        assert_eq!(c.health_interval, Duration::ZERO);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        let e = parse(&["--metrics-addr", "everywhere"]).unwrap_err();
        assert!(
            e.contains("--metrics-addr") && e.contains("'everywhere'"),
            "{e}"
        );
        let e = parse(&["--health-interval", "0s"]).unwrap_err();
        assert!(e.contains("--health-interval") && e.contains("'0s'"), "{e}");
    }

    #[test]
    fn bad_values_name_the_flag_and_the_value() {
        let e = parse(&["--retention", "forever"]).unwrap_err();
        assert!(e.contains("--retention") && e.contains("'forever'"), "{e}");
        let c = parse(&["--commands-retention", "400d"]).unwrap();
        assert_eq!(
            c.commands_retention,
            Some(Duration::from_secs(400 * 86_400))
        );
        let e = parse(&["--commands-retention", "0s"]).unwrap_err();
        assert!(e.contains("--commands-retention"), "{e}");
        let e = parse(&["--minute-retention", "a month"]).unwrap_err();
        assert!(
            e.contains("--minute-retention") && e.contains("'a month'"),
            "{e}"
        );
        let c = parse(&["--retention", "40d"]).unwrap().retention().unwrap();
        assert_eq!(
            c.minutes,
            Duration::from_secs(40 * 86_400),
            "follows --retention"
        );
        assert_eq!(c.ten_minutes, TEN_MINUTE_RETENTION);
        let e = parse(&["--retention", "40d", "--minute-retention", "35d"])
            .unwrap()
            .retention()
            .unwrap_err();
        assert!(
            e.contains("--minute-retention 35d") && e.contains("--retention 40d"),
            "{e}"
        );
        let c = parse(&["--minute-retention", "500d"]).unwrap().retention();
        assert_eq!(c.unwrap().ten_minutes, Duration::from_secs(500 * 86_400));
        let e = parse(&[
            "--minute-retention",
            "500d",
            "--ten-minute-retention",
            "90d",
        ])
        .unwrap()
        .retention()
        .unwrap_err();
        assert!(
            e.contains("--ten-minute-retention 90d") && e.contains("--minute-retention 500d"),
            "{e}"
        );
        let c = parse(&[
            "--retention",
            "48h",
            "--minute-retention",
            "48h",
            "--ten-minute-retention",
            "48h",
        ]);
        assert_eq!(
            c.unwrap().retention(),
            Ok(Retention::uniform(Duration::from_secs(48 * 3600)))
        );
        let e = parse(&["--batch-size", "0"]).unwrap_err();
        assert!(e.contains("--batch-size") && e.contains("'0'"), "{e}");
        let e = parse(&["--batch-max-mib", "1000"]).unwrap_err();
        assert!(e.contains("--batch-max-mib") && e.contains("'1000'"), "{e}");
        let e = parse(&["--stream-replicas", "6"]).unwrap_err();
        assert!(e.contains("--stream-replicas") && e.contains("'6'"), "{e}");
        let e = parse(&["--stream-replicas", "0"]).unwrap_err();
        assert!(e.contains("--stream-replicas") && e.contains("'0'"), "{e}");
    }
}
