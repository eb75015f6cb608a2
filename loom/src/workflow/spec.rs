//! The static shape of a workflow: nodes, edges, kinds; as data, Mermaid and DOT.

use std::fmt::Write as _;
use std::sync::Arc;

/// What a node does in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// Runs and hands its output to the next node.
    Step,
    /// Runs and picks the next node from its output.
    Router,
    /// Hands its output to several branches that run at once.
    FanOut,
    /// Receives the outputs of a fan-out's branches, in branch order.
    Join,
}

/// How an edge is taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdgeKind {
    /// Always, after the node.
    Next,
    /// When the router's output matches this label.
    Route(Arc<str>),
    /// When no route matches.
    Default,
    /// To a branch of a fan-out.
    Branch,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSpec {
    /// The node's name (as in `visited`).
    pub name: Arc<str>,
    /// What it does.
    pub kind: NodeKind,
    /// Its own visit bound, if it declares one.
    pub max_visits: Option<u32>,
    /// Whether it is safe to run again (a resumed run runs it again without asking).
    pub idempotent: bool,
    /// Whether running it again replays what it finished from its own journal (a journaled
    /// agent or workflow, in a journaled workflow): also safe to run again.
    pub replays: bool,
    /// Whether a fan-out starts it: the branches of a fan-out share the fan-out's step.
    pub(crate) branch: bool,
}

/// An edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EdgeSpec {
    /// Where it leaves (an index into [`GraphSpec::nodes`]).
    pub from: usize,
    /// Where it arrives.
    pub to: usize,
    /// How it is taken.
    pub kind: EdgeKind,
}

/// The static graph of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSpec {
    name: Arc<str>,
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    start: usize,
    max_visits: Option<u32>,
    max_steps: Option<u32>,
}

