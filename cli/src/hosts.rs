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
use vigia_schema::subject::STREAM;
use vigia_schema::url::redact;
use vigia_schema::{subject, Kind, Sample, SampleBody};

use crate::args::HostsArgs;
use crate::connect::connect;
use crate::render::{bytes, shown};

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
    /// When two or more machines publish under this host token now: each
    /// one's boot, and its host name when it said (`who`).
    pub shared_by: Vec<String>,
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
            shared_by: Vec::new(),
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
    // The stream shows one host per token; only asking on cmd.<host> shows
    // how many machines stand behind it. All hosts at once: the whole
    // listing waits one WHO_WINDOW, not one per host.
    let asked = futures::future::join_all(
        rows.iter()
            .map(|row| machines(client, &row.host, row.status == "online")),
    )
    .await;
    for (row, machines) in rows.iter_mut().zip(asked) {
        if machines.len() > 1 {
            row.status = SHARED.into();
            row.shared_by = machines;
        }
    }
    Ok(rows)
}

/// How long the live listing waits for a host's first answer to `who`.
const WHO_TIMEOUT: Duration = Duration::from_secs(1);

/// `boot (host name)` of every publisher that answers `who` on
/// `cmd.<host>`, in boot order; nothing for a host not `online`, or whose
/// publishers do not answer (down, or older than `who`).
async fn machines(client: &async_nats::Client, host: &str, online: bool) -> Vec<String> {
    if !online {
        return Vec::new();
    }
    let Ok(token) = vigia_schema::HostToken::parse(host) else {
        return Vec::new();
    };
    let who = vigia_schema::CommandRequest {
        action: vigia_schema::command::ACTION_WHO.to_owned(),
        ..vigia_schema::CommandRequest::default()
    };
    let answers = crate::gather::all(
        client,
        &subject::command(&token),
        &who,
        WHO_TIMEOUT,
        crate::gather::WHO_WINDOW,
    )
    .await
    .unwrap_or_default();
    let mut machines: Vec<String> = answers
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|reply| {
            let boot = reply.boot?;
            Some(format!(
                "{boot} ({})",
                reply.hostname.as_deref().unwrap_or("?")
            ))
        })
        .collect();
    machines.sort();
    machines.dedup();
    machines
}

/// host, status, source, cpus, ram_total, microseconds since last_seen,
/// the live boots of a shared host (comma-separated).
type HostsTableRow = (
    String,
    String,
    Option<String>,
    Option<u32>,
    Option<u64>,
    i64,
    Option<String>,
);

/// Every host in the sink's `hosts` table.
pub async fn from_database(url: &str) -> anyhow::Result<Vec<HostRow>> {
    let shown = redact(url);
    let mut db = tokio::time::timeout(DATABASE_TIMEOUT, sqlx::MySqlConnection::connect(url))
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to the database at {shown}: timed out"))?
        .with_context(|| format!("cannot connect to the database at {shown}"))?;
    // A database the sink has not migrated to 0006 yet has no live_boots:
    // its hosts are listed all the same, without the shared marker.
    let has_boots: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.views \
         WHERE table_schema = DATABASE() AND table_name = 'live_boots'",
    )
    .fetch_one(&mut db)
    .await
    .with_context(|| format!("reading the schema at {shown}"))?;
    let shared_by = if has_boots > 0 {
        "(SELECT GROUP_CONCAT(b.boot ORDER BY b.boot SEPARATOR ',') FROM live_boots b \
          WHERE b.host = h.host AND b.shared)"
    } else {
        "NULL"
    };
    let rows: Vec<HostsTableRow> = sqlx::query_as(&format!(
        "SELECT h.host, CAST(h.status AS CHAR), h.source, h.cpus, h.ram_total, \
                GREATEST(TIMESTAMPDIFF(MICROSECOND, h.last_seen, UTC_TIMESTAMP(6)), 0), \
                {shared_by} \
         FROM hosts h ORDER BY h.host"
    ))
    .fetch_all(&mut db)
    .await
    .with_context(|| format!("reading table hosts at {shown}"))?;
    let _ = db.close().await;
    Ok(rows
        .into_iter()
        .map(
            |(host, status, source, cpus, ram_total, age_us, shared_by)| {
                let shared_by: Vec<String> = shared_by
                    .iter()
                    .flat_map(|boots| boots.split(','))
                    .map(str::to_owned)
                    .collect();
                HostRow {
                    host,
                    status: if shared_by.is_empty() {
                        status
                    } else {
                        SHARED.into()
                    },
                    source,
                    cpus,
                    ram_total,
                    age: Duration::from_micros(age_us.max(0) as u64),
                    shared_by,
                }
            },
        )
        .collect())
}

/// The status of a host token that two or more machines publish under
/// now: its samples interleave and a kill must name a boot.
pub const SHARED: &str = "shared";

/// The listing, with a header, aligned. The SHARED BY column (each boot of
/// a shared host) shows only when a host is shared.
pub fn table(rows: &[HostRow]) -> String {
    let mut lines = vec![[
        "HOST".to_owned(),
        "STATUS".to_owned(),
        "SOURCE".to_owned(),
        "CPUS".to_owned(),
        "RAM".to_owned(),
        "LAST SAMPLE".to_owned(),
        if rows.iter().any(|r| !r.shared_by.is_empty()) {
            "SHARED BY".to_owned()
        } else {
            String::new()
        },
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
            shown(&r.shared_by.join(", ")).into_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_source_is_shown_escaped() {
        let text = table(&[HostRow {
            host: "web-1".into(),
            status: "online".into(),
            source: Some("\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}".into()),
            cpus: None,
            ram_total: None,
            age: Duration::ZERO,
            shared_by: Vec::new(),
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
    fn a_shared_host_lists_its_boots() {
        let row = |host: &str, shared_by: &[&str]| HostRow {
            host: host.into(),
            status: if shared_by.is_empty() {
                "online"
            } else {
                SHARED
            }
            .into(),
            source: Some("procfs".into()),
            cpus: Some(2),
            ram_total: Some(8 << 30),
            age: Duration::from_millis(400),
            shared_by: shared_by.iter().map(|b| b.to_string()).collect(),
        };
        let text = table(&[
            row(
                "col",
                &["5f3a9c0d2e1b4a67 (col.x)", "9b1c000000000000 (col.y)"],
            ),
            row("web-1", &[]),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "HOST   STATUS  SOURCE  CPUS  RAM      LAST SAMPLE  SHARED BY",
                "col    shared  procfs  2     8.0 GiB  0.4 s ago    5f3a9c0d2e1b4a67 (col.x), 9b1c000000000000 (col.y)",
                "web-1  online  procfs  2     8.0 GiB  0.4 s ago",
            ]
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
            shared_by: Vec::new(),
        }]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "HOST   STATUS  SOURCE  CPUS  RAM      LAST SAMPLE"
        );
        assert_eq!(lines[1], "web-1  online  procfs  2     8.0 GiB  0.4 s ago");
    }
}
