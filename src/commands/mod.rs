//! The command-line tasks besides `serve`, each a function `main.rs` calls with its settings:
//! [`verify`] checks every hash chain; [`prune`] removes old audit events and history; [`token`]
//! issues a JWT for trying jwt mode.

pub mod prune;
pub mod token;
pub mod verify;
