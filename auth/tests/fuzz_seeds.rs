//! The seed corpora of vigia-auth's fuzz targets (fuzz/corpus/auth_request,
//! gce_token, credentials): valid inputs of each kind, made here with the
//! fixed test keys the targets use (fuzz/fixtures/), so that they follow
//! the callout's request format, the identity token's claims and the
//! registry's format as those change.
//!
//! Fails when a committed seed differs from what is made today;
//! `VIGIA_WRITE_FUZZ_SEEDS=1 cargo test -p vigia-auth --test fuzz_seeds`
//! rewrites them.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nkeys::KeyPair;
use serde_json::{json, Value};
use vigia_auth::gce::{GceVerifier, PublishedKeys};
use vigia_auth::{callout, natsjwt, registry};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn key(role: &str) -> KeyPair {
    let keys = std::fs::read_to_string(fuzz_dir().join("fixtures/auth-keys")).unwrap();
    let seed = keys
        .lines()
        .find_map(|l| l.strip_prefix(role)?.strip_prefix(' '))
        .unwrap();
    KeyPair::from_seed(seed.trim()).unwrap()
}

/// `mode` then `rest`: how the targets read their input.
fn moded(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(rest);
    out
}

/// An authorization request's claims as nats-server writes them, for a
/// client whose CONNECT carried `connect_opts`.
fn request_claims(connect_opts: Value) -> Value {
    json!({
        "aud": callout::REQUEST_AUDIENCE,
        "nats": {
            "server_id": {"id": key("server").public_key(), "name": "vigia"},
            "user_nkey": "UBQSHRXWVCXN7O4JYFSBCPVQIXWVMM2IIJ3E2NSWGPEOGD67BB2ZBD7L",
            "client_info": {"host": "10.20.0.5", "nonce": "qB0vYcxSJBhEX7vE", "kind": "Client", "type": "nats"},
            "connect_opts": connect_opts,
            "type": "authorization_request",
            "version": 2
        }
    })
}

fn nonce_signature(key: &KeyPair) -> String {
    URL_SAFE_NO_PAD.encode(key.sign(b"qB0vYcxSJBhEX7vE").unwrap())
}

fn auth_request_seeds() -> Vec<(String, Vec<u8>)> {
    let host = key("host");
    let stranger = key("stranger");
    let cases = [
        (
            "enrolled",
            json!({"nkey": host.public_key(), "sig": nonce_signature(&host), "name": "vigia-publisher web-1"}),
        ),
        (
            "stranger",
            json!({"nkey": stranger.public_key(), "sig": nonce_signature(&stranger)}),
        ),
        (
            "wrong-signature",
            json!({"nkey": host.public_key(), "sig": nonce_signature(&stranger)}),
        ),
        ("token", json!({"auth_token": "the-old-shared-token"})),
        ("nothing", json!({})),
    ];
    let mut out = Vec::new();
    for (name, opts) in cases {
        let mut claims = request_claims(opts);
        out.push((
            format!("{name}.json"),
            moded(1, claims.to_string().as_bytes()),
        ));
        claims["iss"] = key("server").public_key().into();
        let jwt = natsjwt::encode(&claims, &key("server")).unwrap();
        out.push((format!("{name}.jwt"), moded(0, jwt.as_bytes())));
    }
    out
}

const KID: &str = "fuzz-key";

fn identity_claims(audience: &str, project: &str, instance: &str) -> Value {
    json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "1234567890",
        "sub": "1234567890",
        "iat": 1_764_000_000,
        // 2100: the seeds stay valid.
        "exp": 4_102_444_800i64,
        "google": {"compute_engine": {
            "project_id": project,
            "project_number": 42,
            "zone": "us-central1-a",
            "instance_id": "987654321",
            "instance_name": instance,
            "instance_creation_timestamp": 1_763_999_000
        }}
    })
}

