//! What the host grants the component, one WIT import each, and nothing more: durable
//! storage with sealed secrets ([`store`], [`sealing`]), the network it may reach
//! ([`net`]), and the files of the current send ([`attachments`]).

pub mod attachments;
pub mod net;
pub mod sealing;
pub mod store;
