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

struct Cache {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

pub struct GceVerifier {
    jwks_url: String,
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
        Self {
            jwks_url,
            audience,
            projects,
            cache: Mutex::new(Cache {
                keys: Vec::new(),
                fetched: None,
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
        let stale = cache.fetched.is_none_or(|at| at.elapsed() >= CACHE_FOR);
        let unknown = !cache.keys.iter().any(|k| k.kid == kid);
        let may_refetch = cache
            .fetched
            .is_none_or(|at| at.elapsed() >= REFETCH_AT_MOST_EVERY);
        if stale || (unknown && may_refetch) {
            cache.keys = fetch(&self.jwks_url)?;
            cache.fetched = Some(Instant::now());
        }
        let jwk = cache
            .keys
            .iter()
            .find(|k| k.kid == kid && k.kty == "RSA")
            .ok_or_else(|| GceError::UnknownKey(kid.to_owned(), self.jwks_url.clone()))?;
        Ok(DecodingKey::from_rsa_components(&jwk.n, &jwk.e)?)
    }
}

fn fetch(url: &str) -> Result<Vec<Jwk>, GceError> {
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
    let jwks: Jwks = serde_json::from_slice(&body).map_err(|e| failed(e.to_string()))?;
    Ok(jwks.keys)
}
