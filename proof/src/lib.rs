//! Shared parts of the benchmark and the soak: a moto server, the Lambda
//! Runtime API (so the real release binaries run as they do in Lambda), and
//! the SQS poller Lambda's event source would be.
//!
//! # Layout
//!
//! - [`Moto`]: a moto server on a free loopback port, with the template's queues.
//! - [`RuntimeApi`]: the Lambda Runtime API over HTTP; invocations and their answers.
//! - [`Function`]: a function binary started against a [`RuntimeApi`], killable.
//! - [`Relay`]: a TCP relay in front of an endpoint that notes when requests
//!   arrive and answers leave, so a process's calls can be timed from outside.
//! - [`target_dir`], [`release_binary`], [`lambda_binary`]: where cargo and
//!   cargo-lambda put the binaries (`CARGO_TARGET_DIR` honoured).
//! - [`report`]: the long soak's section of `docs/benchmarks.md`, which the
//!   bench carries over.
//! - [`operator`]: the operator commands of `ops/` run on loopback, as the
//!   tests run them.

pub mod operator;
pub mod pipeline;
pub mod report;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, Mutex};

/// The AWS variables every process started here gets: loopback only.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_DEFAULT_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
    ]
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The project's top folder (where `target/` and `events/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A moto server on loopback, killed when dropped; or an account of its own
/// on the test binary's one shared server ([`Moto::isolated`]).
pub struct Moto {
    pub endpoint: String,
    pub sdk: aws_config::SdkConfig,
    /// The credentials of this account, for a process started against it
    /// (empty on a server of its own: the default dummy credentials).
    account: Vec<(&'static str, String)>,
    /// The 12-digit account the resources are made in.
    account_id: String,
    _child: Option<Child>,
}

/// The moto server every [`Moto::isolated`] of this process shares.
static SHARED: std::sync::OnceLock<anyhow::Result<String, String>> = std::sync::OnceLock::new();
/// The next account id handed out on the shared server.
static NEXT_ACCOUNT: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(100_000_000_000);

fn moto_binary() -> String {
    std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
        let venv = root().join(".venv/bin/moto_server");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "moto_server".to_owned()
        }
    })
}

/// Waits until moto answers on `endpoint`.
async fn ready(endpoint: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("moto did not start on {endpoint}; is the port free?")
}

