//! The command-line tasks besides `serve`, each a function `main.rs` calls with its settings:
//! [`verify`] checks every hash chain; [`token`] issues a JWT for trying jwt mode.

pub mod token;
pub mod verify;
