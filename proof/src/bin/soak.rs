//! `make soak`: events flow through the real webhook handler, moto's SQS FIFO
//! queue, and two instances of the real worker binary driven like Lambda's
//! SQS poller, against the local Salesforce injecting faults; one worker
//! process is killed mid-batch several times. A bad week, time compressed
//! (backoff from 1 s to 8 s instead of 1 minute to 12 hours):
//!
//! - a Salesforce outage longer than `maxReceiveCount` × the visibility
//!   timeout the queue had before the worker backed records off itself;
//! - the org's API allowance spent for a while, then back;
//! - the integration password changed in Salesforce, then fixed in the secret;
//! - Salesforce hanging: connections accepted, logins included, and never
//!   answered, longer than an invocation, so that only the worker's own
//!   timeouts and backoff keep records out of the DLQ;
//! - duplicate deliveries, and conversations of one new customer arriving
//!   back to back while two workers poll.
//!
//! At the end: one Case per distinct conversation, one Contact per customer,
//! every comment exactly once, nothing lost, and nothing in the DLQ but the
//! events poisoned on purpose, each intact with its reason.
//!
//! `SOAK_EVENTS` sets the number of conversations (default 2,000).
//! `SOAK_RECORD` names a Markdown file (`make soak-long`: docs/benchmarks.md)
//! whose "Long soak" section receives the run's figures and checks, passed
//! or failed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use local_salesforce::{Fault, LocalSalesforce};
use proof::{aws_env, sqs_event, Function, Moto, RuntimeApi};
use rand::Rng;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const WEBHOOK_TOKEN: &str = "soak-webhook-token-0123456789";
const CUSTOMER_USER: &str = "witiop.customer@acme.example";
const KILLS: u64 = 5;
/// The queue as the template sizes it, time compressed: 5 receives of this
/// visibility, the old setting, would park every conversation of the outage.
/// As Lambda requires, the visibility outlasts an invocation (its deadline
/// is [`INVOCATION`]), or a record still being processed would be delivered
/// to the other instance.
const VISIBILITY_SECONDS: u32 = 20;
const INVOCATION: Duration = Duration::from_secs(15);
const MAX_RECEIVE_COUNT: u32 = 30;
const OUTAGE: Duration = Duration::from_secs(105);
const WRONG_PASSWORD_FOR: Duration = Duration::from_secs(12);
/// What the soak may spend per conversation, faults and redeliveries
/// included (a full batch of new conversations costs 0.2).
const MAX_CALLS_PER_CONVERSATION: f64 = 0.5;
/// How long Salesforce hangs, and how long it holds each call meanwhile.
const HANG: Duration = Duration::from_secs(30);
const HANG_STALL: Duration = Duration::from_secs(60);

struct Conversation {
    id: u64,
    number: String,
    texts: Vec<String>,
}

fn conversations(n: u64) -> Vec<Conversation> {
    let mut rng = rand::rng();
    let mut numbers: Vec<String> = Vec::new();
    (1..=n)
        .map(|id| {
            // Now and then a new customer's second conversation arrives
            // right behind the first; one in ten comes from a customer
            // seen before.
            let number = if id % 25 == 0 && !numbers.is_empty() {
                numbers[numbers.len() - 1].clone()
            } else if id % 10 == 0 && !numbers.is_empty() {
                numbers[rng.random_range(0..numbers.len())].clone()
            } else {
                let n = format!("+39333{:07}", 1_000_000 + id);
                numbers.push(n.clone());
                n
            };
            let count = rng.random_range(1..=20);
            let texts = (0..count)
                .map(|i| match i % 4 {
                    0 => format!("soak {id} message {i}: hello 😀"),
                    1 => format!("soak {id} message {i}: ok\nsecond line"),
                    _ => format!("soak {id} message {i}"),
                })
                .collect();
            Conversation { id, number, texts }
        })
        .collect()
}

