//! `vigiactl hosts`: who has been heard from lately.
//!
//! Live (the default) it asks the JetStream stream that carries telemetry,
//! without replaying it: the stream's subject list names every host, and
//! the last message of a few small subjects per host (`hello` for source,
//! CPUs and RAM; `cpu` and `ram` for the latest sample; `bye` for a clean
//! stop) says the rest. The age is the server's arrival time, so a host
//! with a wrong clock still shows its true age. With `--database-url` it
//! reads the sink's `hosts` table instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use sqlx::Connection as _;
use vigia_schema::{subject, Kind, Sample, SampleBody};

use crate::args::HostsArgs;
use crate::connect::connect;
use crate::render::{bytes, shown};

/// The stream vigia-sink creates for `telemetry.>`.
pub const STREAM: &str = "TELEMETRY";
const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

/// One line of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub host: String,
    /// online, stopped (said bye), offline (per the sink).
    pub status: String,
    pub source: Option<String>,
    pub cpus: Option<u32>,
    pub ram_total: Option<u64>,
    /// Since the last sample arrived.
    pub age: Duration,
}

pub async fn run(args: &HostsArgs) -> anyhow::Result<()> {
    let rows = match &args.database_url {
        Some(url) => from_database(url).await?,
        None => {
            let client = connect(&args.nats).await?;
            live(&client, args.within).await?
        }
    };
    print!("{}", table(&rows));
    Ok(())
}

/// Hosts whose last sample arrived within `within`, by host token.
pub async fn live(client: &async_nats::Client, within: Duration) -> anyhow::Result<Vec<HostRow>> {
    let jetstream = async_nats::jetstream::new(client.clone());
    let stream = jetstream.get_stream(STREAM).await.with_context(|| {
        format!(
            "reading stream {STREAM} (vigia-sink creates it; or read the database with --database-url)"
        )
    })?;
    let mut present: BTreeMap<String, BTreeSet<Kind>> = BTreeMap::new();
    let mut subjects = stream
        .info_with_subjects(crate::watch::subject(None, None))
        .await
        .with_context(|| format!("listing the subjects of stream {STREAM}"))?;
    while let Some((name, _count)) = subjects
        .try_next()
        .await
        .with_context(|| format!("listing the subjects of stream {STREAM}"))?
    {
        if let Some((host, kind)) = subject::split_telemetry(&name) {
            if let Some(kind) = Kind::from_token(kind) {
                present.entry(host.to_owned()).or_default().insert(kind);
            }
        }
    }

    let now = time::OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    for (host, kinds) in present {
        let mut row = HostRow {
            host: host.clone(),
            status: "online".into(),
            source: None,
            cpus: None,
            ram_total: None,
            age: Duration::MAX,
        };
        let mut bye_age = None;
        for kind in [Kind::Hello, Kind::Cpu, Kind::Ram, Kind::Bye] {
            if !kinds.contains(&kind) {
                continue;
            }
            let subject = subject::telemetry(&host, kind);
            let Ok(message) = stream.get_last_raw_message_by_subject(&subject).await else {
                // Aged out between the listing and this read.
                continue;
            };
            let age = Duration::try_from(now - message.time).unwrap_or(Duration::ZERO);
            let Ok(sample) = Sample::decode(&message.payload) else {
                continue;
            };
            match sample.body {
                SampleBody::Hello(h) => {
                    row.source = Some(h.source);
                    row.cpus = row.cpus.or(Some(h.cpus));
                    row.ram_total = row.ram_total.or(Some(h.ram_total));
                }
                SampleBody::Cpu(c) => row.cpus = Some(c.cpus),
                SampleBody::Ram(r) => row.ram_total = Some(r.total),
                SampleBody::Bye(_) => {
                    bye_age = Some(age);
                    continue;
                }
                _ => {}
            }
            row.age = row.age.min(age);
        }
        if let Some(bye_age) = bye_age {
            if bye_age <= row.age {
                row.status = "stopped".into();
                row.age = bye_age;
            }
        }
        if row.age <= within {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// host, status, source, cpus, ram_total, microseconds since last_seen.
type HostsTableRow = (
    String,
    String,
    Option<String>,
    Option<u32>,
    Option<u64>,
    i64,
);

/// Every host in the sink's `hosts` table.
pub async fn from_database(url: &str) -> anyhow::Result<Vec<HostRow>> {
    let shown = redact(url);
    let mut db = tokio::time::timeout(DATABASE_TIMEOUT, sqlx::MySqlConnection::connect(url))
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to the database at {shown}: timed out"))?
        .with_context(|| format!("cannot connect to the database at {shown}"))?;
    let rows: Vec<HostsTableRow> = sqlx::query_as(
        "SELECT host, CAST(status AS CHAR), source, cpus, ram_total, \
                    GREATEST(TIMESTAMPDIFF(MICROSECOND, last_seen, UTC_TIMESTAMP(6)), 0) \
             FROM hosts ORDER BY host",
    )
    .fetch_all(&mut db)
    .await
    .with_context(|| format!("reading table hosts at {shown}"))?;
    let _ = db.close().await;
    Ok(rows
        .into_iter()
        .map(|(host, status, source, cpus, ram_total, age_us)| HostRow {
            host,
            status,
            source,
            cpus,
            ram_total,
            age: Duration::from_micros(age_us.max(0) as u64),
        })
        .collect())
}

/// The listing, with a header, aligned.
pub fn table(rows: &[HostRow]) -> String {
    let mut lines = vec![[
        "HOST".to_owned(),
        "STATUS".to_owned(),
        "SOURCE".to_owned(),
        "CPUS".to_owned(),
        "RAM".to_owned(),
        "LAST SAMPLE".to_owned(),
    ]];
    // Host, status and source come from publishers (a hello's `source` is
    // whatever its sender wrote): escaped, so a cell cannot clear the
    // screen or reorder the line.
    for r in rows {
        lines.push([
            shown(&r.host).into_owned(),
            shown(&r.status).into_owned(),
            r.source
                .as_deref()
                .map_or_else(|| "-".into(), |s| shown(s).into_owned()),
            r.cpus.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.ram_total.map(bytes).unwrap_or_else(|| "-".into()),
            format!("{:.1} s ago", r.age.as_secs_f64()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The URL without its password, for error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("mysql://vigia:s3cret@db:3306/vigia"),
            "mysql://vigia@db:3306/vigia"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1/v"),
            "mysql://root@127.0.0.1/v"
        );
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[test]
    fn a_hostile_source_is_shown_escaped() {
        let text = table(&[HostRow {
            host: "web-1".into(),
            status: "online".into(),
            source: Some("\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}".into()),
            cpus: None,
            ram_total: None,
            age: Duration::ZERO,
        }]);
        assert!(
            text.contains(r"\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}"),
            "{text}"
        );
        assert!(
            !text
                .chars()
                .filter(|c| *c != '\n')
                .any(vigia_schema::text::is_unsafe),
            "{text:?}"
        );
    }

    #[test]
    fn the_table_aligns() {
        let text = table(&[HostRow {
            host: "web-1".into(),
            status: "online".into(),
            source: Some("procfs".into()),
            cpus: Some(2),
            ram_total: Some(8 << 30),
            age: Duration::from_millis(400),
        }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "HOST   STATUS  SOURCE  CPUS  RAM      LAST SAMPLE"
        );
        assert_eq!(lines[1], "web-1  online  procfs  2     8.0 GiB  0.4 s ago");
    }
}
