//! Who a UI request is and what it may see and do. The UI has no auth of its own: every
//! page and form is authorised as the API route it mirrors (`api::auth::need` for that
//! route, `api::auth::check`), with the caller `api::auth::identify` resolves from the same
//! headers (`X-Nomad-Token` / `Authorization: Bearer`, else the `anonymous` policy). A page
//! the caller may not read answers 403 naming what is missing; what a page shows (the jobs
//! listed, the buttons, the logs and files sections) follows the caller's `Grants`.

use axum::http::{HeaderMap, Method};
use serde::Serialize;

use crate::api::auth::{self, Identity, Need};
use crate::api::AppState;
use crate::api::Query;
use crate::state::acl::Caller;

/// The UI routes and the API routes they are authorised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/ui/jobs`: `GET /v1/jobs`.
    Jobs,
    /// `/ui/jobs/<id>` (a job or a child): `GET /v1/job/<id>`.
    Job(&'a str),
    /// `/ui/cluster`: `GET /v1/agent/self`.
    Cluster,
    /// `POST /ui/jobs/<id>/dispatch`: `POST /v1/job/<id>/dispatch`.
    Dispatch(&'a str),
    /// `POST /ui/jobs/<child>/stop`: `DELETE /v1/job/<child>`.
    Stop(&'a str),
    /// `/ui/live?topic=...`: `read-job` on every job a topic names; a topic without a key
    /// (the jobs page's `Job`) needs it on some job and carries only the jobs it may read.
    Live(&'a [String]),
}

impl Route<'_> {
    /// What the route needs (the API's own rule for the route it mirrors).
    pub fn needs(&self) -> Vec<Need> {
        let none = Query::parse(None);
        let api = |method: Method, route: &str, rest: &str| auth::need(&method, route, rest, &none);
        match self {
            Route::Jobs => vec![api(Method::GET, "/v1/jobs", "")],
            Route::Job(id) => vec![api(Method::GET, "/v1/job/{*id}", id)],
            Route::Cluster => vec![api(Method::GET, "/v1/agent/self", "")],
            Route::Dispatch(id) => vec![api(
                Method::POST,
                "/v1/job/{*id}",
                &format!("{id}/dispatch"),
            )],
            Route::Stop(id) => vec![api(Method::DELETE, "/v1/job/{*id}", id)],
            Route::Live(topics) => {
                let mut needs: Vec<Need> = topics
                    .iter()
                    .filter_map(|t| t.split_once(':'))
                    .filter(|(_, key)| !key.is_empty() && *key != "*")
                    .map(|(_, key)| Need::Job(key.to_string(), auth::READ_JOB))
                    .collect();
                let unkeyed = topics.is_empty()
                    || topics.iter().any(|t| {
                        t.split_once(':')
                            .is_none_or(|(_, k)| k.is_empty() || k == "*")
                    });
                if unkeyed {
                    needs.push(Need::SomeJob("read-job"));
                }
                needs
            }
        }
    }
}

/// The caller of one UI request.
#[derive(Debug, Clone)]
pub struct Viewer {
    identity: Identity,
}

/// What the page header shows about the caller.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    /// ACLs are on: the token field is shown.
    pub enabled: bool,
    /// The request carried a token (the script fetched the page with the stored one).
    pub token: bool,
    /// Who the caller is, for the header.
    pub who: String,
}

/// The buttons and sections a page may offer (cosmetic: every form handler checks again).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Can {
    pub dispatch: bool,
    pub stop: bool,
    pub logs: bool,
    pub files: bool,
}

impl Viewer {
    pub fn of(app: &AppState, headers: &HeaderMap) -> Viewer {
        Viewer {
            identity: auth::identify(app, headers),
        }
    }

    /// Everyone, with ACLs off.
    pub fn everyone() -> Viewer {
        Viewer {
            identity: auth::identify_disabled(),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The first need of `route` the caller lacks, with the refusal's text.
    pub fn refusal(&self, app: &AppState, route: &Route) -> Option<(Need, &'static str)> {
        route.needs().into_iter().find_map(|need| {
            auth::check(app, &self.identity, &need)
                .err()
                .map(|m| (need, m))
        })
    }

    fn job(&self, id: &str, caps: &[&str]) -> bool {
        if !self.identity.acl_enabled {
            return true;
        }
        let grants = self.identity.grants();
        caps.iter().any(|c| grants.job(id, c))
    }

    /// Whether a list shows `job_id`.
    pub fn may_list(&self, job_id: &str) -> bool {
        self.identity.may_list(job_id)
    }

    /// Whether the live feed carries an event about `job_id`.
    pub fn may_read(&self, job_id: &str) -> bool {
        self.job(job_id, auth::READ_JOB)
    }

    /// On a job's page.
    pub fn on_job(&self, id: &str) -> Can {
        Can {
            dispatch: self.job(id, auth::DISPATCH),
            stop: false,
            logs: false,
            files: false,
        }
    }

    /// On a child's page (`Dispatch again` dispatches its parent).
    pub fn on_child(&self, id: &str, parent: &str) -> Can {
        Can {
            dispatch: self.job(parent, auth::DISPATCH),
            stop: self.job(id, auth::DEREGISTER),
            logs: self.job(id, auth::LOGS),
            files: self.job(id, auth::FS),
        }
    }

    /// Elsewhere: no job, no buttons (everything with ACLs off).
    pub fn anywhere(&self) -> Can {
        let all = !self.identity.acl_enabled;
        Can {
            dispatch: all,
            stop: all,
            logs: all,
            files: all,
        }
    }

    pub fn access(&self) -> Access {
        let who = match &self.identity.caller {
            Caller::Token { token, .. } => format!(
                "Token: {} ({})",
                if token.name.is_empty() {
                    &token.accessor_id
                } else {
                    &token.name
                },
                if token.management {
                    "management"
                } else {
                    "client"
                }
            ),
            Caller::Expired => "Token expired: anonymous".into(),
            Caller::Anonymous(_) if self.identity.secret.is_some() => {
                "Unknown token: anonymous".into()
            }
            Caller::Anonymous(_) => "Anonymous".into(),
        };
        Access {
            enabled: self.identity.acl_enabled,
            token: self.identity.secret.is_some(),
            who,
        }
    }
}
