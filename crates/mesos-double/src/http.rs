//! The master's HTTP face: `POST /api/v1/scheduler` (Basic authentication, leadership 307/503,
//! method, Content-Type, body decoding, required fields, call type, stream ID and framework
//! checks, in the real master's order and with its messages: captures `json/01`-`06`,
//! `calls.jsonl`) and `GET /master/redirect` (`master-redirect.json`). A valid call is handed
//! to the allocator, the agents or the stream; every call is recorded as received and answered.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine;
use serde_json::Value;

use crate::agent::{acknowledge, kill, reconcile};
use crate::allocator::{accept, decline};
use crate::codec::{decode_protobuf_call, negotiate, JSON, PROTOBUF};
use crate::config::Config;
use crate::files;
use crate::state::{Leadership, RecordedCall, Shared};
use crate::stream::subscribe;
use crate::validate::{json_parse_error, missing_required};
use crate::{feedback, framework, maintenance};

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

// ---------------------------------------------------------------- handling

pub(crate) async fn redirect(AxState(st): AxState<Shared>) -> Response {
    let s = st.lock();
    match &s.leadership {
        Leadership::Leading => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{}", s.addr))],
        )
            .into_response(),
        Leadership::RedirectTo(a) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{a}"))],
        )
            .into_response(),
        Leadership::NoLeader => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

pub(crate) async fn scheduler(
    AxState(st): AxState<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut rec = RecordedCall {
        method: method.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
        call: None,
        call_type: None,
        status: 0,
        response_body: String::new(),
    };
    let hold = {
        let kind = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["type"].as_str().map(String::from));
        let s = st.lock();
        s.cfg
            .slow_calls
            .iter()
            .find(|(k, _)| kind.as_deref() == Some(*k))
            .map(|(_, d)| *d)
    };
    if let Some(d) = hold {
        tokio::time::sleep(d).await;
    }
    let (resp, body_text) = handle(&st, &method, &headers, &body, &mut rec);
    rec.status = resp.status().as_u16();
    rec.response_body = body_text;
    st.lock().calls.push(rec);
    resp
}

pub(crate) fn err(status: StatusCode, msg: impl Into<String>) -> (Response, String) {
    let m = msg.into();
    (text(status, m.clone()), m)
}