fn gce_token_seeds() -> Vec<(String, Vec<u8>)> {
    let pem = std::fs::read(fuzz_dir().join("fixtures/gce-signer.pem")).unwrap();
    let signing = EncodingKey::from_rsa_pem(&pem).unwrap();
    let jwks = std::fs::read(fuzz_dir().join("fixtures/gce-jwks.json")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let audience = "nats://10.20.0.10:4222";
    let cases = [
        (
            "genuine",
            identity_claims(audience, "fuzz-project", "vigia-vm-0001"),
        ),
        (
            "other-audience",
            identity_claims("https://example.com", "fuzz-project", "vigia-vm-0001"),
        ),
        (
            "other-project",
            identity_claims(audience, "someone-else", "vigia-vm-0001"),
        ),
        (
            "odd-name",
            identity_claims(audience, "fuzz-project", "VM_With.Odd\u{e9}Name"),
        ),
    ];
    let mut out = Vec::new();
    for (name, claims) in cases {
        out.push((
            format!("{name}-claims.json"),
            moded(1, claims.to_string().as_bytes()),
        ));
        let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
        out.push((format!("{name}.jwt"), moded(0, token.as_bytes())));
    }
    out.push(("jwks.json".into(), moded(2, &jwks)));
    let mut mixed: Value = serde_json::from_slice(&jwks).unwrap();
    mixed["keys"].as_array_mut().unwrap().insert(
        0,
        json!({"kid": "ec-1", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
    );
    out.push((
        "jwks-mixed.json".into(),
        moded(2, mixed.to_string().as_bytes()),
    ));
    out
}

fn credentials_seeds() -> Vec<(String, Vec<u8>)> {
    let host = key("host");
    let entries = vec![
        registry::Entry {
            identity: vigia_auth::Identity {
                role: vigia_schema::Role::Host,
                name: vigia_schema::HostToken::parse("web-1").unwrap(),
            },
            public_key: host.public_key(),
        },
        registry::Entry {
            identity: vigia_auth::Identity {
                role: vigia_schema::Role::Operator,
                name: vigia_schema::HostToken::parse("alice").unwrap(),
            },
            public_key: key("stranger").public_key(),
        },
    ];
    vec![
        (
            "seed.nk".into(),
            moded(0, format!("{}\n", host.seed().unwrap()).as_bytes()),
        ),
        (
            "account-seed.nk".into(),
            moded(0, key("issuer").seed().unwrap().as_bytes()),
        ),
        (
            "registry".into(),
            moded(1, registry::render(&entries).as_bytes()),
        ),
        (
            "registry-commented".into(),
            moded(
                1,
                format!(
                    "# enrolled\n\nhost web-1 {}  # the web VM\n",
                    host.public_key()
                )
                .as_bytes(),
            ),
        ),
    ]
}

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut all = Vec::new();
    for (name, bytes) in auth_request_seeds() {
        all.push(("auth_request", name, bytes));
    }
    for (name, bytes) in gce_token_seeds() {
        all.push(("gce_token", name, bytes));
    }
    for (name, bytes) in credentials_seeds() {
        all.push(("credentials", name, bytes));
    }
    all
}

#[test]
fn committed_seeds_are_current() {
    let corpus = fuzz_dir().join("corpus");
    let write = std::env::var_os("VIGIA_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (target, name, bytes) in seeds() {
        let path = corpus.join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(format!("{target}/{name}"));
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz seeds missing or stale: {stale:?}; rewrite them with \
         VIGIA_WRITE_FUZZ_SEEDS=1 cargo test -p vigia-auth --test fuzz_seeds"
    );
}

#[test]
fn the_seeds_reach_what_their_targets_are_for() {
    // The enrolled key's request, as the server signs it, decodes and
    // carries a proof that verifies.
    let (_, jwt) = auth_request_seeds()
        .into_iter()
        .find(|(n, _)| n == "enrolled.jwt")
        .unwrap();
    let request = callout::decode_request(std::str::from_utf8(&jwt[1..]).unwrap()).unwrap();
    vigia_auth::nkey_proof::verify(
        request.connect_opts.nkey.as_deref().unwrap(),
        request.client_info.nonce.as_deref(),
        request.connect_opts.sig.as_deref(),
    )
    .unwrap();
    // The genuine identity token verifies against the fixture's keys.
    let jwks = std::fs::read(fuzz_dir().join("fixtures/gce-jwks.json")).unwrap();
    let verifier = GceVerifier::with_keys(
        PublishedKeys::parse(&jwks).unwrap(),
        "nats://10.20.0.10:4222".into(),
        vec!["fuzz-project".into()],
    );
    let (_, token) = gce_token_seeds()
        .into_iter()
        .find(|(n, _)| n == "genuine.jwt")
        .unwrap();
    let instance = verifier
        .verify(std::str::from_utf8(&token[1..]).unwrap())
        .unwrap();
    assert_eq!(instance.identity.name.as_str(), "vigia-vm-0001");
    // The credentials read.
    for (name, bytes) in credentials_seeds() {
        let text = std::str::from_utf8(&bytes[1..]).unwrap();
        match name.as_str() {
            "seed.nk" => assert!(vigia_schema::identity::parse_seed(text).is_ok()),
            "account-seed.nk" => assert!(vigia_schema::identity::parse_seed(text).is_err()),
            _ => assert!(registry::parse(text, &name).is_ok(), "{name}"),
        }
    }
}
