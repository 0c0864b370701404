//! How a double behaves: heartbeat and resend intervals, task behaviours, RecordIO chunking,
//! credentials, slow calls. The real master's and agent's values are in the field docs.

use std::time::Duration;

use crate::codec::Encoding;

/// How a launched task behaves on its (simulated) agent.
#[derive(Clone, Debug)]
pub enum TaskBehavior {
    /// TASK_FINISHED "Command exited with status 0" after the delay.
    Finish { after: Duration },
    /// TASK_FAILED "Command exited with status N" after the delay.
    Fail { after: Duration, exit_code: i32 },
    /// Runs until KILLed (or `finish_task` / `fail_task` / `send_update`).
    RunUntilKilled,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Interval between HEARTBEATs, also reported in SUBSCRIBED (real master: 15 s).
    pub heartbeat_interval: Duration,
    /// The agent re-sends an unacknowledged update after this long (real agent: 10 s, backing off).
    pub resend_interval: Duration,
    /// Behaviour of tasks without a per-task override (`set_task_behavior`).
    pub default_behavior: TaskBehavior,
    /// Split every RecordIO record over three HTTP chunks (otherwise records
    /// sent together, e.g. SUBSCRIBED + HEARTBEAT, share one chunk).
    pub split_records: bool,
    /// Internal clock of the simulation (timers, resends, filters).
    pub tick: Duration,
    /// HTTP framework authentication (`--authenticate_http_frameworks`, basic):
    /// `(principal, secret)` every scheduler call must carry.
    pub credentials: Option<(String, String)>,
    /// Calls of these types (JSON only) are held this long before the master handles them,
    /// as a slow path between framework and master would: calls sent after them may overtake.
    pub slow_calls: Vec<(&'static str, Duration)>,
    /// Speak only this encoding (a real master speaks both): calls in the other get 415,
    /// a SUBSCRIBE whose `Accept` does not admit it gets 406. Lets a benchmark be sure the
    /// framework uses the encoding it was told to.
    pub only_encoding: Option<Encoding>,
    /// How often the allocator offers freed resources (the master's `--allocation_interval`,
    /// 1 s on a real master). Zero (the default) offers an agent's resources the moment they
    /// are free, one OFFERS event per agent; otherwise every agent with free resources is
    /// offered once per interval, all in one OFFERS event, as a real master batches them.
    pub allocation_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_interval: Duration::from_secs(15),
            resend_interval: Duration::from_secs(10),
            default_behavior: TaskBehavior::Finish {
                after: Duration::from_millis(50),
            },
            split_records: false,
            tick: Duration::from_millis(10),
            credentials: None,
            slow_calls: Vec::new(),
            only_encoding: None,
            allocation_interval: Duration::ZERO,
        }
    }
}