pub(crate) fn handle(
    st: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    rec: &mut RecordedCall,
) -> (Response, String) {
    let Ok(principal) = authenticate(&st.lock().cfg, headers) else {
        let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"mesos\"")];
        return (
            (StatusCode::UNAUTHORIZED, challenge).into_response(),
            String::new(),
        );
    };
    {
        let s = st.lock();
        match &s.leadership {
            Leadership::Leading => {}
            Leadership::RedirectTo(a) => {
                let loc = format!("//{a}/api/v1/scheduler");
                return (
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, loc)]).into_response(),
                    String::new(),
                );
            }
            Leadership::NoLeader => {
                return err(StatusCode::SERVICE_UNAVAILABLE, "No leader elected");
            }
        }
    }
    if method != Method::POST {
        let m = format!("Expecting one of {{ 'POST' }}, but received '{method}'");
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, m.clone());
        r.headers_mut()
            .insert(header::ALLOW, "POST".parse().unwrap());
        return (r, m);
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return err(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        );
    };
    let ct = ct.to_str().unwrap_or("");
    if let Some(only) = st.lock().cfg.only_encoding {
        if ct != only.content_type() {
            return err(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Expecting 'Content-Type' of {}", only.content_type()),
            );
        }
    }
    let call = match ct {
        JSON => match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Failed to parse body into JSON: {}",
                        json_parse_error(body, &e)
                    ),
                )
            }
        },
        PROTOBUF => match decode_protobuf_call(body) {
            Ok(v) => v,
            Err(e) => return err(StatusCode::BAD_REQUEST, e),
        },
        _ => {
            return err(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            )
        }
    };
    rec.call = Some(call.clone());
    if !call.is_object() {
        return err(
            StatusCode::BAD_REQUEST,
            "Failed to convert JSON into Call protobuf: Expecting a JSON object",
        );
    }
    let missing = missing_required(&call);
    if !missing.is_empty() {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "Failed to convert JSON into Call protobuf: Missing required fields: {}",
                missing.join(", ")
            ),
        );
    }
    const TYPES: &[&str] = &[
        "UNKNOWN",
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "RECONCILE",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE_OPERATIONS",
        "UPDATE_FRAMEWORK",
    ];
    // An unknown enum name in an optional field is dropped silently.
    let typ = call["type"].as_str().filter(|t| TYPES.contains(t));
    let Some(typ) = typ else {
        return err(
            StatusCode::BAD_REQUEST,
            "Failed to validate scheduler::Call: Expecting 'type' to be present",
        );
    };
    rec.call_type = Some(typ.to_string());
    if typ == "UNKNOWN" {
        return err(
            StatusCode::NOT_IMPLEMENTED,
            "Received an unexpected 'UNKNOWN' call",
        );
    }
    let v = |m: &str| format!("Failed to validate scheduler::Call: {m}");
    if typ == "SUBSCRIBE" {
        if call["subscribe"].is_null() {
            return err(
                StatusCode::BAD_REQUEST,
                v("Expecting 'subscribe' to be present"),
            );
        }
        let info_id = call["subscribe"]["framework_info"]["id"]["value"].as_str();
        let call_id = call["framework_id"]["value"].as_str();
        if (info_id.is_some() || call_id.is_some()) && info_id != call_id {
            return err(
                StatusCode::BAD_REQUEST,
                v("'framework_id' differs from 'subscribe.framework_info.id'"),
            );
        }
        let accept = headers
            .get(header::ACCEPT)
            .map(|a| a.to_str().unwrap_or(""));
        let only = st.lock().cfg.only_encoding;
        let Some(encoding) = negotiate(accept, only) else {
            return err(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow application/json or application/x-protobuf",
            );
        };
        if headers.contains_key("mesos-stream-id") {
            return err(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        return (
            subscribe(st, &call, encoding, principal.as_deref()),
            String::new(),
        );
    }
    let Some(fid) = call["framework_id"]["value"].as_str() else {
        return err(
            StatusCode::BAD_REQUEST,
            v("Expecting 'framework_id' to be present"),
        );
    };
    let payload = match typ {
        "ACCEPT" => Some("accept"),
        "DECLINE" => Some("decline"),
        "KILL" => Some("kill"),
        "SHUTDOWN" => Some("shutdown"),
        "ACKNOWLEDGE" => Some("acknowledge"),
        "RECONCILE" => Some("reconcile"),
        "MESSAGE" => Some("message"),
        "REQUEST" => Some("request"),
        "ACCEPT_INVERSE_OFFERS" => Some("accept_inverse_offers"),
        "DECLINE_INVERSE_OFFERS" => Some("decline_inverse_offers"),
        "ACKNOWLEDGE_OPERATION_STATUS" => Some("acknowledge_operation_status"),
        "RECONCILE_OPERATIONS" => Some("reconcile_operations"),
        "UPDATE_FRAMEWORK" => Some("update_framework"),
        _ => None,
    };
    if let Some(p) = payload {
        if call[p].is_null() {
            return err(
                StatusCode::BAD_REQUEST,
                v(&format!("Expecting '{p}' to be present")),
            );
        }
    }
    if typ == "ACKNOWLEDGE" {
        let u = call["acknowledge"]["uuid"].as_str().unwrap_or("");
        let ok = base64::engine::general_purpose::STANDARD
            .decode(u)
            .is_ok_and(|b| b.len() == 16);
        if !ok {
            return err(
                StatusCode::BAD_REQUEST,
                v("Invalid UUID: not 16 bytes of base64"),
            );
        }
    }
    let mut s = st.lock();
    let Some(fw) = s.framework.as_ref().filter(|f| f.id == fid) else {
        drop(s);
        return err(StatusCode::BAD_REQUEST, "Framework cannot be found");
    };
    if let Some(m) = principal_mismatch(principal.as_deref(), &fw.info) {
        drop(s);
        return err(StatusCode::BAD_REQUEST, m);
    }
    let Some(stream) = fw.stream.as_ref().filter(|x| !x.is_closed()) else {
        drop(s);
        return err(StatusCode::FORBIDDEN, "Framework is not subscribed");
    };
    let Some(sid) = headers.get("mesos-stream-id") else {
        drop(s);
        return err(
            StatusCode::BAD_REQUEST,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        );
    };
    let sid = sid.to_str().unwrap_or("");
    if sid != stream.stream_id {
        let m = format!(
            "The stream ID '{sid}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
        );
        drop(s);
        return err(StatusCode::BAD_REQUEST, m);
    }
    match typ {
        "ACCEPT" => accept(&mut s, &call["accept"]),
        "DECLINE" => decline(&mut s, &call["decline"]),
        "SUPPRESS" => s.suppress(&call["suppress"]),
        "REVIVE" => s.revive(&call["revive"]),
        "KILL" => kill(&mut s, &call["kill"]),
        "ACKNOWLEDGE" => acknowledge(&mut s, &call["acknowledge"]),
        "RECONCILE" => reconcile(&mut s, &call["reconcile"]),
        "ACCEPT_INVERSE_OFFERS" => {
            maintenance::answer_inverse_offers(&mut s, &call["accept_inverse_offers"], true)
        }
        "DECLINE_INVERSE_OFFERS" => {
            maintenance::answer_inverse_offers(&mut s, &call["decline_inverse_offers"], false)
        }
        "ACKNOWLEDGE_OPERATION_STATUS" => {
            if let Err(m) = feedback::acknowledge(&mut s, &call["acknowledge_operation_status"]) {
                drop(s);
                return err(StatusCode::BAD_REQUEST, v(&m));
            }
        }
        "RECONCILE_OPERATIONS" => feedback::reconcile(&mut s, &call["reconcile_operations"]),
        "TEARDOWN" => {
            s.teardowns += 1;
            s.remove_framework();
        }
        "UPDATE_FRAMEWORK" => {
            return match framework::update(&mut s, fid, &call["update_framework"]) {
                Ok(()) => (StatusCode::OK.into_response(), String::new()),
                Err(m) => {
                    drop(s);
                    err(StatusCode::BAD_REQUEST, m)
                }
            };
        }
        _ => {}
    }
    (StatusCode::ACCEPTED.into_response(), String::new())
}

/// HTTP Basic authentication of a scheduler call: the authenticated principal
/// (`None` without configured credentials), `Err` for a 401.
pub(crate) fn authenticate(cfg: &Config, headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some((principal, secret)) = cfg.credentials.as_ref() else {
        return Ok(None);
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"))
    );
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        Ok(Some(principal.clone()))
    } else {
        Err(())
    }
}

/// The authenticated principal must be the framework's `principal`.
pub(crate) fn principal_mismatch(authenticated: Option<&str>, info: &Value) -> Option<String> {
    let auth = authenticated?;
    let declared = info["principal"].as_str();
    (declared != Some(auth)).then(|| {
        format!(
            "Authenticated principal '{auth}' does not match principal '{}' set in `FrameworkInfo`",
            declared.unwrap_or("")
        )
    })
}

/// The master's and the agents' routes (one server plays both: offers' `url` points here).
pub(crate) fn router(st: Shared) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/master/redirect", any(redirect))
        .route("/files/browse", get(files::browse))
        .route("/files/read", get(files::read))
        .route("/double/agents", post(crate::control::add_agents))
        .route("/double/counters", get(crate::control::counters))
        .with_state(st)
}
