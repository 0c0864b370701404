//! `dispatch acl ...`: bootstrap, policies and tokens, as Nomad's `nomad acl` prints them.
//! Every command takes `-token` (or `DISPATCH_TOKEN`, then `NOMAD_TOKEN`) like the others.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::client::{escape_segment, Client};
use super::format::{kv, table};
use super::{AddressArgs, CliError};

#[derive(Debug, clap::Subcommand)]
pub enum AclCommand {
    /// Create the first management token (once per cluster); prints its secret
    Bootstrap {
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Create, list, show and delete ACL policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Create, list, show and delete ACL tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Create or update a policy from a rules file (HCL or JSON; `-` reads stdin)
    Apply {
        #[command(flatten)]
        address: AddressArgs,
        /// What the policy is for
        #[arg(long, default_value = "")]
        description: String,
        name: String,
        file: PathBuf,
    },
    /// List policies
    List {
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Show a policy and its rules
    Info {
        #[command(flatten)]
        address: AddressArgs,
        name: String,
    },
    /// Delete a policy
    Delete {
        #[command(flatten)]
        address: AddressArgs,
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret (shown only now: the server keeps a hash)
    Create {
        #[command(flatten)]
        address: AddressArgs,
        /// A name for the token (who or what uses it)
        #[arg(long, default_value = "")]
        name: String,
        /// client (rights from its policies) or management (everything)
        #[arg(long = "type", default_value = "client", value_parser = ["client", "management"])]
        kind: String,
        /// A policy the token gets (repeatable)
        #[arg(long = "policy", value_name = "NAME")]
        policies: Vec<String>,
        /// The token expires after this long (Go duration, 1m to 24h)
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// List tokens
    List {
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Show a token by its accessor ID
    Info {
        #[command(flatten)]
        address: AddressArgs,
        accessor: String,
    },
    /// Show the token this command runs with
    #[command(name = "self")]
    Own {
        #[command(flatten)]
        address: AddressArgs,
    },
    /// Delete a token by its accessor ID
    Delete {
        #[command(flatten)]
        address: AddressArgs,
        accessor: String,
    },
}

pub async fn run(command: AclCommand) -> Result<i32, CliError> {
    match command {
        AclCommand::Bootstrap { address } => {
            let client = address.client()?;
            let token: Value = client
                .put("/v1/acl/bootstrap", &[], &json!({}))
                .await?
                .map_err(|f| CliError::new(format!("Error bootstrapping: {}", f.message)))?;
            println!("{}", show_token(&token));
            Ok(0)
        }
        AclCommand::Policy(c) => policy(c).await,
        AclCommand::Token(c) => token(c).await,
    }
}

async fn policy(command: PolicyCommand) -> Result<i32, CliError> {
    match command {
        PolicyCommand::Apply {
            address,
            description,
            name,
            file,
        } => {
            let rules = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| CliError::new(format!("Error reading rules from stdin: {e}")))?;
                text
            } else {
                std::fs::read_to_string(&file).map_err(|e| {
                    CliError::new(format!("Error reading rules file {}: {e}", file.display()))
                })?
            };
            let client = address.client()?;
            let body = json!({"Name": name, "Description": description, "Rules": rules});
            client
                .write(
                    reqwest::Method::PUT,
                    &format!("/v1/acl/policy/{}", escape_segment(&name)),
                    Some(&body),
                )
                .await?
                .map_err(|f| CliError::new(format!("Error writing ACL policy: {}", f.message)))?;
            println!("Successfully wrote {name:?} ACL policy!");
            Ok(0)
        }
        PolicyCommand::List { address } => {
            let list: Vec<Value> = get(&address.client()?, "/v1/acl/policies", "policies").await?;
            if list.is_empty() {
                println!("No policies found");
                return Ok(0);
            }
            let mut rows = vec![vec!["Name".to_string(), "Description".to_string()]];
            rows.extend(
                list.iter()
                    .map(|p| vec![text(&p["Name"]), text(&p["Description"])]),
            );
            println!("{}", table(&rows));
            Ok(0)
        }
        PolicyCommand::Info { address, name } => {
            let p: Value = get(
                &address.client()?,
                &format!("/v1/acl/policy/{}", escape_segment(&name)),
                "policy",
            )
            .await?;
            println!(
                "{}",
                kv(&[
                    ("Name", text(&p["Name"])),
                    ("Description", text(&p["Description"])),
                    ("CreateIndex", p["CreateIndex"].to_string()),
                    ("ModifyIndex", p["ModifyIndex"].to_string()),
                ])
            );
            println!("\nRules\n\n{}", text(&p["Rules"]).trim_end());
            Ok(0)
        }
        PolicyCommand::Delete { address, name } => {
            address
                .client()?
                .write(
                    reqwest::Method::DELETE,
                    &format!("/v1/acl/policy/{}", escape_segment(&name)),
                    None,
                )
                .await?
                .map_err(|f| CliError::new(format!("Error deleting ACL policy: {}", f.message)))?;
            println!("Successfully deleted {name:?} ACL policy!");
            Ok(0)
        }
    }
}

async fn token(command: TokenCommand) -> Result<i32, CliError> {
    match command {
        TokenCommand::Create {
            address,
            name,
            kind,
            policies,
            ttl,
        } => {
            let policies: Vec<String> = policies
                .iter()
                .flat_map(|p| p.split(','))
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            let mut body = json!({"Name": name, "Type": kind, "Policies": policies});
            if let Some(ttl) = ttl {
                body["ExpirationTTL"] = json!(ttl);
            }
            let token: Value = address
                .client()?
                .put("/v1/acl/token", &[], &body)
                .await?
                .map_err(|f| CliError::new(format!("Error creating token: {}", f.message)))?;
            println!("{}", show_token(&token));
            Ok(0)
        }
        TokenCommand::List { address } => {
            let list: Vec<Value> = get(&address.client()?, "/v1/acl/tokens", "tokens").await?;
            let now = time::OffsetDateTime::now_utc();
            let mut rows = vec![["Name", "Type", "Global", "Accessor ID", "Expired"]
                .map(String::from)
                .to_vec()];
            rows.extend(list.iter().map(|t| {
                let expired = t["ExpirationTime"]
                    .as_str()
                    .and_then(|s| {
                        time::OffsetDateTime::parse(
                            s,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .is_some_and(|at| at <= now);
                vec![
                    text(&t["Name"]),
                    text(&t["Type"]),
                    t["Global"].as_bool().unwrap_or(false).to_string(),
                    text(&t["AccessorID"]),
                    expired.to_string(),
                ]
            }));
            println!("{}", table(&rows));
            Ok(0)
        }
        TokenCommand::Info { address, accessor } => {
            let t: Value = get(
                &address.client()?,
                &format!("/v1/acl/token/{}", escape_segment(&accessor)),
                "token",
            )
            .await?;
            println!("{}", show_token(&t));
            Ok(0)
        }
        TokenCommand::Own { address } => {
            let t: Value = get(&address.client()?, "/v1/acl/token/self", "token").await?;
            println!("{}", show_token(&t));
            Ok(0)
        }
        TokenCommand::Delete { address, accessor } => {
            address
                .client()?
                .write(
                    reqwest::Method::DELETE,
                    &format!("/v1/acl/token/{}", escape_segment(&accessor)),
                    None,
                )
                .await?
                .map_err(|f| CliError::new(format!("Error deleting token: {}", f.message)))?;
            println!("Token {accessor} successfully deleted");
            Ok(0)
        }
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    what: &str,
) -> Result<T, CliError> {
    client
        .get(path, &[])
        .await?
        .map_err(|f| CliError::new(format!("Error reading {what}: {}", f.message)))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A token the way `nomad acl token info` prints it.
fn show_token(t: &Value) -> String {
    let list = |v: &Value| match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(text).collect::<Vec<_>>().join(", "),
        _ => "n/a".to_string(),
    };
    let secret = match t["SecretID"].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<hidden: only its hash is stored>".to_string(),
    };
    let expiry = match t["ExpirationTime"].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".to_string(),
    };
    kv(&[
        ("Accessor ID", text(&t["AccessorID"])),
        ("Secret ID", secret),
        ("Name", text(&t["Name"])),
        ("Type", text(&t["Type"])),
        ("Global", t["Global"].as_bool().unwrap_or(false).to_string()),
        ("Create Time", text(&t["CreateTime"])),
        ("Expiry Time", expiry),
        ("Create Index", t["CreateIndex"].to_string()),
        ("Modify Index", t["ModifyIndex"].to_string()),
        ("Policies", list(&t["Policies"])),
        ("Roles", "n/a".to_string()),
    ])
}
