//! Process control over `cmd.<host>`: operators ask a host's publisher to
//! signal one of its processes, and every request leaves an audit record.
//!
//! ```text
//! cmd.<host> (request/reply)
//!   → handler   rate limit, --no-control, shape, action, signal, pid rules,
//!               /proc inspection, deny list, kill(2)
//!   → reply     in the request's encoding (JSON or MessagePack)
//!   → audit     an `event` sample into the outbox → telemetry.<host>.event
//! ```
//!
//! It runs on the publisher's one tokio thread, beside the forwarder. The
//! handler's /proc reads are a few small files per request, and requests
//! are rate-limited, so they never hold that thread long enough to matter.

pub mod audit;
pub mod handler;
pub mod identity;
pub mod policy;
pub mod rate;
pub mod signal;
pub mod target;

/// Runs `check` with the thread id of another, live thread of this
/// process (tests of what control does with thread ids).
#[cfg(test)]
pub(crate) fn with_other_thread(check: impl FnOnce(i32)) {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // /proc/thread-self links to <pid>/task/<tid> of the caller.
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: i32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        tid_tx.send(tid).unwrap();
        let _ = done_rx.recv();
    });
    check(tid_rx.recv().unwrap());
    drop(done_tx);
    thread.join().unwrap();
}

use std::future::Future;

use futures::StreamExt as _;
use vigia_schema::{subject, HostToken};

use audit::Audit;
use handler::Handler;

/// Serves `cmd.<host>` until `stop` resolves. Never returns an error for a
/// bad request: those get an error reply; only failing to subscribe at all
/// is an error, and the caller keeps publishing telemetry even then.
pub async fn serve(
    client: async_nats::Client,
    host: &HostToken,
    mut handler: Handler,
    audit: &mut Audit,
    stop: impl Future<Output = ()>,
) -> Result<(), async_nats::SubscribeError> {
    // The bare subject (no auth) and the one naming a verified requester.
    let subject = subject::command(host);
    let bare = client.subscribe(subject.clone()).await?;
    let named = client.subscribe(format!("{subject}.*")).await?;
    let mut requests = futures::stream::select(bare, named);
    tracing::info!(%subject, "taking commands");
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            () = &mut stop => break,
            message = requests.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let user = identity::verified_requester(message.subject.as_str(), host);
        let handled = handler.handle(&message.payload, user);
        if let Some(event) = handled.event {
            audit.record(event);
        }
        match message.reply {
            Some(reply_to) => {
                let payload = handled.reply.encode(handled.encoding);
                // A requester that went away, or NATS dropping now, costs
                // the reply only; the audit record is already queued.
                if let Err(error) = client.publish(reply_to, payload.into()).await {
                    // The reply subject is the requester's: escaped, should
                    // the error quote it.
                    let error = error.to_string();
                    tracing::warn!(
                        error = %vigia_schema::text::Escaped(&error),
                        "could not send a command's reply"
                    );
                }
            }
            None => tracing::debug!("command without a reply subject; answered by audit only"),
        }
    }
    let (mut bare, mut named) = requests.into_inner();
    let _ = bare.unsubscribe().await;
    let _ = named.unsubscribe().await;
    Ok(())
}
