//! The structural checks of a Loom workflow graph.
//!
//! One implementation serves both places a graph is checked: the `#[workflow]` macro runs it
//! at compile time (and turns each [`Problem`] into a spanned compiler error), and the
//! workflow builder runs it in `build()`. A graph passes when it has exactly one start node,
//! every node is reachable from the start and can reach an end, every fan-out is joined, and
//! every cycle passes through a node with a visit bound.
//!
//! [`suggest`] is the "did you mean" helper both places share with the rest of Loom.

use std::collections::BTreeSet;

pub mod suggest;

/// A node, as far as the checks are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The node's name (used in messages only).
    pub name: String,
    /// Whether the node is marked as the start.
    pub start: bool,
    /// The node's visit bound, if it declares one.
    pub max_visits: Option<u32>,
    /// Whether the node is a join (it receives the outputs of a fan-out).
    pub join: bool,
}

/// An edge between two nodes (indices into [`Graph::nodes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Where it leaves.
    pub from: usize,
    /// Where it arrives.
    pub to: usize,
}

/// A fan-out: a node whose output goes to several branches at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    /// The node that fans out.
    pub node: usize,
    /// The first node of each branch.
    pub branches: Vec<usize>,
}

/// A workflow graph.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The edges (sequential, routed, and the edges from a fan-out to its branches).
    pub edges: Vec<Edge>,
    /// The fan-outs.
    pub fan_outs: Vec<FanOut>,
}

/// What is wrong with a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No node is marked as the start.
    NoStart,
    /// More than one node is marked as the start (all of them, in order).
    MultipleStarts(Vec<usize>),
    /// The node cannot be reached from the start.
    Unreachable(usize),
    /// No end can be reached from the node: every path from it loops forever.
    NoPathToEnd(usize),
    /// A cycle no edge leaves: once entered, the run can only end at a visit bound.
    CycleWithoutExit(Vec<usize>),
    /// The fan-out's branches never meet at a join node.
    FanOutWithoutJoin(usize),
    /// The fan-out's branches meet at different nodes, or one branch never arrives.
    BranchesDoNotMeet {
        /// The fan-out node.
        fan_out: usize,
        /// The branch that does not reach the join the others reach.
        branch: usize,
    },
    /// A join node that no fan-out leads to.
    JoinWithoutFanOut(usize),
    /// A cycle in which no node declares a visit bound (the nodes of the cycle, in order).
    UnboundedCycle(Vec<usize>),
}

impl Problem {
    /// The problem as a sentence, naming nodes from `graph`.
    pub fn describe(&self, graph: &Graph) -> String {
        let name = |i: &usize| graph.nodes.get(*i).map_or("?", |n| n.name.as_str()).to_owned();
        match self {
            Self::NoStart => "no node is marked as the start".to_owned(),
            Self::MultipleStarts(nodes) => {
                format!(
                    "more than one start node: {}",
                    nodes.iter().map(|n| format!("`{}`", name(n))).collect::<Vec<_>>().join(", ")
                )
            }
            Self::Unreachable(n) => format!("node `{}` cannot be reached from the start", name(n)),
            Self::NoPathToEnd(n) => format!("node `{}` never reaches an end: every path from it loops", name(n)),
            Self::CycleWithoutExit(nodes) => format!(
                "the cycle {} has no way out: no edge leaves it for a node that ends the run",
                nodes.iter().chain(nodes.first()).map(name).collect::<Vec<_>>().join(" → ")
            ),
            Self::FanOutWithoutJoin(n) => format!("the branches of fan-out `{}` are never joined", name(n)),
            Self::BranchesDoNotMeet { fan_out, branch } => format!(
                "branch `{}` of fan-out `{}` does not arrive at the same join as the other branches",
                name(branch),
                name(fan_out)
            ),
            Self::JoinWithoutFanOut(n) => format!("join `{}` is not the join of any fan-out", name(n)),
            Self::UnboundedCycle(nodes) => format!(
                "the cycle {} has no visit bound; give one of its nodes `max_visits`",
                nodes.iter().chain(nodes.first()).map(name).collect::<Vec<_>>().join(" → ")
            ),
        }
    }
}

