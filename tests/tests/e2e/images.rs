//! The images hold exactly what their binaries need, checked without a Docker engine:
//! the shared libraries each binary links (its ELF `NEEDED` entries, resolved by `ldd`
//! on this Debian bookworm machine, the images' own distribution) are mapped to their
//! Debian packages with `dpkg -S`, and compared with the packages the Dockerfile's
//! final stage installs on top of `debian:bookworm-slim`.
//!
//! Every library package the binary needs must be installed (or be in the base
//! image), and every package the final stage installs must be a library the binary
//! needs or one of the few non-library packages named below with their reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Library packages `debian:bookworm-slim` already has (the C and C++ runtimes, which
/// dpkg and apt themselves link).
const BASE_LIBRARIES: &[&str] = &["libc6", "libgcc-s1", "libstdc++6", "zlib1g"];

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The sonames the binary itself asks for (not their own dependencies, which apt
/// brings with the package that needs them).
fn needed(binary: &Path) -> Vec<String> {
    let dynamic = run("readelf", &["-d", binary.to_str().unwrap()]);
    dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// soname → the path `ldd` resolves it to.
fn resolved(binary: &Path) -> BTreeMap<String, String> {
    run("ldd", &[binary.to_str().unwrap()])
        .lines()
        .filter_map(|l| match l.trim().split_once(" => ") {
            Some((name, rest)) => Some((name.to_owned(), rest.split_whitespace().next()?.to_owned())),
            // The dynamic loader, named by its path: `/lib64/ld-linux-x86-64.so.2 (0x…)`.
            None => {
                let path = l.split_whitespace().next().filter(|p| p.starts_with('/'))?;
                Some((path.rsplit('/').next()?.to_owned(), path.to_owned()))
            }
        })
        .collect()
}

/// The Debian package that owns `path` (`libfoo1`, without its architecture).
fn package_of(path: &str) -> String {
    // /lib is a symlink to /usr/lib on bookworm; dpkg knows files by either name.
    let owner = Command::new("dpkg").args(["-S", path]).output().unwrap();
    let owner = if owner.status.success() {
        owner
    } else {
        let other = path.strip_prefix("/usr").map(str::to_owned).unwrap_or_else(|| format!("/usr{path}"));
        Command::new("dpkg").args(["-S", &other]).output().unwrap()
    };
    assert!(owner.status.success(), "no Debian package owns {path}");
    let line = String::from_utf8(owner.stdout).unwrap();
    line.split(':').next().unwrap().trim().to_owned()
}

fn dockerfile(name: &str) -> String {
    std::fs::read_to_string(test_support::workspace_root().join("docker").join(name)).unwrap()
}

/// The packages a Dockerfile's final stage installs with apt-get.
fn final_stage_packages(text: &str) -> BTreeSet<String> {
    let last_from = text.rfind("\nFROM ").expect("a final stage");
    let stage = text[last_from..].replace("\\\n", " ");
    let mut packages = BTreeSet::new();
    for line in stage.lines().filter(|l| l.contains("apt-get install")) {
        let after = line.split("apt-get install").nth(1).unwrap();
        for word in after.split_whitespace().take_while(|w| *w != "&&") {
            if !word.starts_with('-') {
                packages.insert(word.to_owned());
            }
        }
    }
    packages
}

/// Checks one image (its Dockerfile's text) against its binary: the problems found.
fn image_problems(binary: &Path, dockerfile: &str, non_libraries: &[(&str, &str)]) -> Vec<String> {
    let installed = final_stage_packages(dockerfile);
    let paths = resolved(binary);
    let mut problems = Vec::new();
    let mut needed_packages = BTreeSet::new();
    for soname in needed(binary) {
        let Some(path) = paths.get(&soname) else {
            problems.push(format!("{soname} does not resolve on this machine"));
            continue;
        };
        let package = package_of(path);
        if !installed.contains(&package) && !BASE_LIBRARIES.contains(&package.as_str()) {
            problems.push(format!("{soname} ({package}) is needed but the final stage does not install {package}"));
        }
        needed_packages.insert(package);
    }
    for package in &installed {
        let justified = non_libraries.iter().any(|(p, _)| p == package);
        if !needed_packages.contains(package) && !justified {
            problems.push(format!("the final stage installs {package}, which the binary does not link"));
        }
    }
    problems
}

#[test]
fn the_runtime_image_holds_exactly_the_libraries_its_binary_links() {
    let binary = test_support::workspace_binary("agent-runtime");
    let non_libraries = [
        ("ca-certificates", "TLS to Twilio, S3 and the speech providers"),
        ("tini", "PID 1: passes ECS's SIGTERM on, so calls drain"),
        ("espeak-ng", "the local pipeline's speech synthesis runs the espeak-ng program"),
        ("pocketsphinx-en-us", "the local pipeline's US English acoustic model"),
    ];
    let problems = image_problems(&binary, &dockerfile("agent-runtime.Dockerfile"), &non_libraries);
    assert_eq!(problems, Vec::<String>::new());
    // It does link PocketSphinx, so the check above looked at real libraries.
    let packages: BTreeSet<String> =
        resolved(&binary).values().filter(|p| p.contains("sphinx")).map(|p| package_of(p)).collect();
    assert!(packages.contains("libpocketsphinx3") && packages.contains("libsphinxbase3"), "{packages:?}");
}

#[test]
fn the_control_plane_image_holds_exactly_the_libraries_its_binary_links() {
    let binary = test_support::workspace_binary("control-plane");
    let non_libraries = [
        ("ca-certificates", "TLS to AWS and PostgreSQL"),
        ("tini", "PID 1: passes ECS's SIGTERM on, so requests drain"),
    ];
    assert_eq!(image_problems(&binary, &dockerfile("control-plane.Dockerfile"), &non_libraries), Vec::<String>::new());
}

/// The check fails when the final stage lacks a library the binary links, or
/// installs one it does not.
#[test]
fn the_image_check_catches_a_missing_and_an_extra_library() {
    let binary = test_support::workspace_binary("agent-runtime");
    let planted = dockerfile("agent-runtime.Dockerfile").replace(" libsphinxbase3", " libsqlite3-0");
    let problems = image_problems(&binary, &planted, &[]);
    assert!(problems.iter().any(|p| p.contains("(libsphinxbase3) is needed")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("installs libsqlite3-0, which the binary does not link")),
        "{problems:?}"
    );
}
