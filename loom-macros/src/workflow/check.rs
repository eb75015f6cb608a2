//! Resolves edge targets and checks the graph's structure (with `loomflow-graph`, the same
//! checks the workflow builder runs), reporting each problem on the token at fault.

use proc_macro2::Span;

use super::parse::{Out, WorkflowModel};
use crate::common::{Errors, did_you_mean};

/// Where a node goes next, with edge targets resolved to node indices.
pub(super) enum Next {
    End,
    /// To one node; the span of the edge's target, as written.
    One(usize, Span),
    /// By the variant of the output; each arm with the span of its target.
    Route(Vec<(syn::Path, usize, Span)>),
    /// Each branch is the chain of nodes from the fan-out to the join (join excluded).
    FanOut {
        branches: Vec<Vec<usize>>,
        join: usize,
    },
}

pub(super) struct Resolved {
    pub(super) start: usize,
    pub(super) next: Vec<Next>,
    /// Nodes that run inside a fan-out's branch (not on their own in the main loop).
    pub(super) in_branch: Vec<bool>,
}

struct EdgeRef {
    from: usize,
    to: usize,
    span: Span,
}

pub(super) fn check(model: &WorkflowModel, errors: &mut Errors) -> Option<Resolved> {
    let names: Vec<String> = model.nodes.iter().map(|n| n.name()).collect();
    let resolve = |target: &syn::Ident, errors: &mut Errors| -> Option<usize> {
        let name = target.to_string();
        let found = names.iter().position(|n| *n == name);
        if found.is_none() {
            let hint = did_you_mean(&name, names.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            errors.push_spanned(target, format!("no node named `{name}` in this workflow{hint}"));
        }
        found
    };

    let mut edges: Vec<EdgeRef> = Vec::new();
    let mut graph = loomflow_graph::Graph::default();
    let mut next = Vec::with_capacity(model.nodes.len());
    let mut fan_out_spans = Vec::new();
    let mut ok = true;
    for (i, node) in model.nodes.iter().enumerate() {
        graph.nodes.push(loomflow_graph::Node {
            name: names[i].clone(),
            start: node.start.is_some(),
            max_visits: node.max_visits,
            join: node.join.is_some(),
        });
        next.push(match &node.out {
            Out::End => Next::End,
            Out::Next(target) => match resolve(target, errors) {
                Some(to) => {
                    edges.push(EdgeRef { from: i, to, span: target.span() });
                    Next::One(to, target.span())
                }
                None => {
                    ok = false;
                    Next::End
                }
            },
            Out::Route { arms, .. } => {
                let mut resolved = Vec::new();
                for arm in arms {
                    match resolve(&arm.target, errors) {
                        Some(to) => {
                            edges.push(EdgeRef { from: i, to, span: arm.target.span() });
                            resolved.push((arm.variant.clone(), to, arm.target.span()));
                        }
                        None => ok = false,
                    }
                }
                Next::Route(resolved)
            }
            Out::FanOut { keyword, branches } => {
                let mut firsts = Vec::new();
                for b in branches {
                    match resolve(b, errors) {
                        Some(to) => {
                            edges.push(EdgeRef { from: i, to, span: b.span() });
                            firsts.push((to, b.span()));
                        }
                        None => ok = false,
                    }
                }
                graph.fan_outs.push(loomflow_graph::FanOut { node: i, branches: firsts.iter().map(|f| f.0).collect() });
                fan_out_spans.push((*keyword, firsts));
                // Filled in once the joins are known.
                Next::FanOut { branches: Vec::new(), join: usize::MAX }
            }
        });
    }
    if !ok {
        return None;
    }
    graph.edges = edges.iter().map(|e| loomflow_graph::Edge { from: e.from, to: e.to }).collect();

    let start = graph.nodes.iter().position(|n| n.start);
    for problem in graph.check() {
        report(&problem, model, &graph, &edges, &fan_out_spans, errors);
    }
    if !errors.is_empty() {
        return None;
    }

    // Each branch is a chain of `next` edges from the fan-out to its join.
    let mut in_branch = vec![false; model.nodes.len()];
    for (k, fan_out) in graph.fan_outs.iter().enumerate() {
        let Ok(join) = graph.join_of(fan_out) else { continue };
        let mut chains = Vec::new();
        for &(first, span) in &fan_out_spans[k].1 {
            let mut chain = Vec::new();
            let mut at = first;
            while at != join {
                let incoming = edges.iter().filter(|e| e.to == at).count();
                if incoming > 1 || in_branch[at] {
                    errors.push_spanned(
                        &model.nodes[at].ident,
                        format!(
                            "node `{}` is on a branch of fan-out `{}`; nothing else may lead to it",
                            names[at], names[fan_out.node]
                        ),
                    );
                    break;
                }
                in_branch[at] = true;
                chain.push(at);
                match &next[at] {
                    Next::One(to, _) => at = *to,
                    _ => {
                        errors.push_at(
                            span,
                            format!(
                                "a branch of fan-out `{}` must reach its join `{}` by `next` edges; `{}` leaves otherwise",
                                names[fan_out.node], names[join], names[at]
                            ),
                        );
                        break;
                    }
                }
            }
            chains.push(chain);
        }
        next[fan_out.node] = Next::FanOut { branches: chains, join };
    }
    if !errors.is_empty() {
        return None;
    }
    Some(Resolved { start: start.unwrap_or(0), next, in_branch })
}

fn report(
    problem: &loomflow_graph::Problem,
    model: &WorkflowModel,
    graph: &loomflow_graph::Graph,
    edges: &[EdgeRef],
    fan_outs: &[(Span, Vec<(usize, Span)>)],
    errors: &mut Errors,
) {
    use loomflow_graph::Problem;
    let node = |i: usize| &model.nodes[i];
    match problem {
        Problem::NoStart => errors
            .push_at(model.span, "this workflow has no start node: mark the node it starts at with `#[node(start)]`"),
        Problem::MultipleStarts(starts) => {
            let first = &model.nodes[starts[0]];
            for &s in &starts[1..] {
                if let Some(span) = node(s).start {
                    errors.push_at(span, format!("a second start node; `{}` is already the start", first.name()));
                }
            }
        }
        Problem::Unreachable(n) => errors
            .push_spanned(&node(*n).ident, format!("node `{}` cannot be reached from the start node", node(*n).name())),
        Problem::NoPathToEnd(n) => errors.push_spanned(
            &node(*n).ident,
            format!("node `{}` never reaches an end: every path from it loops back", node(*n).name()),
        ),
        Problem::FanOutWithoutJoin(f) => {
            let span = fan_outs.iter().zip(&graph.fan_outs).find(|(_, g)| g.node == *f).map(|(s, _)| s.0);
            errors.push_at(
                span.unwrap_or(model.span),
                format!(
                    "the branches of fan-out `{}` are never joined: lead them to a `#[node(join)]`",
                    node(*f).name()
                ),
            );
        }
        Problem::BranchesDoNotMeet { fan_out, branch } => {
            let span = fan_outs
                .iter()
                .zip(&graph.fan_outs)
                .find(|(_, g)| g.node == *fan_out)
                .and_then(|(s, _)| s.1.iter().find(|(b, _)| b == branch).map(|(_, span)| *span));
            errors.push_at(
                span.unwrap_or(model.span),
                format!(
                    "branch `{}` of fan-out `{}` does not arrive at the join the other branches arrive at",
                    node(*branch).name(),
                    node(*fan_out).name()
                ),
            );
        }
        Problem::JoinWithoutFanOut(j) => errors.push_at(
            node(*j).join.unwrap_or(model.span),
            format!("`{}` is marked `join`, but no fan-out's branches arrive at it", node(*j).name()),
        ),
        Problem::UnboundedCycle(cycle) | Problem::CycleWithoutExit(cycle) => {
            // Point at the edge that loops back: in the cycle, from a later node to an
            // earlier (or the same) one.
            let back = edges
                .iter()
                .filter(|e| cycle.contains(&e.from) && cycle.contains(&e.to) && e.to <= e.from)
                .max_by_key(|e| e.from);
            let span = back.map_or(model.span, |e| e.span);
            errors.push_at(span, problem.describe(graph));
        }
        other => errors.push_at(model.span, other.describe(graph)),
    }
}
