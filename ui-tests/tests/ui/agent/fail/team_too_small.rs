use loomflow::prelude::*;

/// One.
#[agent(model = "echo")]
struct One;

/// Two.
#[agent(model = "echo")]
struct Two;

/// A debate of one.
#[agent(model = "echo", architecture = debate, debaters = [One])]
struct Monologue;

/// A swarm of one.
#[agent(model = "echo", architecture = swarm, peers = [One])]
struct Solo;

/// A worker listed twice.
#[agent(model = "echo", architecture = supervisor, workers = [One, Two, One])]
struct Twice;

fn main() {}
