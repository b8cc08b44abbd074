//! The agent's link opened in a real browser: headless Chromium, driven over
//! WebDriver by ChromeDriver, loads the waiting page from the links handler
//! served over HTTP on loopback, and its own meta refresh carries it to the
//! Case in Lightning once the worker has made it.
//!
//! Needs the `chromium` and `chromium-driver` packages (or `CHROMIUM` and
//! `CHROMEDRIVER` naming the binaries). Without them the test says why and
//! passes, unless `BROWSER_TEST=required`, as in CI, where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::helpers::{event_file, salesforce_client, salesforce_secret, Moto};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use futures::FutureExt as _;
use local_salesforce::LocalSalesforce;
use secrecy::SecretString;
use serde_json::{json, Value};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::links::{LinkLimits, Links, THROTTLE};
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};
use witiop_salesforce::worker::Worker;

const TOKENS: &str = "salesforce-token";
const KEY: &str = "a-link-key-for-the-browser-test-0123456789";
const TOKEN: &str = "browser-webhook-token";
/// Generous: the page refreshes every 2 s, and the machine may be busy.
const PATIENCE: Duration = Duration::from_secs(60);

/// Chromium's switches: headless with no sandbox (tests run as root), and
/// no background traffic, which the closed network would refuse anyway.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

#[tokio::test]
async fn the_browser_follows_the_refresh_to_the_case() {
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(why) => {
            if std::env::var("BROWSER_TEST").as_deref() == Ok("required") {
                panic!("BROWSER_TEST=required but {why}");
            }
            // Straight to the terminal: the test harness would swallow a
            // println! of a passing test, and the skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "browser test skipped: {why} (install the chromium and chromium-driver \
                 packages; BROWSER_TEST=required turns this into a failure)"
            );
            return;
        }
    };
    let stack = stack().await;
    let links_url = serve_links(stack.links.clone()).await;
    let mut browser = Browser::start(&tools).await;
    let client = browser.client.clone().expect("a WebDriver session");
    // The scenario's panic is caught so that the session is closed and the
    // browser gone before the failure is reported, not left to Drop's kill.
    let outcome = std::panic::AssertUnwindSafe(scenario(&stack, &client, &links_url))
        .catch_unwind()
        .await;
    browser.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(s: &Stack, client: &fantoccini::Client, links_url: &str) {
    let case_url = s.post().await;
    // The webhook names the API's public host; the same path and query go
    // to the links handler served here.
    let mut url = reqwest::Url::parse(&case_url).unwrap();
    let local = reqwest::Url::parse(links_url).unwrap();
    url.set_scheme("http").unwrap();
    url.set_host(local.host_str()).unwrap();
    url.set_port(local.port()).unwrap();
    assert_eq!(url.path(), "/witiop/cases/1793", "{case_url}");

    client.goto(url.as_str()).await.unwrap();
    let page = read_page(client).await;
    assert_eq!(page["title"], "Case for conversation 1793", "{page}");
    assert_eq!(page["lang"], "en", "{page}");
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("The Case for conversation 1793 is being created in Salesforce.")
            && text.contains("This page opens it as soon as it exists."),
        "{page}"
    );
    assert!(
        page["refresh"]
            .as_str()
            .is_some_and(|r| r.starts_with("2;url=/witiop/cases/1793?")),
        "{page}"
    );
    let shown = client.current_url().await.unwrap();
    assert!(
        shown
            .as_str()
            .starts_with(&format!("{links_url}/witiop/cases/1793?")),
        "still on the link before the Case exists: {shown}"
    );
    assert!(s.sf.records("Case").is_empty());

    s.work().await;
    let case =
        s.sf.records("Case")
            .pop()
            .expect("the worker made the Case");
    let case_id = case["Id"].as_str().unwrap();
    let expected = format!("{}/lightning/r/Case/{case_id}/view", s.sf.url);

    // No navigation from the test: the page's own refresh must get there.
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while last != expected {
        assert!(
            Instant::now() < deadline,
            "the browser did not reach {expected} within {PATIENCE:?}; it shows {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(now) = client.current_url().await {
            last = now.to_string();
        }
    }
    let landed = read_page(client).await;
    let number = case["CaseNumber"].as_str().unwrap_or(case_id);
    assert!(
        landed["title"]
            .as_str()
            .is_some_and(|t| t.starts_with(number)),
        "the Case's page in the local Salesforce: {landed}"
    );
}

/// Title, language, text and refresh of the page shown, read in one script
/// so that they come from the same document; retried while a refresh is
/// replacing it.
async fn read_page(client: &fantoccini::Client) -> Value {
    let script = "const meta = document.querySelector('meta[http-equiv=\"refresh\"]');\
        return {title: document.title, lang: document.documentElement.lang,\
        text: document.body ? document.body.innerText : '',\
        refresh: meta ? meta.content : null};";
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.execute(script, vec![]).await {
            Ok(v) if v["title"].as_str().is_some_and(|t| !t.is_empty()) => return v,
            Ok(v) if Instant::now() >= deadline => panic!("an empty page: {v}"),
            Err(e) if Instant::now() >= deadline => panic!("the page could not be read: {e}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The browser and its driver, found on this machine.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Tools {
    fn find() -> Result<Self, String> {
        Ok(Self {
            chromium: find_binary("CHROMIUM", "chromium")?,
            chromedriver: find_binary("CHROMEDRIVER", "chromedriver")?,
        })
    }
}

/// `$variable` when set, else `name` on the `PATH`.
fn find_binary(variable: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{variable}={} is not a file", path.display()))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no {name} on the PATH and {variable} is not set"))
}

