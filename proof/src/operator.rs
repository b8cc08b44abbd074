//! The operator commands of `ops/` run as an operator runs them: POSIX `sh`,
//! the AWS CLI (installed into `.venv` from requirements-dev.txt), curl and
//! python3, against moto and the local Salesforce on loopback.
//!
//! Every process started here gets loopback endpoints, dummy credentials, a
//! private HOME and a proxy on a closed loopback port, so that nothing can
//! reach beyond 127.0.0.1 even by mistake.

use std::path::{Path, PathBuf};

use crate::root;

/// The AWS CLI of the project's virtualenv, else the one on PATH.
pub fn aws_cli() -> String {
    let venv = root().join(".venv/bin/aws");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "aws".to_owned()
    }
}

/// A private folder for one run (HOME, TMPDIR, templates), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ops-commands-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `program` with only loopback in reach: AWS at `endpoint`, HOME at `home`.
pub fn command(program: &str, endpoint: &str, home: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    let path = format!(
        "{}:{}",
        root().join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env_clear()
        .current_dir(root())
        .env("PATH", path)
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("no-aws-credentials"),
        )
        .env("AWS_CLI", aws_cli());
    for (k, v) in crate::aws_env(endpoint) {
        c.env(k, v);
    }
    for proxy in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        c.env(proxy, "http://127.0.0.1:9");
    }
    for no_proxy in ["NO_PROXY", "no_proxy"] {
        c.env(no_proxy, "127.0.0.1,localhost");
    }
    c
}

/// `sh ops/<script> args…` against AWS at `endpoint`, with `env` added.
pub async fn ops(
    endpoint: &str,
    home: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut c = command("sh", endpoint, home);
    c.arg(format!("ops/{script}")).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c).await
}

/// What a command printed (stdout, then stderr) and how it ended.
pub struct Run {
    pub ok: bool,
    pub out: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ok={}\n{}", self.ok, self.out)
    }
}

/// Checks of a [`Run`], chained: each panics with the whole run if it fails.
impl Run {
    #[track_caller]
    pub fn succeeds(&self) -> &Self {
        assert!(self.ok, "{self:?}");
        self
    }

    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert!(!self.ok, "{self:?}");
        self
    }

    /// Every one of `expected` is in the output.
    #[track_caller]
    pub fn says(&self, expected: &[&str]) -> &Self {
        for e in expected {
            assert!(self.out.contains(e), "{e} in {self:?}");
        }
        self
    }

    /// The output read as JSON (a command run with `--output json`).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// None of `unexpected` is in the output.
    #[track_caller]
    pub fn never_says(&self, unexpected: &[&str]) -> &Self {
        for u in unexpected {
            assert!(!self.out.contains(u), "{u} printed: {self:?}");
        }
        self
    }
}

pub async fn run(mut c: tokio::process::Command) -> Run {
    let out = c.output().await.expect("the command starts");
    Run {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
