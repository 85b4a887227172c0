//! The publisher's life: connect, sample, forward, and on SIGTERM or
//! SIGINT flush what it can for up to five seconds, say `bye`, exit.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::{ConnectOptions, Event};
use tokio::signal::unix::{signal, SignalKind};
use vigia_schema::identity::inbox_prefix;
use vigia_schema::{ByeBody, HostToken, Role, SampleBody, Stamper};

use crate::config::Config;
use crate::control::audit::Audit;
use crate::control::handler::{Handler, Identity};
use crate::control::policy::Policy;
use crate::forward::Forwarder;
use crate::outbox::Outbox;
use crate::sampler::{outgoing, Sampler, Schedule};

/// Messages sent before the oldest acknowledgement is awaited.
const PUBLISH_WINDOW: usize = 256;
/// How long a clean stop may spend flushing the outbox.
const FLUSH_FOR: Duration = Duration::from_secs(5);
/// The last flush's own allowance past FLUSH_FOR (it pushes out what is
/// still buffered, e.g. control replies, once the outbox is drained).
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// The host token from `--host`, or from this machine's host name.
pub fn host_token(config: &Config) -> anyhow::Result<HostToken> {
    let name = host_name(config)?;
    match &config.host {
        Some(_) => HostToken::from_hostname(&name).with_context(|| format!("--host {name:?}")),
        None => HostToken::from_hostname(&name).context("this machine's host name"),
    }
}

/// The name the host token is made from: `--host`, or this machine's host
/// name. `who` answers with it, so that machines whose names reduce to one
/// token can be told apart.
pub fn host_name(config: &Config) -> anyhow::Result<String> {
    match &config.host {
        Some(name) => Ok(name.clone()),
        None => crate::hostinfo::hostname().context("reading this machine's host name"),
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let host = host_token(&config)?;
    let source = crate::source::open(config.source)?;
    let schedule = Schedule {
        interval: config.interval,
        procs_interval: config.procs_interval,
        health_interval: config.health_interval,
    };

    let client = connect(&config, &host).await?;
    let outbox = Arc::new(Outbox::new(
        config.queue_capacity as usize,
        config.queue_max_mib as usize * 1024 * 1024,
    ));
    let mut forwarder = Forwarder::new(client.clone(), outbox.clone(), PUBLISH_WINDOW);
    let _exporter = match config.metrics_addr {
        Some(addr) => {
            let registry = crate::exporter::registry(outbox.clone(), client.statistics());
            let probe = crate::exporter::PublisherProbe {
                client: client.clone(),
                outbox: outbox.clone(),
            };
            let (bound, server) = vigia_exporter::bind(addr, registry, probe).await?;
            tracing::info!(%bound, "serving /metrics and /healthz");
            Some(AbortOnDrop(tokio::spawn(server)))
        }
        None => None,
    };

    let (stop_sampling, stopped) = mpsc::channel::<()>();
    let mut sampler = Sampler::new(source, host.clone(), schedule);
    // Events carry this run's boot id with a sequence of their own.
    let mut audit = Audit::new(
        Stamper::new(host.clone(), sampler.stamper_mut().boot().to_owned()),
        outbox.clone(),
    );
    let handler = Handler::new(
        Policy::new(!config.no_control, config.deny.clone()),
        config.control_rate,
        Identity {
            boot: sampler.stamper_mut().boot().to_owned(),
            hostname: host_name(&config)?,
        },
    );
    let sampling = {
        let outbox = outbox.clone();
        let connections = client.statistics();
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sampler.run(outbox, stopped, connections))
            .context("starting the sampling thread")?
    };
    tracing::info!(%host, nats = %config.nats_url, "publishing telemetry.{host}.*");

    // Forwarding and control share this thread; control stops when the
    // forwarder does, so the events it recorded are drained below with the
    // rest of the outbox.
    let (stop_control, control_stopped) = tokio::sync::oneshot::channel::<()>();
    let forwarding = async {
        let reason = forwarder.run(wait_for_signal()).await;
        let _ = stop_control.send(());
        reason
    };
    let control = async {
        let stopped = async {
            let _ = control_stopped.await;
        };
        if let Err(error) =
            crate::control::serve(client.clone(), &host, handler, &mut audit, stopped).await
        {
            // Telemetry goes on without control: watching a host matters
            // more than steering it.
            tracing::error!(%error, "cannot take commands on cmd.{host}");
        }
    };
    let (reason, ()) = tokio::join!(forwarding, control);
    let _ = stop_sampling.send(());
    let mut stamper = tokio::task::spawn_blocking(move || sampling.join())
        .await
        .context("joining the sampling thread")?
        .map_err(|_| anyhow::anyhow!("the sampling thread panicked"))?;

    let deadline = tokio::time::Instant::now() + FLUSH_FOR;
    // Events are stamped apart from the sampler's kinds; bye reports both.
    let mut last_seq = stamper.last_seqs();
    last_seq.extend(audit.last_seqs());
    let bye = stamper.stamp(SampleBody::Bye(ByeBody {
        reason: reason.to_owned(),
        dropped: outbox.dropped(),
        last_seq,
    }));
    // At the front: after an outage the outbox may hold more than the flush
    // can send in time, and the bye matters most (the sink orders by ts, so
    // it may arrive before older samples). A full outbox drops its oldest
    // sample for it, never the bye itself.
    outbox.push_first(outgoing(&bye));
    let delivered = forwarder.drain(deadline).await;
    // Bounded: a flush waits for the connection, which may never come back
    // (NATS down, or not letting this client in): stopping must not hang.
    let _ = tokio::time::timeout_at(deadline + FLUSH_GRACE, client.flush()).await;
    if delivered {
        tracing::info!(
            published = forwarder.acknowledged(),
            "stopped cleanly ({reason})"
        );
    } else {
        tracing::warn!(
            undelivered = outbox.len(),
            "stopped ({reason}) with samples NATS did not take within {FLUSH_FOR:?}"
        );
    }
    Ok(())
}

