//! Agents and workflows from TOML files: every key round-trips, mistakes are reported with the
//! file, line, column and a suggestion, and the built agents and workflows run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use loomflow::config::{AgentConfig, Registry, WorkflowFile};
use loomflow::governance::MapSecrets;
use loomflow::prelude::*;

/// The weather in a city.
#[tool]
fn weather(city: String) -> String {
    format!("Sunny in {city}.")
}

/// An agent file that sets every key an agent has.
const EVERY_AGENT_KEY: &str = r#"
name = "support"
description = "Answers support questions."
instructions = "You are a support agent."
model = "echo"
fallback = ["echo"]
effort = "high"
temperature = 0.25
max_tokens = 512
max_turns = 6
history_limit = 20
prompt_caching = true
tools = ["weather"]
architecture = { name = "reflexion", max_attempts = 3, threshold = 0.75, top_k_lessons = 2 }

[sessions]
backend = "sqlite"
path = "loom.db"

[memory]
backend = "in_memory"
max_users = 1000
idle_ttl_secs = 3600

[[skills]]
path = "skills"
layer = "project"

[[mcp]]
name = "files"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
env = { NODE_ENV = "production" }
cwd = "."
protocol = "auto"
call_timeout_secs = 30.0
connect_timeout_secs = 10.0

[[mcp]]
name = "remote"
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${MCP_TOKEN}" }

[budget]
wall_time_secs = 60.0
warn_at = 0.8
period_secs = 86400
per_run = { input_tokens = 1000, output_tokens = 500, total_tokens = 1500, cost_usd = 0.5, model_calls = 8, tool_calls = 16 }
per_user = { total_tokens = 100000 }
global = { cost_usd = 100.0 }

[rate_limit]
per_user = { rate = 2.0, burst = 10 }
per_model = { rate = 50.0, burst = 100 }
mode = "throttle"
max_wait_secs = 5.0

[permissions]
mode = "default"
allow = ["weather"]
deny = ["shell"]
edit_tools = ["write_file"]
durable_approvals = true
approval_timeout_secs = 300.0

[audit_log]
backend = "postgres"
url = "postgres://loom@127.0.0.1/loom"
path = "audit.jsonl"
key = "${AUDIT_KEY}"
redaction = "hash"
max_chars = 200

[telemetry]
endpoint = "http://127.0.0.1:4318"
service_name = "support"
capture_content = false
metrics = true
headers = { "x-api-key" = "${OTEL_KEY}" }
"#;

/// A workflow file that sets every workflow key and every architecture's parameters.
const EVERY_WORKFLOW_KEY: &str = r#"
[agents.plan]
instructions = "Plan."
architecture = { name = "plan-and-execute", max_steps = 5, max_replans = 1, executor_turns = 3 }

[agents.react]
instructions = "Act."
architecture = { name = "react", max_turns = 4 }

[agents.refine]
instructions = "Refine."
architecture = { name = "self-refine", max_rounds = 2, stop_phrase = "DONE" }

[agents.rewoo]
instructions = "Plan the tools first."
architecture = { name = "rewoo", max_steps = 6, parallel_levels = true }

[agents.tot]
instructions = "Think in branches."
architecture = { name = "tree-of-thoughts", branch_factor = 3, max_depth = 2, beam_width = 2, solved_threshold = 0.9 }

[workflow]
name = "everything"
chain = ["plan", "react"]
start = "plan"
edges = [{ from = "plan", to = "react" }]
routes = [{ from = "react", to = { again = "plan", done = "end" }, default = "refine" }]
fan_out = [{ from = "refine", branches = ["rewoo", "tot"], join = "plan" }]
max_visits = 4
max_steps = 40
"#;

/// Every key of a parsed TOML document, at every depth.
fn keys(value: &toml::Value, into: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                into.insert(key.clone());
                keys(value, into);
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| keys(v, into)),
        _ => {}
    }
}

