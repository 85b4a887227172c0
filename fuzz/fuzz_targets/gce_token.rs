//! vigia-auth's check of a GCE instance identity token, the CONNECT token
//! any client may send (`vigia_auth::gce::GceVerifier::verify`), and of the
//! key set (JWKS) it fetches from Google to check them with
//! (`PublishedKeys::parse`). The keys here are a fixed test key pair
//! (fuzz/fixtures/gce-signer.pem, its public half in gce-jwks.json) given
//! to the verifier: nothing is fetched.
//!
//! The first byte chooses how the rest is used:
//! - 0: a token as a client sends it;
//! - 1: a token's claims (JSON), which the target signs with the fixed key,
//!   so the fuzzer reaches everything past the RS256 signature check (the
//!   audience, issuer, expiry, project allow-list, the instance's name);
//! - 2: a JWKS document, then a token the fixed key signed checked with the
//!   keys it gives.
//!
//! Beyond "never panics":
//! - a verified instance is a host whose name is the host token of the
//!   claims' instance name, in the allowed project, for this audience, from
//!   Google's issuer, unexpired, with the token's expiry; `looks_like_one`
//!   says yes to every verified token;
//! - the keys a JWKS document gives all have an id; the fixed token verifies
//!   with them exactly when they hold the fixed key under its id.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use vigia_auth::gce::{GceVerifier, PublishedKeys};
use vigia_schema::{HostToken, Role};

const SIGNER: &[u8] = include_bytes!("../fixtures/gce-signer.pem");
const JWKS: &str = include_str!("../fixtures/gce-jwks.json");
const KID: &str = "fuzz-key";
const AUDIENCE: &str = "nats://10.20.0.10:4222";
const PROJECT: &str = "fuzz-project";
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

struct Fixture {
    signing: EncodingKey,
    jwks: String,
    verifier: GceVerifier,
    /// A genuine token of the fixed key, valid for a century.
    genuine: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signing = EncodingKey::from_rsa_pem(SIGNER).expect("the fixed RSA key");
        let jwks = JWKS.to_owned();
        let keys = PublishedKeys::parse(jwks.as_bytes()).expect("the fixed JWKS");
        let verifier = GceVerifier::with_keys(keys, AUDIENCE.into(), vec![PROJECT.into()]);
        let now = vigia_auth::natsjwt::now();
        let claims = serde_json::json!({
            "iss": ISSUERS[0], "aud": AUDIENCE, "iat": now, "exp": now + 100 * 365 * 86400,
            "google": {"compute_engine": {"project_id": PROJECT, "instance_name": "fuzz-vm-1"}},
        });
        let genuine = sign(&signing, &claims).expect("signing the fixed token");
        // The two fixture files are one key pair.
        verifier
            .verify(&genuine)
            .expect("gce-jwks.json is gce-signer.pem's public key");
        Fixture {
            signing,
            jwks,
            verifier,
            genuine,
        }
    })
}

fn sign(key: &EncodingKey, claims: &Value) -> Option<String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    jsonwebtoken::encode(&header, claims, key).ok()
}

/// What the verifier must have checked, read independently from the claims.
fn check_verified(verifier: &GceVerifier, token: &str, claims: Option<&Value>) {
    let Ok(instance) = verifier.verify(token) else {
        return;
    };
    assert!(
        GceVerifier::looks_like_one(token),
        "verified, yet not an identity token"
    );
    assert_eq!(instance.identity.role, Role::Host);
    assert_eq!(instance.project, PROJECT);
    let Some(claims) = claims else {
        return;
    };
    let engine = &claims["google"]["compute_engine"];
    let name = engine["instance_name"].as_str().expect("an instance name");
    assert_eq!(
        Some(instance.identity.name.clone()),
        HostToken::from_hostname(name).ok()
    );
    assert_eq!(engine["project_id"], PROJECT);
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == AUDIENCE,
        Value::Array(all) => all.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(
        audience_ok,
        "verified for another audience: {}",
        claims["aud"]
    );
    assert!(
        ISSUERS.iter().any(|i| claims["iss"] == *i),
        "issuer {}",
        claims["iss"]
    );
    let exp = claims["exp"]
        .as_i64()
        .expect("an expiry that fits the claims' type");
    assert_eq!(instance.expires, exp);
    assert!(
        exp >= vigia_auth::natsjwt::now() - 60,
        "verified although expired"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = GceVerifier::looks_like_one(token);
            check_verified(&f.verifier, token, None);
        }
        1 => {
            let Ok(claims) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let Some(token) = sign(&f.signing, &claims) else {
                return;
            };
            check_verified(&f.verifier, &token, Some(&claims));
        }
        _ => {
            let Ok(keys) = PublishedKeys::parse(rest) else {
                return;
            };
            assert!(keys.ids().all(|id| !id.is_empty()));
            // The document's keys, read here as a JWKS says them (unknown
            // fields skipped, as they are there).
            let doc: Jwks =
                serde_json::from_slice(rest).expect("a document the keys were read from");
            let fixed: Jwks = serde_json::from_str(&f.jwks).expect("the fixed JWKS");
            let fixed = &fixed.keys[0];
            // The first usable RSA key under the id is the one looked up.
            let first = doc.keys.iter().find(|k| {
                k.kty == "RSA"
                    && k.kid == KID
                    && jsonwebtoken::DecodingKey::from_rsa_components(&k.n, &k.e).is_ok()
            });
            let holds_fixed = first.is_some_and(|k| k.n == fixed.n && k.e == fixed.e);
            let verifier = GceVerifier::with_keys(keys, AUDIENCE.into(), vec![PROJECT.into()]);
            let verified = verifier.verify(&f.genuine).is_ok();
            assert!(
                !holds_fixed || verified,
                "the fixed key was given, yet its token does not verify"
            );
            assert!(
                !verified || first.is_some(),
                "verified with no RSA key under its id"
            );
        }
    }
});
