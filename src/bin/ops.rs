//! Operator commands: `ops dlq` lists the dead-letter queue, `ops redrive`
//! moves it back to the queue. Queue URLs come from `DLQ_URL` and `QUEUE_URL`
//! (the stack outputs `DeadLetterQueueUrl` and `QueueUrl`).

use witiop_salesforce::aws::load_sdk_config;
use witiop_salesforce::ops::{list_dead_letters, redrive, Redrive};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the stack outputs)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let sqs = aws_sdk_sqs::Client::new(&load_sdk_config().await);
    match command.as_str() {
        "dlq" => {
            let parked = list_dead_letters(&sqs, &env("DLQ_URL")?).await?;
            println!("{} conversation(s) in the dead-letter queue", parked.len());
            for p in parked {
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
        }
        "redrive" => match redrive(&sqs, &env("DLQ_URL")?, &env("QUEUE_URL")?).await? {
            Redrive::MoveTask { task_handle } => {
                println!("SQS message move task started: {task_handle}")
            }
            Redrive::Copied { moved } => println!("moved {moved} message(s) back to the queue"),
        },
        _ => return Err("usage: ops dlq | ops redrive".into()),
    }
    Ok(())
}
