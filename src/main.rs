use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    fairline::cli::main_entry().await
}
