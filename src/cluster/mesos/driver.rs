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
    DurationInfo, FrameworkId, Id, InverseOffer, KillPolicy, Offer, TaskInfo, TaskState, TaskStatus,
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
    /// The roles suppressed, as the scheduler last asked (SUPPRESS / REVIVE), carried into
    /// resubscriptions and UPDATE_FRAMEWORK.
    pub suppressed: std::collections::BTreeSet<String>,
    /// Offers outstanding on the current subscription (launches look at what they carry).
    pub offers: HashMap<String, Offer>,
    /// Bounds the calls in flight (each is its own POST): a burst of acknowledgements must
    /// not open thousands of connections to the master.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Offer calls, sent in order by `send_in_order`.
    pub ordered: mpsc::UnboundedSender<OutgoingCall>,
    pub backoff: Duration,
    /// The connection problem last logged: a cause is logged when it changes, not at every
    /// attempt (cleared by SUBSCRIBED).
    pub logged_cause: Option<String>,
    /// New framework settings from a configuration reload: sent as UPDATE_FRAMEWORK while
    /// subscribed, else carried by the next SUBSCRIBE.
    pub updates: Option<tokio::sync::watch::Receiver<MesosSettings>>,
    /// Operations sent with an ID (volume RESERVE/CREATE/DESTROY/UNRESERVE), until their
    /// final status arrives.
    pub operations: HashMap<String, super::launch::VolumeOperation>,
}

/// The next settings a reload publishes (never, without a channel).
async fn next_update(
    updates: &mut Option<tokio::sync::watch::Receiver<MesosSettings>>,
) -> MesosSettings {
    let Some(rx) = updates else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        return std::future::pending().await;
    }
    rx.borrow_and_update().clone()
}

/// Why a connection ended.
enum End {
    /// Try again after the backoff; `permanent`: retrying alone will not fix `reason`.
    Retry { reason: String, permanent: bool },
    /// ZooKeeper names another leader: subscribe to it at once.
    NewLeader(String),
    /// The scheduler is gone: stop.
    Shutdown,
}

impl End {
    fn retry(reason: impl Into<String>) -> End {
        End::Retry {
            reason: reason.into(),
            permanent: false,
        }
    }
}

