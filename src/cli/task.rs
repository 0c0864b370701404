//! `dispatch task [flags] [-- CMD...]`: print a Mesosfile entry (mesos-cli `task`).
//! The output is a one-entry Mesosfile that `dispatch run -` accepts.

use super::CliError;
use crate::batch::mesosfile::{
    CommandSpec, ContainerSpec, DockerSpec, Environment, Parameter, PortMapping, ResourceSpec,
    ResourcesSpec, Scalar, TaskEntry, UriSpec, Variable, VolumeSpec,
};

#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// Task name
    #[arg(long)]
    name: Option<String>,
    /// Run CMD through the shell (joined with spaces); default: shell for one word, else argv
    #[arg(long)]
    shell: bool,
    /// A URI to fetch into the sandbox (repeatable)
    #[arg(long = "uri", value_name = "URI")]
    uris: Vec<String>,
    /// Environment variable (repeatable)
    #[arg(short = 'e', value_name = "K=V")]
    env: Vec<String>,
    /// Volume host:container[:rw|ro] (repeatable)
    #[arg(short = 'v', value_name = "HOST:CONTAINER[:MODE]")]
    volumes: Vec<String>,
    /// Container image (Docker)
    #[arg(long, short = 'i')]
    image: Option<String>,
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory, MB
    #[arg(long)]
    mem: Option<f64>,
    /// Disk, MB
    #[arg(long)]
    disk: Option<f64>,
    #[arg(long)]
    gpus: Option<f64>,
    /// Port mapping host:container[/tcp|udp] (repeatable; image tasks)
    #[arg(short = 'p', value_name = "HOST:CONTAINER[/PROTO]")]
    ports: Vec<String>,
    /// Docker parameter k=v (repeatable)
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// Resource role (applies when the server runs against Mesos)
    #[arg(long)]
    role: Option<String>,
    /// yaml (default) or json
    #[arg(long, default_value = "yaml")]
    format: String,
    /// The command
    #[arg(last = true)]
    command: Vec<String>,
}

fn kv(s: &str, what: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| CliError::new(format!("Invalid {what} {s:?}: expected K=V")))
}

pub fn entry(args: &TaskArgs) -> Result<TaskEntry, CliError> {
    let mut command = CommandSpec::default();
    match args.command.as_slice() {
        [] => {}
        [one] => command.value = Some(one.clone()),
        many if args.shell => command.value = Some(many.join(" ")),
        many => {
            command.value = Some(many[0].clone());
            command.shell = Some(false);
            command.arguments = many.to_vec();
        }
    }
    if args.shell && args.command.len() == 1 {
        command.shell = Some(true);
    }
    command.uris = args
        .uris
        .iter()
        .map(|u| UriSpec {
            value: u.clone(),
            ..UriSpec::default()
        })
        .collect();
    if !args.env.is_empty() {
        let mut vars = Vec::new();
        for e in &args.env {
            let (name, value) = kv(e, "-e")?;
            vars.push(Variable {
                name,
                value,
                kind: None,
            });
        }
        command.environment = Some(Environment { variables: vars });
    }
    let mut container = ContainerSpec::default();
    for v in &args.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (host, cont, mode) = match parts.as_slice() {
            [h, c] => (h, c, None),
            [h, c, m] if m.eq_ignore_ascii_case("rw") || m.eq_ignore_ascii_case("ro") => {
                (h, c, Some(m.to_ascii_uppercase()))
            }
            _ => {
                return Err(CliError::new(format!(
                    "Invalid -v {v:?}: expected host:container[:rw|ro]"
                )))
            }
        };
        container.volumes.push(VolumeSpec {
            container_path: cont.to_string(),
            host_path: Some(host.to_string()),
            mode: Some(mode.unwrap_or_else(|| "RW".into())),
        });
    }
    if let Some(image) = &args.image {
        let mut docker = DockerSpec {
            image: image.clone(),
            ..DockerSpec::default()
        };
        for p in &args.ports {
            let (ports, proto) = p
                .split_once('/')
                .map_or((p.as_str(), None), |(a, b)| (a, Some(b)));
            let (h, c) = ports
                .split_once(':')
                .and_then(|(h, c)| Some((h.parse::<u32>().ok()?, c.parse::<u32>().ok()?)))
                .ok_or_else(|| {
                    CliError::new(format!(
                        "Invalid -p {p:?}: expected host:container[/tcp|udp]"
                    ))
                })?;
            docker.port_mappings.push(PortMapping {
                host_port: h,
                container_port: c,
                protocol: proto.map(str::to_string),
            });
        }
        for p in &args.params {
            let (key, value) = kv(p, "-param")?;
            docker.parameters.push(Parameter { key, value });
        }
        container.kind = Some("DOCKER".into());
        container.docker = Some(docker);
    } else if !args.ports.is_empty() || !args.params.is_empty() {
        return Err(CliError::new("-p and -param need -image"));
    }
    let mut resources = Vec::new();
    for (name, value) in [
        ("cpus", args.cpus),
        ("mem", args.mem),
        ("disk", args.disk),
        ("gpus", args.gpus),
    ] {
        if let Some(value) = value {
            resources.push(ResourceSpec {
                name: name.into(),
                kind: Some("SCALAR".into()),
                scalar: Some(Scalar { value }),
                role: args.role.clone(),
                ..ResourceSpec::default()
            });
        }
    }
    Ok(TaskEntry {
        name: args.name.clone(),
        command: (command.value.is_some() || !command.uris.is_empty()).then_some(command),
        container: (container.kind.is_some() || !container.volumes.is_empty()).then_some(container),
        resources: (!resources.is_empty()).then_some(ResourcesSpec::List(resources)),
        ..TaskEntry::default()
    })
}

pub fn run(args: TaskArgs) -> Result<i32, CliError> {
    let entry = vec![entry(&args)?];
    let text = match args.format.as_str() {
        "yaml" | "yml" => serde_yaml_ng::to_string(&entry)
            .map_err(|e| CliError::new(format!("cannot write YAML: {e}")))?,
        "json" => {
            serde_json::to_string_pretty(&entry)
                .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?
                + "\n"
        }
        other => {
            return Err(CliError::new(format!(
                "Invalid -format {other:?}: expected yaml or json"
            )))
        }
    };
    print!("{text}");
    Ok(0)
}
