//! What the host grants the component, one WIT import each, and nothing more: durable
//! storage with sealed secrets ([`store`], [`sealing`]), the network it may reach
//! ([`net`]), the files of the current send ([`attachments`]), and a nearby device's connection
//! to the relay ([`relay_client`]).

pub mod attachments;
pub mod net;
pub mod relay_client;
pub mod sealing;
pub mod store;