impl Moto {
    /// Starts moto on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(free_port()).await
    }

    /// Starts moto on `port` (the local run's fixed address).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        let binary = moto_binary();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary} (make test installs it into .venv)"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        ready(&endpoint).await?;
        let sdk = witiop_salesforce::aws::local_sdk_config(&endpoint).await;
        Ok(Self {
            endpoint,
            sdk,
            account: Vec::new(),
            // moto's default account.
            account_id: "123456789012".to_owned(),
            _child: Some(child),
        })
    }

    /// A fresh AWS account on this process's one moto server, started on
    /// first use: queues and secrets of one test never meet another's, and a
    /// test binary pays moto's start once instead of once per test.
    ///
    /// moto keeps each account's resources apart and gives the credentials
    /// of an `AssumeRole` the role's account (moto's "Multi-Account support").
    pub async fn isolated() -> anyhow::Result<Self> {
        let endpoint = SHARED
            .get_or_init(|| spawn_shared().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(anyhow::Error::msg)?;
        ready(&endpoint).await?;
        let account_number = NEXT_ACCOUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = reqwest::Client::new()
            .post(format!("{endpoint}/"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/sts/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .form(&[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                (
                    "RoleArn",
                    &format!("arn:aws:iam::{account_number}:role/test"),
                ),
                ("RoleSessionName", "test"),
            ])
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let field = |name: &str| -> anyhow::Result<String> {
            let open = format!("<{name}>");
            let start = answer.find(&open).context("AssumeRole answer")? + open.len();
            let end = answer[start..].find('<').context("AssumeRole answer")? + start;
            Ok(answer[start..end].to_owned())
        };
        let account = vec![
            ("AWS_ACCESS_KEY_ID", field("AccessKeyId")?),
            ("AWS_SECRET_ACCESS_KEY", field("SecretAccessKey")?),
            ("AWS_SESSION_TOKEN", field("SessionToken")?),
        ];
        let credentials = aws_sdk_sqs::config::Credentials::new(
            account[0].1.clone(),
            account[1].1.clone(),
            Some(account[2].1.clone()),
            None,
            "moto-account",
        );
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        Ok(Self {
            endpoint,
            sdk,
            account,
            account_id: account_number.to_string(),
            _child: None,
        })
    }

    /// Environment variables that put a process in this account.
    pub fn account_env(&self) -> &[(&'static str, String)] {
        &self.account
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk)
    }

    /// Queue and DLQ (1 MiB messages, 14-day retention, redrive after
    /// `max_receive`), standard queues, with a chosen visibility timeout.
    pub async fn queues(
        &self,
        name: &str,
        visibility: u32,
        max_receive: u32,
    ) -> anyhow::Result<(String, String)> {
        self.queue_pair(name, visibility, max_receive, false).await
    }

    /// The same, FIFO when `fifo` as the template makes them: `<name>.fifo`
    /// and `<name>-dlq.fifo`, deduplication and throughput per message group.
    pub async fn queue_pair(
        &self,
        name: &str,
        visibility: u32,
        max_receive: u32,
        fifo: bool,
    ) -> anyhow::Result<(String, String)> {
        let sqs = self.sqs();
        let suffix = if fifo { ".fifo" } else { "" };
        let create = |name: String| {
            let mut request = sqs
                .create_queue()
                .queue_name(name)
                .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
                .attributes(QueueAttributeName::MaximumMessageSize, "1048576");
            if fifo {
                request = request
                    .attributes(QueueAttributeName::FifoQueue, "true")
                    .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
                    .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId");
            }
            request
        };
        let dlq = create(format!("{name}-dlq{suffix}"))
            .send()
            .await?
            .queue_url
            .context("dlq")?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .context("arn")?;
        let queue = create(format!("{name}{suffix}"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .attributes(
                QueueAttributeName::RedrivePolicy,
                format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":{max_receive}}}"#),
            )
            .send()
            .await?
            .queue_url
            .context("queue")?;
        Ok((queue, dlq))
    }

    pub async fn secret(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.secrets()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await?;
        Ok(())
    }

    /// A new `AWSCURRENT` value; the old one becomes `AWSPREVIOUS`.
    pub async fn put_secret(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.secrets()
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await?;
        Ok(())
    }

    /// Receives up to 10 messages with all their attributes, without waiting.
    pub async fn receive(&self, queue: &str) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
        Ok(self
            .sqs()
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await?
            .messages
            .unwrap_or_default())
    }

    /// Visible plus in-flight messages.
    pub async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        let attrs = self
            .sqs()
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?
            .attributes
            .unwrap_or_default();
        let n = |k: QueueAttributeName| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }
}

/// Starts the shared moto server from a thread that lives as long as the
/// process, asking the kernel to kill moto when that thread (so the process)
/// ends: no test binary leaves a server behind, even when it panics.
fn spawn_shared() -> anyhow::Result<String> {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let binary = moto_binary();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = std::process::Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match command.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(anyhow::anyhow!(
                    "starting {binary} (make test installs it into .venv): {e}"
                )));
            }
        }
    });
    rx.recv().context("the moto thread")??;
    Ok(format!("http://127.0.0.1:{port}"))
}

type Answer = Result<Value, String>;

struct Invocation {
    id: String,
    payload: Value,
    deadline_ms: u64,
}

#[derive(Default)]
struct Pending {
    answers: HashMap<String, oneshot::Sender<Answer>>,
}

#[derive(Clone)]
struct ApiState {
    next: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    pending: Arc<std::sync::Mutex<Pending>>,
    first_poll: Arc<std::sync::Mutex<Option<Instant>>>,
}

