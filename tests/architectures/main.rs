//! The architectures, each on the scripted model: the calls each makes, in order and at once,
//! its stop conditions, its malformed control messages, its bad configurations, and its resume
//! after a crash.

#![allow(unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod actor_critic;
mod blackboard;
mod debate;
mod plan_execute;
mod react;
mod reflexion;
mod resume;
mod rewoo;
mod router;
mod run_until;
mod self_refine;
mod supervisor;
mod swarm;
mod tree_of_thoughts;