impl Driver {
    pub async fn run(mut self, mut calls: UnboundedReceiver<ClusterCall>) {
        loop {
            match self.connection(&mut calls).await {
                End::Shutdown => {
                    tracing::info!("scheduler gone; Mesos driver stops");
                    return;
                }
                End::NewLeader(leader) => {
                    self.directory
                        .disconnected(&format!("the leading master changed to {leader}"), false);
                    tracing::info!(
                        leader,
                        "ZooKeeper names a new leading master; subscribing to it"
                    );
                    self.backoff = FIRST_BACKOFF;
                }
                End::Retry { reason, permanent } => {
                    self.directory.disconnected(&reason, permanent);
                    let wait = jitter(self.backoff);
                    if self.logged_cause.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(reason, "Mesos connection ended; retrying until it works (the same cause is not logged again)");
                        self.logged_cause = Some(reason);
                    } else {
                        tracing::debug!(
                            reason,
                            retry_in_ms = wait.as_millis() as u64,
                            "Mesos connection still failing"
                        );
                    }
                    self.backoff = (self.backoff * 2).min(self.settings.max_backoff);
                    if !self.idle(&mut calls, wait).await {
                        return;
                    }
                }
            }
        }
    }

    /// Wait out the backoff, answering calls as a disconnected framework must; a leader
    /// newly named by ZooKeeper ends the wait.
    async fn idle(&mut self, calls: &mut UnboundedReceiver<ClusterCall>, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let masters = self.masters.clone();
        let new_leader = masters.leader_change(masters.detected_leader());
        tokio::pin!(new_leader);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                Some(_) = &mut new_leader => return true,
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

    /// Take the updatable fields of `new` (name, roles, failover timeout, capabilities);
    /// false when nothing changed.
    fn adopt(&mut self, new: &MesosSettings) -> bool {
        let changes = self.settings.updatable_changes(new);
        if changes.is_empty() {
            return false;
        }
        tracing::info!(changes = changes.join("; "), "framework settings changed");
        self.settings = Arc::new(self.settings.with_updates_from(new));
        self.directory.set_settings(&self.settings);
        true
    }

    /// Settings published while no stream was open: the next SUBSCRIBE carries them.
    fn adopt_pending_update(&mut self) {
        let pending = match self.updates.as_mut() {
            Some(rx) if rx.has_changed().unwrap_or(false) => rx.borrow_and_update().clone(),
            _ => return,
        };
        self.adopt(&pending);
    }

    /// UPDATE_FRAMEWORK with the current settings, in order with the offer calls (a REVIVE
    /// or SUPPRESS for the new roles must not overtake it).
    fn update_framework(&mut self, stream_id: &str) {
        let Some(fid) = self.framework() else {
            return;
        };
        let info = self.settings.framework_info(Some(&fid.value));
        let call = json::Call::update_framework(info, self.suppressed_roles());
        match self.settings.encoding.encode_call(&call) {
            Ok(body) => {
                let _ = self.ordered.send(OutgoingCall {
                    stream_id: stream_id.to_string(),
                    body: Bytes::from(body),
                    kind: call.kind,
                    dropped_on_refusal: Vec::new(),
                });
            }
            Err(e) => tracing::error!("cannot encode UPDATE_FRAMEWORK: {e}"),
        }
    }

    /// The framework's roles that are suppressed now.
    fn suppressed_roles(&self) -> Vec<String> {
        self.settings
            .roles
            .iter()
            .filter(|r| self.suppressed.contains(*r))
            .cloned()
            .collect()
    }

    /// SUPPRESS (every role) or REVIVE of `roles` (empty: every role), as the master will
    /// apply it.
    fn note_suppression(&mut self, call: &ClusterCall) {
        match call {
            ClusterCall::Suppress => {
                self.suppressed = self.settings.roles.iter().cloned().collect()
            }
            ClusterCall::Revive(roles) if roles.is_empty() => self.suppressed.clear(),
            ClusterCall::Revive(roles) => {
                for r in roles {
                    self.suppressed.remove(r);
                }
            }
            _ => {}
        }
    }

    fn subscribe_body(&self) -> Result<Bytes, String> {
        let info = self.settings.framework_info(self.framework_id.as_deref());
        let call = json::Call::subscribe(info, self.suppressed_roles());
        self.settings
            .encoding
            .encode_call(&call)
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    }

    /// One subscription, from SUBSCRIBE to the end of its stream.
    async fn connection(&mut self, calls: &mut UnboundedReceiver<ClusterCall>) -> End {
        self.adopt_pending_update();
        let body = match self.subscribe_body() {
            Ok(b) => b,
            Err(e) => return End::retry(format!("cannot encode SUBSCRIBE: {e}")),
        };
        self.directory.connecting();
        let masters = self.masters.clone();
        let detected = masters.detected_leader();
        let subscribing = masters.subscribe(body);
        tokio::pin!(subscribing);
        let sub: Subscription = loop {
            tokio::select! {
                result = &mut subscribing => match result {
                    Ok(sub) => break sub,
                    Err(e) => return End::Retry {
                        reason: format!("cannot subscribe: {e}"),
                        permanent: e.permanent(),
                    },
                },
                call = calls.recv() => match call {
                    Some(call) => self.offline(call),
                    None => return End::Shutdown,
                },
            }
        };
        tracing::info!(master = %sub.leader, encoding = self.settings.encoding.name(), "subscription stream open");
        crate::metrics::cluster_master(BACKEND, &sub.leader);
        self.stream(sub, detected, calls).await
    }

    /// Events until the stream ends. `detected`: the leader ZooKeeper named when we
    /// subscribed; when it names another, this stream is left for the new leader at once
    /// (the old master may be gone without closing the connection).
    async fn stream(
        &mut self,
        sub: Subscription,
        detected: Option<String>,
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
        let masters = self.masters.clone();
        let new_leader = masters.leader_change(detected);
        tokio::pin!(new_leader);
        let mut updates = self.updates.clone();
        // Settings changed after this stream's SUBSCRIBE went out, before SUBSCRIBED.
        let mut update_due = false;
        let end = loop {
            tokio::select! {
                new = next_update(&mut updates) => {
                    if let Some(rx) = self.updates.as_mut() {
                        rx.borrow_and_update();
                    }
                    if self.adopt(&new) {
                        if subscribed {
                            self.update_framework(&stream_id);
                        } else {
                            update_due = true;
                        }
                    }
                }
                leader = &mut new_leader => break match leader {
                    Some(l) => End::NewLeader(l),
                    None => End::retry("ZooKeeper names no leading master any more"),
                },
                chunk = tokio::time::timeout(silence_limit, response.chunk()) => {
                    let bytes = match chunk {
                        Err(_) => break End::retry(format!(
                            "no event from the master for {} s (heartbeats missed)",
                            silence_limit.as_secs())),
                        Ok(Err(e)) => break End::retry(format!("the event stream broke: {e}")),
                        Ok(Ok(None)) => break End::retry("the master closed the event stream"),
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
                        if std::mem::take(&mut update_due) {
                            self.update_framework(&stream_id);
                        }
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
                End::Retry { reason, .. } => reason.clone(),
                End::NewLeader(l) => format!("the leading master changed to {l}"),
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
                Err(e) => return Err(End::retry(format!("broken RecordIO stream: {e}"))),
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
                    return Err(End::retry("SUBSCRIBED without its payload"));
                };
                let id = s.framework_id.value;
                if self.framework_id.as_deref() != Some(id.as_str()) {
                    if let Err(e) = (self.persist)(FRAMEWORK_ID_SETTING.into(), id.clone()).await {
                        // Launching under an ID that could be lost would orphan tasks.
                        return Err(End::retry(format!("cannot store the FrameworkID: {e}")));
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
                self.logged_cause = None;
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
            EventType::InverseOffers => {
                let inverse: Vec<InverseOffer> = event
                    .inverse_offers
                    .map(|i| i.inverse_offers)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|io| {
                        Some(InverseOffer {
                            agent_id: io.agent_id?,
                            id: io.id,
                            start_ns: io.unavailability.start.nanoseconds,
                        })
                    })
                    .collect();
                for io in &inverse {
                    tracing::info!(agent = %io.agent_id, inverse_offer = %io.id, "agent scheduled for maintenance asks for its resources back");
                }
                if !inverse.is_empty() {
                    let _ = self.events.send(ClusterEvent::InverseOffers(inverse));
                }
            }
            EventType::RescindInverseOffer => {
                if let Some(r) = event.rescind_inverse_offer {
                    let _ = self
                        .events
                        .send(ClusterEvent::RescindInverseOffer(r.inverse_offer_id));
                }
            }
            EventType::UpdateOperationStatus => {
                if let Some(u) = event.update_operation_status {
                    self.on_operation_status(u.status, stream_id);
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
                // Refused before SUBSCRIBED (a principal or role the master does not allow,
                // ...): retrying the same SUBSCRIBE will not help. "Framework failed over"
                // ends a stream that was subscribed.
                let permanent = !*subscribed && !message.contains("has been removed");
                return Err(End::Retry {
                    reason: format!("master sent ERROR: {message}"),
                    permanent,
                });
            }
            EventType::Heartbeat => {
                tracing::trace!("heartbeat");
            }
            other => tracing::debug!(?other, "event ignored"),
        }
        Ok(())
    }

    /// Feedback on an operation we sent with an ID: acknowledged when it carries a uuid
    /// (nothing of it needs to be durable: a lost volume is found missing in later offers);
    /// a failed RESERVE or CREATE is reported to the scheduler at once.
    fn on_operation_status(&mut self, status: json::OperationStatus, stream_id: &str) {
        let Some(op_id) = status.operation_id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        if let (Some(uuid), Some(fid)) = (&status.uuid, self.framework()) {
            let ack = json::Call::acknowledge_operation_status(
                fid,
                json::AcknowledgeOperationStatus {
                    agent_id: status.agent_id.clone(),
                    uuid: uuid.value.clone(),
                    operation_id: Id::new(&op_id),
                },
            );
            self.post(ack, stream_id);
        }
        let failed = matches!(
            status.state,
            json::OperationState::Failed
                | json::OperationState::Error
                | json::OperationState::Dropped
                | json::OperationState::GoneByOperator
        );
        let message = status.message.clone().unwrap_or_default();
        let Some(op) = self.operations.get(&op_id).cloned() else {
            tracing::debug!(operation = op_id, state = ?status.state, "status of an operation we do not follow");
            return;
        };
        match status.state {
            json::OperationState::Finished => {
                tracing::info!(
                    operation = op_id,
                    kind = op.kind,
                    volume = op.volume,
                    "operation finished"
                );
                self.operations.remove(&op_id);
            }
            _ if failed => {
                tracing::warn!(operation = op_id, kind = op.kind, volume = op.volume, state = ?status.state, message, "operation failed");
                self.operations.remove(&op_id);
                if matches!(op.kind, "RESERVE" | "CREATE") {
                    let _ = self.events.send(ClusterEvent::VolumeFailed {
                        volume: op.volume,
                        agent_id: status.agent_id.clone(),
                        task_id: op.task_id.map(Id::new),
                        message: format!("{} {:?}: {message}", op.kind, status.state),
                    });
                }
            }
            _ => {}
        }
    }

    /// Encode and POST a call that needs no ordering (acknowledgements).
    fn post(&self, call: json::Call, stream_id: &str) {
        let body = match self.settings.encoding.encode_call(&call) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!("cannot encode {:?}: {e}", call.kind);
                return;
            }
        };
        let outgoing = OutgoingCall {
            stream_id: stream_id.to_string(),
            body,
            kind: call.kind,
            dropped_on_refusal: Vec::new(),
        };
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
            call @ (ClusterCall::Suppress | ClusterCall::Revive(_)) => self.note_suppression(&call),
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
                let call = accept_call(
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
                );
                self.operations
                    .extend(super::launch::volume_operations(&call));
                call
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
                let call = release_volume_call(&fid, offer_id, volume, refuse_seconds);
                self.operations
                    .extend(super::launch::volume_operations(&call));
                call
            }
            ClusterCall::AnswerInverseOffers {
                inverse_offer_ids,
                accept,
                refuse_seconds,
            } => json::Call::answer_inverse_offers(fid, accept, inverse_offer_ids, refuse_seconds),
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
                self.note_suppression(&ClusterCall::Suppress);
                json::Call::suppress(fid, roles)
            }
            ClusterCall::Revive(wanted) => {
                self.note_suppression(&ClusterCall::Revive(wanted.clone()));
                // Only roles of this framework (an empty list means all of them).
                let wanted: Vec<String> =
                    wanted.into_iter().filter(|r| roles.contains(r)).collect();
                json::Call::revive(fid, if wanted.is_empty() { roles } else { wanted })
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
            CallType::Accept
                | CallType::Decline
                | CallType::Suppress
                | CallType::Revive
                | CallType::AcceptInverseOffers
                | CallType::DeclineInverseOffers
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