/// Every property name a JSON Schema declares, at every depth (except free-form maps).
fn properties(schema: &serde_json::Value, into: &mut BTreeSet<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                into.extend(props.keys().cloned());
            }
            map.values().for_each(|v| properties(v, into));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| properties(v, into)),
        _ => {}
    }
}

#[test]
fn every_agent_and_workflow_key_round_trips() -> anyhow::Result<()> {
    let agent = AgentConfig::from_toml_str(EVERY_AGENT_KEY)?;
    let written = agent.to_toml_string()?;
    assert_eq!(AgentConfig::from_toml_str(&written)?, agent, "{written}");

    let workflow = WorkflowFile::from_toml_str(EVERY_WORKFLOW_KEY)?;
    let written_workflow = workflow.to_toml_string()?;
    assert_eq!(WorkflowFile::from_toml_str(&written_workflow)?, workflow, "{written_workflow}");

    // The files above set every key the schemas know, and writing them out keeps each one.
    let mut written_keys = BTreeSet::new();
    keys(&toml::Value::Table(written.parse::<toml::Table>()?), &mut written_keys);
    keys(&toml::Value::Table(written_workflow.parse::<toml::Table>()?), &mut written_keys);
    let mut declared = BTreeSet::new();
    properties(&loomflow::config::agent_schema(), &mut declared);
    properties(&loomflow::config::workflow_schema(), &mut declared);
    let missing: Vec<_> = declared.difference(&written_keys).collect();
    assert!(missing.is_empty(), "keys the schema declares that the round trip lost or the test never set: {missing:?}");
    Ok(())
}

#[test]
fn the_shortest_forms_read_like_the_long_ones() -> anyhow::Result<()> {
    let short = AgentConfig::from_toml_str(
        "instructions = \"x\"\narchitecture = \"plan-and-execute\"\npermissions = \"bypass\"\n",
    )?;
    let long = AgentConfig::from_toml_str(
        "instructions = \"x\"\narchitecture = { name = \"plan-and-execute\" }\npermissions = { mode = \"bypass\" }\n",
    )?;
    assert_eq!(short, long);
    assert!(short.architecture.is_some() && short.permissions.is_some());
    Ok(())
}

/// The schemas shipped in `loom/schema/` are the ones the structs generate
/// (`LOOM_BLESS=1 cargo test -p loomflow-tests --test config` rewrites them).
#[test]
fn the_shipped_json_schemas_are_current() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../loom/schema");
    for (file, schema) in [
        ("agent.schema.json", loomflow::config::agent_schema()),
        ("workflow.schema.json", loomflow::config::workflow_schema()),
    ] {
        let path = dir.join(file);
        let generated = serde_json::to_string_pretty(&schema)? + "\n";
        if std::env::var_os("LOOM_BLESS").is_some() {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, &generated)?;
        }
        let shipped = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e} (run with LOOM_BLESS=1 to write it)", path.display()))?;
        assert!(shipped == generated, "{} is stale: run with LOOM_BLESS=1 and commit it", path.display());
    }
    Ok(())
}

/// The message a person sees for `text` as an agent file named `agent.toml`.
async fn agent_error(text: &str) -> String {
    let dir = temp_dir("errors");
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write the file");
    let registry = Registry::new().tool(WeatherTool);
    let message = match Agent::from_toml_with(&path, &registry).await {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(e) => e.to_string(),
    };
    message.replace(&format!("{}/", dir.display()), "")
}

async fn workflow_error(text: &str) -> String {
    match Workflow::from_toml_str(text, &Registry::new()).await {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loom-config-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

#[tokio::test]
async fn a_misspelt_key_names_the_line_and_the_key_it_meant() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\nmodel = \"echo\"\nmax_turn = 3\n").await);
}

#[tokio::test]
async fn a_misspelt_nested_key_names_its_table() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\n\n[budget.per_user]\ntotal_token = 5\n").await);
}

