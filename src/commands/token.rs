//! `chronicle token`: issue a JWT for trying jwt mode and for tests, signed with the HS256 secret or a
//! PEM private key (RSA → RS256, Ed25519 → EdDSA); with `--tsk`, a provenance token (`Rekuest-Task`:
//! `jti`, `act`, `tsk`, `ptk`, `rtk`, `rcb`, `ahs`, `aha`). Production tokens come from your identity
//! provider and your task broker.

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
    let exp = i64::try_from(settings.ttl_secs)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .ok_or("--ttl-secs is too large")?;
    let mut claims = json!({"sub": settings.sub, "iat": now, "exp": exp});
    match &settings.tsk {
        None => {
            for (claim, value) in [
                ("azp", &settings.app),
                ("scope", &settings.scope),
                ("iss", &settings.issuer),
            ] {
                if let Some(value) = value {
                    claims[claim] = json!(value);
                }
            }
            match settings.audience.as_slice() {
                [] => {}
                [one] => claims["aud"] = json!(one),
                many => claims["aud"] = json!(many),
            }
        }
        Some(tsk) => {
            let root = settings
                .rtk
                .clone()
                .or_else(|| settings.ptk.clone())
                .unwrap_or_else(|| tsk.clone());
            claims["jti"] = json!(
                settings
                    .jti
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
            );
            claims["aud"] = json!(settings.audience);
            claims["act"] = json!({
                "sub": settings.act_sub.as_ref().unwrap_or(&settings.sub),
                "cid": settings.act_cid.as_ref().or(settings.app.as_ref()),
            });
            claims["tsk"] = json!(tsk);
            claims["rtk"] = json!(root);
            claims["rcb"] = json!(settings.rcb.as_ref().unwrap_or(&settings.sub));
            for (claim, value) in [
                ("iss", &settings.issuer),
                ("ptk", &settings.ptk),
                ("ahs", &settings.ahs),
                ("aha", &settings.aha),
            ] {
                if let Some(value) = value {
                    claims[claim] = json!(value);
                }
            }
        }
    }
    encode(&Header::new(algorithm), &claims, &key).map_err(|e| e.to_string())
}