fn event(c: &Conversation) -> Value {
    let messages: Vec<Value> = c
        .texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "id": format!("wamid.{}.{i}", c.id),
                "sender": if i % 2 == 0 { "customer" } else { "agent" },
                "sent_at": format!("2026-11-24T10:{:02}:{:02}Z", i / 60, i % 60),
                "text": t,
            })
        })
        .collect();
    json!({
        "type": "conversation.closed",
        "event_id": format!("evt-{}", c.id),
        "conversation": {
            "id": c.id,
            "opened_at": "2026-11-24T09:58:10Z",
            "closed_at": "2026-11-24T10:30:00Z",
            "agent": {"email": "agent.demo@acme.example", "name": "agent.demo"},
            "customer": {"number": c.number, "name": format!("Customer {}", &c.number[c.number.len() - 4..])},
            "messages": messages,
        }
    })
}

fn normal_faults() -> Vec<(Fault, f64)> {
    vec![
        (Fault::Unavailable, 0.08),
        (Fault::UnavailableHtml, 0.02),
        (Fault::RowLock, 0.01),
    ]
}

/// Lambda's SQS event for FIFO messages: the system attributes (message
/// group, receive count) as Lambda passes them.
fn fifo_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let mut event = sqs_event(messages, queue_arn);
    for (record, m) in event["Records"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .zip(messages)
    {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect()
            })
            .unwrap_or_default();
        record["attributes"] = Value::Object(attributes);
    }
    event
}

