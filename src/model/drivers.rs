//! Which task drivers a server lets jobs use (`-driver-allowlist`, Nomad's
//! `driver.allowlist`). `raw_exec` runs any command unconfined as the user the tasks run
//! as, so, as in Nomad, it is off unless listed or the server runs with `-dev`.

use super::Job;

/// Drivers Dispatch can run (`render::command` builds each).
pub const KNOWN: &[&str] = &["exec", "raw_exec", "docker", "mesos_executor"];

/// Allowed when nothing is configured: everything but `raw_exec`.
pub const DEFAULT: &[&str] = &["exec", "docker", "mesos_executor"];

/// The drivers a server allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverPolicy {
    allowed: Vec<String>,
}

impl Default for DriverPolicy {
    fn default() -> Self {
        DriverPolicy::of(DEFAULT)
    }
}

impl DriverPolicy {
    /// The default, plus `raw_exec` in development mode.
    pub fn default_for(dev: bool) -> DriverPolicy {
        if dev {
            DriverPolicy::all()
        } else {
            DriverPolicy::default()
        }
    }

    /// Every driver Dispatch knows (a run's own server, tests).
    pub fn all() -> DriverPolicy {
        DriverPolicy::of(KNOWN)
    }

    fn of(names: &[&str]) -> DriverPolicy {
        DriverPolicy {
            allowed: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A list as written (`exec,docker` or several items); unknown names are an error.
    pub fn parse(items: &[String]) -> Result<DriverPolicy, String> {
        let mut allowed: Vec<String> = Vec::new();
        for name in items
            .iter()
            .flat_map(|i| i.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !KNOWN.contains(&name) {
                return Err(format!(
                    "unknown driver {name:?}; Dispatch runs: {}",
                    KNOWN.join(", ")
                ));
            }
            if !allowed.iter().any(|a| a == name) {
                allowed.push(name.to_string());
            }
        }
        if allowed.is_empty() {
            return Err(format!(
                "must name at least one driver (of {})",
                KNOWN.join(", ")
            ));
        }
        Ok(DriverPolicy { allowed })
    }

    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    pub fn allows(&self, driver: &str) -> bool {
        self.allowed.iter().any(|a| a == driver)
    }

    /// Why `job` may not run here: the first task whose driver is not allowed.
    pub fn refusal(&self, job: &Job) -> Option<String> {
        let (group, task) = job
            .task_groups
            .iter()
            .flat_map(|g| g.tasks.iter().map(move |t| (g, t)))
            .find(|(_, t)| KNOWN.contains(&t.driver.as_str()) && !self.allows(&t.driver))?;
        let why = if task.driver == "raw_exec" {
            " (raw_exec runs commands unconfined, so it is off unless listed or the server runs with -dev)"
        } else {
            ""
        };
        Some(format!(
            "group {:?} task {:?}: driver {:?} is not allowed on this server; allowed: {} (-driver-allowlist){why}",
            group.name,
            task.name,
            task.driver,
            self.allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_exec_is_off_by_default_and_on_in_dev_mode() {
        let job = crate::model::job::test_job("j");
        let refusal = DriverPolicy::default().refusal(&job).expect("refused");
        assert_eq!(
            refusal,
            "group \"g\" task \"t\": driver \"raw_exec\" is not allowed on this server; \
             allowed: exec, docker, mesos_executor (-driver-allowlist) (raw_exec runs \
             commands unconfined, so it is off unless listed or the server runs with -dev)"
        );
        assert_eq!(DriverPolicy::default_for(true).refusal(&job), None);
        let listed = DriverPolicy::parse(&["exec,raw_exec".into()]).unwrap();
        assert_eq!(listed.refusal(&job), None);
        assert_eq!(listed.allowed(), ["exec", "raw_exec"]);
    }

    #[test]
    fn lists_name_known_drivers_only() {
        assert_eq!(
            DriverPolicy::parse(&["exec, podman".into()]).unwrap_err(),
            "unknown driver \"podman\"; Dispatch runs: exec, raw_exec, docker, mesos_executor"
        );
        assert!(DriverPolicy::parse(&[" , ".into()])
            .unwrap_err()
            .starts_with("must name at least one driver"));
    }
}
