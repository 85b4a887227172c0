//! A GCE VM proves which instance it is with its instance identity token:
//! a JWT (RS256) the metadata server signs with Google's keys, with the
//! audience the VM asked for and, with `format=full`, the project and the
//! instance name. vigia-auth checks the signature against the published
//! keys (a JWKS URL, cached), the issuer, the audience (vigia's NATS
//! endpoint, so a token made for another service is useless here), the
//! expiry and the project allow-list; the host token is derived from the
//! verified instance name. Nothing the client says about itself counts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use vigia_schema::{HostToken, Role};

use crate::Identity;

/// Google's JWKS for the tokens the metadata server issues.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Keys are kept this long before being fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// A token naming a key we do not know makes us fetch the keys again (Google
/// rotates them), but not more often than this: forged tokens with made-up
/// key ids cannot turn the service into a fetching loop.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// The JWKS document is small; a larger answer is refused.
const MAX_JWKS_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GceError {
    #[error("instance identity token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error("instance identity token names key {0:?}, which {1} does not publish")]
    UnknownKey(String, String),
    #[error("instance identity token has no key id")]
    NoKeyId,
    #[error("fetching keys from {url}: {why}")]
    Fetch { url: String, why: String },
    #[error("instance identity token is not format=full (no google.compute_engine claims)")]
    NotFull,
    #[error("project {0:?} is not allowed")]
    Project(String),
    #[error("instance name {0:?}: {1}")]
    Name(String, vigia_schema::HostTokenError),
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
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

/// The keys a JWKS document publishes that can verify an RS256 token: RSA,
/// with a key id and components that decode. Others are left out (a key
/// Google adds in another algorithm is no error), so a token naming one of
/// them is refused as naming an unknown key.
#[derive(Clone, Default)]
pub struct PublishedKeys {
    keys: Vec<(String, DecodingKey)>,
}

impl PublishedKeys {
    /// Reads a JWKS document (`{"keys": [{"kid", "kty", "n", "e"}, ...]}`):
    /// what the JWKS URL answers, from the network.
    pub fn parse(document: &[u8]) -> Result<Self, serde_json::Error> {
        let jwks: Jwks = serde_json::from_slice(document)?;
        let keys = jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && !k.kid.is_empty())
            .filter_map(|k| {
                let key = DecodingKey::from_rsa_components(&k.n, &k.e).ok()?;
                Some((k.kid, key))
            })
            .collect();
        Ok(Self { keys })
    }

    /// The key ids kept.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(kid, _)| kid.as_str())
    }

    fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }
}

#[derive(Debug, Deserialize)]
struct TokenClaims {
    exp: i64,
    #[serde(default)]
    google: Option<Google>,
}

#[derive(Debug, Deserialize)]
struct Google {
    compute_engine: Option<ComputeEngine>,
}

#[derive(Debug, Deserialize)]
struct ComputeEngine {
    project_id: String,
    instance_name: String,
}

/// Where the keys come from: fetched from a JWKS URL (and refreshed), or
/// given once (tests and the fuzz target: nothing is ever fetched).
enum Source {
    Url(String),
    Fixed,
}

struct Cache {
    keys: PublishedKeys,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried, successful or not.
    tried: Option<Instant>,
}

pub struct GceVerifier {
    source: Source,
    audience: String,
    projects: Vec<String>,
    cache: Mutex<Cache>,
}

/// A verified VM: its host identity and when its token expires.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedInstance {
    pub identity: Identity,
    pub project: String,
    pub expires: i64,
}

impl GceVerifier {
    pub fn new(jwks_url: String, audience: String, projects: Vec<String>) -> Self {
        Self::with_source(
            Source::Url(jwks_url),
            PublishedKeys::default(),
            audience,
            projects,
        )
    }

    /// A verifier that trusts exactly `keys` and never fetches any.
    pub fn with_keys(keys: PublishedKeys, audience: String, projects: Vec<String>) -> Self {
        Self::with_source(Source::Fixed, keys, audience, projects)
    }

    fn with_source(
        source: Source,
        keys: PublishedKeys,
        audience: String,
        projects: Vec<String>,
    ) -> Self {
        Self {
            source,
            audience,
            projects,
            cache: Mutex::new(Cache {
                keys,
                fetched: None,
                tried: None,
            }),
        }
    }