fn request(body: String) -> ApiGatewayV2httpRequest {
    let mut r: ApiGatewayV2httpRequest = serde_json::from_str(
        &std::fs::read_to_string(proof::root().join("events/webhook-request.json"))
            .expect("sample request"),
    )
    .expect("sample request parses");
    r.headers.insert(
        "authorization",
        format!("Bearer {WEBHOOK_TOKEN}").parse().expect("header"),
    );
    r.body = Some(body);
    r
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::var("SOAK_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let worker_binary = std::env::var("WORKER_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| proof::debug_binary("worker"));
    if !worker_binary.exists() {
        bail!(
            "{} is missing: build it first (make soak does)",
            worker_binary.display()
        );
    }
    let started = Instant::now();

    let moto = Moto::start().await?;
    let (queue, dlq) = moto
        .queue_pair("soak", VISIBILITY_SECONDS, MAX_RECEIVE_COUNT, true)
        .await?;
    let queue_arn = "arn:aws:sqs:eu-west-1:123456789012:soak.fifo";
    let sf = LocalSalesforce::start(0).await?;
    sf.seed_example_users();
    sf.set_audit_fields(true);
    moto.secret(
        "witiop",
        &json!({"webhook_token": WEBHOOK_TOKEN}).to_string(),
    )
    .await?;
    // `SOAK_AUTH_FLOW=jwt_bearer` logs in with a certificate instead of the
    // password; its credentials incident is a wrong key put in the secret.
    let jwt = std::env::var("SOAK_AUTH_FLOW").is_ok_and(|f| f == "jwt_bearer");
    let settings = |key: &str| {
        if jwt {
            json!({
                "set_audit_fields": true,
                "customer_comment_username": CUSTOMER_USER,
                "auth_flow": "jwt_bearer",
                "private_key": key,
            })
        } else {
            json!({"set_audit_fields": true, "customer_comment_username": CUSTOMER_USER})
        }
    };
    if jwt {
        sf.set_jwt_certificate(local_salesforce::test_keys::APP_CERTIFICATE)
            .map_err(anyhow::Error::msg)?;
        sf.pre_authorise(local_salesforce::API_USERNAME);
    }
    let secret = sf.secret(settings(local_salesforce::test_keys::APP_PRIVATE_KEY));
    moto.secret("salesforce", &secret.to_string()).await?;
    moto.secret("salesforce-token", "{}").await?;

    // Faults: 10% 503 (a fifth of them as HTML), 1% row locks, tokens expiring every 500 calls.
    sf.set_fault_rates(normal_faults());
    sf.expire_tokens_every(500);

    let mut env = aws_env(&moto.endpoint);
    env.extend([
        ("WITIOP_SECRET_ID", "witiop".to_owned()),
        ("SALESFORCE_SECRET_ID", "salesforce".to_owned()),
        ("SALESFORCE_TOKEN_SECRET_ID", "salesforce-token".to_owned()),
        ("DLQ_URL", dlq.clone()),
        ("QUEUE_URL", queue.clone()),
        ("RETRY_BASE_SECONDS", "1".to_owned()),
        ("RETRY_CAP_SECONDS", "8".to_owned()),
        ("SETTINGS_REFRESH_SECONDS", "2".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    let log = std::env::temp_dir().join("witiop-soak-worker.log");
    let _ = std::fs::remove_file(&log);

    // Two pollers, as Lambda's SQS event source runs two instances: batches
    // of 10, delete what succeeded; every so many batches, whichever instance
    // holds that batch is killed mid-way.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let batches = Arc::new(AtomicU64::new(0));
    let mut pollers = Vec::new();
    // SQS hands a message group to one receiver at a time; the emulator
    // serves concurrent receives on threads without that guarantee, so the
    // two pollers take turns to receive (not to process).
    let receiving = Arc::new(tokio::sync::Mutex::new(()));
    for _ in 0..2 {
        let receiving = receiving.clone();
        let api = Arc::new(RuntimeApi::start().await?);
        let (stop, kills, batches) = (stop.clone(), kills.clone(), batches.clone());
        let sqs = moto.sqs();
        let queue = queue.clone();
        let (binary, env, log) = (worker_binary.clone(), env.clone(), log.clone());
        pollers.push(tokio::spawn(async move {
            let mut function =
                Function::start(&binary, &api, &env, Some(&log)).expect("worker starts");
            let kill_every = (n / 10 / (KILLS + 1)).max(3);
            while !stop.load(Ordering::Relaxed) {
                let turn = receiving.lock().await;
                let received = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::All,
                    )
                    .send()
                    .await;
                drop(turn);
                let messages = match received {
                    Ok(r) => r.messages.unwrap_or_default(),
                    Err(_) => continue,
                };
                if messages.is_empty() {
                    continue;
                }
                let b = batches.fetch_add(1, Ordering::Relaxed) + 1;
                let kill_now = b % kill_every == 0 && kills.load(Ordering::Relaxed) < KILLS;
                let invoke = api.invoke(fifo_event(&messages, queue_arn), INVOCATION);
                let answer = if kill_now {
                    // Kill the process while it works on this batch.
                    let delay = Duration::from_millis(rand::rng().random_range(5..60));
                    let (answer, _) = tokio::join!(invoke, async {
                        tokio::time::sleep(delay).await;
                        function.kill().await;
                        api.abandon_in_flight();
                    });
                    kills.fetch_add(1, Ordering::Relaxed);
                    function =
                        Function::start(&binary, &api, &env, Some(&log)).expect("worker restarts");
                    answer
                } else {
                    invoke.await
                };
                let Ok(response) = answer else { continue };
                let failed: HashSet<String> = response["batchItemFailures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for m in &messages {
                    if failed.contains(m.message_id().unwrap_or_default()) {
                        continue;
                    }
                    if let Some(h) = m.receipt_handle() {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&queue)
                            .receipt_handle(h)
                            .send()
                            .await;
                    }
                }
            }
            function.kill().await;
        }));
    }

    // WitiOp: every event through the real webhook handler; 5% delivered twice.
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), "witiop".into()).await?;
    let webhook = Webhook {
        sqs: moto.sqs(),
        tokens,
        env: WebhookEnv {
            queue_url: queue.clone(),
            witiop_secret_id: "witiop".into(),
            max_message_bytes: 1_048_576,
        },
    };
    let all = conversations(n);
    let mut duplicates = 0;
    for (i, c) in all.iter().enumerate() {
        let body = event(c).to_string();
        let times = if rand::rng().random_bool(0.05) { 2 } else { 1 };
        for _ in 0..times {
            let r = handle_webhook(&webhook, request(body.clone())).await;
            if r.status_code != 202 {
                bail!(
                    "webhook answered {} for conversation {}",
                    r.status_code,
                    c.id
                );
            }
        }
        duplicates += times - 1;
        // Conversations arrive over time, not all at once: keep the backlog
        // near what a live queue holds (the emulator's SQS scans its whole queue).
        if i % 50 == 49 {
            while moto.depth(&queue).await? > 150 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if i as u64 == n / 5 {
            // Salesforce is down, longer than the queue alone would wait.
            println!("soak: Salesforce down for {} s", OUTAGE.as_secs());
            sf.set_fault_rates(vec![(Fault::Unavailable, 1.0)]);
            let sf = sf.clone();
            tokio::spawn(async move {
                tokio::time::sleep(OUTAGE).await;
                sf.set_fault_rates(normal_faults());
                println!("soak: Salesforce back");
            });
        }
        if i as u64 == n * 2 / 5 {
            // The org's allowance runs out for a while.
            println!("soak: API allowance spent for 10 s");
            sf.limit_for(Duration::from_secs(10));
        }
        if i as u64 == n * 4 / 5 {
            // Salesforce accepts every connection and answers none of them.
            println!(
                "soak: Salesforce hangs for {} s (each call held {} s)",
                HANG.as_secs(),
                HANG_STALL.as_secs()
            );
            sf.hang_for(HANG, HANG_STALL);
        }
        if i as u64 == n * 3 / 5 {
            let fixed = if jwt {
                // Someone puts a key the app has no certificate for into
                // the secret; the admin puts the right one back a little later.
                println!(
                    "soak: a wrong key in the secret, fixed after {} s",
                    WRONG_PASSWORD_FOR.as_secs()
                );
                let wrong = sf.secret(settings(local_salesforce::test_keys::OTHER_PRIVATE_KEY));
                moto.put_secret("salesforce", &wrong.to_string()).await?;
                secret.clone()
            } else {
                // Someone changes the integration user's password; the admin
                // puts the new one in the secret a little later.
                println!(
                    "soak: password changed in Salesforce, fixed in the secret after {} s",
                    WRONG_PASSWORD_FOR.as_secs()
                );
                sf.set_password(local_salesforce::API_USERNAME, "rotated-password");
                let mut fixed = settings("");
                fixed["password"] = json!("rotated-password");
                sf.secret(fixed)
            };
            sf.expire_tokens();
            let moto_sdk = moto.sdk.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WRONG_PASSWORD_FOR).await;
                let _ = aws_sdk_secretsmanager::Client::new(&moto_sdk)
                    .put_secret_value()
                    .secret_id("salesforce")
                    .secret_string(fixed.to_string())
                    .send()
                    .await;
                println!("soak: the credentials fixed in the secret");
            });
        }
    }
    // Poisoned on purpose: straight into the queue, past the webhook.
    let mut poisoned = 0;
    let poison = [
        "{\"type\":\"conversation.closed\",\"conversation\":".to_owned(),
        "not json at all".to_owned(),
        json!({"type": "conversation.closed", "conversation": {"id": 1}}).to_string(),
        json!({"type": "conversation.closed", "conversation": {"id": "x", "agent": {"email": "a@b.c"}, "customer": {"number": "+393331234567"}, "messages": [{"sender": "bot", "sent_at": "2026-01-01T00:00:00Z"}]}}).to_string(),
    ];
    for p in &poison {
        poisoned += 1;
        moto.sqs()
            .send_message()
            .queue_url(&queue)
            .message_body(p)
            .message_group_id(format!("poison-{poisoned}"))
            .message_deduplication_id(format!("poison-{poisoned}"))
            .send()
            .await?;
    }
    println!(
        "soak: {n} conversations sent ({duplicates} delivered twice) and {} poisoned events",
        poison.len()
    );

    // Wait for the queue to drain.
    let mut quiet = 0;
    let limit = Instant::now() + Duration::from_secs(1800);
    while quiet < 3 {
        if Instant::now() > limit {
            bail!("the queue did not drain in 30 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        quiet = if moto.depth(&queue).await? == 0 {
            quiet + 1
        } else {
            0
        };
    }
    stop.store(true, Ordering::Relaxed);
    for poller in pollers {
        let _ = poller.await;
    }
    let elapsed = started.elapsed();

    // Verdict.
    let mut checks: Vec<(String, bool)> = Vec::new();
    let cases = sf.records("Case");
    let by_subject = group(&cases, "Subject", "Id");
    let comments = sf.records("CaseComment");
    let by_case = group(&comments, "ParentId", "CommentBody");
    let mut missing_cases = 0;
    let mut duplicate_cases = 0;
    let mut wrong_comments = 0;
    for c in &all {
        let subject = format!("{} [{}]", c.number, c.id);
        match by_subject.get(&subject).map(Vec::as_slice) {
            None | Some([]) => missing_cases += 1,
            Some([id]) => {
                let mut got = by_case.get(id).cloned().unwrap_or_default();
                let mut want = c.texts.clone();
                got.sort();
                want.sort();
                if got != want {
                    wrong_comments += 1;
                }
            }
            Some(_) => duplicate_cases += 1,
        }
    }
    checks.push((
        format!(
            "one Case per conversation ({} Cases for {n} conversations)",
            cases.len()
        ),
        cases.len() as u64 == n && missing_cases == 0 && duplicate_cases == 0,
    ));
    checks.push((
        format!("no conversation lost ({missing_cases} missing)"),
        missing_cases == 0,
    ));
    checks.push((
        format!("no duplicate Case ({duplicate_cases})"),
        duplicate_cases == 0,
    ));
    let expected_comments: usize = all.iter().map(|c| c.texts.len()).sum();
    checks.push((
        format!("every comment exactly once ({} comments, {expected_comments} messages, {wrong_comments} Cases differ)", comments.len()),
        wrong_comments == 0 && comments.len() == expected_comments,
    ));
    let customers: HashSet<&str> = all.iter().map(|c| c.number.as_str()).collect();
    let contacts = sf.records("Contact");
    checks.push((
        format!(
            "one Contact per customer ({} for {})",
            contacts.len(),
            customers.len()
        ),
        contacts.len() == customers.len(),
    ));

    let mut dlq_bodies = Vec::new();
    loop {
        let r = moto
            .sqs()
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await?;
        let ms = r.messages.unwrap_or_default();
        if ms.is_empty() {
            break;
        }
        for m in ms {
            let code = m
                .message_attributes()
                .and_then(|a| a.get("error_code"))
                .and_then(|v| v.string_value())
                .unwrap_or("")
                .to_owned();
            dlq_bodies.push((m.body().unwrap_or_default().to_owned(), code));
            if let Some(h) = m.receipt_handle() {
                moto.sqs()
                    .delete_message()
                    .queue_url(&dlq)
                    .receipt_handle(h)
                    .send()
                    .await?;
            }
        }
    }
    let poison_set: HashSet<&str> = poison.iter().map(String::as_str).collect();
    let dlq_ok = dlq_bodies.len() == poison.len()
        && dlq_bodies
            .iter()
            .all(|(b, code)| poison_set.contains(b.as_str()) && code == "invalid_event");
    checks.push((
        format!(
            "the DLQ holds exactly the {} poisoned events, intact, with their reason ({} there)",
            poison.len(),
            dlq_bodies.len()
        ),
        dlq_ok,
    ));
    let counters = sf.counters();
    checks.push((
        format!(
            "the worker was killed mid-batch {} times",
            kills.load(Ordering::Relaxed)
        ),
        kills.load(Ordering::Relaxed) >= 3,
    ));
    checks.push((
        format!("faults were served ({})", counters.faults_served),
        counters.faults_served > 0,
    ));
    // Each instance tries a refused password at most once a minute; two
    // instances, so a handful at most over the 12 s it stayed wrong.
    checks.push((
        format!(
            "the changed credentials were refused {} times, no lockout",
            counters.failed_logins
        ),
        (1..=4).contains(&counters.failed_logins),
    ));
    checks.push((
        format!(
            "Salesforce hung for {} s, longer than an invocation ({} s), and {} calls met the hang",
            HANG.as_secs(),
            INVOCATION.as_secs(),
            counters.hung
        ),
        counters.hung > 0 && HANG > INVOCATION,
    ));
    checks.push((
        format!(
            "the {} s outage outlasted what the queue alone would wait ({} receives × {} s)",
            OUTAGE.as_secs(),
            5,
            VISIBILITY_SECONDS
        ),
        OUTAGE.as_secs() > 5 * u64::from(VISIBILITY_SECONDS),
    ));
    // The batch is the unit of Salesforce I/O: two calls for a batch of new
    // conversations, whatever the faults add on top.
    let per_conversation = counters.api_calls as f64 / n.max(1) as f64;
    checks.push((
        format!(
            "{per_conversation:.2} Salesforce API calls per conversation, at most {MAX_CALLS_PER_CONVERSATION}"
        ),
        per_conversation <= MAX_CALLS_PER_CONVERSATION,
    ));

    let figures = Figures {
        conversations: n,
        twice: duplicates,
        poisoned: poison.len(),
        seconds: elapsed.as_secs_f64(),
        batches: batches.load(Ordering::Relaxed),
        api_calls: counters.api_calls,
        logins: counters.logins,
        faults: counters.faults_served,
        kills: kills.load(Ordering::Relaxed),
    };
    println!(
        "soak: {:.1} s, {} batches, {} Salesforce API calls ({:.2} per conversation), {} logins, {} faults served, {} kills",
        figures.seconds,
        figures.batches,
        figures.api_calls,
        figures.api_calls as f64 / n as f64,
        figures.logins,
        figures.faults,
        figures.kills
    );
    let mut failed = 0;
    for (what, ok) in &checks {
        println!("{} {what}", if *ok { "PASS" } else { "FAIL" });
        if !ok {
            failed += 1;
        }
    }
    println!("soak: {} passed, {failed} failed", checks.len() - failed);
    if let Some(path) = std::env::var("SOAK_RECORD").ok().filter(|p| !p.is_empty()) {
        record(&PathBuf::from(&path), &figures, &checks)?;
        println!("soak: figures written to {path}");
    }
    if failed > 0 {
        bail!("the soak failed; the worker's log is {}", log.display());
    }
    Ok(())
}

