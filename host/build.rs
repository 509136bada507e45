//! Builds the example workflows and the test fixtures in `workflows/` as
//! wasm32-wasip2 components, and passes their folder to the host as the
//! compile-time variable `LAYOVER_GUESTS_DIR`.
//!
//! The guests build with a nested `cargo build --release` into
//! `<target>/guests`. Cargo locks each target folder while it builds, and
//! this one is separate from the outer build's, so the nested cargo does not
//! wait for the outer build to finish. Every outer profile (dev, test,
//! release, clippy) shares the one guest build.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{self, Command, Output};

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Variables that would carry the outer build's settings into the nested
/// build, where they do not fit: flags and wrappers meant for the host
/// target (clippy runs as a workspace wrapper), and the outer target folder
/// and target triple.
const OUTER_BUILD_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
];

/// Variables that cargo sets for this build script alone. The nested cargo
/// sets its own for the guests' build scripts, but it would pass on the
/// leftovers, such as `CARGO_CFG_UNIX`, which is wrong for wasm32-wasip2.
const BUILD_SCRIPT_VARS: &[&str] = &[
    "TARGET",
    "HOST",
    "OUT_DIR",
    "OPT_LEVEL",
    "PROFILE",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC_LINKER",
    "CARGO_MANIFEST_LINKS",
];
const BUILD_SCRIPT_VAR_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "DEP_"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let repository = manifest_dir
        .parent()
        .expect("the host package is in a folder of the repository");
    let workflows = repository.join("workflows");

    // Scanning whole folders reruns this script on any change to a guest,
    // the SDK or the WIT. The nested build writes only to the guest target
    // folder, and to workflows/Cargo.lock when that is missing or out of
    // date, which costs one extra rerun.
    println!("cargo::rerun-if-changed=../workflows");
    println!("cargo::rerun-if-changed=../guest-sdk");
    println!("cargo::rerun-if-changed=../wit");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    let guest_target_dir = outer_target_dir().join("guests");
    ensure_target();
    let output = build_guests(&workflows, &guest_target_dir);
    if !output.status.success() {
        report_failure(&workflows, &guest_target_dir, &output);
    }

    // NOTE: deleting only <target>/guests does not rerun this script. Touch
    // a file under workflows/ afterwards, or run `cargo clean -p layover`.
    let guests_dir = guest_target_dir.join(GUEST_TARGET).join("release");
    let Some(guests_dir) = guests_dir.to_str() else {
        eprintln!(
            "error: the guest folder {} is not valid UTF-8, so it cannot be passed to the host as \
             LAYOVER_GUESTS_DIR; set CARGO_TARGET_DIR to a UTF-8 path",
            guests_dir.display()
        );
        process::exit(1);
    };
    println!("cargo::rustc-env=LAYOVER_GUESTS_DIR={guests_dir}");
}

/// Returns the outer build's target folder: `CARGO_TARGET_DIR` when it is an
/// absolute path, and otherwise the folder that contains `OUT_DIR`.
fn outer_target_dir() -> PathBuf {
    // A relative CARGO_TARGET_DIR is relative to the folder cargo was started
    // in, which a build script cannot see, so OUT_DIR decides then.
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }

    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out, with the
    // target triple between <target> and <profile> when the outer build was
    // given --target.
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| panic!("OUT_DIR {} has an unexpected layout", out_dir.display()));
    let parent = profile_dir
        .parent()
        .unwrap_or_else(|| panic!("OUT_DIR {} has an unexpected layout", out_dir.display()));
    let triple = env::var_os("TARGET").unwrap_or_default();
    match parent.parent() {
        Some(target_dir) if parent.file_name() == Some(triple.as_os_str()) => {
            target_dir.to_path_buf()
        }
        _ => parent.to_path_buf(),
    }
}

/// Installs the guest target with rustup when the toolchain lacks it, so a
/// first build on a machine with only the pinned toolchain succeeds. Without
/// rustup this does nothing, and a missing target fails the build below with
/// a message that says how to add it.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .output();
    let installed = match libdir {
        Ok(output) if output.status.success() => {
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Path::new(&path).is_dir()
        }
        _ => false,
    };
    if installed {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .status();
    if !matches!(added, Ok(status) if status.success()) {
        println!("cargo::warning=could not install the {GUEST_TARGET} target with rustup");
    }
}

/// Runs `cargo build --release` for the guest workspace and returns its
/// output.
fn build_guests(workflows: &Path, target_dir: &Path) -> Output {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(&cargo);
    // Running in workflows/ picks up workflows/.cargo/config.toml, exactly
    // like a build by hand in that folder.
    command
        .current_dir(workflows)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(GUEST_TARGET)
        .arg("--manifest-path")
        .arg(workflows.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);

    // CARGO_MAKEFLAGS, MAKEFLAGS and MFLAGS stay: they name the outer build's
    // jobserver, so the nested cargo takes its job slots from the same pool
    // and the two builds together run no more jobs than the outer -j.
    for var in OUTER_BUILD_VARS.iter().chain(BUILD_SCRIPT_VARS) {
        command.env_remove(var);
    }
    for (name, _) in env::vars_os() {
        let is_build_script_var = name.to_str().is_some_and(|name| {
            BUILD_SCRIPT_VAR_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        });
        if is_build_script_var {
            command.env_remove(&name);
        }
    }

    // The output is captured, not inherited: cargo reads this script's
    // stdout for directives, and the nested build's output is shown only
    // when it fails.
    command.output().unwrap_or_else(|error| {
        eprintln!(
            "error: failed to run {} to build the guest components: {error}",
            Path::new(&cargo).display()
        );
        process::exit(1);
    })
}

fn report_failure(workflows: &Path, target_dir: &Path, output: &Output) -> ! {
    for stream in [&output.stdout, &output.stderr] {
        if !stream.is_empty() {
            eprintln!("{}", String::from_utf8_lossy(stream));
        }
    }
    eprintln!(
        "error: building the guest components in {} failed ({}).\n\
         To build them by hand, run:\n\
         \n    cargo build --release --target {GUEST_TARGET} --manifest-path {} --target-dir {}\n\
         \n\
         The {GUEST_TARGET} target must be installed: `rustup target add {GUEST_TARGET}`.",
        workflows.display(),
        output.status,
        workflows.join("Cargo.toml").display(),
        target_dir.display(),
    );
    process::exit(1);
}
