//! What an optimisation level changes, measured at several: the full run
//! takes its own figures, and runs itself built at the other levels, in its
//! speed mode ([`SPEED`]), for theirs.

use anyhow::Context;
use proof::root;

use crate::cold_start::{cold_starts, ColdStart, COLD_RUNS};
use crate::latency::{webhook_own_work, Spread};
use crate::progress;
use crate::sizes::{size_of, Sizes};
use crate::throughput::{worker_rate, FAST_BATCHES};

/// The argument of the speed mode: only what an optimisation level changes,
/// as one JSON object on stdout.
pub const SPEED: &str = "--speed";

/// Everything an optimisation level changes, measured by one build.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Speed {
    /// Webhook handler's own work (token, validation, size), µs.
    pub own_us: Spread,
    /// Worker conversations/s with no added latency.
    pub worker_rate: f64,
    pub cold: ColdStart,
}

pub async fn speed() -> anyhow::Result<Speed> {
    progress(&format!(
        "worker throughput with no added latency ({FAST_BATCHES} batches of 10)"
    ));
    let worker_rate = worker_rate(0, FAST_BATCHES).await?;
    progress(&format!("throughput at 0 ms: {worker_rate:.0}/s"));
    let own_us = webhook_own_work().await?;
    let cold = cold_starts(COLD_RUNS).await?;
    Ok(Speed {
        own_us,
        worker_rate,
        cold,
    })
}

/// `opt-level` of `[profile.release]` in the workspace's Cargo.toml, as cargo
/// takes it (`CARGO_PROFILE_RELEASE_OPT_LEVEL` wins).
pub fn configured_opt_level() -> String {
    if let Ok(level) = std::env::var("CARGO_PROFILE_RELEASE_OPT_LEVEL") {
        return level;
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    let mut in_release = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_release = line == "[profile.release]";
        } else if in_release {
            if let Some(value) = line.strip_prefix("opt-level") {
                let value = value.trim_start().trim_start_matches('=');
                let value = value.split('#').next().unwrap_or("").trim();
                return value.trim_matches('"').to_owned();
            }
        }
    }
    "3".to_owned()
}

/// One optimisation level's build and figures.
pub struct Level {
    pub level: String,
    /// arm64 binaries, bytes; `None` where not built.
    pub webhook: Option<u64>,
    pub worker: Option<u64>,
    pub speed: Speed,
}

/// Every level in `BENCH_OPT_LEVELS`: the `configured` one from this run's
/// `speed` and `sizes`, the others built and run in their own folders.
pub fn compare(configured: &str, speed: &Speed, sizes: &Sizes) -> anyhow::Result<Vec<Level>> {
    levels_to_compare()
        .into_iter()
        .map(|level| {
            if level == configured {
                Ok(Level {
                    level,
                    webhook: sizes.webhook.arm64,
                    worker: sizes.worker.arm64,
                    speed: speed.clone(),
                })
            } else {
                other_level(&level)
            }
        })
        .collect()
}

/// Builds the release binaries (x86_64, and arm64 with cargo lambda) at
/// `level` in their own folder under the target folder, runs the bench built
/// there in its speed mode, and collects the figures.
fn other_level(level: &str) -> anyhow::Result<Level> {
    let dir = proof::target_dir().join(format!("opt-level-{level}"));
    progress(&format!(
        "opt-level {level}: release build in {} (minutes the first time, then incremental)",
        dir.display()
    ));
    let cargo = |args: &[&str]| -> anyhow::Result<bool> {
        Ok(std::process::Command::new("cargo")
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &dir)
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", level)
            .args(args)
            .status()?
            .success())
    };
    anyhow::ensure!(
        cargo(&[
            "build",
            "--release",
            "--quiet",
            "--workspace",
            "--bin",
            "webhook",
            "--bin",
            "worker",
            "--bin",
            "echo",
            "--bin",
            "bench",
        ])?,
        "release build at opt-level {level} failed"
    );
    progress(&format!("opt-level {level}: arm64 build with cargo lambda"));
    let arm = cargo(&[
        "lambda",
        "build",
        "--release",
        "--arm64",
        "--quiet",
        "--bin",
        "webhook",
        "--bin",
        "worker",
    ])
    .unwrap_or(false);
    if !arm {
        progress(&format!(
            "opt-level {level}: no arm64 build (cargo lambda missing or failed; make bench puts it on PATH)"
        ));
    }
    let arm_size = |name: &str| {
        arm.then(|| size_of(&dir.join("lambda").join(name).join("bootstrap")))
            .flatten()
    };
    progress(&format!("opt-level {level}: speed and cold start"));
    let out = std::process::Command::new(dir.join("release/bench"))
        .arg(SPEED)
        .env("CARGO_TARGET_DIR", &dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the bench at opt-level {level} failed"
    );
    let speed: Speed = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the bench at opt-level {level} printed no figures"))?;
    Ok(Level {
        level: level.to_owned(),
        webhook: arm_size("webhook"),
        worker: arm_size("worker"),
        speed,
    })
}

/// Levels compared: `BENCH_OPT_LEVELS` (default `3 s z`; empty for none).
fn levels_to_compare() -> Vec<String> {
    std::env::var("BENCH_OPT_LEVELS")
        .unwrap_or_else(|_| "3 s z".to_owned())
        .split([' ', ','])
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_matches('"').to_owned())
        .collect()
}
