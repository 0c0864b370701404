//! The framework driver: one loop that keeps a subscription to the leading master alive and
//! translates between the cluster interface and scheduler calls/events.
//!
//! Life of a connection: SUBSCRIBE (the stored FrameworkID in the call and in
//! `framework_info.id`; `suppressed_roles` = our roles while nothing is pending) -> 200 and a
//! `Mesos-Stream-Id` -> SUBSCRIBED (the FrameworkID is made durable *before* the scheduler
//! hears of it, so nothing launches under an ID that could be lost) -> events until the stream
//! ends, breaks, carries ERROR, or stays silent for 5 heartbeat intervals -> reconnect after a
//! jittered exponential backoff.
//!
//! Calls go out on pooled connections with the current stream ID. Offer calls (ACCEPT,
//! DECLINE, SUPPRESS, REVIVE) go one at a time in the order made (`send_in_order`): a REVIVE
//! never overtakes the SUPPRESS or DECLINE before it. Acknowledgements, kills and
//! reconciliation go concurrently (at most `MAX_CALLS_IN_FLIGHT`).
//! While there is no subscription nothing is sent: an ACCEPT that could not be sent comes
//! back to the scheduler as TASK_DROPPED (like the master answers launches on invalid
//! offers), kills are repeated by the scheduler, acknowledgements are re-earned (agents resend
//! unacknowledged updates after a resubscribe), and reconciliation runs after every SUBSCRIBED.
//! An ERROR saying the framework "has been removed" forgets the stored FrameworkID, and the
//! next subscription registers anew.
//!
//! Invariant: no call is ever sent for a subscription that is not the current one, and
//! nothing launches under a FrameworkID that is not durable. The connection state (and every
//! event, heartbeats included) is recorded in metrics here, once.

use crate::cluster::fetch_urls::FileUrls;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::codec::Encoding;
use super::directory::{MesosDirectory, FRAMEWORK_ID_SETTING};
use super::json::{self, CallType, EventType};
use super::launch::{accept_call, release_volume_call, Reserver};
use super::master::{Masters, Subscription};
use super::recordio;
use super::settings::MesosSettings;
use crate::cluster::types::{
    DurationInfo, FrameworkId, Id, KillPolicy, Offer, TaskInfo, TaskState, TaskStatus,
};
use crate::cluster::{ClusterCall, ClusterEvent};

/// Name of the backend in logs and metrics.
pub const BACKEND: &str = "mesos";
/// Most calls in flight at once (HTTP connections to the master, besides the stream).
pub const MAX_CALLS_IN_FLIGHT: usize = 32;
/// Heartbeat interval when SUBSCRIBED does not say.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Missed heartbeats before the connection is considered dead.
const MISSED_HEARTBEATS: u32 = 5;
/// First wait before reconnecting (doubles up to `-mesos-max-backoff`).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Stores one setting (key, value) durably; resolves once it is on disk.
pub type PersistSetting =
    Arc<dyn Fn(String, String) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

pub struct Driver {
    pub settings: Arc<MesosSettings>,
    pub masters: Arc<Masters>,
    pub directory: Arc<MesosDirectory>,
    pub persist: PersistSetting,
    pub framework_id: Option<String>,
    pub events: UnboundedSender<ClusterEvent>,
    /// What the scheduler last asked for (SUPPRESS / REVIVE), carried into resubscriptions.
    pub suppressed: bool,
    /// Offers outstanding on the current subscription (launches look at what they carry).
    pub offers: HashMap<String, Offer>,
    /// Bounds the calls in flight (each is its own POST): a burst of acknowledgements must
    /// not open thousands of connections to the master.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Offer calls, sent in order by `send_in_order`.
    pub ordered: mpsc::UnboundedSender<OutgoingCall>,
    pub backoff: Duration,
}

/// Why a connection ended.
enum End {
    /// Try again after the backoff.
    Retry(String),
    /// The scheduler is gone: stop.
    Shutdown,
}