impl Graph {
    fn successors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges.iter().filter(move |e| e.from == node).map(|e| e.to)
    }

    fn predecessors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges.iter().filter(move |e| e.to == node).map(|e| e.from)
    }

    /// The end nodes: nodes without outgoing edges.
    pub fn ends(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&n| self.successors(n).next().is_none()).collect()
    }

    /// The join of a fan-out: the first join node every branch reaches by following its
    /// edges (each branch is a chain; the join is where the chains meet).
    pub fn join_of(&self, fan_out: &FanOut) -> Result<usize, Problem> {
        let mut join = None;
        for &branch in &fan_out.branches {
            let found = self.first_join_from(branch);
            match (found, join) {
                (None, _) => return Err(Problem::FanOutWithoutJoin(fan_out.node)),
                (Some(j), None) => join = Some(j),
                (Some(j), Some(expected)) if j != expected => {
                    return Err(Problem::BranchesDoNotMeet { fan_out: fan_out.node, branch });
                }
                _ => {}
            }
        }
        join.ok_or(Problem::FanOutWithoutJoin(fan_out.node))
    }

    fn first_join_from(&self, start: usize) -> Option<usize> {
        let mut seen = BTreeSet::new();
        let mut at = start;
        loop {
            if self.nodes.get(at)?.join {
                return Some(at);
            }
            if !seen.insert(at) {
                return None;
            }
            let mut next = self.successors(at);
            at = next.next()?;
        }
    }

    /// Every problem of the graph, in a stable order.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let n = self.nodes.len();
        let starts: Vec<usize> = (0..n).filter(|&i| self.nodes[i].start).collect();
        match starts.len() {
            0 if n > 0 => problems.push(Problem::NoStart),
            0 | 1 => {}
            _ => problems.push(Problem::MultipleStarts(starts.clone())),
        }

        if let Some(&start) = starts.first() {
            let reachable = self.closure(start, |g, i| g.successors(i).collect());
            for i in 0..n {
                if !reachable.contains(&i) {
                    problems.push(Problem::Unreachable(i));
                }
            }
        }

        let ends = self.ends();
        let mut reaches_end = BTreeSet::new();
        for &e in &ends {
            reaches_end.extend(self.closure(e, |g, i| g.predecessors(i).collect()));
        }
        // A node that cannot reach an end leads into a cycle no edge leaves (every other path
        // ends somewhere): report those cycles, not every node on the way to them.
        let stuck: BTreeSet<usize> = (0..n).filter(|i| !reaches_end.contains(i)).collect();
        let cycles = self.cycles();
        let mut explained = BTreeSet::new();
        for cycle in &cycles {
            let closed = cycle.iter().all(|&i| self.successors(i).all(|s| cycle.contains(&s)));
            if closed && cycle.iter().all(|i| stuck.contains(i)) {
                problems.push(Problem::CycleWithoutExit(cycle.clone()));
                explained.extend(self.closure(cycle[0], |g, i| g.predecessors(i).collect()));
            }
        }
        for &i in &stuck {
            if !explained.contains(&i) {
                problems.push(Problem::NoPathToEnd(i));
            }
        }

        let mut joined = BTreeSet::new();
        for f in &self.fan_outs {
            match self.join_of(f) {
                Ok(j) => {
                    joined.insert(j);
                }
                Err(p) => problems.push(p),
            }
        }
        for i in 0..n {
            if self.nodes[i].join && !joined.contains(&i) {
                problems.push(Problem::JoinWithoutFanOut(i));
            }
        }

        for cycle in cycles {
            if cycle.iter().all(|&i| self.nodes[i].max_visits.is_none()) {
                problems.push(Problem::UnboundedCycle(cycle));
            }
        }
        problems
    }

    fn closure(&self, from: usize, step: impl Fn(&Self, usize) -> Vec<usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            for j in step(self, i) {
                if seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        seen
    }

    /// The strongly connected components that contain a cycle (Tarjan), each in the order
    /// its nodes appear in the graph.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            on_stack: Vec<bool>,
            stack: Vec<usize>,
            next: usize,
            out: Vec<Vec<usize>>,
        }
        impl Tarjan<'_> {
            fn visit(&mut self, v: usize) {
                self.index[v] = Some(self.next);
                self.low[v] = self.next;
                self.next += 1;
                self.stack.push(v);
                self.on_stack[v] = true;
                let succ: Vec<usize> = self.graph.successors(v).collect();
                for w in succ {
                    match self.index[w] {
                        None => {
                            self.visit(w);
                            self.low[v] = self.low[v].min(self.low[w]);
                        }
                        Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                        Some(_) => {}
                    }
                }
                if Some(self.low[v]) == self.index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    let self_loop = component.len() == 1 && self.graph.successors(v).any(|s| s == v);
                    if component.len() > 1 || self_loop {
                        component.sort_unstable();
                        self.out.push(component);
                    }
                }
            }
        }
        let n = self.nodes.len();
        let mut t = Tarjan {
            graph: self,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in 0..n {
            if t.index[v].is_none() {
                t.visit(v);
            }
        }
        t.out.sort();
        t.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(names: &[&str], edges: &[(usize, usize)]) -> Graph {
        Graph {
            nodes: names.iter().map(|n| Node { name: (*n).to_owned(), ..Node::default() }).collect(),
            edges: edges.iter().map(|&(from, to)| Edge { from, to }).collect(),
            fan_outs: Vec::new(),
        }
    }

    #[test]
    fn a_chain_passes() {
        let mut g = graph(&["a", "b", "c"], &[(0, 1), (1, 2)]);
        g.nodes[0].start = true;
        assert_eq!(g.check(), []);
        assert_eq!(g.ends(), [2]);
    }

    #[test]
    fn start_problems() {
        let g = graph(&["a", "b"], &[(0, 1)]);
        assert_eq!(g.check(), [Problem::NoStart]);
        let mut g = graph(&["a", "b"], &[(0, 1)]);
        g.nodes[0].start = true;
        g.nodes[1].start = true;
        assert_eq!(g.check()[0], Problem::MultipleStarts(vec![0, 1]));
    }

    #[test]
    fn unreachable_and_endless_nodes() {
        // a → b; c alone; d ⇄ e loops forever (bounded, so only the missing end shows).
        let mut g = graph(&["a", "b", "c", "d", "e"], &[(0, 1), (0, 3), (3, 4), (4, 3)]);
        g.nodes[0].start = true;
        g.nodes[3].max_visits = Some(3);
        assert_eq!(g.check(), [Problem::Unreachable(2), Problem::CycleWithoutExit(vec![3, 4])]);
    }

    #[test]
    fn cycles_need_a_bound() {
        let mut g = graph(&["draft", "review", "revise", "publish"], &[(0, 1), (1, 2), (2, 1), (1, 3)]);
        g.nodes[0].start = true;
        assert_eq!(g.check(), [Problem::UnboundedCycle(vec![1, 2])]);
        assert_eq!(
            Problem::UnboundedCycle(vec![1, 2]).describe(&g),
            "the cycle review → revise → review has no visit bound; give one of its nodes `max_visits`"
        );
        g.nodes[2].max_visits = Some(3);
        assert_eq!(g.check(), []);
        let mut g = graph(&["a", "b"], &[(0, 0), (0, 1)]);
        g.nodes[0].start = true;
        assert_eq!(g.check(), [Problem::UnboundedCycle(vec![0])]);
    }

    #[test]
    fn fan_outs_need_a_join() {
        // split → l, r → merge
        let mut g = graph(&["split", "l", "r", "merge"], &[(0, 1), (0, 2), (1, 3), (2, 3)]);
        g.nodes[0].start = true;
        g.fan_outs.push(FanOut { node: 0, branches: vec![1, 2] });
        assert_eq!(g.check(), [Problem::FanOutWithoutJoin(0)]);
        g.nodes[3].join = true;
        assert_eq!(g.check(), []);
        assert_eq!(g.join_of(&g.fan_outs[0]), Ok(3));
    }

    #[test]
    fn branches_must_meet_at_one_join() {
        let mut g = graph(&["split", "l", "r", "j1", "j2", "end"], &[(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 5)]);
        g.nodes[0].start = true;
        g.nodes[3].join = true;
        g.nodes[4].join = true;
        g.fan_outs.push(FanOut { node: 0, branches: vec![1, 2] });
        let problems = g.check();
        assert!(problems.contains(&Problem::BranchesDoNotMeet { fan_out: 0, branch: 2 }));
        assert!(problems.contains(&Problem::JoinWithoutFanOut(4)));
    }
}
