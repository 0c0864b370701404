//! Where the PostgreSQL store is: the `-store postgres://...` URL, its password (from the
//! URL, `-store-password-file`, or libpq's password file `PGPASSFILE` / `~/.pgpass`), and how
//! it is shown in logs (never with the password).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    shown: String,
    /// The URL named an `application_name` (the operator's choice, kept).
    named: bool,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Parse a `postgres://` (or `postgresql://`) URL or a libpq key=value string. The
    /// password comes from the URL, else from `password_file` (its first line), else from
    /// libpq's password file.
    pub fn parse(raw: &str, password_file: Option<&Path>) -> Result<PgTarget, String> {
        let raw = raw.trim();
        let mut config = postgres::Config::from_str(raw).map_err(|e| {
            format!(
                "{:?} is not a PostgreSQL URL ({e}); expected postgres://user[:password]@host[:port]/database",
                redact(raw)
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(format!(
                "{:?} names no host; expected postgres://user@host[:port]/database",
                redact(raw)
            ));
        }
        if config.get_user().is_none() {
            config.user(&crate::config::current_user());
        }
        if config.get_dbname().is_none() {
            let user = config.get_user().unwrap_or_default().to_string();
            config.dbname(&user);
        }
        if config.get_password().is_none() {
            if let Some(file) = password_file {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let password = text.lines().next().unwrap_or_default();
                if password.is_empty() {
                    return Err(format!(
                        "{} is empty; expected the password on its first line",
                        file.display()
                    ));
                }
                config.password(password);
            } else if let Some(password) = from_passfile(&config) {
                config.password(password);
            }
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        // A dead peer is noticed in about 20 s even without traffic.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(3));
        config.keepalives_retries(3);
        let named = config.get_application_name().is_some();
        if !named {
            config.application_name("dispatch");
        }
        let shown = show(&config);
        Ok(PgTarget {
            config,
            shown,
            named,
        })
    }

    /// This target with `application_name` = `dispatch <server>` (what `pg_stat_activity`
    /// shows for each of this server's sessions, so an operator tells the servers apart),
    /// unless the URL named one itself.
    pub fn for_server(&self, server: &str) -> PgTarget {
        let mut target = self.clone();
        if !self.named {
            // PostgreSQL keeps the first 63 bytes
            let name: String = format!("dispatch {server}").chars().take(63).collect();
            target.config.application_name(&name);
        }
        target
    }

    /// `raw` with any password replaced by `***` (for messages about a bad value).
    pub fn redacted(raw: &str) -> String {
        redact(raw)
    }

    /// `postgres://user@host:port/database`, for logs and messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// Open one connection (plain TCP or a Unix socket; no TLS in this build).
    pub fn connect(&self) -> Result<postgres::Client, super::StoreError> {
        self.config
            .connect(postgres::NoTls)
            .map_err(|e| super::classify(&e, &self.shown))
    }
}

fn show(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, port)| match h {
            Host::Tcp(h) => format!("{h}:{port}"),
            Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

/// The URL with any password replaced by `***`, for messages about a URL that does not parse.
fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => raw.to_string(),
    }
}

/// libpq's password file: `PGPASSFILE`, else `~/.pgpass`; lines of
/// `host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`.
fn from_passfile(config: &postgres::Config) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        Host::Unix(_) => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let want = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(split_passfile_line)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(want)
                    .all(|(f, w)| f == "*" || f == w)
        })
        .map(|mut fields| fields.swap_remove(4))
}

fn split_passfile_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if let Some(f) = fields.last_mut() {
                        f.push(next);
                    }
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let t = PgTarget::parse("postgres://app:s3cret@db.example:6543/dispatch", None).unwrap();
        assert_eq!(t.shown(), "postgres://app@db.example:6543/dispatch");
        assert_eq!(t.config().get_password(), Some(&b"s3cret"[..]));
        let e = PgTarget::parse("postgres://app:s3cret@db:x/d", None).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("app:***@db:x/d"), "{e}");
    }

    #[test]
    fn each_server_names_its_sessions_unless_the_url_does() {
        let t = PgTarget::parse("postgres://app@db/dispatch", None).unwrap();
        assert_eq!(t.config().get_application_name(), Some("dispatch"));
        let t = t.for_server("10.0.0.5:4646");
        assert_eq!(
            t.config().get_application_name(),
            Some("dispatch 10.0.0.5:4646")
        );
        let t = PgTarget::parse("postgres://app@db/dispatch?application_name=ops", None)
            .unwrap()
            .for_server("10.0.0.5:4646");
        assert_eq!(t.config().get_application_name(), Some("ops"));
    }

    #[test]
    fn the_password_file_gives_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let t = PgTarget::parse("postgres://app@db/dispatch", Some(&file)).unwrap();
        assert_eq!(t.config().get_password(), Some(&b"from-file"[..]));
        std::fs::write(&file, "").unwrap();
        let e = PgTarget::parse("postgres://app@db/dispatch", Some(&file)).unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn passfile_lines_split_on_unescaped_colons() {
        assert_eq!(
            split_passfile_line(r"db:5432:*:app:pa\:ss\\word"),
            ["db", "5432", "*", "app", r"pa:ss\word"]
        );
    }
}