    /// Whether `token` looks like an identity token at all (an RS256 JWT),
    /// so that other tokens are not reported as forged ones.
    pub fn looks_like_one(token: &str) -> bool {
        jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::RS256)
    }

    /// Verifies `token`. Blocking (it may fetch the keys): call it from a
    /// blocking task.
    pub fn verify(&self, token: &str) -> Result<VerifiedInstance, GceError> {
        let header = jsonwebtoken::decode_header(token)?;
        let kid = header.kid.ok_or(GceError::NoKeyId)?;
        let key = self.key(&kid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&ISSUERS);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<TokenClaims>(token, &key, &validation)?;
        let engine = data
            .claims
            .google
            .and_then(|g| g.compute_engine)
            .ok_or(GceError::NotFull)?;
        if !self.projects.contains(&engine.project_id) {
            return Err(GceError::Project(engine.project_id));
        }
        let name = HostToken::from_hostname(&engine.instance_name)
            .map_err(|e| GceError::Name(engine.instance_name.clone(), e))?;
        Ok(VerifiedInstance {
            identity: Identity {
                role: Role::Host,
                name,
            },
            project: engine.project_id,
            expires: data.claims.exp,
        })
    }

    fn key(&self, kid: &str) -> Result<DecodingKey, GceError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Source::Url(url) = &self.source {
            let stale = cache.fetched.is_none_or(|at| at.elapsed() >= CACHE_FOR);
            let unknown = cache.keys.get(kid).is_none();
            // At most one fetch every REFETCH_AT_MOST_EVERY, failed or not:
            // neither tokens naming made-up keys nor an unreachable URL may
            // turn every connect into a fetch (each holds a thread for up to
            // the fetch's timeout).
            let may_try = cache
                .tried
                .is_none_or(|at| at.elapsed() >= REFETCH_AT_MOST_EVERY);
            if (stale || unknown) && may_try {
                cache.tried = Some(Instant::now());
                match fetch(url) {
                    Ok(keys) => {
                        cache.keys = keys;
                        cache.fetched = Some(Instant::now());
                    }
                    // With no keys at all nothing can be verified: say why.
                    Err(error) if cache.fetched.is_none() => return Err(error),
                    // Otherwise keep verifying with the keys held.
                    Err(error) => tracing::warn!(%error, "keeping the keys fetched before"),
                }
            }
        }
        let shown = match &self.source {
            Source::Url(url) => url.clone(),
            Source::Fixed => "the given keys".to_owned(),
        };
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| GceError::UnknownKey(kid.to_owned(), shown))
    }
}

fn fetch(url: &str) -> Result<PublishedKeys, GceError> {
    let failed = |why: String| GceError::Fetch {
        url: url.to_owned(),
        why,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_vec()
        .map_err(|e| failed(e.to_string()))?;
    PublishedKeys::parse(&body).map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// A token-shaped string whose header names `kid` (the signature is
    /// never reached).
    fn token_naming(kid: &str) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#));
        format!("{header}.e30.c2ln")
    }

    #[test]
    fn only_rsa_keys_with_an_id_and_decodable_components_are_kept() {
        let document = br#"{"keys": [
            {"kid": "good", "kty": "RSA", "n": "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw", "e": "AQAB"},
            {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kid": "bad", "kty": "RSA", "n": "!!", "e": "AQAB"}
        ]}"#;
        let keys = PublishedKeys::parse(document).unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["good"]);
        assert!(PublishedKeys::parse(b"{}").is_err());
        assert!(PublishedKeys::parse(b"not json").is_err());
    }

    #[test]
    fn an_unreachable_key_url_is_tried_once_not_at_every_token() {
        // A port nobody listens on: the fetch fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let verifier = GceVerifier::new(
            format!("http://127.0.0.1:{port}/certs"),
            "nats://x:4222".into(),
            vec!["p".into()],
        );
        let first = verifier.verify(&token_naming("k1")).unwrap_err();
        assert!(matches!(first, GceError::Fetch { .. }), "{first}");
        // Within REFETCH_AT_MOST_EVERY: refused without another fetch.
        for kid in ["k1", "k2", "k3"] {
            let again = verifier.verify(&token_naming(kid)).unwrap_err();
            assert!(matches!(again, GceError::UnknownKey(..)), "{again}");
        }
    }

    #[test]
    fn given_keys_are_never_fetched_and_name_what_they_are() {
        let verifier = GceVerifier::with_keys(
            PublishedKeys::default(),
            "nats://x:4222".into(),
            vec!["p".into()],
        );
        let e = verifier
            .verify(&token_naming("k1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("the given keys"), "{e}");
    }
}
