use std::process::ExitCode;

/// mimalloc: the webhook path allocates many small strings per request (form fields, TwiML),
/// where it measured faster than the system allocator (bench/run.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    fairline::cli::main_entry().await
}