#[tokio::test]
async fn a_wrong_type_says_which_key_and_what_it_wanted() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\nmax_turns = \"six\"\n").await);
}

#[tokio::test]
async fn a_wrong_type_in_an_inline_table_says_its_dotted_key() {
    insta::assert_snapshot!(
        agent_error("instructions = \"Help.\"\nrate_limit = { per_user = { rate = \"fast\", burst = 1 } }\n").await
    );
}

#[tokio::test]
async fn an_unknown_value_lists_the_known_ones() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\neffort = \"extreme\"\n").await);
}

#[tokio::test]
async fn a_misspelt_architecture_offers_the_right_one() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\narchitecture = \"reflexon\"\n").await);
}

#[tokio::test]
async fn a_misspelt_backend_offers_the_right_one() {
    insta::assert_snapshot!(
        agent_error("instructions = \"Help.\"\n\n[sessions]\nbackend = \"sqlit\"\npath = \"x.db\"\n").await
    );
}

#[tokio::test]
async fn a_missing_required_key_is_named() {
    insta::assert_snapshot!(agent_error("model = \"echo\"\n").await);
}

#[tokio::test]
async fn broken_toml_points_at_the_break() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\nmodel = \"echo\"\n").await);
}

#[tokio::test]
async fn an_unknown_tool_lists_the_registered_ones() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\nmodel = \"echo\"\ntools = [\"wether\"]\n").await);
}

#[tokio::test]
async fn an_unknown_model_says_so() {
    insta::assert_snapshot!(agent_error("instructions = \"Help.\"\nmodel = \"gtp-4.1-mini\"\n").await);
}

#[tokio::test]
async fn an_unset_reference_names_the_variable() {
    insta::assert_snapshot!(
        agent_error(
            "instructions = \"Help.\"\nmodel = \"echo\"\n\n[audit_log]\nbackend = \"file\"\npath = \"audit.jsonl\"\nkey = \"${LOOM_TEST_UNSET_AUDIT_KEY}\"\n"
        )
        .await
    );
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let error = Agent::from_toml("no/such/agent.toml").await.err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("cannot read `no/such/agent.toml`: No such file or directory (os error 2)"));
}

#[tokio::test]
async fn a_workflow_naming_an_unknown_agent_offers_the_closest() {
    insta::assert_snapshot!(
        workflow_error(
            "[agents.draft]\ninstructions = \"Draft.\"\nmodel = \"echo\"\n\n[agents.review]\ninstructions = \"Review.\"\nmodel = \"echo\"\n\n[workflow]\nchain = [\"draft\", \"reveiw\"]\n"
        )
        .await
    );
}

#[tokio::test]
async fn a_workflow_without_a_graph_says_what_to_add() {
    insta::assert_snapshot!(
        workflow_error("[agents.draft]\ninstructions = \"Draft.\"\nmodel = \"echo\"\n\n[workflow]\nmax_visits = 2\n")
            .await
    );
}

