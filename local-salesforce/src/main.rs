//! `local-salesforce [PORT]`: serves the local Salesforce on 127.0.0.1.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8900);
    let sf = local_salesforce::LocalSalesforce::start(port).await?;
    println!("local Salesforce on {}", sf.url);
    println!(
        "API user {} (id {}), password {} + security token {}",
        local_salesforce::API_USERNAME,
        sf.api_user_id,
        local_salesforce::API_PASSWORD,
        local_salesforce::SECURITY_TOKEN
    );
    println!(
        "Connected App: client_id {} client_secret {}",
        local_salesforce::CONSUMER_KEY,
        local_salesforce::CONSUMER_SECRET
    );
    tokio::signal::ctrl_c().await
}