impl Driver {
    pub async fn run(mut self, mut calls: UnboundedReceiver<ClusterCall>) {
        loop {
            match self.connection(&mut calls).await {
                End::Shutdown => {
                    tracing::info!("scheduler gone; Mesos driver stops");
                    return;
                }
                End::Retry(reason) => {
                    self.directory.disconnected(&reason);
                    let wait = jitter(self.backoff);
                    tracing::warn!(
                        reason,
                        retry_in_ms = wait.as_millis() as u64,
                        "Mesos connection ended"
                    );
                    self.backoff = (self.backoff * 2).min(self.settings.max_backoff);
                    if !self.idle(&mut calls, wait).await {
                        return;
                    }
                }
            }
        }
    }

    /// Wait out the backoff, answering calls as a disconnected framework must.
    async fn idle(&mut self, calls: &mut UnboundedReceiver<ClusterCall>, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                call = calls.recv() => match call {
                    Some(call) => self.offline(call),
                    None => return false,
                },
            }
        }
    }

    /// New agent endpoints are stored in the background: offers are answered at once.
    fn remember_agents(&self, offers: &[Offer]) {
        for (key, url) in self.directory.learn(offers) {
            let store = (self.persist)(key, url);
            tokio::spawn(async move {
                if let Err(e) = store.await {
                    tracing::warn!("cannot store an agent's address: {e}");
                }
            });
        }
    }

    fn subscribe_body(&self) -> Result<Bytes, String> {
        let info = self.settings.framework_info(self.framework_id.as_deref());
        let suppressed = if self.suppressed {
            self.settings.roles.clone()
        } else {
            Vec::new()
        };
        let call = json::Call::subscribe(info, suppressed);
        self.settings
            .encoding
            .encode_call(&call)
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    }

    /// One subscription, from SUBSCRIBE to the end of its stream.
    async fn connection(&mut self, calls: &mut UnboundedReceiver<ClusterCall>) -> End {
        let body = match self.subscribe_body() {
            Ok(b) => b,
            Err(e) => return End::Retry(format!("cannot encode SUBSCRIBE: {e}")),
        };
        self.directory.connecting();
        let masters = self.masters.clone();
        let subscribing = masters.subscribe(body);
        tokio::pin!(subscribing);
        let sub: Subscription = loop {
            tokio::select! {
                result = &mut subscribing => match result {
                    Ok(sub) => break sub,
                    Err(e) => return End::Retry(format!("cannot subscribe: {e}")),
                },
                call = calls.recv() => match call {
                    Some(call) => self.offline(call),
                    None => return End::Shutdown,
                },
            }
        };
        tracing::info!(master = %sub.leader, encoding = self.settings.encoding.name(), "subscription stream open");
        crate::metrics::cluster_master(BACKEND, &sub.leader);
        self.stream(sub, calls).await
    }

    async fn stream(
        &mut self,
        sub: Subscription,
        calls: &mut UnboundedReceiver<ClusterCall>,
    ) -> End {
        let Subscription {
            mut response,
            stream_id,
            leader,
            ..
        } = sub;
        let encoding = self.settings.encoding;
        let mut decoder = recordio::Decoder::new();
        let mut subscribed = false;
        let mut silence_limit = DEFAULT_HEARTBEAT * MISSED_HEARTBEATS;
        let end = loop {
            tokio::select! {
                chunk = tokio::time::timeout(silence_limit, response.chunk()) => {
                    let bytes = match chunk {
                        Err(_) => break End::Retry(format!(
                            "no event from the master for {} s (heartbeats missed)",
                            silence_limit.as_secs())),
                        Ok(Err(e)) => break End::Retry(format!("the event stream broke: {e}")),
                        Ok(Ok(None)) => break End::Retry("the master closed the event stream".into()),
                        Ok(Ok(Some(bytes))) => bytes,
                    };
                    decoder.push(&bytes);
                    let was_subscribed = subscribed;
                    match self.drain(&mut decoder, encoding, &stream_id, &mut subscribed, &mut silence_limit).await {
                        Ok(()) => {}
                        Err(end) => break end,
                    }
                    if subscribed && !was_subscribed {
                        self.directory.subscribed(&leader);
                        crate::metrics::cluster_subscribed(BACKEND);
                    }
                }
                call = calls.recv() => match call {
                    Some(call) if subscribed => self.send(call, &stream_id),
                    Some(call) => self.offline(call),
                    None => break End::Shutdown,
                },
            }
        };
        // The master rescinds every offer of a disconnected framework.
        self.offers.clear();
        if subscribed {
            crate::metrics::cluster_disconnected(BACKEND);
            let reason = match &end {
                End::Retry(r) => r.clone(),
                End::Shutdown => "shutting down".into(),
            };
            let _ = self.events.send(ClusterEvent::Disconnected { reason });
        }
        end
    }

    /// Handle every complete record buffered.
    async fn drain(
        &mut self,
        decoder: &mut recordio::Decoder,
        encoding: Encoding,
        stream_id: &str,
        subscribed: &mut bool,
        silence_limit: &mut Duration,
    ) -> Result<(), End> {
        loop {
            let record = match decoder.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return Err(End::Retry(format!("broken RecordIO stream: {e}"))),
            };
            let event = match encoding.decode_event(&record) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("skipping an event that does not decode: {e}");
                    continue;
                }
            };
            crate::metrics::cluster_event(BACKEND);
            self.on_event(event, stream_id, subscribed, silence_limit)
                .await?;
        }
    }

    async fn on_event(
        &mut self,
        event: json::Event,
        stream_id: &str,
        subscribed: &mut bool,
        silence_limit: &mut Duration,
    ) -> Result<(), End> {
        match event.kind {
            EventType::Subscribed => {
                let Some(s) = event.subscribed else {
                    return Err(End::Retry("SUBSCRIBED without its payload".into()));
                };
                let id = s.framework_id.value;
                if self.framework_id.as_deref() != Some(id.as_str()) {
                    if let Err(e) = (self.persist)(FRAMEWORK_ID_SETTING.into(), id.clone()).await {
                        // Launching under an ID that could be lost would orphan tasks.
                        return Err(End::Retry(format!("cannot store the FrameworkID: {e}")));
                    }
                    tracing::info!(framework_id = %id, "registered with Mesos; FrameworkID stored");
                }
                self.framework_id = Some(id.clone());
                self.directory.set_framework_id(&id);
                let interval = s
                    .heartbeat_interval_seconds
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map_or(DEFAULT_HEARTBEAT, Duration::from_secs_f64);
                *silence_limit = interval * MISSED_HEARTBEATS;
                *subscribed = true;
                self.backoff = FIRST_BACKOFF;
                tracing::info!(framework_id = %id, stream_id, heartbeat_s = interval.as_secs_f64(), "subscribed");
                let _ = self
                    .events
                    .send(ClusterEvent::Subscribed { framework_id: id });
            }
            EventType::Offers => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                self.remember_agents(&offers);
                for o in &offers {
                    self.offers.insert(o.id.value.clone(), o.clone());
                }
                if !offers.is_empty() {
                    let _ = self.events.send(ClusterEvent::Offers(offers));
                }
            }
            EventType::Rescind => {
                if let Some(r) = event.rescind {
                    self.offers.remove(&r.offer_id.value);
                    let _ = self.events.send(ClusterEvent::Rescind(r.offer_id));
                }
            }
            EventType::Update => {
                if let Some(u) = event.update {
                    let _ = self.events.send(ClusterEvent::Update(u.status));
                }
            }
            EventType::Failure => {
                if let Some(f) = event.failure {
                    match (&f.executor_id, &f.agent_id) {
                        (Some(exec), agent) => tracing::info!(
                            executor = %exec, agent = ?agent.as_ref().map(|a| &a.value),
                            status = ?f.status, "executor exited"),
                        (None, Some(agent)) => tracing::warn!(agent = %agent, "agent removed"),
                        _ => {}
                    }
                }
            }
            EventType::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::error!(message, "the master refused or ended our subscription");
                if message.contains("has been removed") {
                    // Our framework was torn down (failover timeout or an operator): its
                    // tasks are gone. Register anew; reconciliation retries the lost work.
                    tracing::error!(
                        "FrameworkID {:?} is no longer known to Mesos; registering a new framework",
                        self.framework_id
                    );
                    if let Err(e) = (self.persist)(FRAMEWORK_ID_SETTING.into(), String::new()).await
                    {
                        tracing::error!("cannot forget the FrameworkID: {e}");
                    } else {
                        self.framework_id = None;
                    }
                }
                return Err(End::Retry(format!("master sent ERROR: {message}")));
            }
            EventType::Heartbeat => {
                tracing::trace!("heartbeat");
            }
            other => tracing::debug!(?other, "event ignored"),
        }
        Ok(())
    }

    fn framework(&self) -> Option<FrameworkId> {
        self.framework_id.as_deref().map(Id::new)
    }

    /// A call made while no subscription is live.
    fn offline(&mut self, call: ClusterCall) {
        match call {
            ClusterCall::Accept { tasks, .. } => {
                tracing::warn!(
                    tasks = tasks.len(),
                    "not subscribed: launch not sent, tasks dropped"
                );
                drop_tasks(
                    &self.events,
                    &tasks,
                    "not sent: Dispatch is not subscribed to a Mesos master",
                );
            }
            ClusterCall::Suppress => self.suppressed = true,
            ClusterCall::Revive => self.suppressed = false,
            // Declines: the master rescinded every offer when we disconnected. Kills are
            // repeated by the scheduler, acknowledged updates are resent by the agents, and
            // reconciliation follows every SUBSCRIBED.
            other => {
                tracing::debug!(call = ?std::mem::discriminant(&other), "not subscribed: call dropped")
            }
        }
    }

    /// Translate a call and POST it on its own task.
    fn send(&mut self, call: ClusterCall, stream_id: &str) {
        let Some(fid) = self.framework() else {
            self.offline(call);
            return;
        };
        let mut dropped_on_refusal: Vec<TaskInfo> = Vec::new();
        let roles = self.settings.roles.clone();
        let call = match call {
            ClusterCall::Accept {
                offer_ids,
                tasks,
                refuse_seconds,
            } => {
                dropped_on_refusal = tasks.clone();
                let offers: Vec<Offer> = offer_ids
                    .iter()
                    .filter_map(|id| self.offers.remove(&id.value))
                    .collect();
                let reserver = Reserver {
                    principal: self.settings.principal.clone(),
                    refinement: self.settings.has_capability("RESERVATION_REFINEMENT"),
                    alloc_dir: self.settings.alloc_dir.clone(),
                };
                accept_call(
                    &fid,
                    &offers,
                    offer_ids,
                    tasks,
                    refuse_seconds,
                    &FileUrls {
                        base: self.settings.advertise_url.clone(),
                        key: self.settings.fetch_key.clone(),
                    },
                    &reserver,
                )
            }
            ClusterCall::Decline {
                offer_ids,
                refuse_seconds,
            } => {
                for id in &offer_ids {
                    self.offers.remove(&id.value);
                }
                json::Call::decline(fid, offer_ids, refuse_seconds)
            }
            ClusterCall::ReleaseVolume {
                offer_id,
                volume,
                refuse_seconds,
            } => {
                self.offers.remove(&offer_id.value);
                tracing::info!(volume = ?volume.persistence_id(), "destroying a persistent volume and releasing its reservation");
                release_volume_call(&fid, offer_id, volume, refuse_seconds)
            }
            ClusterCall::Kill {
                task_id,
                agent_id,
                grace_ns,
            } => json::Call::kill(
                fid,
                json::Kill {
                    task_id,
                    agent_id,
                    kill_policy: grace_ns.map(|ns| KillPolicy {
                        grace_period: Some(DurationInfo { nanoseconds: ns }),
                    }),
                },
            ),
            ClusterCall::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => json::Call::acknowledge(
                fid,
                json::Acknowledge {
                    agent_id,
                    task_id,
                    uuid,
                },
            ),
            ClusterCall::Reconcile(list) => json::Call::reconcile(
                fid,
                list.into_iter()
                    .map(|(task_id, agent_id)| json::ReconcileTask { task_id, agent_id })
                    .collect(),
            ),
            ClusterCall::Suppress => {
                self.suppressed = true;
                json::Call::suppress(fid, roles)
            }
            ClusterCall::Revive => {
                self.suppressed = false;
                json::Call::revive(fid, roles)
            }
        };
        let body = match self.settings.encoding.encode_call(&call) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!("cannot encode {:?}: {e}", call.kind);
                drop_tasks(
                    &self.events,
                    &dropped_on_refusal,
                    &format!("cannot encode the launch: {e}"),
                );
                return;
            }
        };
        let outgoing = OutgoingCall {
            stream_id: stream_id.to_string(),
            body,
            kind: call.kind,
            dropped_on_refusal,
        };
        if matches!(
            outgoing.kind,
            CallType::Accept | CallType::Decline | CallType::Suppress | CallType::Revive
        ) {
            let _ = self.ordered.send(outgoing);
            return;
        }
        let masters = self.masters.clone();
        let events = self.events.clone();
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return;
            };
            outgoing.deliver(&masters, &events).await;
        });
    }
}

