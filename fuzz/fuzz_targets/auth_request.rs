//! The auth callout's reading of what arrives on `$SYS.REQ.USER.AUTH`:
//! `vigia_auth::service::Authenticator::answer`, which decodes the
//! server's authorization request (a JWT: base64url parts, JSON claims, an
//! nkey issuer and its ed25519 signature), then the client's CONNECT
//! options inside it (an nkey and its signature of the nonce, or a token).
//! Anyone who can publish there can send it bytes; every client chooses
//! its own CONNECT options.
//!
//! The first byte chooses how the rest is used:
//! - even: the rest is the request payload as it arrived;
//! - odd: the rest is the request's claims (JSON), which the target signs
//!   with the fixed server key (fuzz/fixtures/auth-keys), as nats-server
//!   does, so the fuzzer reaches everything past the signature check.
//!
//! Beyond "never panics":
//! - an answer exactly when the payload decodes as a server-signed request;
//! - the answer is signed by the issuer, addressed to that server and to
//!   the connection's user nkey, and says allow or deny, never neither;
//! - allowed only the enrolled key (host web-1) whose signature of the
//!   nonce verifies, checked here independently, in the name of the
//!   registry, with a host's permissions and a session limit.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nkeys::KeyPair;
use serde_json::Value;
use vigia_auth::callout;
use vigia_auth::permissions::StreamNames;
use vigia_auth::service::Authenticator;
use vigia_auth::{natsjwt, nkey_proof, server_config};

const KEYS: &str = include_str!("../fixtures/auth-keys");

fn key(role: &str) -> KeyPair {
    let seed = KEYS
        .lines()
        .find_map(|l| l.strip_prefix(role)?.strip_prefix(' '))
        .expect("fuzz/fixtures/auth-keys names every key");
    KeyPair::from_seed(seed.trim()).expect("a seed")
}

struct Fixture {
    server: KeyPair,
    issuer: String,
    host: String,
    authenticator: Authenticator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let host = key("host");
        let registry: PathBuf =
            std::env::temp_dir().join(format!("vigia-fuzz-registry-{}", std::process::id()));
        std::fs::write(&registry, format!("host web-1 {}\n", host.public_key()))
            .expect("writing the fuzz registry");
        Fixture {
            server: key("server"),
            issuer: key("issuer").public_key(),
            host: host.public_key(),
            authenticator: Authenticator {
                issuer: key("issuer"),
                registry,
                gce: None,
                streams: StreamNames::default(),
                session_max: Duration::from_secs(3600),
            },
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let payload: Vec<u8> = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(mut claims) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        // Signed by the server key, as its `iss` must say for the
        // signature to be checked against it.
        if let Some(object) = claims.as_object_mut() {
            object.insert("iss".into(), f.server.public_key().into());
        }
        match natsjwt::encode(&claims, &f.server) {
            Ok(jwt) => jwt.into_bytes(),
            Err(_) => return,
        }
    };

    let answer = f.authenticator.answer(&payload);
    let request = std::str::from_utf8(&payload)
        .ok()
        .and_then(|text| callout::decode_request(text).ok());
    let Some(request) = request else {
        assert!(
            answer.is_none(),
            "an answer to a request that does not decode"
        );
        return;
    };
    let answer = answer.expect("a server-signed request is always answered");

    let (response, signer): (Value, String) =
        natsjwt::decode(&answer).expect("the answer is a valid JWT");
    assert_eq!(signer, f.issuer);
    assert_eq!(response["sub"], request.user_nkey.as_str());
    assert_eq!(response["aud"], request.server_id.id.as_str());
    let nats = &response["nats"];
    assert_eq!(nats["type"], "authorization_response");
    let allowed = nats.get("jwt").and_then(Value::as_str);
    let denied = nats.get("error").and_then(Value::as_str);
    assert!(
        allowed.is_some() != denied.is_some(),
        "neither or both of allow and deny: {nats}"
    );

    let opts = &request.connect_opts;
    let proof_holds = opts.nkey.as_deref() == Some(f.host.as_str())
        && nkey_proof::verify(
            &f.host,
            request.client_info.nonce.as_deref(),
            opts.sig.as_deref(),
        )
        .is_ok();
    match allowed {
        Some(user_jwt) => {
            assert!(proof_holds, "allowed without a verified proof: {opts:?}");
            let (user, signer): (Value, String) =
                natsjwt::decode(user_jwt).expect("the user JWT is valid");
            assert_eq!(signer, f.issuer);
            assert_eq!(user["sub"], request.user_nkey.as_str());
            assert_eq!(user["aud"], server_config::ACCOUNT);
            assert_eq!(user["name"], "host:web-1");
            assert!(user["exp"].as_i64().is_some(), "a session without an end");
            let publish: Vec<&str> = user["nats"]["pub"]["allow"]
                .as_array()
                .expect("publish permissions")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(publish, ["telemetry.web-1.>"], "a host's publish rights");
        }
        None => assert!(
            !proof_holds,
            "a verified proof of the enrolled key was refused: {denied:?}"
        ),
    }
});
