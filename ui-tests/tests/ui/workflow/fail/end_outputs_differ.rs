use loomflow::prelude::*;

struct Support;

enum Triage {
    Billing(String),
    Tech(String),
}

#[workflow]
impl Support {
    #[node(start, route = { Triage::Billing => billing, Triage::Tech => tech })]
    fn classify(&self, text: String) -> Triage {
        Triage::Billing(text)
    }

    #[node]
    fn billing(&self, text: String) -> String {
        text
    }

    #[node]
    fn tech(&self, text: String) -> usize {
        text.len()
    }
}

fn main() {
    let _ = Triage::Tech(String::new());
}
