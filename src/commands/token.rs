//! `chronicle token`: issue a JWT for trying jwt mode and for tests, signed with the HS256 secret or a
//! PEM private key (RSA → RS256, Ed25519 → EdDSA). Production tokens come from your identity provider.

use std::process::ExitCode;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use crate::config::TokenSettings;

/// Prints a signed token to stdout.
pub fn run(settings: &TokenSettings) -> ExitCode {
    match issue(settings) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chronicle token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn issue(settings: &TokenSettings) -> Result<String, String> {
    let (key, algorithm) = match (&settings.jwt_secret, &settings.private_key) {
        (Some(secret), None) => (
            EncodingKey::from_secret(secret.as_bytes()),
            Algorithm::HS256,
        ),
        (None, Some(path)) => {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Ok(key) = EncodingKey::from_ed_pem(&pem) {
                (key, Algorithm::EdDSA)
            } else if let Ok(key) = EncodingKey::from_rsa_pem(&pem) {
                (key, Algorithm::RS256)
            } else {
                return Err(format!(
                    "{} holds no RSA or Ed25519 private key",
                    path.display()
                ));
            }
        }
        _ => return Err("give exactly one of --jwt-secret and --private-key".into()),
    };
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": settings.sub,
        "iat": now,
        "exp": i64::try_from(settings.ttl_secs)
            .ok()
            .and_then(|ttl| now.checked_add(ttl))
            .ok_or("--ttl-secs is too large")?,
    });
    for (claim, value) in [
        ("azp", &settings.app),
        ("scope", &settings.scope),
        ("iss", &settings.issuer),
        ("aud", &settings.audience),
    ] {
        if let Some(value) = value {
            claims[claim] = json!(value);
        }
    }
    encode(&Header::new(algorithm), &claims, &key).map_err(|e| e.to_string())
}
