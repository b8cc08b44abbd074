//! The `private_key` of the JWT bearer flow, parsed once at load.

use std::sync::Arc;

use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use sha2::Digest;

/// An RSA private key that signs JWT bearer assertions (RS256).
///
/// Its `Debug` prints only the public key's fingerprint: the key itself
/// never reaches a log.
#[derive(Clone)]
pub struct PrivateKey {
    key: Arc<RsaKeyPair>,
    /// Hex SHA-256 of the public key (DER `RSAPublicKey`).
    fingerprint: String,
}

/// Why a `private_key` value is not usable; never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrivateKeyError {
    #[error("is not a PEM private key (\"BEGIN PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\")")]
    NotPem,
    #[error("is not an RSA private key of 2048 to 8192 bits (RS256 needs RSA)")]
    NotRsa,
}

impl PrivateKey {
    /// Reads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`) PEM, what `openssl genpkey` and `openssl genrsa` write.
    pub fn from_pem(pem: &str) -> Result<Self, PrivateKeyError> {
        let der =
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| PrivateKeyError::NotPem)?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(PrivateKeyError::NotRsa),
        }
        .map_err(|_| PrivateKeyError::NotRsa)?;
        let fingerprint = sha2::Sha256::digest(key.public_key().as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            key: Arc::new(key),
            fingerprint,
        })
    }

    /// Hex SHA-256 of the public key: tells keys apart without revealing one.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The RSASSA-PKCS1-v1_5 SHA-256 signature of `message` (JWS `RS256`).
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut signature,
        )?;
        Ok(signature)
    }
}

impl PartialEq for PrivateKey {
    /// One key pair, one public key: a replaced key is a changed connection.
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public_key_sha256", &self.fingerprint)
            .finish_non_exhaustive()
    }
}
