//! Stopping: a publisher told to stop while NATS is away (down, or not
//! letting it back in) still stops after its flush time, saying what it
//! could not deliver, so systemd never has to kill it.

use std::time::Duration;

use vigia_testkit::telemetry::{connect, create_telemetry_stream};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::NatsServer;

#[tokio::test]
async fn a_publisher_stopped_while_nats_is_away_exits_within_its_flush_time() {
    let mut nats = NatsServer::start();
    let client = connect(&nats.url()).await;
    create_telemetry_stream(&client).await;
    let mut publisher = start_publisher(&nats.url(), "stop-away", &[]);
    // Connected and publishing first, then NATS goes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // It flushes for five seconds, then stops; 30 s only tells a hang
    // from a loaded machine.
    let status = publisher
        .terminate(Duration::from_secs(30))
        .expect("the publisher exits while NATS is away instead of hanging");
    assert!(status.success(), "exited with {status}");
}