impl GraphSpec {
    /// An empty graph named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self { name: name.into(), nodes: Vec::new(), edges: Vec::new(), start: 0, max_visits: None, max_steps: None }
    }

    /// Adds a node; returns its index.
    pub fn add_node(&mut self, name: impl Into<Arc<str>>, kind: NodeKind, max_visits: Option<u32>) -> usize {
        self.nodes.push(NodeSpec {
            name: name.into(),
            kind,
            max_visits,
            idempotent: false,
            replays: false,
            branch: false,
        });
        self.nodes.len() - 1
    }

    /// Marks `node` as safe to run again.
    pub fn set_idempotent(&mut self, node: usize) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.idempotent = true;
        }
    }

    pub(crate) fn set_replays(&mut self, node: usize, replays: bool) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.replays = replays;
        }
    }

    /// The bounds the graph declares for its runs: the visit bound of a node without its own,
    /// and the step bound of a run ([`Workflow::new`](super::Workflow::new) takes them).
    pub fn set_bounds(&mut self, max_visits: Option<u32>, max_steps: Option<u32>) {
        self.max_visits = max_visits.map(|n| n.max(1));
        self.max_steps = max_steps.map(|n| n.max(1));
    }

    /// The bounds the graph declares: `(max_visits, max_steps)`.
    pub fn bounds(&self) -> (Option<u32>, Option<u32>) {
        (self.max_visits, self.max_steps)
    }

    /// Adds an edge (between nodes already added).
    pub fn add_edge(&mut self, from: usize, to: usize, kind: EdgeKind) {
        if kind == EdgeKind::Branch
            && let Some(node) = self.nodes.get_mut(to)
        {
            node.branch = true;
        }
        self.edges.push(EdgeSpec { from, to, kind });
    }

    /// Sets the start node.
    pub fn set_start(&mut self, node: usize) {
        self.start = node;
    }

    pub(crate) fn set_kind(&mut self, node: usize, kind: NodeKind) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.kind = kind;
        }
    }

    pub(crate) fn set_max_visits(&mut self, node: usize, max_visits: u32) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.max_visits = Some(max_visits);
        }
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The nodes, in declaration order.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The edges.
    pub fn edges(&self) -> &[EdgeSpec] {
        &self.edges
    }

    /// The start node's index.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The end nodes: nodes no edge leaves.
    pub fn ends(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| !self.edges.iter().any(|e| e.from == i)).collect()
    }

    /// The node at `index`.
    pub fn node(&self, index: usize) -> Option<&NodeSpec> {
        self.nodes.get(index)
    }

    /// The graph as a [Mermaid](https://mermaid.js.org) flowchart.
    ///
    /// ```
    /// use loomflow::workflow::{EdgeKind, GraphSpec, NodeKind};
    /// let mut g = GraphSpec::new("w");
    /// let a = g.add_node("a", NodeKind::Step, None);
    /// let b = g.add_node("b", NodeKind::Step, Some(3));
    /// g.add_edge(a, b, EdgeKind::Next);
    /// assert_eq!(g.to_mermaid(), "flowchart TD\n    __start__((start)) --> n0\n    n0[\"a\"]\n    n1[\"b (max 3)\"]\n    n0 --> n1\n    n1 --> __end__((end))\n");
    /// ```
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        let _ = writeln!(out, "    __start__((start)) --> n{}", self.start);
        for (i, n) in self.nodes.iter().enumerate() {
            let label = label(n);
            let _ = match n.kind {
                NodeKind::Router => writeln!(out, "    n{i}{{\"{label}\"}}"),
                NodeKind::FanOut | NodeKind::Join => writeln!(out, "    n{i}[[\"{label}\"]]"),
                NodeKind::Step => writeln!(out, "    n{i}[\"{label}\"]"),
            };
        }
        for e in &self.edges {
            let _ = match &e.kind {
                EdgeKind::Next => writeln!(out, "    n{} --> n{}", e.from, e.to),
                EdgeKind::Route(l) => writeln!(out, "    n{} -->|{}| n{}", e.from, escape(l), e.to),
                EdgeKind::Default => writeln!(out, "    n{} -.->|default| n{}", e.from, e.to),
                EdgeKind::Branch => writeln!(out, "    n{} ==> n{}", e.from, e.to),
            };
        }
        for end in self.ends() {
            let _ = writeln!(out, "    n{end} --> __end__((end))");
        }
        out
    }

    /// The graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph \"{}\" {{\n    rankdir=TB;\n", escape(&self.name));
        let _ = writeln!(
            out,
            "    __start__ [shape=circle, label=\"start\"];\n    __end__ [shape=doublecircle, label=\"end\"];"
        );
        let _ = writeln!(out, "    __start__ -> n{};", self.start);
        for (i, n) in self.nodes.iter().enumerate() {
            let shape = match n.kind {
                NodeKind::Router => "diamond",
                NodeKind::FanOut | NodeKind::Join => "box3d",
                NodeKind::Step => "box",
            };
            let _ = writeln!(out, "    n{i} [shape={shape}, label=\"{}\"];", label(n));
        }
        for e in &self.edges {
            let _ = match &e.kind {
                EdgeKind::Next => writeln!(out, "    n{} -> n{};", e.from, e.to),
                EdgeKind::Route(l) => writeln!(out, "    n{} -> n{} [label=\"{}\"];", e.from, e.to, escape(l)),
                EdgeKind::Default => writeln!(out, "    n{} -> n{} [label=\"default\", style=dashed];", e.from, e.to),
                EdgeKind::Branch => writeln!(out, "    n{} -> n{} [style=bold];", e.from, e.to),
            };
        }
        for end in self.ends() {
            let _ = writeln!(out, "    n{end} -> __end__;");
        }
        out.push_str("}\n");
        out
    }

    /// The graph in the form the structural checks take.
    pub(crate) fn check_graph(&self, fan_outs: Vec<loomflow_graph::FanOut>) -> loomflow_graph::Graph {
        loomflow_graph::Graph {
            nodes: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| loomflow_graph::Node {
                    name: n.name.to_string(),
                    start: i == self.start,
                    max_visits: n.max_visits,
                    join: n.kind == NodeKind::Join,
                })
                .collect(),
            edges: self.edges.iter().map(|e| loomflow_graph::Edge { from: e.from, to: e.to }).collect(),
            fan_outs,
        }
    }
}

fn label(n: &NodeSpec) -> String {
    match n.max_visits {
        Some(m) => format!("{} (max {m})", escape(&n.name)),
        None => escape(&n.name),
    }
}

fn escape(s: &str) -> String {
    s.replace('"', "'")
}

/// The name of a workflow node, as `visited` and the step records report it. Compares with
/// string slices: `assert_eq!(result.visited, ["classify", "route_billing"])`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(pub(crate) Arc<str>);

impl NodeName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for NodeName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for NodeName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl serde::Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
