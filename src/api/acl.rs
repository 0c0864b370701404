//! `/v1/acl/...`: bootstrap, policies and tokens, in Nomad's wire shapes (python-nomad's
//! `n.acl` and Nomad's Go `api` read them). Who may call what was decided at the edge
//! (`auth`); these handlers only decode, send the command, and encode.

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::auth::Identity;
use super::error::ApiError;
use super::jobs::field;
use super::query::{json_reply, Query};
use super::AppState;
use crate::acl::token::{go_duration, parse_ttl};
use crate::acl::{Policy, Token};
use crate::state::acl::{AclCommand, AclReply, Caller};
use crate::state::{Command, Reply};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A token as Nomad sends it (`SecretID` only when the caller may see it: at creation, and
/// to the token itself).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenWire {
    #[serde(rename = "AccessorID")]
    accessor_id: String,
    #[serde(rename = "SecretID", skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
    name: String,
    r#type: &'static str,
    policies: Option<Vec<String>>,
    roles: Option<Vec<Value>>,
    global: bool,
    hash: String,
    create_time: String,
    expiration_time: Option<String>,
    #[serde(rename = "ExpirationTTL")]
    expiration_ttl: String,
    create_index: u64,
    modify_index: u64,
}

impl TokenWire {
    fn of(t: &Token, secret: Option<String>) -> TokenWire {
        TokenWire {
            accessor_id: t.accessor_id.clone(),
            secret_id: secret,
            name: t.name.clone(),
            r#type: t.kind(),
            policies: (!t.management).then(|| t.policies.clone()),
            roles: None,
            global: true,
            hash: b64(&t.content_hash()),
            create_time: rfc3339(t.create_time),
            expiration_time: t.expiration_time.map(rfc3339),
            expiration_ttl: t.expiration_ttl.map(go_duration).unwrap_or_default(),
            create_index: t.create_index,
            modify_index: t.modify_index,
        }
    }