#[tokio::test]
async fn the_two_line_file_is_an_agent() -> anyhow::Result<()> {
    let dir = temp_dir("two-lines");
    let path = dir.join("agent.toml");
    std::fs::write(&path, "instructions = \"You are a helpful assistant.\"\nmodel = \"echo\"\n")?;
    let agent = Agent::from_toml(&path).await?;
    assert_eq!(agent.run("Hello there").await?.output, "Echo: Hello there");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn tools_come_from_the_registry_and_sessions_live_beside_the_file() -> anyhow::Result<()> {
    let dir = temp_dir("sessions");
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        "instructions = \"Answer weather questions.\"\nmodel = \"scripted\"\ntools = [\"weather\"]\nmax_turns = 3\n\n[sessions]\nbackend = \"sqlite\"\npath = \"sessions.db\"\n",
    )?;
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("weather", serde_json::json!({ "city": "Paris" })),
        ScriptedTurn::text("It is sunny in Paris."),
        ScriptedTurn::text("You asked about Paris."),
    ]);
    let registry = Registry::new().tool(WeatherTool).model("scripted", model.clone());
    let agent = Agent::from_toml_with(&path, &registry).await?;
    let first = agent.run("Weather in Paris?").user("ada").session("s1").await?;
    assert_eq!(first.output, "It is sunny in Paris.");
    assert!(dir.join("sessions.db").exists(), "the SQLite store is relative to the file's folder");
    agent.run("What did I ask?").user("ada").session("s1").await?;
    // The third request carries the first turn: the session is kept in the store.
    let requests = model.requests();
    let last = requests.last().map(|r| format!("{:?}", r.messages)).unwrap_or_default();
    assert!(last.contains("Weather in Paris?") && last.contains("Sunny in Paris."), "{last}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn references_resolve_through_the_secrets_and_their_values_are_redacted() -> anyhow::Result<()> {
    let dir = temp_dir("secrets");
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        "instructions = \"Help.\"\nmodel = \"leaky\"\n\n[audit_log]\nbackend = \"file\"\npath = \"${AUDIT_FILE}\"\nkey = \"${AUDIT_KEY}\"\n",
    )?;
    let planted = "k3y-9f2a-planted-audit-secret";
    let registry = Registry::new()
        .model("leaky", ScriptedModel::new([ScriptedTurn::text(format!("The audit key is {planted}."))]))
        .secrets(MapSecrets::new().with("AUDIT_KEY", planted).with("AUDIT_FILE", "audit.jsonl"));
    let agent = Agent::from_toml_with(&path, &registry).await?;
    let result = agent.run("What is the key?").user("ada").await?;
    assert!(!result.output.contains(planted), "{}", result.output);
    assert!(result.output.contains("[secret]"), "{}", result.output);
    let audit = std::fs::read_to_string(dir.join("audit.jsonl"))?;
    assert!(audit.contains("run_started") || !audit.is_empty(), "the audit log is written where the reference said");
    assert!(!audit.contains(planted), "the planted secret reached the audit log");
    // The config keeps the reference, never the value.
    let config = AgentConfig::from_file(&path)?;
    assert!(config.to_toml_string()?.contains("${AUDIT_KEY}"));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn a_chain_of_named_agents_runs_in_order() -> anyhow::Result<()> {
    let registry = Registry::new()
        .model("drafter", ScriptedModel::new([ScriptedTurn::text("a draft")]))
        .model("editor", ScriptedModel::new([ScriptedTurn::text("an edited draft")]));
    let workflow = Workflow::from_toml_str(
        r#"
        [agents.draft]
        instructions = "Draft."
        model = "drafter"

        [agents.edit]
        instructions = "Edit."
        model = "editor"

        [workflow]
        name = "writing"
        chain = ["draft", "edit"]
        "#,
        &registry,
    )
    .await?;
    assert_eq!(workflow.name(), "writing");
    let result = workflow.run("Write about rivers.".to_owned()).await?;
    assert_eq!(result.output, "an edited draft");
    let visited: Vec<String> = result.visited.iter().map(ToString::to_string).collect();
    assert_eq!(visited, ["draft", "edit"]);
    Ok(())
}

