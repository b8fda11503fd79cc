//! Server-only infrastructure: settings, state, database, cipher, sessions. Domain modules
//! (connections, policy, operations, …) live beside this one and use it.

pub mod assets;
pub mod cache;
pub mod crypto;
pub mod db;
pub mod ids;
pub mod keys;
pub mod outbound;
pub mod seed;
pub mod sessions;
pub mod settings;
pub mod single_flight;
pub mod state;
pub mod throttle;
pub mod workers;

pub use state::AppState;
