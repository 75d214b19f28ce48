//! What the tests of every crate share about their local peers: the Python that
//! `scripts/test` installs (moto, boto3, cargo-lambda, Twilio's library), and the
//! AWS base that `scripts/bootstrap-local` makes on the moto server — the one
//! definition of that base, used by the README's run command and by every test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;

/// The Python of the virtualenv `scripts/test` sets up: `TEMPOVOICE_PYTHON`, or
/// `~/.cache/tempovoice/venv/bin/python`.
pub fn python() -> PathBuf {
    match std::env::var_os("TEMPOVOICE_PYTHON") {
        Some(p) => p.into(),
        None => venv_bin("python"),
    }
}

/// `cargo-lambda` from the same virtualenv: `TEMPOVOICE_CARGO_LAMBDA`, or the venv's.
pub fn cargo_lambda() -> PathBuf {
    match std::env::var_os("TEMPOVOICE_CARGO_LAMBDA") {
        Some(p) => p.into(),
        None => venv_bin("cargo-lambda"),
    }
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("test-support is a workspace member").to_owned()
}

/// The workspace binary `name` beside the running test's executable (`target/debug`,
/// as `cargo build --workspace` leaves it), built first if it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug/deps"); // → target/debug
    let binary = dir.join(name);
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --bin {name}");
    }
    binary
}

fn venv_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/tempovoice/venv/bin").join(name)
}

/// `len` random lowercase letters and digits (unique names in the shared moto).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

/// The moto server the tests share (`scripts/test` starts one on 127.0.0.1).
pub fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL must name a moto server on 127.0.0.1 (scripts/test starts one): \
         moto_server -H 127.0.0.1 -p 5000 and AWS_ENDPOINT_URL=http://127.0.0.1:5000",
    )
}

/// How to make a fresh base: its shape, never its names (each gets a unique prefix).
#[derive(Debug, Clone)]
pub struct BaseOptions {
    /// Load balancers, each with one listener agents are placed on.
    pub listeners: usize,
    /// Agents per listener.
    pub capacity: u32,
    /// The runtime image tag pushed to the base's ECR repository.
    pub image_tag: String,
}

impl Default for BaseOptions {
    fn default() -> Self {
        BaseOptions { listeners: 1, capacity: 95, image_tag: "local".into() }
    }
}

/// A fresh shared AWS base on the moto server, made by `scripts/bootstrap-local` under
/// a unique prefix starting with `prefix_head`: the settings it writes (the deployer's
/// `TEMPOVOICE_*` variables and `AWS_*`), as a map.
pub fn aws_base(prefix_head: char, options: &BaseOptions) -> HashMap<String, String> {
    aws_endpoint();
    let dir = tempfile::tempdir().expect("temporary directory");
    let env_file = dir.path().join("aws.env");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bootstrap-local");
    let prefix = format!("{prefix_head}{}", random_token(8));
    let out = Command::new(python())
        .arg(script)
        .args(["--env-file", env_file.to_str().expect("UTF-8 temporary path"), "--prefix", &prefix])
        .args(["--listeners", &options.listeners.to_string(), "--capacity", &options.capacity.to_string()])
        .args(["--image-tag", &options.image_tag])
        .output()
        .expect("run scripts/bootstrap-local with the venv's Python (scripts/test installs it)");
    assert!(out.status.success(), "bootstrap-local failed: {}", String::from_utf8_lossy(&out.stderr));
    parse_env_file(&std::fs::read_to_string(&env_file).expect("bootstrap-local's env file"))
}

/// `settings` with every listener in `TEMPOVOICE_LISTENERS` answering on `host`
/// (bootstrap-local gives each its ALB's DNS name).
pub fn with_public_host(settings: &mut HashMap<String, String>, host: &str) {
    if let Some(listeners) = settings.get("TEMPOVOICE_LISTENERS") {
        let rewritten: Vec<String> = listeners
            .split(',')
            .map(|entry| format!("{}@{host}", entry.rsplit_once('@').map_or(entry, |(rest, _)| rest)))
            .collect();
        settings.insert("TEMPOVOICE_LISTENERS".into(), rewritten.join(","));
    }
}

/// `KEY=value` lines, skipping comments and blank lines.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Pushes a minimal image manifest under `tag`; its digest differs from every other
/// tag's (moto derives it from the layer digests, made here from the tag). Returns
/// the digest.
pub async fn push_image(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) -> String {
    let layer_digest: String = tag.bytes().cycle().take(32).map(|b| format!("{b:02x}")).collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": format!("sha256:{}", "a".repeat(64))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                    "digest": format!("sha256:{layer_digest}")}]
    });
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .unwrap()
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("ECR names the digest")
        .to_owned()
}
