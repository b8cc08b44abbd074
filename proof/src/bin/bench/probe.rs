//! The SDK's set-up timed in a fresh process: the bench runs itself with
//! [`PROBE`] and a mode, with the webhook's environment, and reads the
//! milliseconds it prints.

use std::time::Instant;

use anyhow::Context;

use crate::stats::ms;

/// The argument that makes the bench a probe; the mode follows it.
pub const PROBE: &str = "--probe-sdk";
/// As the webhook starts in Lambda: `load_sdk_config()`, then its first
/// client, when the SDK builds its HTTPS connector (root certificates,
/// rustls configuration); prints the client's time, then the configuration's.
pub const PROBE_SPLIT: &str = "split";
/// A client with the SDK's default trust, the platform's certificate store.
pub const PROBE_PLATFORM: &str = "platform";

/// Runs the bench itself as a probe in `mode` with `env` only; its figures, ms.
pub async fn probe(mode: &str, env: &[(&str, String)]) -> anyhow::Result<Vec<f64>> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args([PROBE, mode])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // As Lambda sets it, and the webhook's SDK configuration reads it.
        .env("AWS_LAMBDA_FUNCTION_NAME", "proof")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "SDK probe {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .split_whitespace()
        .map(|v| v.parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("SDK probe {mode} printed {stdout:?}"))
}

/// The probe's side: times the set-up of `mode` and prints the figures.
pub async fn run_probe(mode: Option<&str>) -> anyhow::Result<()> {
    witiop_salesforce::telemetry::init();
    let figures = match mode {
        Some(PROBE_SPLIT) => {
            let t = Instant::now();
            let sdk = witiop_salesforce::aws::load_sdk_config().await;
            let config = t.elapsed();
            let t = Instant::now();
            let store = witiop_salesforce::aws::SecretStore::new(&sdk);
            let client = t.elapsed();
            std::hint::black_box((&sdk, &store));
            vec![client, config]
        }
        Some(PROBE_PLATFORM) => {
            let t = Instant::now();
            let config = aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
                .build();
            let client = aws_sdk_secretsmanager::Client::from_conf(config);
            let elapsed = t.elapsed();
            std::hint::black_box(&client);
            vec![elapsed]
        }
        other => anyhow::bail!("{PROBE} needs {PROBE_SPLIT} or {PROBE_PLATFORM}, not {other:?}"),
    };
    let figures: Vec<String> = figures.iter().map(|d| format!("{:.4}", ms(*d))).collect();
    println!("{}", figures.join(" "));
    Ok(())
}
