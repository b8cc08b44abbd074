//! Operator commands for those with a Rust toolchain (`make dlq` and
//! `make redrive` do the same with the AWS CLI, see `ops/`): `ops dlq` lists
//! the dead-letter queue, `ops redrive` moves it back to the queue and
//! reports its progress. Queue URLs come from `DLQ_URL` and `QUEUE_URL` (the
//! stack outputs `DeadLetterQueueUrl` and `QueueUrl`).

use std::time::Duration;

use witiop_salesforce::aws::load_sdk_config;
use witiop_salesforce::ops::{move_task_progress, redrive_reporting, survey_dead_letters, Redrive};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the stack outputs)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let sqs = aws_sdk_sqs::Client::new(&load_sdk_config().await);
    match command.as_str() {
        "dlq" => {
            println!("reading the dead-letter queue (long polls of up to 20 s; nothing deleted)");
            let survey =
                survey_dead_letters(&sqs, &env("DLQ_URL")?, Duration::from_secs(20)).await?;
            println!(
                "{} conversation(s) seen in the dead-letter queue",
                survey.parked.len()
            );
            for p in &survey.parked {
                println!(
                    "- conversation {} | {} | failed at {} | received {}x\n  {}",
                    if p.conversation_id.is_empty() {
                        "?"
                    } else {
                        &p.conversation_id
                    },
                    p.error_code,
                    p.failed_at,
                    p.receive_count,
                    p.error_message
                );
            }
            println!(
                "SQS reported {} waiting + {} in flight when the listing started.",
                survey.waiting, survey.in_flight
            );
            if survey.complete() {
                println!("Everything was seen.");
            } else {
                println!(
                    "NOT everything was seen{}: messages in flight, or behind a hidden one of \
                     the same customer (FIFO), cannot be read; run it again later.",
                    survey
                        .stopped
                        .map(|s| format!(" (stopped early: {s})"))
                        .unwrap_or_default()
                );
            }
        }
        "redrive" => {
            let mut say = |line: String| println!("{line}");
            match redrive_reporting(&sqs, &env("DLQ_URL")?, &env("QUEUE_URL")?, &mut say).await? {
                Redrive::MoveTask {
                    task_handle,
                    source_arn,
                } => {
                    println!("SQS message move task started: {task_handle}");
                    let mut last = None;
                    loop {
                        let progress = move_task_progress(&sqs, &source_arn, &task_handle).await?;
                        let Some(p) = progress else {
                            println!("the task is no longer listed");
                            break;
                        };
                        if last.as_ref() != Some(&p) {
                            println!(
                                "  {}: {} of {} moved{}",
                                p.status,
                                p.moved,
                                p.to_move.map_or("?".to_owned(), |n| n.to_string()),
                                p.failure
                                    .as_deref()
                                    .map(|f| format!(" ({f})"))
                                    .unwrap_or_default()
                            );
                        }
                        if p.finished() {
                            if p.status != "COMPLETED" {
                                return Err(format!("the move task ended {}", p.status).into());
                            }
                            break;
                        }
                        last = Some(p);
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
                Redrive::Copied { moved } => {
                    println!("moved {moved} message(s) back to the queue one by one")
                }
            }
        }
        _ => return Err("usage: ops dlq | ops redrive".into()),
    }
    Ok(())
}
