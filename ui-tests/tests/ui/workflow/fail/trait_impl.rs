use loomflow::prelude::*;

struct Steps;

trait Named {
    fn name(&self) -> String;
}

#[workflow]
impl Named for Steps {
    #[node(start)]
    fn name(&self) -> String {
        String::new()
    }
}

fn main() {
    // The stand-in graph keeps this use free of errors of its own.
    let _ = Steps.into_workflow();
}
