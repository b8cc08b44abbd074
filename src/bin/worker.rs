//! The worker Lambda: SQS batch of close events → Salesforce Cases.

fn main() {
    eprintln!("worker: not implemented yet");
    std::process::exit(1);
}