/// The Lambda Runtime API: `/runtime/invocation/next`, `…/response`, `…/error`.
pub struct RuntimeApi {
    pub address: String,
    sender: mpsc::Sender<Invocation>,
    state: ApiState,
    counter: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel(16);
        let state = ApiState {
            next: Arc::new(Mutex::new(receiver)),
            pending: Arc::new(std::sync::Mutex::new(Pending::default())),
            first_poll: Arc::new(std::sync::Mutex::new(None)),
        };
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            address,
            sender,
            state,
            counter: Default::default(),
        })
    }

    /// Invokes the function and waits for its answer (or `timeout`).
    pub async fn invoke(&self, payload: Value, timeout: Duration) -> Answer {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("req-{n}");
        let (tx, rx) = oneshot::channel();
        self.state
            .pending
            .lock()
            .expect("pending")
            .answers
            .insert(id.clone(), tx);
        let deadline_ms = chrono::Utc::now().timestamp_millis() as u64 + timeout.as_millis() as u64;
        self.sender
            .send(Invocation {
                id: id.clone(),
                payload,
                deadline_ms,
            })
            .await
            .map_err(|_| "runtime API closed".to_owned())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the function died".into()),
            Err(_) => {
                self.state
                    .pending
                    .lock()
                    .expect("pending")
                    .answers
                    .remove(&id);
                Err("timed out".into())
            }
        }
    }

    /// Fails every invocation in flight, as Lambda does when a sandbox dies.
    pub fn abandon_in_flight(&self) {
        self.state.pending.lock().expect("pending").answers.clear();
    }

    /// When a process first asked for work (its init was done).
    pub fn take_first_poll(&self) -> Option<Instant> {
        self.state.first_poll.lock().expect("first poll").take()
    }

    /// Waits (up to `timeout`) until a process first asks for work and
    /// returns when it did; the instant is taken as the request arrives.
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = *self.state.first_poll.lock().expect("first poll") {
                return Some(t);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

async fn next(State(s): State<ApiState>) -> Response {
    {
        let mut first = s.first_poll.lock().expect("first poll");
        if first.is_none() {
            *first = Some(Instant::now());
        }
    }
    let invocation = s.next.lock().await.recv().await;
    let Some(inv) = invocation else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let h = |v: &str| HeaderValue::from_str(v).expect("ascii header");
    headers.insert("lambda-runtime-aws-request-id", h(&inv.id));
    headers.insert(
        "lambda-runtime-deadline-ms",
        h(&inv.deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        h("arn:aws:lambda:eu-west-1:123456789012:function:proof"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        h("Root=1-00000000-000000000000000000000000;Sampled=0"),
    );
    headers.insert("content-type", h("application/json"));
    (StatusCode::OK, headers, inv.payload.to_string()).into_response()
}

async fn respond(
    State(s): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    if let Some(tx) = s.pending.lock().expect("pending").answers.remove(&id) {
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let _ = tx.send(Ok(value));
    }
    StatusCode::ACCEPTED
}

async fn fail(State(s): State<ApiState>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    if let Some(tx) = s.pending.lock().expect("pending").answers.remove(&id) {
        let _ = tx.send(Err(String::from_utf8_lossy(&body).into_owned()));
    }
    StatusCode::ACCEPTED
}

async fn init_error(body: Bytes) -> StatusCode {
    eprintln!("function init error: {}", String::from_utf8_lossy(&body));
    StatusCode::ACCEPTED
}

/// Where a started function's stdout and stderr go.
enum Output<'a> {
    Discard,
    File(&'a Path),
    Capture,
}

async fn forward_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    lines: mpsc::UnboundedSender<(Instant, String)>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(stream).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send((Instant::now(), line)).is_err() {
            break;
        }
    }
}

/// A function process bound to a runtime API.
pub struct Function {
    pub child: Child,
    pub started: Instant,
}

impl Function {
    pub fn start(
        binary: &Path,
        api: &RuntimeApi,
        env: &[(&str, String)],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let output = match log {
            Some(path) => Output::File(path),
            None => Output::Discard,
        };
        Self::spawn(binary, &api.address, env, output).map(|(f, _)| f)
    }

    fn spawn(
        binary: &Path,
        runtime_api: &str,
        env: &[(&str, String)],
        output: Output<'_>,
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<(Instant, String)>)> {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "proof")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "proof")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "proof")
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match output {
            Output::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
            Output::Discard => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Output::Capture => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (lines, receiver) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, lines.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, lines));
        }
        Ok((Self { child, started }, receiver))
    }

    /// Starts the function with its stdout and stderr read line by line, each
    /// line with the instant it arrived (to show what a failing run wrote, or
    /// to time what it logs).
    pub fn start_capturing(
        binary: &Path,
        api: &RuntimeApi,
        env: &[(&str, String)],
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<(Instant, String)>)> {
        Self::spawn(binary, &api.address, env, Output::Capture)
    }

    /// Starts `binary` with `env` and no Runtime API, and waits for it to exit:
    /// the time from spawn to exit, its status and what it wrote to stderr.
    pub async fn run_to_exit(
        binary: &Path,
        env: &[(&str, String)],
        timeout: Duration,
    ) -> anyhow::Result<(Duration, std::process::ExitStatus, String)> {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .with_context(|| format!("{} did not exit", binary.display()))??;
        let elapsed = started.elapsed();
        Ok((
            elapsed,
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Peak resident memory so far, from the kernel (kB).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// An SQS event as Lambda's event source delivers it.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Builds the release binaries the measurements run (into [`target_dir`]).
pub fn build_release(bins: &[&str]) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new("cargo");
    cmd.current_dir(root())
        .args(["build", "--release", "--quiet", "--workspace"]);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let status = cmd.status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    Ok(())
}

/// Cargo's output folder: `CARGO_TARGET_DIR` when set (a relative one is taken
/// from the project's top folder, where the Makefile runs cargo), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

pub fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

pub fn debug_binary(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// The arm64 Lambda binary cargo-lambda builds (`make build`).
pub fn lambda_binary(name: &str) -> PathBuf {
    target_dir().join("lambda").join(name).join("bootstrap")
}

/// What a [`Relay`] saw: when the first request byte arrived from the client,
/// and when each chunk of an answer left for it.
#[derive(Debug, Default, Clone)]
pub struct RelayLog {
    pub first_request: Option<Instant>,
    pub answers: Vec<Instant>,
    pub connections: usize,
}

impl RelayLog {
    /// The last answer chunk sent before `until`.
    pub fn last_answer_before(&self, until: Instant) -> Option<Instant> {
        self.answers.iter().copied().filter(|t| *t <= until).max()
    }
}

/// A TCP relay on a free loopback port in front of `upstream` (`host:port`):
/// the process under test gets the relay's address as its endpoint, and the
/// relay notes when its requests arrive and its answers leave.
pub struct Relay {
    pub endpoint: String,
    log: Arc<std::sync::Mutex<RelayLog>>,
}

impl Relay {
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(std::sync::Mutex::new(RelayLog::default()));
        let upstream = upstream.to_owned();
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                shared.lock().expect("relay log").connections += 1;
                let upstream = upstream.clone();
                let log = shared.clone();
                tokio::spawn(async move {
                    let _ = relay_connection(client, &upstream, log).await;
                });
            }
        });
        Ok(Self { endpoint, log })
    }

    /// What was seen since the last call, and a clean slate.
    pub fn take(&self) -> RelayLog {
        std::mem::take(&mut *self.log.lock().expect("relay log"))
    }
}

