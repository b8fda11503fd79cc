//! The integration tests: one binary (linking Leptos and `app` once), a module per area. Each
//! test starts the real router on port 0 with a fresh database (`common`); where a test needs a
//! third party it starts its own sandbox service. Nothing reaches the internet.

mod common;

mod authorize;
mod authorize_cancel;
mod basics;
mod caches;
mod canary;
mod decoding;
mod embed;
mod fencing;
mod invoke;
mod keepalive;
mod keys;
mod lifecycle;
mod login;
mod microservices;
mod outbound;
mod panel_details;
mod panel_scale;
mod platform;
mod policy;
mod processes;
mod promotion;
mod revoke;
mod sandbox_smoke;
mod schema;
mod scripts;
mod startup;
mod sync;
mod system_connections;
mod verify;
mod webhooks;
