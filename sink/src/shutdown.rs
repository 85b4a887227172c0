//! The shutdown signal inside ingest.
//!
//! Ingest runs two stages at once (pull and write) and waits in several
//! places (for MySQL, for NATS, for a batch); each of those waits also
//! watches this signal, so a stopping sink never sits out a backoff.
//! Fired once, when the future given to `Ingest::run` resolves; waiting on
//! it after it fired returns at once.

use tokio::sync::watch;

pub(crate) struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> Self {
        Shutdown(watch::channel(false).0)
    }

    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the signal has fired.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so this only returns on true.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}
