//! Bad input gets a typed error naming the field, and nothing is persisted.

use mfp_component_tests::{PanelErrorKind, TestDevice, refusal};

fn assert_refused_and_unchanged(
    t: &TestDevice,
    pairs: &[(&str, &str)],
    kind: PanelErrorKind,
    code: &str,
    field: &str,
) {
    let before = t.device.settings().unwrap();
    let err = refusal(t.web(pairs).unwrap_err());
    assert_eq!(
        (err.kind, err.code.as_str(), err.field.as_deref()),
        (kind, code, Some(field)),
        "{pairs:?}"
    );
    assert!(!err.message.is_empty() && !err.remedy.web_panel.is_empty());
    assert_eq!(
        t.device.settings().unwrap(),
        before,
        "a refused Apply changed something: {pairs:?}"
    );
}

#[test]
fn ports_out_of_range_or_not_numbers_are_refused() {
    let t = TestDevice::new();
    for (value, code) in [
        ("0", "port-out-of-range"),
        ("65536", "port-out-of-range"),
        ("abc", "port-not-a-number"),
        ("", "port-not-a-number"),
        (" 25", "port-not-a-number"),
    ] {
        // A valid change in the same Apply must not land either.
        assert_refused_and_unchanged(
            &t,
            &[("receive-port", "26"), ("send-port", value)],
            PanelErrorKind::InvalidValue,
            code,
            "send-port",
        );
    }
}

#[test]
fn malformed_hosts_are_refused() {
    let t = TestDevice::new();
    let long = format!("{}.example.com", "a".repeat(250));
    for (value, code) in [
        ("", "host-empty"),
        ("mail example.com", "host-invalid"),
        ("mail.example.com\rRSET", "host-invalid"),
        ("mail.example.com\nRCPT TO:<x@y>", "host-invalid"),
        (long.as_str(), "host-too-long"),
    ] {
        assert_refused_and_unchanged(
            &t,
            &[("smtp-server", value)],
            PanelErrorKind::InvalidValue,
            code,
            "smtp-server",
        );
    }
    // The control panel validates the same way, and a bad entry does not reset the provider.
    t.web(&[("service-provider", "exchange-online")]).unwrap();
    let err = refusal(t.control(&[("smtp-server", "bad host")]).unwrap_err());
    assert_eq!(err.code, "host-invalid");
    assert_eq!(t.value("service-provider"), "exchange-online");
}

#[test]
fn unknown_keys_are_refused_listing_the_known_ones() {
    let t = TestDevice::new();
    assert_refused_and_unchanged(
        &t,
        &[("receive-port", "26"), ("smtp-host", "x")],
        PanelErrorKind::UnknownKey,
        "unknown-key",
        "smtp-host",
    );
    let err = refusal(t.web(&[("bogus", "1")]).unwrap_err());
    assert!(err.remedy.web_panel.contains("service-provider"));
}

#[test]
fn other_malformed_values_are_refused() {
    let t = TestDevice::new();
    assert_refused_and_unchanged(
        &t,
        &[("service-provider", "gmail")],
        PanelErrorKind::InvalidValue,
        "provider-unknown",
        "service-provider",
    );
    assert_refused_and_unchanged(
        &t,
        &[("from.guest-edit", "maybe")],
        PanelErrorKind::InvalidValue,
        "not-yes-or-no",
        "from.guest-edit",
    );
    assert_refused_and_unchanged(
        &t,
        &[("device-email", "scan@contoso.com\r\nBcc: x@y")],
        PanelErrorKind::InvalidValue,
        "email-invalid",
        "device-email",
    );
    assert_refused_and_unchanged(
        &t,
        &[("client-id", "not-a-guid")],
        PanelErrorKind::InvalidValue,
        "client-id-invalid",
        "client-id",
    );
}
