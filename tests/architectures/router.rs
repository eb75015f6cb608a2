//! Router: one classification, one specialist, its answer word for word.

use loomflow::arch::{RouteSessions, Router, Team};
use loomflow::prelude::*;
use serde_json::json;

use crate::common::Recorder;
use crate::support::{arch_event_names, arch_events, calls};

fn specialist(name: &str, answer: &str) -> (Agent, ScriptedModel) {
    let model = ScriptedModel::from_fn({
        let answer = answer.to_owned();
        move |_| ScriptedTurn::text(answer.clone())
    });
    let agent = Agent::new(format!("You handle {name} questions."))
        .name(name)
        .description(format!("{name} questions"))
        .model(model.clone());
    (agent, model)
}

fn router() -> (Router, ScriptedModel, ScriptedModel) {
    let (billing, billing_model) = specialist("billing", "Your invoice is attached.");
    let (tech, tech_model) = specialist("tech", "Restart the router.");
    (Router::new().route("billing", billing).route("tech", tech), billing_model, tech_model)
}

fn choice(route: &str, confidence: f64) -> ScriptedTurn {
    ScriptedTurn::text(json!({"route": route, "confidence": confidence}).to_string())
}

#[tokio::test]
async fn the_chosen_specialist_answers_in_its_own_sub_session() -> anyhow::Result<()> {
    let (router, billing, tech) = router();
    let classifier = ScriptedModel::new([choice("tech", 0.92)]);
    let recorder = Recorder::new();
    let agent = Agent::new("Route support requests.")
        .model(classifier.clone())
        .architecture(router)
        .on_event(recorder.listener());
    let result = agent.run("My wifi is down").user("u").session("s").await?;
    assert_eq!(result.output, "Restart the router.");
    assert_eq!(calls(&recorder), ["classifier", "tech:agent"]);
    assert_eq!((billing.calls(), tech.calls()), (0, 1));
    // The classifier saw every route and what it is for.
    let shown = classifier.requests()[0].last_text();
    assert!(shown.contains("- billing: billing questions") && shown.contains("- tech: tech questions"));
    assert_eq!(tech.requests()[0].last_text(), "My wifi is down");
    assert_eq!(arch_event_names(&recorder), ["router.classified", "router.dispatched", "router.completed"]);
    // The specialist's usage is the run's too.
    assert_eq!(result.usage, crate::support::all_usage(&recorder));
    Ok(())
}

#[tokio::test]
async fn a_route_that_does_not_exist_goes_back_with_the_routes_there_are() -> anyhow::Result<()> {
    let (router, _, tech) = router();
    let classifier = ScriptedModel::new([choice("tehc", 0.8), choice("tech", 0.8)]);
    let agent = Agent::new("Route.").model(classifier.clone()).architecture(router);
    assert_eq!(agent.run("help").await?.output, "Restart the router.");
    let feedback = classifier.requests()[1].last_text();
    assert!(feedback.contains("no route `tehc`") && feedback.contains("did you mean `tech`"), "{feedback}");
    assert_eq!(tech.calls(), 1);
    Ok(())
}

#[tokio::test]
async fn low_confidence_and_unreadable_choices_go_to_the_fallback() -> anyhow::Result<()> {
    let (router, billing, tech) = router();
    let classifier =
        ScriptedModel::new([choice("tech", 0.3), ScriptedTurn::text("billing?"), ScriptedTurn::text("hmm")]);
    let recorder = Recorder::new();
    let agent = Agent::new("Route.")
        .model(classifier)
        .architecture(router.fallback("billing").min_confidence(0.5))
        .on_event(recorder.listener());
    assert_eq!(agent.run("a").await?.output, "Your invoice is attached.");
    assert_eq!(agent.run("b").await?.output, "Your invoice is attached.");
    assert_eq!((billing.calls(), tech.calls()), (2, 0));
    let fallbacks: Vec<bool> = arch_events(&recorder)
        .iter()
        .filter(|(n, _)| n == "router.classified")
        .map(|(_, p)| p["fallback"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(fallbacks, [true, true]);
    Ok(())
}

#[tokio::test]
async fn without_a_fallback_an_unreadable_choice_is_a_typed_error() -> anyhow::Result<()> {
    let (router, billing, tech) = router();
    let classifier = ScriptedModel::new([ScriptedTurn::text("tech"), ScriptedTurn::text("tech!")]);
    let agent = Agent::new("Route.").model(classifier).architecture(router);
    let err = agent.run("x").await.err();
    let Some(Error::Output(e)) = err else { anyhow::bail!("expected an output error, got {err:?}") };
    assert_eq!(e.attempts.len(), 2);
    assert_eq!((billing.calls(), tech.calls()), (0, 0));
    Ok(())
}

#[tokio::test]
async fn route_sessions_follow_the_rule() -> anyhow::Result<()> {
    for (rule, want) in [
        (RouteSessions::PerRoute, Some("s/route:tech")),
        (RouteSessions::Shared, Some("s/routed")),
        (RouteSessions::None, None),
    ] {
        let tech = Agent::new("Tech.").name("tech").model(ScriptedModel::from_fn(|_| ScriptedTurn::text("ok")));
        let recorder = Recorder::new();
        let agent = Agent::new("Route.")
            .model(ScriptedModel::new([choice("tech", 1.0)]))
            .architecture(Router::new().route("tech", tech).sessions(rule))
            .on_event(recorder.listener());
        agent.run("x").user("u").session("s").await?;
        let sessions: Vec<Option<String>> = recorder
            .events()
            .into_iter()
            .filter(|e| e.parent.is_some())
            .filter_map(|e| match e.kind {
                EventKind::RunStarted { session, .. } => Some(session.map(|s| s.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(sessions, [want.map(str::to_owned)], "{rule:?}");
    }
    Ok(())
}

#[tokio::test]
async fn team_router_is_the_same_agent() -> anyhow::Result<()> {
    let (billing, _) = specialist("billing", "Paid.");
    let agent = Team::router("Route.", [("billing", billing)]).model(ScriptedModel::new([choice("billing", 1.0)]));
    assert_eq!(agent.architecture_name(), "router");
    assert_eq!(agent.run("x").await?.output, "Paid.");
    Ok(())
}

#[tokio::test]
async fn bad_configurations_are_refused_before_any_model_call() {
    let model = ScriptedModel::new([]);
    let (billing, _) = specialist("billing", "x");
    let cases = [
        Router::new(),
        router().0.fallback("sales"),
        router().0.min_confidence(0.5),
        router().0.route("billing", billing),
        Router::new().route("x", Agent::new("no model")),
    ];
    for arch in cases {
        let agent = Agent::new("x").model(model.clone()).architecture(arch);
        let err = agent.run("x").await.err();
        assert!(matches!(err, Some(Error::Config(ConfigError::InvalidSetting { .. }))), "{err:?}");
    }
    assert_eq!(model.calls(), 0);
}
