use loomflow::prelude::*;

struct Support;

enum Triage {
    Billing(u32),
    Tech(String),
}

#[workflow]
impl Support {
    #[node(start, route = { Triage::Billing => billing, Triage::Tech => tech })]
    fn classify(&self, text: String) -> Triage {
        Triage::Tech(text)
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
    let _ = Triage::Billing(1);
}
