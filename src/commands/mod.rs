//! The command-line tasks besides `serve`, each a function `main.rs` calls with its settings:
//! [`verify`] checks every hash chain.

pub mod verify;
