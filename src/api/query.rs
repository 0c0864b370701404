//! Query-string conventions shared by every endpoint: Go-style booleans, `?pretty`,
//! blocking queries (`?index=&wait=`), and the `X-Nomad-*` reply headers.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// Parsed query parameters (last value wins for repeated keys).
#[derive(Debug, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(raw) = raw {
            for (k, v) in form_urlencoded_pairs(raw) {
                map.insert(k, v);
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A Go `ParseBool` flag; a present key with an empty value (`?pretty`) is true.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("") => Ok(true),
            Some(v) => parse_go_bool(v).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Failed to parse value of {key:?} ({v}): expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"
                ))
            }),
        }
    }

    /// `?index=N&wait=D`: the index to wait past and how long to wait at most.
    pub fn blocking(&self) -> Result<Option<(u64, Duration)>, ApiError> {
        let Some(index) = self.get("index") else {
            return Ok(None);
        };
        let index: u64 = index.parse().map_err(|_| {
            ApiError::BadRequest(format!("Invalid index {index:?}: expected a whole number"))
        })?;
        let wait = match self.get("wait") {
            None | Some("") => DEFAULT_WAIT,
            Some(w) => crate::spec::parse_go_duration(w)
                .map(|ns| Duration::from_nanos(ns.max(0) as u64))
                .map_err(|e| ApiError::BadRequest(format!("Invalid wait time {w:?}: {e}")))?,
        };
        let wait = wait.min(MAX_WAIT);
        // Nomad adds up to wait/16 of jitter so that many waiters do not wake together.
        let jitter = wait.as_millis() as u64 / 16;
        let jitter = if jitter > 0 {
            rand::random::<u64>() % jitter
        } else {
            0
        };
        Ok(Some((index, wait + Duration::from_millis(jitter))))
    }
}

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Every `key=value` pair of a raw query, decoded, in order (repeated keys kept).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded_pairs(raw.unwrap_or("")).collect()
}

fn form_urlencoded_pairs(raw: &str) -> impl Iterator<Item = (String, String)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decode `%XX` escapes and `+` (form encoding) in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON reply with Nomad's headers. `index` goes into `X-Nomad-Index`.
pub fn json_reply<T: Serialize>(value: &T, index: u64, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return ApiError::Internal(format!("encoding reply: {e}")).into_response(),
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-nomad-index", HeaderValue::from(index.max(1)));
    headers.insert("x-nomad-knownleader", HeaderValue::from_static("true"));
    headers.insert("x-nomad-lastcontact", HeaderValue::from_static("0"));
    (StatusCode::OK, headers, body).into_response()
}