async fn relay_connection(
    mut client: tokio::net::TcpStream,
    upstream: &str,
    log: Arc<std::sync::Mutex<RelayLog>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    client.set_nodelay(true)?;
    let note_request = |log: &std::sync::Mutex<RelayLog>| {
        let mut log = log.lock().expect("relay log");
        if log.first_request.is_none() {
            log.first_request = Some(Instant::now());
        }
    };
    // Read the client's first bytes while connecting upstream, so that the
    // relay's own connect is not counted before the request.
    let mut first = vec![0u8; 64 * 1024];
    let (server, n) = tokio::join!(tokio::net::TcpStream::connect(upstream), async {
        let n = client.read(&mut first).await;
        if matches!(n, Ok(n) if n > 0) {
            note_request(&log);
        }
        n
    });
    let (server, n) = (server?, n?);
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = {
        let log = log.clone();
        async move {
            if n == 0 {
                return server_write.shutdown().await;
            }
            server_write.write_all(&first[..n]).await?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    return server_write.shutdown().await;
                }
                note_request(&log);
                server_write.write_all(&buf[..n]).await?;
            }
        }
    };
    let answers = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                return client_write.shutdown().await;
            }
            client_write.write_all(&buf[..n]).await?;
            log.lock().expect("relay log").answers.push(Instant::now());
        }
    };
    let _ = tokio::try_join!(requests, answers);
    Ok(())
}
