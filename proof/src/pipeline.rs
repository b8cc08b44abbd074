//! The pipeline's pieces as `make local` and the integration tests assemble
//! them in process: the template's FIFO queues, the webhook, one pass of
//! Lambda's SQS event source over the real worker handler, and the HTTP
//! API's links route in front of the real links handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::links::{handle_link, Links};
use witiop_salesforce::webhook::{Webhook, WebhookTokens};
use witiop_salesforce::worker::{handle_batch, Worker};

use crate::Moto;

/// `<name>.fifo` and its dead-letter queue `<name>-dlq.fifo`, FIFO as in
/// `template.yaml` (deduplication and throughput per message group, 14-day
/// retention); the queue hides a received message for `visibility` seconds,
/// the dead-letter queue for 30.
pub async fn fifo_queues(
    moto: &Moto,
    name: &str,
    visibility: u32,
) -> anyhow::Result<(String, String)> {
    let sqs = moto.sqs();
    let create = |name: String, visibility: u32| {
        sqs.create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
            .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
    };
    let dlq = create(format!("{name}-dlq.fifo"), 30)
        .send()
        .await?
        .queue_url
        .context("dlq")?;
    let queue = create(format!("{name}.fifo"), visibility)
        .send()
        .await?
        .queue_url
        .context("queue")?;
    Ok((queue, dlq))
}

/// The webhook function as its Lambda main builds it, queueing into
/// `queue_url` and reading its tokens from the secret `witiop_secret_id`.
pub fn webhook(
    sqs: aws_sdk_sqs::Client,
    tokens: WebhookTokens,
    queue_url: &str,
    witiop_secret_id: &str,
    max_message_bytes: usize,
) -> Webhook {
    Webhook {
        sqs,
        tokens,
        env: WebhookEnv {
            queue_url: queue_url.to_owned(),
            witiop_secret_id: witiop_secret_id.to_owned(),
            max_message_bytes,
        },
    }
}

/// What Lambda's SQS event source hands the function: the received messages
/// with their system attributes (group id, receive count), message
/// attributes and receipt handles.
pub fn lambda_sqs_event(messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut r = SqsMessage::default();
        r.message_id = m.message_id.clone();
        r.receipt_handle = m.receipt_handle.clone();
        r.body = m.body.clone();
        r.attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        r.message_attributes = m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        let mut attr = SqsMessageAttribute::default();
                        attr.string_value = v.string_value.clone();
                        attr.data_type = Some(v.data_type.clone());
                        (k.clone(), attr)
                    })
                    .collect()
            })
            .unwrap_or_default();
        event.records.push(r);
    }
    event
}

/// The rest of one pass of Lambda's SQS event source, once `messages` are
/// received from `queue_url`: invokes the worker with `budget` to run, then
/// deletes every message it did not report as failed. Returns the failed
/// message ids; a delete that fails leaves its message to come back, as in
/// Lambda, and is the error once every delete was tried.
pub async fn deliver(
    worker: &Worker,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
    budget: Duration,
) -> anyhow::Result<Vec<String>> {
    let response = handle_batch(worker, lambda_sqs_event(messages), Instant::now() + budget).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let mut outcome = Ok(());
    for m in messages {
        if failed.iter().any(|id| Some(id.as_str()) == m.message_id()) {
            continue;
        }
        let Some(handle) = m.receipt_handle() else {
            continue;
        };
        let deleted = sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .send()
            .await;
        if let (Err(e), Ok(())) = (deleted, &outcome) {
            outcome = Err(anyhow::Error::new(e).context("deleting a processed message"));
        }
    }
    outcome.map(|()| failed)
}

/// The HTTP API's links route at `path` (with a `{conversation_id}`
/// segment): each GET handed to the links function as API Gateway hands it.
pub fn links_route(path: &str, links: Arc<Links>) -> axum::Router {
    axum::Router::new()
        .route(path, axum::routing::get(serve_link))
        .with_state(links)
}

async fn serve_link(
    State(links): State<Arc<Links>>,
    Path(conversation_id): Path<String>,
    request: http::Request<axum::body::Body>,
) -> Response {
    let query = request.uri().query().map(str::to_owned);
    let parameters: HashMap<String, String> = query
        .as_deref()
        .and_then(|q| reqwest::Url::parse(&format!("http://query/?{q}")).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let mut event = ApiGatewayV2httpRequest::default();
    event.raw_path = Some(request.uri().path().to_owned());
    event.raw_query_string = query;
    event.query_string_parameters = parameters.into();
    event.path_parameters = [("conversation_id".to_owned(), conversation_id)]
        .into_iter()
        .collect();
    event.headers = request.headers().clone();
    event.request_context.http.method = request.method().clone();
    into_http(handle_link(&links, event).await)
}

/// The HTTP response for a function's API Gateway answer.
pub fn into_http(r: ApiGatewayV2httpResponse) -> Response {
    let status = http::StatusCode::from_u16(r.status_code as u16)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = match r.body {
        Some(Body::Text(t)) => t.into_bytes(),
        Some(Body::Binary(b)) => b,
        _ => Vec::new(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(r.headers);
    response
}
