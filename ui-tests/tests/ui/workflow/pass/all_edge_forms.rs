use loomflow::prelude::*;

struct Everything {
    agent: Agent,
}

#[derive(Clone)]
struct Doc(String);

enum Next {
    Split(Doc),
    Again(String),
    Quit,
}

#[workflow(name = "everything")]
impl Everything {
    #[node(start, next = decide)]
    async fn begin(&self, ctx: &RunContext, text: String) -> Result<String, loomflow::Error> {
        Ok(self.agent.run(text).within(ctx).await?.output)
    }

    #[node(route = { Next::Split => split, Next::Again => again, Next::Quit => quit })]
    fn decide(&self, text: String) -> Next {
        match text.len() {
            0 => Next::Quit,
            1..10 => Next::Again(text),
            _ => Next::Split(Doc(text)),
        }
    }

    #[node(next = decide, max_visits = 3)]
    fn again(&self, text: String) -> String {
        text + "."
    }

    #[node(fan_out = [left, right])]
    fn split(&self, doc: Doc) -> Doc {
        doc
    }

    #[node(next = join)]
    async fn left(&self, doc: Doc) -> usize {
        doc.0.len()
    }

    #[node(next = right_more)]
    async fn right(&self, doc: Doc) -> String {
        doc.0
    }

    #[node(next = join)]
    fn right_more(&self, s: String) -> Result<String, std::io::Error> {
        Ok(s)
    }

    #[node(join)]
    fn join(&self, parts: (usize, String)) -> String {
        format!("{}:{}", parts.0, parts.1)
    }

    #[node]
    fn quit(&self) -> String {
        String::new()
    }

    fn not_a_node(&self) -> u8 {
        1
    }
}

struct NoInput;

#[workflow]
impl NoInput {
    #[node(start)]
    async fn only(&self) -> u32 {
        42
    }
}

fn main() {
    let e = Everything { agent: Agent::new("x").model("echo") };
    assert_eq!(e.not_a_node(), 1);
    let wf: Workflow<String, String> = e.into_workflow();
    assert_eq!(wf.name(), "everything");
    let _: Workflow<(), u32> = NoInput.into_workflow();
}
