use loomflow::prelude::*;

struct Support;

enum Triage {
    Billing(String),
    Tech(String),
    Urgent(String),
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
    fn tech(&self, text: String) -> String {
        text
    }
}

fn main() {
    let _ = Triage::Tech(String::new());
    let _ = Triage::Urgent(String::new());
}
