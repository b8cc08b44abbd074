//! The webhook tokens: the current and previous values of the WitiOp
//! secret's `webhook_token`, compared in constant time and re-read on a timer.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use tokio::sync::Mutex;

use crate::aws::{SecretStore, PREVIOUS_STAGE};
use crate::config::WitiopSecret;

/// How often a token that does not match may trigger a re-read of the secret:
/// often enough that a rotation takes effect within a minute, rarely enough
/// that a caller with a wrong token cannot hammer Secrets Manager.
const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How long accepted tokens are trusted without a re-read: a revoked token
/// stops working within this time even on an instance its holder keeps warm.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(300);

/// Failure to load the webhook tokens: the secret unreadable, empty or invalid.
pub type TokenError = crate::startup::StartupError;

/// The tokens a caller may present: the current one and, during a rotation,
/// the previous one.
struct TokenSet {
    accepted: Vec<SecretString>,
    /// The current version's key for signed Case links.
    link_key: Option<SecretString>,
    loaded_at: Instant,
}

/// Webhook tokens read from Secrets Manager, cached per cold start.
pub struct WebhookTokens {
    store: SecretStore,
    secret_id: String,
    tokens: Mutex<TokenSet>,
    refresh_interval: Duration,
    max_age: Duration,
}

impl WebhookTokens {
    /// Reads the tokens now, so that a missing secret fails the cold start.
    pub async fn load(store: SecretStore, secret_id: String) -> Result<Self, TokenError> {
        let tokens = read_tokens(&store, &secret_id).await?;
        Ok(Self {
            store,
            secret_id,
            tokens: Mutex::new(tokens),
            refresh_interval: TOKEN_REFRESH_INTERVAL,
            max_age: TOKEN_MAX_AGE,
        })
    }

    /// Fixed tokens with no secret behind them, for tests that exercise
    /// everything but Secrets Manager.
    #[cfg(feature = "testing")]
    pub fn for_tests(tokens: Vec<String>) -> Self {
        Self {
            store: SecretStore::unreachable(),
            secret_id: String::new(),
            tokens: Mutex::new(TokenSet {
                accepted: tokens.into_iter().map(SecretString::from).collect(),
                link_key: None,
                loaded_at: Instant::now(),
            }),
            refresh_interval: Duration::MAX,
            max_age: Duration::MAX,
        }
    }

    /// Changes how often a mismatch may trigger a re-read (tests use zero).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The key of signed Case links, as of the last read of the secret.
    pub async fn link_key(&self) -> Option<SecretString> {
        self.tokens.lock().await.link_key.clone()
    }

    /// Sets the link key (tests that run without a secret).
    #[cfg(feature = "testing")]
    pub fn with_link_key(self, key: &str) -> Self {
        self.tokens.try_lock().expect("not shared yet").link_key =
            Some(SecretString::from(key.to_owned()));
        self
    }

    /// Changes how long accepted tokens are trusted without a re-read.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether `presented` is an accepted token. The secret is re-read when
    /// the cached tokens are older than the maximum age, and (at most once
    /// per interval) before saying no.
    pub async fn verify(&self, presented: &str) -> bool {
        let mut tokens = self.tokens.lock().await;
        let age = tokens.loaded_at.elapsed();
        let expired = age >= self.max_age;
        if !expired {
            if matches_any(&tokens.accepted, presented) {
                return true;
            }
            if age < self.refresh_interval {
                return false;
            }
        }
        match read_tokens(&self.store, &self.secret_id).await {
            Ok(fresh) => *tokens = fresh,
            Err(e) => {
                // Keep the old tokens: an outage of Secrets Manager must not lock
                // WitiOp out; try again after the interval.
                tracing::error!(error = %e, "could not re-read the webhook token");
                tokens.loaded_at = Instant::now();
            }
        }
        matches_any(&tokens.accepted, presented)
    }
}

pub(super) fn matches_any(accepted: &[SecretString], presented: &str) -> bool {
    // Digests, not the tokens: equal lengths, so the comparison cannot stop
    // at a length mismatch and tell a caller how long a token is. Every
    // token is compared, without stopping at a match, so timing does not
    // tell which one matched either.
    let presented = Sha256::digest(presented.as_bytes());
    accepted
        .iter()
        .fold(Choice::from(0), |found, t| {
            let digest = Sha256::digest(t.expose_secret().as_bytes());
            found | digest.as_slice().ct_eq(presented.as_slice())
        })
        .into()
}

async fn read_tokens(store: &SecretStore, secret_id: &str) -> Result<TokenSet, TokenError> {
    // Both stages at once: this is on the cold-start path.
    let (current, previous) = tokio::join!(
        store.current(secret_id),
        store.read(secret_id, Some(PREVIOUS_STAGE))
    );
    let current = current?.ok_or_else(|| TokenError::Empty(secret_id.to_owned()))?;
    let current = WitiopSecret::parse(secret_id, &current)?;
    let link_key = current.link_key;
    let mut accepted = vec![current.webhook_token];
    if let Some(previous) = previous? {
        // A previous version in an old shape must not break the current one.
        match WitiopSecret::parse(secret_id, &previous) {
            Ok(p) => accepted.push(p.webhook_token),
            Err(e) => tracing::warn!(error = %e, "ignoring the AWSPREVIOUS webhook token"),
        }
    }
    Ok(TokenSet {
        accepted,
        link_key,
        loaded_at: Instant::now(),
    })
}
