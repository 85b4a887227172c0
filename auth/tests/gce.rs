//! GCE instance identity: a VM proves which instance it is with the token
//! its metadata server signs. Here a key pair of the test's own stands for
//! Google's, and a local HTTP server for both the metadata server and the
//! published keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};
use base64::Engine as _;
use common::{prepared, stored, AuthStack};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vigia_schema::{Role, SampleBody};
use vigia_testkit::vigia::start_publisher;
use vigia_testkit::TempDir;

const KID: &str = "test-key-1";
const PROJECT: &str = "vigia-test";
const INSTANCE: &str = "gce-vm-1";

/// An RSA key pair made with openssl: its PEM and its JWK's n and e.
struct Signer {
    pem: Vec<u8>,
    n: String,
}

impl Signer {
    fn new(dir: &TempDir, name: &str) -> Self {
        let path = dir.path().join(format!("{name}.pem"));
        let made = std::process::Command::new("openssl")
            .args(["genrsa", "-out", path.to_str().unwrap(), "2048"])
            .output()
            .expect("running openssl");
        assert!(made.status.success(), "openssl genrsa failed");
        let modulus = std::process::Command::new("openssl")
            .args(["rsa", "-in", path.to_str().unwrap(), "-noout", "-modulus"])
            .output()
            .expect("running openssl");
        let hex = String::from_utf8(modulus.stdout).unwrap();
        let hex = hex.trim().trim_start_matches("Modulus=");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        Self {
            pem: std::fs::read(&path).unwrap(),
            n: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    fn jwks(&self) -> String {
        serde_json::json!({"keys": [{"kid": KID, "kty": "RSA", "alg": "RS256", "use": "sig", "n": self.n, "e": "AQAB"}]})
            .to_string()
    }

    /// A token as the metadata server makes it, format=full.
    fn token(&self, audience: &str, project: &str, instance: &str, expires_in: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({
            "iss": "https://accounts.google.com",
            "aud": audience,
            "azp": "1234567890",
            "sub": "1234567890",
            "iat": now - 10,
            "exp": now + expires_in,
            "google": {"compute_engine": {
                "project_id": project,
                "project_number": 42,
                "zone": "us-central1-a",
                "instance_id": "987654321",
                "instance_name": instance,
                "instance_creation_timestamp": now - 100,
            }},
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(&self.pem).unwrap(),
        )
        .unwrap()
    }
}

/// Serves `/certs` (the JWKS) and the metadata server's identity path
/// (a fresh token per request, only with `Metadata-Flavor: Google`);
/// counts the token requests.
async fn stand_in(signer: Arc<Signer>) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (signer, counter) = (signer.clone(), counter.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = if path == "/certs" {
                    ("200 OK", signer.jwks())
                } else if let Some(query) = path
                    .strip_prefix("/computeMetadata/v1/instance/service-accounts/default/identity?")
                {
                    if !request.contains("Metadata-Flavor: Google")
                        || !query.contains("format=full")
                    {
                        ("403 Forbidden", String::new())
                    } else {
                        let audience = query
                            .split('&')
                            .find_map(|p| p.strip_prefix("audience="))
                            .unwrap_or("")
                            .replace("%3A", ":")
                            .replace("%2F", "/");
                        counter.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", signer.token(&audience, PROJECT, INSTANCE, 3600))
                    }
                } else {
                    ("404 Not Found", String::new())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, served)
}

async fn gce_stack(signer: &Arc<Signer>) -> (AuthStack, u16, Arc<AtomicUsize>) {
    let (port, served) = stand_in(signer.clone()).await;
    let jwks = format!("http://127.0.0.1:{port}/certs");
    // The audience must be known before the server's port is: use a fixed
    // name for vigia's endpoint, as a deployment would.
    let stack = AuthStack::start_with(&[
        "--gce-audience",
        "nats://vigia.example:4222",
        "--gce-projects",
        &format!("other-project,{PROJECT}"),
        "--gce-jwks-url",
        &jwks,
    ]);
    (stack, port, served)
}

async fn connect_with_token(
    stack: &AuthStack,
    token: String,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    ConnectOptions::new()
        .token(token)
        .custom_inbox_prefix(format!("_INBOX.host.{INSTANCE}"))
        .connection_timeout(Duration::from_secs(10))
        .connect(stack.url())
        .await
}

#[tokio::test]
async fn forged_identity_tokens_are_refused_and_a_genuine_one_admits_its_instance() {
    let dir = TempDir::new("vigia-gce-keys");
    let google = Arc::new(Signer::new(&dir, "google"));
    let forger = Signer::new(&dir, "forger");
    let (stack, _port, _served) = gce_stack(&google).await;
    let audience = "nats://vigia.example:4222";

    let forged = [
        (
            "another key",
            forger.token(audience, PROJECT, INSTANCE, 3600),
        ),
        (
            "another audience",
            google.token("https://other.example", PROJECT, INSTANCE, 3600),
        ),
        ("expired", google.token(audience, PROJECT, INSTANCE, -3600)),
        (
            "a project not allowed",
            google.token(audience, "evil-project", INSTANCE, 3600),
        ),
    ];
    for (what, token) in forged {
        let error = connect_with_token(&stack, token)
            .await
            .err()
            .unwrap_or_else(|| panic!("a token with {what} was accepted"));
        assert_eq!(
            error.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {error}"
        );
    }
    let log = stack.auth_log();
    assert!(log.contains("InvalidSignature"), "{log}");
    assert!(log.contains("InvalidAudience"), "{log}");
    assert!(log.contains("ExpiredSignature"), "{log}");
    assert!(log.contains("evil-project"), "{log}");

    let genuine = google.token(audience, PROJECT, INSTANCE, 3600);
    connect_with_token(&stack, genuine)
        .await
        .expect("a genuine token of an allowed project connects");
    assert!(stack.auth_log().contains(&format!("host:{INSTANCE}")));
}

// Multi-threaded: the stand-in metadata server is a task of this runtime,
// and `terminate` blocks the test's thread while the publisher drains; a
// publisher that reconnects meanwhile must still get its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gce_vm_publishes_as_its_instance_with_no_enrolment_and_a_fresh_token_at_each_connect() {
    let dir = TempDir::new("vigia-gce-keys");
    let google = Arc::new(Signer::new(&dir, "google"));
    let (mut stack, port, served) = gce_stack(&google).await;
    let (_sink, _consumer) = prepared(&stack).await;
    let metadata = format!("http://127.0.0.1:{port}");
    let mut publisher = start_publisher(
        &stack.url(),
        INSTANCE,
        &[
            "--gce-identity",
            "--gce-audience",
            "nats://vigia.example:4222",
            "--metadata-url",
            &metadata,
        ],
    );
    let operator = stack.client(Role::Operator, "alice").await;
    let hello_from_the_instance = |samples: Vec<vigia_schema::Sample>| {
        samples
            .iter()
            .any(|s| s.host == INSTANCE && matches!(s.body, SampleBody::Hello(_)))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !hello_from_the_instance(stored(&operator).await) {
        assert!(
            std::time::Instant::now() < deadline,
            "no hello from {INSTANCE}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = served.load(Ordering::SeqCst);
    assert!(first >= 1);

    // A reconnect asks the metadata server again (tokens last an hour).
    stack.nats.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while served.load(Ordering::SeqCst) == first {
        assert!(
            std::time::Instant::now() < deadline,
            "no fresh token after the reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publisher
        .terminate(Duration::from_secs(30))
        .expect("the publisher stops");
}
