//! Telling systemd how the server is doing (`Type=notify` units): ready once the API
//! listens, reloading during SIGHUP, stopping on shutdown. Without `NOTIFY_SOCKET` (not
//! started by systemd) every call does nothing.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// The API answers: `READY=1` (systemd then considers the unit started).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A configuration reload began: `RELOADING=1`; `ready` ends it.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutting down: `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}
