//! Types and traits generated from `wit/` for the host side, by wasmtime's `bindgen!`.
//! The host's own modules use these names; nothing else here is hand-written.

wasmtime::component::bindgen!({
    world: "device-panel",
    path: "../wit",
    additional_derives: [PartialEq],
    with: {
        "mfp:smtp-oauth/net.connection": crate::capabilities::net::SmtpConnection,
        "mfp:smtp-oauth/relay-client.client-connection": crate::capabilities::relay_client::RelayConnection,
    },
    // Every import may trap: a bad resource handle or a host bug ends the call with a
    // trap (a `CallError`), never a diagnosis the administrator would be shown.
    imports: { default: trappable },
});

pub use exports::mfp::smtp_oauth::{mailer, panel, relay, signin};
pub use mfp::smtp_oauth::{attachments, config, net, relay_client, store, types};
