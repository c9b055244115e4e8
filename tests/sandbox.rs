//! The sandbox holds: a call that loops, traps or hoards memory returns an error, the host
//! stays up and the next call runs on a fresh instance; the component imports only the
//! project's interfaces and `wasi:random`, and one importing the filesystem is refused.

use std::time::{Duration, Instant};

use mfp_component_tests::{FIXTURE_RUNAWAY_PATH, options};
use mfp_host::bindings::mailer::{OutgoingMessage, WalkUpUser};
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::device::{Device, DeviceError};
use mfp_host::runtime::CallError;
use mfp_host::runtime::component::{ComponentSource, EMBEDDED};

fn runaway_device(dir: &std::path::Path) -> Device {
    let mut opts = options(dir);
    opts.component = ComponentSource::File(FIXTURE_RUNAWAY_PATH.into());
    opts.runtime.call_timeout = Duration::from_millis(200);
    opts.runtime.memory_limit = 16 << 20;
    Device::open(opts).expect("fixture loads")
}

#[test]
fn a_call_that_never_returns_is_stopped_at_its_deadline_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    let device = runaway_device(dir.path());
    let started = Instant::now();
    let err = device.settings().unwrap_err();
    assert!(
        matches!(err, DeviceError::Sandbox(CallError::DeadlineExceeded(_))),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline did not stop the loop"
    );
    assert_eq!(err.diagnosis().0, "component-deadline");
    assert_eq!(
        device.control_panel_view().unwrap().smtp_server,
        "fixture.example"
    );
}

#[test]
fn a_trapping_call_returns_an_error_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    let device = runaway_device(dir.path());
    let err = device
        .apply(mfp_component_tests::Origin::WebPanel, &[])
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::Sandbox(CallError::Trap(_))),
        "{err:?}"
    );
    assert_eq!(err.diagnosis().0, "component-trap");
    assert_eq!(
        device.control_panel_view().unwrap().smtp_server,
        "fixture.example"
    );
}

#[test]
fn a_bad_resource_handle_traps_the_call_instead_of_becoming_a_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    let device = runaway_device(dir.path());
    let message = OutgoingMessage {
        to: vec!["alice@fabrikam.com".into()],
        from: None,
        user: WalkUpUser::Unauthenticated,
        subject: "x".into(),
        body: String::new(),
        attachments: vec![],
        attempt: 1,
    };
    // The fixture reads from a connection it never opened.
    let err = device
        .send(&message, AttachmentSet::default(), 1_800_000_000)
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::Sandbox(CallError::Trap(_))),
        "{err:?}"
    );
    assert_eq!(err.diagnosis().0, "component-trap");
    assert_eq!(
        device.control_panel_view().unwrap().smtp_server,
        "fixture.example"
    );
}

#[test]
fn a_call_that_hoards_memory_hits_the_cap_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    let device = runaway_device(dir.path());
    let err = device.diagnostics().unwrap_err();
    assert!(
        matches!(err, DeviceError::Sandbox(CallError::MemoryLimit(16))),
        "{err:?}"
    );
    assert_eq!(
        device.control_panel_view().unwrap().smtp_server,
        "fixture.example"
    );
}

/// Exactly the project's interfaces and `wasi:random/random`: a browser page provides these
/// without a WASI shim, and the device grants nothing else. A std built for WASI would bring
/// back `wasi:cli`, `wasi:clocks` and `wasi:io` and fail here.
#[test]
fn the_component_imports_only_the_project_interfaces_and_wasi_random() {
    let info = mfp_host::runtime::inspect(EMBEDDED).unwrap();
    let mut imports = info.imports.clone();
    imports.sort();
    assert_eq!(
        imports,
        [
            "mfp:smtp-oauth/attachments@0.1.0",
            "mfp:smtp-oauth/config@0.1.0",
            "mfp:smtp-oauth/net@0.1.0",
            "mfp:smtp-oauth/relay-client@0.1.0",
            "mfp:smtp-oauth/store@0.1.0",
            "mfp:smtp-oauth/types@0.1.0",
            "wasi:random/random@0.2.12",
        ]
    );
    assert_eq!(
        info.exports,
        [
            "mfp:smtp-oauth/panel@0.1.0",
            "mfp:smtp-oauth/signin@0.1.0",
            "mfp:smtp-oauth/mailer@0.1.0",
            "mfp:smtp-oauth/relay@0.1.0"
        ]
    );
}

/// The host links `wasi:random/random` alone: std's WASI glue (clocks, pollables, stdio) is
/// not granted, so a component built with it, which could block in `wasi:io/poll` past its
/// deadline, does not load.
#[test]
fn a_component_that_imports_wasi_clocks_or_stdio_is_refused_at_load() {
    for (import, item) in [
        (
            "wasi:clocks/monotonic-clock@0.2.6",
            "(export \"now\" (func (result u64)))",
        ),
        ("wasi:io/poll@0.2.6", "(export \"poll\" (func))"),
        ("wasi:cli/stdout@0.2.6", "(export \"get-stdout\" (func))"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let wasm = wat::parse_str(format!(
            r#"(component (import "{import}" (instance {item})))"#
        ))
        .unwrap();
        let path = dir.path().join("glue.wasm");
        std::fs::write(&path, wasm).unwrap();
        let mut opts = options(&dir.path().join("state"));
        opts.component = ComponentSource::File(path);
        let err = Device::open(opts)
            .err()
            .unwrap_or_else(|| panic!("a component importing {import} must not load"));
        assert_eq!(err.diagnosis().0, "component-invalid", "{err}");
        assert!(err.to_string().contains(import), "{err}");
    }
}

#[test]
fn a_component_that_imports_the_filesystem_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(
        r#"(component
            (import "wasi:filesystem/preopens@0.2.6" (instance (export "get-directories" (func))))
        )"#,
    )
    .unwrap();
    let path = dir.path().join("greedy.wasm");
    std::fs::write(&path, wasm).unwrap();
    let mut opts = options(&dir.path().join("state"));
    opts.component = ComponentSource::File(path);
    let err = Device::open(opts)
        .err()
        .expect("a component importing the filesystem must not load");
    assert!(matches!(err, DeviceError::Component { .. }), "{err:?}");
    assert!(
        err.to_string().contains("wasi:filesystem/preopens"),
        "{err}"
    );
    assert_eq!(err.diagnosis().0, "component-invalid");
}

#[test]
fn the_second_start_loads_the_compiled_component_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let opts = mfp_host::device::DeviceOptions::new(dir.path());
    let first = Device::open(opts.clone()).unwrap();
    assert_eq!(
        first.cache_outcome(),
        mfp_host::runtime::compile_cache::CacheOutcome::Stored
    );
    drop(first);
    let second = Device::open(opts).unwrap();
    assert_eq!(
        second.cache_outcome(),
        mfp_host::runtime::compile_cache::CacheOutcome::Hit
    );
    assert!(second.settings().is_ok());
}
