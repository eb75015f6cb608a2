use loomflow::prelude::*;

struct Pingpong;

#[workflow]
impl Pingpong {
    #[node(start, next = ping)]
    fn serve(&self, n: u32) -> u32 {
        n
    }

    #[node(next = pong, max_visits = 5)]
    fn ping(&self, n: u32) -> u32 {
        n + 1
    }

    #[node(next = ping)]
    fn pong(&self, n: u32) -> u32 {
        n + 1
    }
}

fn main() {}
