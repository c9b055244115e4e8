//! `mfp-host preview export DIR`: writes the browser preview (crate `mfp-preview`, feature
//! `demo`) as a static folder that any static web server can serve; it is the same set of
//! files `mfp-host serve` answers at `/preview/`. Without the feature, it says how to get it.

use std::io::Write;
use std::path::Path;

use crate::frontend::Failure;

/// What to do with the browser preview.
#[derive(Debug, clap::Subcommand)]
pub enum PreviewCommand {
    /// Writes the preview's files into DIR (created if missing; files of the same name are
    /// replaced), to serve from any static web server.
    Export {
        /// The folder to write.
        dir: std::path::PathBuf,
    },
}

/// Why there is no preview in this build, and how to get one.
pub fn not_built() -> Failure {
    Failure::bad_input(
        "preview-not-built",
        "This mfp-host was built without the Microsoft stand-ins, so the browser preview is not available",
        "Build it with the `demo` feature (on by default): `cargo build --release -p mfp-host`.",
    )
}

/// Runs a `preview` command.
pub fn run(command: &PreviewCommand, out: &mut impl Write) -> Result<u8, Failure> {
    match command {
        PreviewCommand::Export { dir } => export(dir, out),
    }
}

#[cfg(feature = "demo")]
fn export(dir: &Path, out: &mut impl Write) -> Result<u8, Failure> {
    let failed = |what: &Path, e: std::io::Error| {
        Failure::device_fault(
            "preview-export-failed",
            format!("Cannot write {}: {e}", what.display()),
            "Choose a folder this user may write to.",
        )
    };
    let assets = mfp_preview::assets();
    let mut bytes = 0;
    for asset in assets {
        let path = asset
            .path
            .split('/')
            .fold(dir.to_path_buf(), |path, part| path.join(part));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
        }
        std::fs::write(&path, asset.bytes).map_err(|e| failed(&path, e))?;
        bytes += asset.bytes.len();
    }
    writeln!(
        out,
        "Wrote the browser preview to {} ({} files, {bytes} bytes). Serve the folder with any static web server and open index.html there.",
        dir.display(),
        assets.len()
    )
    .map_err(Failure::output)?;
    Ok(0)
}

#[cfg(not(feature = "demo"))]
fn export(_dir: &Path, _out: &mut impl Write) -> Result<u8, Failure> {
    Err(not_built())
}
