//! Agents declared as types with `#[agent]`.

use loomflow::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Ticket {
    team: String,
    urgent: bool,
}

impl Validate for Ticket {
    fn validate(&self) -> Result<(), String> {
        match self.team.as_str() {
            "billing" | "tech" => Ok(()),
            other => Err(format!("team must be `billing` or `tech`, not `{other}`")),
        }
    }
}

mod tools {
    use loomflow::prelude::*;

    /// Look up a customer's plan by email.
    #[tool(read_only)]
    pub(crate) fn lookup(email: String) -> String {
        format!("{email}: premium")
    }
}

/// You triage support tickets.
/// Decide the team and whether the ticket is urgent.
#[agent(
    tools = [tools::lookup],
    output = Ticket,
    output_mode = tool,
    output_retries = 2,
    validate,
    max_turns = 5,
    architecture = react
)]
struct Triage;

#[tokio::test]
async fn the_declared_agent_runs_with_its_typed_output() -> anyhow::Result<()> {
    let model = ScriptedModel::new([
        ScriptedTurn::tool_call("lookup", json!({"email": "a@example.com"})),
        ScriptedTurn::tool_call("final_answer", json!({"team": "sales", "urgent": true})),
        ScriptedTurn::tool_call("final_answer", json!({"team": "billing", "urgent": true})),
    ]);
    let triage = Triage::new().configure(|a| a.model(model.clone()));
    let result = triage.run("I was charged twice! a@example.com").await?;
    // No turbofish: the output type comes from the declaration.
    let ticket: Ticket = result.output;
    assert_eq!(ticket, Ticket { team: "billing".into(), urgent: true });

    let requests = model.requests();
    assert_eq!(
        requests[0].messages[0].text(),
        "You triage support tickets.\nDecide the team and whether the ticket is urgent."
    );
    assert_eq!(requests[0].tool_names(), ["lookup", "final_answer"]);
    assert!(requests[2].last_text().contains("team must be `billing` or `tech`, not `sales`"));
    assert_eq!(triage.agent_name(), Some("Triage"));
    Ok(())
}

/// Say hello.
#[agent(model = "echo", name = "greeter", instructions = "Greet the user warmly.")]
pub struct Greeter;

#[tokio::test]
async fn attribute_instructions_and_a_model_string() -> anyhow::Result<()> {
    let greeter = Greeter::default();
    let result = greeter.run("hi").await?;
    assert_eq!(result.output, "Echo: hi");
    assert_eq!(greeter.instructions(), "Greet the user warmly.");
    assert_eq!(greeter.agent_name(), Some("greeter"));
    let plain: Agent = greeter.into_agent();
    assert!(plain.check().is_ok());
    Ok(())
}

#[tokio::test]
async fn an_agent_without_a_model_says_so_at_run_time() {
    /// Nothing to do.
    #[agent]
    struct Idle;
    assert!(matches!(Idle::new().run("x").await, Err(Error::Config(ConfigError::NoModel { .. }))));
}

mod teams {
    use loomflow::prelude::*;
    use serde_json::json;

    /// You answer billing questions.
    #[agent(model = "echo", description = "invoices", name = "billing")]
    struct Billing;

    /// You answer without a model.
    #[agent(name = "idle")]
    struct Idle;

    /// You run support.
    #[agent(architecture = supervisor, workers = [Billing])]
    struct Support;

    /// You run an idle team.
    #[agent(architecture = supervisor, workers = [Idle])]
    struct IdleTeam;

    #[tokio::test]
    async fn a_declared_team_runs_its_declared_workers() -> anyhow::Result<()> {
        let manager = ScriptedModel::new([
            ScriptedTurn::tool_call("delegate", json!({"worker": "billing", "instructions": "invoice 7?"})),
            ScriptedTurn::tool_call("forward_message", json!({"worker": "billing"})),
        ]);
        let support = Support::new().configure(|a| a.model(manager.clone()));
        let result = support.run("Is invoice 7 paid?").await?;
        let direct = Billing::new().run("invoice 7?").await?;
        assert_eq!(result.output, direct.output);
        // The manager was shown the worker by its name and description.
        assert!(manager.requests()[0].messages[0].text().contains("- billing: invoices"));
        Ok(())
    }

    #[tokio::test]
    async fn a_declared_worker_without_a_model_is_reported_before_any_call() {
        let manager = ScriptedModel::new([]);
        let team = IdleTeam::new().configure(|a| a.model(manager.clone()));
        let err = team.run("?").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`idle`") && err.contains("model"), "{err}");
        assert_eq!(manager.calls(), 0);
    }
}