/// One encoded call on its way to the master.
pub struct OutgoingCall {
    stream_id: String,
    body: Bytes,
    kind: CallType,
    /// The tasks of an ACCEPT, reported TASK_DROPPED if the master refuses the call.
    dropped_on_refusal: Vec<TaskInfo>,
}

impl OutgoingCall {
    async fn deliver(self, masters: &Masters, events: &UnboundedSender<ClusterEvent>) {
        let kind = self.kind;
        match masters.call(&self.stream_id, self.body).await {
            Ok(()) => tracing::debug!(?kind, "call accepted"),
            Err(e) if e.not_processed() => {
                tracing::warn!(?kind, "call refused: {e}");
                drop_tasks(
                    events,
                    &self.dropped_on_refusal,
                    &format!("the master refused the launch: {e}"),
                );
            }
            // Unknown outcome (the master may have acted): reconciliation tells.
            Err(e) => tracing::warn!(?kind, "call failed: {e}"),
        }
    }
}

/// ACCEPT, DECLINE, SUPPRESS and REVIVE change what the master offers next, so they reach it
/// in the order the scheduler made them: sent concurrently, a REVIVE could overtake the
/// SUPPRESS or DECLINE (600 s filter) it follows and leave the framework without offers.
/// They go out one at a time; acknowledgements, kills and reconciliation stay concurrent.
pub async fn send_in_order(
    masters: Arc<Masters>,
    events: UnboundedSender<ClusterEvent>,
    mut calls: mpsc::UnboundedReceiver<OutgoingCall>,
) {
    while let Some(call) = calls.recv().await {
        call.deliver(&masters, &events).await;
    }
}

/// Report tasks whose launch never reached the master as TASK_DROPPED (no uuid: nothing to
/// acknowledge), so the scheduler retries them under new task IDs.
fn drop_tasks(events: &UnboundedSender<ClusterEvent>, tasks: &[TaskInfo], message: &str) {
    for t in tasks {
        let _ = events.send(ClusterEvent::Update(TaskStatus {
            task_id: t.task_id.clone(),
            state: TaskState::TaskDropped,
            message: Some(message.to_string()),
            source: Some("SOURCE_MASTER".into()),
            reason: Some("REASON_INVALID_OFFERS".into()),
            agent_id: Some(t.agent_id.clone()),
            timestamp: None,
            uuid: None,
            extra: Default::default(),
        }));
    }
}

/// `d` scaled by a random factor in [0.5, 1.5).
fn jitter(d: Duration) -> Duration {
    let f = 0.5 + rand::random::<f64>();
    d.mul_f64(f)
}
