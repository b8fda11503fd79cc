//! The routed pages (see `crate::App`); widgets they share live in `crate::components`.

pub mod api_keys;
pub mod connection;
pub mod connection_manage;
pub mod create;
pub mod custom_connector;
pub mod edit;
pub mod embed;
pub mod home;
pub mod live;
pub mod login;
pub mod microservices;
pub mod operations;
pub mod promotion;
pub mod records;
pub mod webhooks;