/// Each record's `value` field, grouped by its `key` field.
fn group(
    records: &[serde_json::Map<String, Value>],
    key: &str,
    value: &str,
) -> HashMap<String, Vec<String>> {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for r in records {
        groups.entry(text(r, key)).or_default().push(text(r, value));
    }
    groups
}

fn text(record: &serde_json::Map<String, Value>, field: &str) -> String {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// What one run did, for the record.
struct Figures {
    conversations: u64,
    twice: usize,
    poisoned: usize,
    seconds: f64,
    batches: u64,
    api_calls: u64,
    logins: u64,
    faults: u64,
    kills: u64,
}

/// Writes the run into the "Long soak" section of the Markdown file at `path`.
fn record(path: &std::path::Path, f: &Figures, checks: &[(String, bool)]) -> anyhow::Result<()> {
    use std::fmt::Write;
    let mut out = String::new();
    writeln!(out, "{}\n", proof::report::SOAK_HEADING)?;
    writeln!(out, "Written by `make soak-long` on {} ({}); `make bench` keeps this section. The soak of CI (`make soak`, 2,000 conversations) runs the same programme.\n", chrono::Utc::now().format("%Y-%m-%d"), proof::report::machine())?;
    writeln!(out, "{} conversations through the real webhook handler ({} of them delivered twice) and {} poisoned events, into a FIFO queue (visibility {VISIBILITY_SECONDS} s, `maxReceiveCount` {MAX_RECEIVE_COUNT}) polled by two instances of the worker binary, against the local Salesforce serving 10% 503s (a fifth as HTML), 1% row locks and a token expiry every 500 calls, plus, time compressed (backoff 1 s doubling to 8 s): a {} s outage, the API allowance spent for 10 s, the integration password wrong for {} s, and a worker killed mid-batch {} times.\n", f.conversations, f.twice, f.poisoned, OUTAGE.as_secs(), WRONG_PASSWORD_FOR.as_secs(), f.kills)?;
    writeln!(out, "| measure | value |")?;
    writeln!(out, "| --- | ---: |")?;
    writeln!(out, "| wall time | {:.1} s |", f.seconds)?;
    writeln!(out, "| batches | {} |", f.batches)?;
    writeln!(
        out,
        "| Salesforce API calls | {} ({:.2} per conversation) |",
        f.api_calls,
        f.api_calls as f64 / f.conversations.max(1) as f64
    )?;
    writeln!(out, "| logins | {} |", f.logins)?;
    writeln!(out, "| faults served | {} |", f.faults)?;
    writeln!(out)?;
    for (what, ok) in checks {
        writeln!(
            out,
            "- {} {what}",
            if *ok { "**pass**" } else { "**FAIL**" }
        )?;
    }
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(
        path,
        proof::report::replace_section(&doc, proof::report::SOAK_HEADING, &out),
    )?;
    Ok(())
}
