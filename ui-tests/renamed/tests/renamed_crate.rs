//! The macros through a renamed dependency: `crate = "..."` points their generated code at it,
//! and nothing they generate names `loomflow`.

use my_loom::prelude::*;

/// Add two numbers.
#[my_loom::tool(crate = "my_loom")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// You add numbers.
#[my_loom::agent(model = "echo", tools = [add], crate = "my_loom")]
struct Adder;

struct Steps;

#[my_loom::workflow(crate = "my_loom", max_steps = 10)]
impl Steps {
    #[node(start, next = second)]
    fn first(&self, s: String) -> String {
        s + "1"
    }

    #[node]
    fn second(&self, s: String) -> String {
        s + "2"
    }
}

#[test]
fn every_macro_works_through_a_renamed_crate() {
    assert_eq!(AddTool.definition().name(), "add");
    assert_eq!(Adder::new().tool_set_ref().names().collect::<Vec<_>>(), ["add"]);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
    let result = rt.block_on(std::future::IntoFuture::into_future(Steps.into_workflow().run("0".to_owned())));
    assert_eq!(result.map(|r| r.output).ok().as_deref(), Some("012"));
}