    /// Nomad's pseudo-tokens: `anonymous`, and `acls-disabled` when ACLs are off (the web
    /// UI reads `AccessorID == "acls-disabled"` as "ACLs off").
    fn pseudo(
        accessor: &str,
        name: &str,
        kind: &'static str,
        policies: Option<Vec<String>>,
    ) -> TokenWire {
        TokenWire {
            accessor_id: accessor.into(),
            secret_id: None,
            name: name.into(),
            r#type: kind,
            policies,
            roles: None,
            global: false,
            hash: String::new(),
            create_time: rfc3339(0),
            expiration_time: None,
            expiration_ttl: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyStub {
    name: String,
    description: String,
    #[serde(rename = "JobACL")]
    job_acl: Option<Value>,
    hash: String,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyWire {
    name: String,
    description: String,
    rules: String,
    #[serde(rename = "RulesJSON")]
    rules_json: crate::acl::Rules,
    #[serde(rename = "JobACL")]
    job_acl: Option<Value>,
    hash: String,
    create_index: u64,
    modify_index: u64,
}

fn stub(p: &Policy) -> PolicyStub {
    PolicyStub {
        name: p.name.clone(),
        description: p.description.clone(),
        job_acl: None,
        hash: b64(&p.content_hash()),
        create_index: p.create_index,
        modify_index: p.modify_index,
    }
}

fn disabled(identity: &Identity) -> Result<(), ApiError> {
    if identity.acl_enabled {
        Ok(())
    } else {
        Err(ApiError::BadRequest("ACL support disabled".into()))
    }
}

async fn run(app: &AppState, command: AclCommand) -> Result<AclReply, ApiError> {
    match app.state.apply(Command::Acl(command)).await? {
        Reply::Acl(reply) => Ok(reply),
        _ => Err(ApiError::Internal(
            "an ACL command answered with another reply".into(),
        )),
    }
}

/// An empty 200 with the write's index, as Nomad answers policy writes.
fn written(index: u64) -> Response {
    let mut response = axum::http::StatusCode::OK.into_response();
    if let Ok(v) = index.to_string().parse() {
        response.headers_mut().insert("x-nomad-index", v);
    }
    response
}

fn token_reply(reply: AclReply, query: &Query, app: &AppState) -> Result<Response, ApiError> {
    match reply {
        AclReply::Token { token, secret } => Ok(json_reply(
            &TokenWire::of(&token, Some(secret)),
            token.modify_index,
            query.flag("pretty")?,
        )),
        AclReply::Written { index } => Ok(written(index)),
        AclReply::Unchanged => Ok(written(app.state.committed_index())),
    }
}

/// `POST|PUT /v1/acl/bootstrap` (optional `{"BootstrapSecret": "<uuid>"}`).
pub async fn bootstrap(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method != Method::PUT && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    let secret = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("failed to decode request body: {e}")))?;
        field(&v, "BootstrapSecret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(s) = &secret {
        if uuid::Uuid::parse_str(s).is_err() {
            return Err(ApiError::BadRequest("invalid acl token".into()));
        }
    }
    let secret = secret.unwrap_or_else(crate::acl::token::new_uuid);
    let reply = run(&app, AclCommand::Bootstrap { secret }).await?;
    token_reply(reply, &query, &app)
}

/// `GET /v1/acl/policies`: every policy for management, the caller's own otherwise.
pub async fn policies(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    let prefix = query.get("prefix").unwrap_or_default().to_string();
    let own: Option<Vec<String>> = match &identity.caller {
        Caller::Token { token, grants } if !grants.is_management() => Some(token.policies.clone()),
        Caller::Token { .. } => None,
        _ => Some(vec![crate::state::acl::ANONYMOUS.to_string()]),
    };
    let (list, index) = {
        let s = app.state.read();
        let list: Vec<PolicyStub> = s
            .acl()
            .policies()
            .filter(|p| p.name.starts_with(&prefix))
            .filter(|p| own.as_ref().is_none_or(|own| own.contains(&p.name)))
            .map(stub)
            .collect();
        (list, s.index())
    };
    Ok(json_reply(&list, index, query.flag("pretty")?))
}

/// `GET|POST|PUT|DELETE /v1/acl/policy/:name`.
pub async fn policy(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    if name.is_empty() {
        return Err(ApiError::BadRequest("Missing Policy Name".into()));
    }
    match method {
        Method::GET => {
            let (wire, index) = {
                let s = app.state.read();
                let p = s
                    .acl()
                    .policy(&name)
                    .ok_or_else(|| ApiError::NotFound("ACL policy not found".into()))?;
                (
                    PolicyWire {
                        name: p.name.clone(),
                        description: p.description.clone(),
                        rules: p.rules.clone(),
                        rules_json: p.parsed.clone(),
                        job_acl: None,
                        hash: b64(&p.content_hash()),
                        create_index: p.create_index,
                        modify_index: p.modify_index,
                    },
                    p.modify_index,
                )
            };
            Ok(json_reply(&wire, index, query.flag("pretty")?))
        }
        Method::PUT | Method::POST => {
            if body.is_empty() {
                return Err(ApiError::BadRequest("Request body is empty".into()));
            }
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("failed to decode request body: {e}")))?;
            let string = |key: &str| -> Result<String, ApiError> {
                match field(&v, key) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(ApiError::BadRequest(format!(
                        "{key} must be a string, got {other}"
                    ))),
                }
            };
            let body_name = string("Name")?;
            if !body_name.is_empty() && body_name != name {
                return Err(ApiError::BadRequest(
                    "ACL policy name does not match request path".into(),
                ));
            }
            let command = AclCommand::UpsertPolicy {
                name,
                description: string("Description")?,
                rules: string("Rules")?,
            };
            let reply = run(&app, command).await;
            match reply {
                Ok(reply) => token_reply(reply, &query, &app),
                Err(ApiError::State(crate::state::StateError::Acl(why))) => {
                    Err(ApiError::BadRequest(format!("policy 0 invalid: {why}")))
                }
                Err(e) => Err(e),
            }
        }
        Method::DELETE => {
            let reply = run(&app, AclCommand::DeletePolicy { name }).await?;
            token_reply(reply, &query, &app)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// `GET /v1/acl/tokens`.
pub async fn tokens(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    let prefix = query.get("prefix").unwrap_or_default().to_string();
    let (list, index) = {
        let s = app.state.read();
        let list: Vec<TokenWire> = s
            .acl()
            .tokens()
            .filter(|t| t.accessor_id.starts_with(&prefix))
            .map(|t| TokenWire::of(t, None))
            .collect();
        (list, s.index())
    };
    Ok(json_reply(&list, index, query.flag("pretty")?))
}

/// `POST|PUT /v1/acl/token`: create a token.
pub async fn create_token(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method != Method::PUT && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    if body.is_empty() {
        return Err(ApiError::BadRequest("Request body is empty".into()));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("failed to decode request body: {e}")))?;
    let invalid = |why: String| ApiError::BadRequest(format!("token 0 invalid: {why}"));
    if field(&v, "AccessorID")
        .and_then(Value::as_str)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::BadRequest(
            "updating a token is not supported: create a new token and delete the old one".into(),
        ));
    }
    let name = match field(&v, "Name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(invalid(format!("Name must be a string, got {other}"))),
    };
    let management = match field(&v, "Type")
        .and_then(Value::as_str)
        .unwrap_or("client")
    {
        "client" | "" => false,
        "management" => true,
        _ => return Err(invalid("token type must be client or management".into())),
    };
    let policies: Vec<String> = match field(&v, "Policies") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("Policies must be names, got {p}")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(invalid(format!("Policies must be a list, got {other}"))),
    };
    let ttl = parse_ttl(field(&v, "ExpirationTTL").unwrap_or(&Value::Null)).map_err(invalid)?;
    let command = AclCommand::CreateToken {
        name,
        management,
        policies,
        ttl,
    };
    let reply = run(&app, command).await?;
    token_reply(reply, &query, &app)
}

