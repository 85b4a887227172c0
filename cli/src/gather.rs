//! A request on `cmd.<host>` that more than one publisher may answer.
//!
//! NATS request/reply hands back the first answer and drops the rest, which
//! is how a kill once reached two machines sharing a host token and
//! reported one success. Here the request goes out with an inbox of its
//! own, and every answer to it is read: `who` is gathered for a short
//! while after the first answer, to count the machines; a command for one
//! boot waits for that boot's answer and sets aside the others' refusals.

use std::time::Duration;

use async_nats::{Client, StatusCode, Subscriber};
use futures::StreamExt as _;
use vigia_schema::{CommandReply, CommandRequest, Encoding};

/// How long, after the first answer to `who`, other publishers may still
/// answer. NATS delivers a request to every subscriber at once; each
/// answers from memory without touching /proc, so a second machine's
/// answer trails the first by little more than its network latency. A
/// machine slower than this is still safe: the command that follows names
/// one boot, and every other publisher refuses it.
pub const WHO_WINDOW: Duration = Duration::from_millis(300);

/// Why no usable answer came.
#[derive(Debug, Clone, PartialEq)]
pub enum Silence {
    /// The server says nobody listens on the subject.
    NoResponders,
    /// Nothing within the timeout.
    TimedOut,
    /// NATS failed (the message says how).
    Failed(String),
}

/// An answer, as sent (`Err` when it was not a reply of the contract).
pub type Answer = Result<CommandReply, String>;

/// Sends `request` on `subject` and returns the inbox its answers come to.
async fn send(
    client: &Client,
    subject: &str,
    request: &CommandRequest,
) -> Result<Subscriber, Silence> {
    let inbox = client.new_inbox();
    let answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| Silence::Failed(e.to_string()))?;
    client
        .publish_with_reply(
            subject.to_owned(),
            inbox,
            request.encode(Encoding::MessagePack).into(),
        )
        .await
        .map_err(|e| Silence::Failed(e.to_string()))?;
    client
        .flush()
        .await
        .map_err(|e| Silence::Failed(e.to_string()))?;
    Ok(answers)
}

/// The next answer before `deadline`; `None` when the time is up.
async fn next(
    answers: &mut Subscriber,
    deadline: tokio::time::Instant,
) -> Result<Option<Answer>, Silence> {
    match tokio::time::timeout_at(deadline, answers.next()).await {
        Err(_) => Ok(None),
        Ok(None) => Err(Silence::Failed("the NATS connection closed".into())),
        Ok(Some(message)) if message.status == Some(StatusCode::NO_RESPONDERS) => {
            Err(Silence::NoResponders)
        }
        Ok(Some(message)) => Ok(Some(
            CommandReply::decode(&message.payload).map_err(|e| e.to_string()),
        )),
    }
}

/// Every answer to `request`: the first within `timeout`, then the others
/// that come within `window` of it.
pub async fn all(
    client: &Client,
    subject: &str,
    request: &CommandRequest,
    timeout: Duration,
    window: Duration,
) -> Result<Vec<Answer>, Silence> {
    let mut answers = send(client, subject, request).await?;
    let first = next(&mut answers, tokio::time::Instant::now() + timeout)
        .await?
        .ok_or(Silence::TimedOut)?;
    let mut all = vec![first];
    let until = tokio::time::Instant::now() + window;
    while let Some(answer) = next(&mut answers, until).await? {
        all.push(answer);
    }
    Ok(all)
}

/// The answer of the publisher `request.boot` names (any answer when it
/// names none), within `timeout`, and the answers of others that came
/// before it (their refusals: the command was not for them).
pub async fn from_boot(
    client: &Client,
    subject: &str,
    request: &CommandRequest,
    timeout: Duration,
) -> Result<(CommandReply, Vec<Answer>), (Silence, Vec<Answer>)> {
    let mut answers = send(client, subject, request)
        .await
        .map_err(|s| (s, Vec::new()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut others = Vec::new();
    loop {
        match next(&mut answers, deadline).await {
            Err(silence) => return Err((silence, others)),
            Ok(None) => return Err((Silence::TimedOut, others)),
            Ok(Some(Ok(reply))) if request.boot.is_none() || reply.boot == request.boot => {
                return Ok((reply, others))
            }
            Ok(Some(other)) => others.push(other),
        }
    }
}
