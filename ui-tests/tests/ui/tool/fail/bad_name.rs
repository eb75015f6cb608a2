use loomflow::prelude::*;

/// Look up the weather.
#[tool(name = "get weather")]
fn weather(city: String) -> String {
    city
}

/// A name longer than providers allow.
#[tool]
fn this_function_name_is_far_too_long_for_any_provider_to_accept_as_a_tool_name() {}

fn main() {}