/// `GET /v1/acl/token/self`: the caller's token (the anonymous or `acls-disabled`
/// pseudo-token when there is none).
pub async fn token_self(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let index = app.state.committed_index();
    let wire = if !identity.acl_enabled {
        TokenWire::pseudo("acls-disabled", "ACLs disabled token", "management", None)
    } else {
        match &identity.caller {
            Caller::Token { token, .. } => TokenWire::of(token, identity.secret.clone()),
            _ => TokenWire::pseudo(
                "anonymous",
                "Anonymous Token",
                "client",
                Some(vec![crate::state::acl::ANONYMOUS.to_string()]),
            ),
        }
    };
    Ok(json_reply(&wire, index, query.flag("pretty")?))
}

/// `GET|DELETE /v1/acl/token/:accessor` (`POST` = update, not supported).
pub async fn token(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    Path(accessor): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    disabled(&identity)?;
    let query = Query::parse(raw.as_deref());
    if accessor.is_empty() {
        return Err(ApiError::BadRequest("Missing Token Accessor".into()));
    }
    match method {
        Method::GET => {
            let (wire, index) = {
                let s = app.state.read();
                let t = s
                    .acl()
                    .token(&accessor)
                    .ok_or_else(|| ApiError::NotFound("ACL token not found".into()))?;
                (TokenWire::of(t, None), t.modify_index)
            };
            Ok(json_reply(&wire, index, query.flag("pretty")?))
        }
        Method::DELETE => {
            let reply = run(&app, AclCommand::DeleteToken { accessor }).await?;
            token_reply(reply, &query, &app)
        }
        Method::PUT | Method::POST => Err(ApiError::BadRequest(
            "updating a token is not supported: create a new token and delete the old one".into(),
        )),
        _ => Err(ApiError::MethodNotAllowed),
    }
}
