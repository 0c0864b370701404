//! The `dispatch` command line: one file per command family, as Nomad's `command/`.
//!
//! Commands talk to the server over the HTTP API (`client`), except `server` (which runs it)
//! and `job validate` (local). Errors print the server's message and exit 1; usage errors
//! exit 1 with usage.

mod acl;
mod args;
mod client;
mod failure;
mod format;
mod job;
mod logs;
mod run;
mod server;
mod standalone;
mod status;
mod task;
mod tasks;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

pub use client::Client;

/// Default API address (Nomad's port, so Nomad clients work unchanged).
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:4646";

#[derive(Debug, Parser)]
#[command(
    name = "dispatch",
    version,
    about = "Parameterized batch dispatch: register job templates, dispatch them with meta and payload",
    after_help = "Flags take one dash or two: -meta k=v and --meta k=v are the same."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the Dispatch server (API, state, runner)
    Server(Box<server::ServerArgs>),
    /// Register, dispatch, inspect and stop jobs
    #[command(subcommand)]
    Job(job::JobCommand),
    /// List jobs, or show one job's status (same as `job status`)
    Status(status::StatusArgs),
    /// Print a dispatch's task output (stdout, or -stderr); -f follows it
    Logs(logs::LogsArgs),
    /// List a dispatch's sandbox directories or print a file from them
    Fs(logs::FsArgs),
    /// Run a Mesosfile, task list, Org document or job file once as a batch and follow it
    Run(run::RunArgs),
    /// Print a Mesosfile task entry built from flags (YAML, or -format json)
    Task(task::TaskArgs),
    /// List task runs (running only unless -all or -state)
    Tasks(tasks::TasksArgs),
    /// ACLs: bootstrap, policies, tokens
    #[command(subcommand)]
    Acl(acl::AclCommand),
}

/// Connection flags every client command takes: where the server is, the ACL token, and
/// the TLS files for `https://` servers. Each falls back to a `DISPATCH_*` variable, then to
/// Nomad's `NOMAD_*` one.
#[derive(Debug, Clone, clap::Args)]
pub struct AddressArgs {
    /// Address of the Dispatch server [env: DISPATCH_ADDR, then NOMAD_ADDR] [default: http://127.0.0.1:4646]
    #[arg(long)]
    pub address: Option<String>,
    /// ACL token (its secret) sent with every request [env: DISPATCH_TOKEN, then NOMAD_TOKEN]
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// CA certificate (PEM) the server's certificate must chain to [env: DISPATCH_CACERT,
    /// then NOMAD_CACERT] [default: the system's roots]
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients [env: DISPATCH_CLIENT_CERT,
    /// then NOMAD_CLIENT_CERT]
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's key (PEM) [env: DISPATCH_CLIENT_KEY, then NOMAD_CLIENT_KEY]
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
}

/// The first of `names` set to something non-empty.
fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|s| !s.is_empty()))
}

impl AddressArgs {
    /// Whether a server address was given (flag or environment), not just the default.
    pub fn is_set(&self) -> bool {
        self.address.is_some() || env_first(&["DISPATCH_ADDR", "NOMAD_ADDR"]).is_some()
    }

    /// How to reach the server: flags, then `DISPATCH_*`, then `NOMAD_*`.
    pub fn connection(&self) -> client::Connection {
        let path = |flag: &Option<PathBuf>, names: &[&str]| {
            flag.clone().or_else(|| env_first(names).map(PathBuf::from))
        };
        client::Connection {
            address: self
                .address
                .clone()
                .or_else(|| env_first(&["DISPATCH_ADDR", "NOMAD_ADDR"]))
                .unwrap_or_else(|| DEFAULT_ADDR.to_string()),
            token: self
                .token
                .clone()
                .or_else(|| env_first(&["DISPATCH_TOKEN", "NOMAD_TOKEN"])),
            ca_cert: path(&self.ca_cert, &["DISPATCH_CACERT", "NOMAD_CACERT"]),
            client_cert: path(
                &self.client_cert,
                &["DISPATCH_CLIENT_CERT", "NOMAD_CLIENT_CERT"],
            ),
            client_key: path(
                &self.client_key,
                &["DISPATCH_CLIENT_KEY", "NOMAD_CLIENT_KEY"],
            ),
        }
    }

    pub fn client(&self) -> Result<Client, CliError> {
        Client::connect(&self.connection())
    }
}

/// A failed command: the message to print; the exit code is 1 unless said otherwise.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

/// A command piped into `head` ends quietly when the pipe closes, as Unix tools do, instead
/// of panicking in `println!`. SIGPIPE itself stays ignored (Rust's default): a socket write
/// to a peer that went away must stay an error, never kill the process (a server runs inside
/// `dispatch run -master`). So the panic `println!` raises on a closed stdout or stderr is
/// turned into exit status 141, what a shell reports for a writer killed by SIGPIPE.
fn end_quietly_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let printing = message.starts_with("failed printing to stdout")
            || message.starts_with("failed printing to stderr");
        if printing && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Parse `argv` and run the command; returns the process exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv = args::normalize(argv, &Cli::command());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            return code;
        }
    };
    end_quietly_on_closed_pipe();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Commands::Server(a) => server::run(*a).await,
            Commands::Job(c) => job::run(c).await,
            Commands::Status(a) => status::run(a).await,
            Commands::Logs(a) => logs::logs(a).await,
            Commands::Fs(a) => logs::fs(a).await,
            Commands::Run(a) => run::run(a).await,
            Commands::Task(a) => task::run(a),
            Commands::Tasks(a) => tasks::run(a).await,
            Commands::Acl(c) => acl::run(c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.code
        }
    }
}