#[tokio::test]
async fn a_routed_cycle_revises_until_the_reviewer_approves() -> anyhow::Result<()> {
    let registry = Registry::new()
        .model("drafter", ScriptedModel::new([ScriptedTurn::text("draft 1"), ScriptedTurn::text("draft 2")]))
        .model("reviewer", ScriptedModel::new([ScriptedTurn::text("Revise."), ScriptedTurn::text("Approved")]))
        .model("publisher", ScriptedModel::new([ScriptedTurn::text("published")]));
    let workflow = Workflow::from_toml_str(
        r#"
        [agents.draft]
        instructions = "Draft."
        model = "drafter"

        [agents.review]
        instructions = "Answer `approved` or `revise`."
        model = "reviewer"

        [agents.publish]
        instructions = "Publish."
        model = "publisher"

        [workflow]
        start = "draft"
        edges = [{ from = "draft", to = "review" }]
        routes = [{ from = "review", to = { revise = "draft", approved = "publish" } }]
        max_visits = 3
        "#,
        &registry,
    )
    .await?;
    let result = workflow.run("Write.".to_owned()).await?;
    assert_eq!(result.output, "published");
    let visited: Vec<String> = result.visited.iter().map(ToString::to_string).collect();
    assert_eq!(visited, ["draft", "review", "draft", "review", "publish"]);
    Ok(())
}

#[tokio::test]
async fn a_route_may_end_the_workflow_with_the_answer() -> anyhow::Result<()> {
    let registry = Registry::new().model("classifier", ScriptedModel::new([ScriptedTurn::text("Done.")]));
    let workflow = Workflow::from_toml_str(
        r#"
        [agents.check]
        instructions = "Say done or retry."
        model = "classifier"

        [workflow]
        start = "check"
        routes = [{ from = "check", to = { done = "end", retry = "check" } }]
        max_visits = 2
        "#,
        &registry,
    )
    .await?;
    assert_eq!(workflow.run("go".to_owned()).await?.output, "Done.");
    Ok(())
}

#[tokio::test]
async fn a_fan_out_joins_every_branch_under_its_name() -> anyhow::Result<()> {
    let registry = Registry::new()
        .model("pros", ScriptedModel::new([ScriptedTurn::text("fast")]))
        .model("cons", ScriptedModel::new([ScriptedTurn::text("costly")]));
    let workflow = Workflow::from_toml_str(
        r#"
        [agents.topic]
        instructions = "Repeat the topic."
        model = "echo"

        [agents.pros]
        instructions = "Pros."
        model = "pros"

        [agents.cons]
        instructions = "Cons."
        model = "cons"

        [agents.merge]
        instructions = "Repeat what you are given."
        model = "echo"

        [workflow]
        start = "topic"
        fan_out = [{ from = "topic", branches = ["pros", "cons"], join = "merge" }]
        "#,
        &registry,
    )
    .await?;
    let output = workflow.run("trains".to_owned()).await?.output;
    assert_eq!(output, "Echo: ## pros\n\nfast\n\n## cons\n\ncostly");
    Ok(())
}

#[tokio::test]
async fn a_workflow_file_is_told_from_an_agent_file() {
    assert!(loomflow::config::is_workflow_file(EVERY_WORKFLOW_KEY));
    assert!(!loomflow::config::is_workflow_file(EVERY_AGENT_KEY));
    assert!(!loomflow::config::is_workflow_file("instructions = \"[workflow]\"\n"));
    assert!(!loomflow::config::is_workflow_file("not toml ["));
}

#[tokio::test]
async fn what_the_agent_would_refuse_at_its_first_run_is_refused_when_the_file_is_built() {
    let bounded =
        agent_error("instructions = \"Help.\"\n\n[sessions]\nbackend = \"in_memory\"\nmax_users = 10\n").await;
    assert!(
        bounded.starts_with("agent.toml:5:13: `sessions.max_users`: in-memory sessions are not bounded"),
        "{bounded}"
    );
    let zero_rate = agent_error(
        "instructions = \"Help.\"\nmodel = \"echo\"\nrate_limit = { per_user = { rate = 0.0, burst = 1 } }\n",
    )
    .await;
    assert!(zero_rate.starts_with("agent.toml: `agent`: "), "{zero_rate}");
    let wait = agent_error("instructions = \"Help.\"\nrate_limit = { max_wait_secs = -1.0 }\n").await;
    assert!(wait.contains("`rate_limit.max_wait_secs`: -1 is not a number of seconds"), "{wait}");
}
