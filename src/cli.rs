//! The command line (SPEC §2): `serve`, `check-config`, `evaluate`, `token hash`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::config::{self, Config, DEFAULT_CONFIG_PATH};
use crate::domain::CallerId;

#[derive(Debug, Parser)]
#[command(
    name = "fairline",
    version,
    about = "Enforces contact arrangements on a phone line"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate the configuration: exit 0 with a summary, or 2 listing every problem.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Print the decision for a caller at an instant, from the configured store, without side effects.
    Evaluate {
        #[arg(long)]
        from: String,
        /// RFC 3339 instant (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Read a token on stdin and print the `sha256:` string to put in the configuration.
    Hash,
}

fn load_or_report(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("{}", path.display());
        for p in e.problems() {
            eprintln!("  - {p}");
        }
        ExitCode::from(2)
    })
}

/// Run the CLI; returns the process exit code.
pub async fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            // Held until the server has stopped: dropping it flushes the queued log lines.
            let _log = crate::telemetry::init_tracing();
            let cfg = match load_or_report(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let listener = match tokio::net::TcpListener::bind(cfg.server.bind).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("cannot listen on {}: {e}", cfg.server.bind);
                    return ExitCode::from(1);
                }
            };
            match crate::run(cfg, listener).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "fairline stopped with an error");
                    eprintln!("fairline: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig { config } => match load_or_report(&config) {
            Ok(cfg) => {
                println!("{}: OK", config.display());
                print!("{}", cfg.summary());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Evaluate { from, at, config } => {
            let cfg = match load_or_report(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let at: DateTime<Utc> = match at {
                None => Utc::now(),
                Some(s) => match DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => t.with_timezone(&Utc),
                    Err(_) => {
                        eprintln!("--at must be an RFC 3339 instant, e.g. 2026-12-01T10:30:00Z");
                        return ExitCode::from(2);
                    }
                },
            };
            let state = match crate::AppState::build(cfg, crate::Overrides::default()).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("fairline: {e}");
                    return ExitCode::from(1);
                }
            };
            match state.evaluate(&CallerId::classify(&from), at).await {
                Ok(ev) => match serde_json::to_string_pretty(&ev) {
                    Ok(json) => {
                        println!("{json}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("fairline: {e}");
                        ExitCode::from(1)
                    }
                },
                Err(e) => {
                    eprintln!("fairline: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Token {
            command: TokenCommand::Hash,
        } => {
            let mut input = String::new();
            if std::io::stdin().read_to_string(&mut input).is_err() {
                eprintln!("could not read the token from stdin");
                return ExitCode::from(2);
            }
            let token = input.trim_end_matches(['\n', '\r']);
            if token.is_empty() {
                eprintln!("no token on stdin");
                return ExitCode::from(2);
            }
            println!("{}", config::hash_token(token));
            ExitCode::SUCCESS
        }
    }
}