/// How the publisher proves who it is: an nkey seed file, the GCE
/// identity token (a fresh one at every connect: they expire after an
/// hour), a shared token (legacy), or nothing (a local server).
fn credentials(config: &Config) -> anyhow::Result<ConnectOptions> {
    if let Some(path) = &config.nats_nkey {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--nats-nkey {}", path.display()))?;
        let seed = vigia_schema::identity::parse_seed(&text)
            .with_context(|| format!("--nats-nkey {}", path.display()))?;
        return Ok(ConnectOptions::new().nkey(seed));
    }
    if config.gce_identity {
        let metadata = config.metadata_url.clone();
        let audience = config
            .gce_audience
            .clone()
            .unwrap_or_else(|| config.nats_url.clone());
        return Ok(ConnectOptions::with_auth_callback(move |_nonce| {
            let (metadata, audience) = (metadata.clone(), audience.clone());
            async move {
                let token = crate::gce_token::fetch(&metadata, &audience)
                    .await
                    .map_err(async_nats::AuthError::new)?;
                let mut auth = async_nats::Auth::new();
                auth.token = Some(token);
                Ok(auth)
            }
        }));
    }
    let options = ConnectOptions::new();
    Ok(match &config.nats_token {
        Some(token) => options.token(token.clone()),
        None => options,
    })
}

/// Stops a background task when the agent's run ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(config: &Config, host: &HostToken) -> anyhow::Result<async_nats::Client> {
    let url = config.nats_url.clone();
    let mut options = credentials(config)?
        .name(format!("vigia-publisher {host}"))
        // Under vigia-auth a host may read only its own inbox.
        .custom_inbox_prefix(inbox_prefix(Role::Host, host))
        // An agent must come up even when the central VM does not: it
        // samples into the outbox until NATS answers.
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let url = url.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(%url, "connected to NATS"),
                    Event::Disconnected => {
                        tracing::warn!(%url, "disconnected from NATS; buffering samples")
                    }
                    // Each failed reconnect attempt reports a client error;
                    // the disconnect was already logged once.
                    Event::ClientError(error) => tracing::debug!(%url, "NATS: {error}"),
                    other => tracing::warn!(%url, "NATS: {other}"),
                }
            }
        });
    if let Some(ca) = &config.nats_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    // Several servers (a cluster): tried in turn, and failed over between
    // while running; the outbox holds samples in the gap.
    let servers = vigia_schema::servers::server_urls(&config.nats_url).context("--nats-url")?;
    options
        .connect(servers)
        .await
        .with_context(|| format!("--nats-url {:?}", config.nats_url))
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn wait_for_signal() -> &'static str {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
