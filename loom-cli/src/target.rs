//! The agent or workflow a file describes, built with the command line's overrides.

use std::path::Path;

use loomflow::Agent;
use loomflow::config::{AgentConfig, Registry, WorkflowFile};
use loomflow::workflow::Workflow;

use crate::{Failure, Target};

/// What a file describes.
pub(crate) enum Built {
    /// An agent file.
    Agent(Box<Agent>),
    /// A workflow file.
    Workflow(Workflow<String, String>),
}

/// The name the `--script` model is registered under.
const SCRIPT: &str = "script";

/// The tools and models a file may name from the command line: the built-in file tools in
/// `--root`, and the `--script` model.
fn registry(target: &Target) -> Result<(Registry, Option<String>), Failure> {
    let files = loomflow::tools::fs::Filesystem::new(&target.root)
        .map_err(|e| Failure::usage(format!("--root `{}`: {e}", target.root.display())))?;
    let mut registry = Registry::new().tools(files.tools());
    if let Some(parent) = target.file.parent().filter(|p| !p.as_os_str().is_empty()) {
        registry = registry.base_dir(parent);
    }
    let model = match (&target.script, &target.model) {
        (Some(script), _) => {
            registry = registry.model(SCRIPT, crate::script::load(script)?);
            Some(SCRIPT.to_owned())
        }
        (None, Some(spec)) => Some(spec.clone()),
        (None, None) => None,
    };
    Ok((registry, model))
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))
}

/// The telemetry a file's `[telemetry]` asks for, installed for the rest of the process.
static TELEMETRY: std::sync::Mutex<Option<loomflow::telemetry::otel::TelemetryGuard>> = std::sync::Mutex::new(None);

/// Installs the exporter of the first `[telemetry]` among `configs` (once per process).
async fn telemetry<'c>(configs: impl IntoIterator<Item = &'c AgentConfig>, registry: &Registry) -> Result<(), Failure> {
    for config in configs {
        let Some(telemetry) = config.telemetry(registry).await? else { continue };
        let mut slot = TELEMETRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            let guard = telemetry.init().map_err(|e| Failure::usage(format!("telemetry: {e}")))?;
            *slot = Some(guard);
        }
        return Ok(());
    }
    Ok(())
}

/// Flushes and shuts down the telemetry a file installed, if any.
pub(crate) fn shutdown_telemetry() {
    let guard = TELEMETRY.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(guard) = guard
        && let Err(e) = guard.shutdown()
    {
        eprintln!("warning: telemetry: {e}");
    }
}

/// The agent or workflow `target` names.
pub(crate) async fn build(target: &Target) -> Result<Built, Failure> {
    let text = read(&target.file)?;
    let (registry, model) = registry(target)?;
    if loomflow::config::is_workflow_file(&text) {
        telemetry(WorkflowFile::from_file(&target.file)?.agents.values(), &registry).await?;
        let Some(model) = model else {
            return Ok(Built::Workflow(Workflow::from_toml(&target.file, &registry).await?));
        };
        let mut file = WorkflowFile::from_file(&target.file)?;
        for agent in file.agents.values_mut() {
            agent.model = Some(model.clone());
            agent.fallback.clear();
        }
        if file.workflow.name.is_none() {
            file.workflow.name = target.file.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        return Ok(Built::Workflow(Workflow::from_config(&file, &registry).await?));
    }
    let mut config = AgentConfig::from_file(&target.file)?;
    telemetry([&config], &registry).await?;
    let Some(model) = model else {
        return Ok(Built::Agent(Box::new(Agent::from_toml_with(&target.file, &registry).await?)));
    };
    config.model = Some(model);
    config.fallback.clear();
    Ok(Built::Agent(Box::new(Agent::from_config(&config, &registry).await?)))
}

/// The agent `target` names; a workflow file is a usage error naming `command`.
pub(crate) async fn agent(target: &Target, command: &str) -> Result<Agent, Failure> {
    match build(target).await? {
        Built::Agent(agent) => Ok(*agent),
        Built::Workflow(_) => Err(Failure::usage(format!(
            "`loom {command}` needs an agent file; `{}` is a workflow file (it has a `[workflow]` table)",
            target.file.display()
        ))),
    }
}

/// The workflow a workflow file describes, built only to be drawn: every agent on the echo
/// model, without stores, servers or tools, so that no key, server or file is needed.
pub(crate) async fn shape(path: &Path) -> Result<Workflow<String, String>, Failure> {
    let text = read(path)?;
    if !loomflow::config::is_workflow_file(&text) {
        return Err(Failure::usage(format!(
            "`{}` is an agent file; `loom graph` draws a workflow file (one with a `[workflow]` table)",
            path.display()
        )));
    }
    let file = WorkflowFile::from_file(path)?;
    let mut drawn = file.clone();
    for (name, agent) in &file.agents {
        let mut plain = AgentConfig::default();
        plain.instructions.clone_from(&agent.instructions);
        plain.model = Some("echo".to_owned());
        plain.name = agent.name.clone();
        plain.architecture = agent.architecture.clone();
        drawn.agents.insert(name.clone(), plain);
    }
    if drawn.workflow.name.is_none() {
        drawn.workflow.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    Ok(Workflow::from_config(&drawn, &Registry::new()).await?)
}