/// ChromeDriver in its own process group (Chromium and its helpers join
/// it), a WebDriver session, and a fresh directory for the profile and
/// the driver's log. Whatever happens, `quit` or `Drop` leaves nothing.
struct Browser {
    driver: tokio::process::Child,
    dir: PathBuf,
    client: Option<fantoccini::Client>,
}

impl Browser {
    async fn start(tools: &Tools) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "witiop-browser-test-{}-{nanos}",
            std::process::id()
        ));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let driver = tokio::process::Command::new(&tools.chromedriver)
            // Port 0: the driver picks a free one and prints it, so no race
            // with other tests for a port chosen in advance.
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", tools.chromedriver.display()));
        let mut browser = Self {
            driver,
            dir,
            client: None,
        };
        let port = browser.driver_port(&log).await;
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": tools.chromium, "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no browser session: {e}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        browser.client = Some(client);
        browser
    }

    /// Waits for the driver's "started successfully on port N" line.
    async fn driver_port(&mut self, log: &Path) -> u16 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let port = text
                .split("on port ")
                .skip(1)
                .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .filter_map(|digits| digits.parse::<u16>().ok())
                .find(|p| *p != 0);
            if let Some(port) = port {
                return port;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver gave no port:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session (Chromium quits), then the driver, then the files.
    async fn quit(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.driver.wait()).await;
        // Chromium's last writes to its profile may trail the driver's exit.
        for _ in 0..20 {
            if !self.dir.exists() || std::fs::remove_dir_all(&self.dir).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL to the driver's process group: Chromium and its helpers too.
    fn kill_group(&self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Reached with the session still open only when a panic skipped
        // `quit`: no await here, so the whole group is killed.
        if self.client.is_some() || self.dir.exists() {
            self.kill_group();
            let _ = self.driver.start_kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

struct Stack {
    moto: Moto,
    sf: LocalSalesforce,
    worker: Worker,
    links: Arc<Links>,
    webhook: Webhook,
    queue: String,
}

async fn stack() -> Stack {
    let moto = crate::helpers::moto().await;
    moto.secret(TOKENS, "{}").await.unwrap();
    let (queue, dlq) = moto.queues("conversations", 30, 5).await.unwrap();
    let sf = LocalSalesforce::start(0).await.unwrap();
    sf.seed_example_users();
    let secret = salesforce_secret(&sf.url, json!({}));
    let worker = crate::helpers::worker(&moto, &secret, &dlq, 4);
    // The page's refresh finds the Case the worker makes after the first
    // opening as soon as the throttle allows, not after the negative cache.
    let links = Arc::new(
        Links::new(
            Arc::new(salesforce_client(&moto, &secret, TOKENS)),
            None,
            Some(SecretString::from(KEY.to_owned())),
        )
        .with_limits(LinkLimits {
            missing_for: THROTTLE,
            ..LinkLimits::default()
        }),
    );
    let webhook = Webhook {
        sqs: moto.sqs(),
        tokens: WebhookTokens::for_tests(vec![TOKEN.into()]).with_link_key(KEY),
        env: WebhookEnv {
            queue_url: queue.clone(),
            witiop_secret_id: "witiop".into(),
            max_message_bytes: 262_144,
        },
    };
    Stack {
        moto,
        sf,
        worker,
        links,
        webhook,
        queue,
    }
}

impl Stack {
    /// Posts the sample close event; returns the webhook's `case_url`.
    async fn post(&self) -> String {
        let mut r: ApiGatewayV2httpRequest =
            serde_json::from_str(&event_file("webhook-request.json")).unwrap();
        r.body = Some(event_file("conversation-closed.json"));
        r.headers
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        let answer = handle_webhook(&self.webhook, r).await;
        let body = match &answer.body {
            Some(Body::Text(t)) => t.clone(),
            _ => String::new(),
        };
        assert_eq!(answer.status_code, 202, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["case_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no case_url: {body}"))
            .to_owned()
    }

    /// The worker takes what the queue holds.
    async fn work(&self) {
        let (received, failed) = crate::helpers::poll(&self.worker, &self.moto, &self.queue).await;
        assert_eq!(received, 1);
        assert!(failed.is_empty(), "{failed:?}");
    }
}

/// Serves the links handler on a free loopback port, as API Gateway would
/// hand it the request; returns the server's base URL.
async fn serve_links(links: Arc<Links>) -> String {
    let app = proof::pipeline::links_route("/witiop/cases/{conversation_id}", links);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}
