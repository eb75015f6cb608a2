//! Memory recall benchmarks: what one recall and one fact query cost as a user's memory, and
//! the other users' memory beside it, grow.
//!
//! | line | what is timed |
//! |---|---|
//! | `memory_recall_10k`, `memory_recall_100k` | one user holding 10,000 / 100,000 episodes: `MemoryStore::recall` of a query |
//! | `memory_recall_1k_others_0`, `_10k`, `_100k` | a user's 1,000 episodes with 0 / 10,000 / 100,000 other users' episodes in the store |
//! | `memory_facts_subject_10k`, `_100k` | one user holding 10,000 / 100,000 facts: the facts of one subject at a valid time |
//! | `memory_facts_all_10k`, `_100k` | the same: every fact valid now (what an agent with memory asks before each run) |
//!
//! Each line's `variant` is the backend: `in_memory` and `sqlite` always; `postgres`, `redis`
//! and `chroma` when built with their feature and given a server:
//!
//! ```sh
//! cargo bench -p loomflow --bench memory_recall                 # readable table
//! cargo bench -p loomflow --bench memory_recall -- --json       # one JSON line per measurement
//! cargo bench -p loomflow --bench memory_recall -- --quick      # small sizes, a few seconds
//! cargo bench -p loomflow --bench memory_recall -- --backend sqlite
//!
//! LOOM_BENCH_POSTGRES_URL=postgres://loom:loom@127.0.0.1/loom_test \
//!     cargo bench -p loomflow --features postgres --bench memory_recall -- --backend postgres
//! LOOM_BENCH_REDIS_URL=redis://127.0.0.1/ cargo bench -p loomflow --features redis --bench memory_recall
//! LOOM_BENCH_CHROMA_URL=http://127.0.0.1:8000 cargo bench -p loomflow --features chroma --bench memory_recall
//! ```
//!
//! **Data.** Texts are drawn from a Zipf-distributed vocabulary of 5,000 words whose most
//! common words are English ones (`the`, `i`, `to` ...), so a query matches many episodes by
//! a common word and few by a rare one, as a user's input does. Episodes look like an agent's
//! turns (`User: ...\nAssistant: ...`) and notes. Queries are 5 to 9 such words. Everything is
//! generated from a fixed seed, so every run sees the same data.
//!
//! **Timing.** Vectors come from the hashing embedder (256 dimensions). Each query is embedded
//! once, before timing (`embed_p50_us` is that embedding's cost); what is timed is the store's
//! `recall` given the query and its vector, called one after another on a multi-thread tokio
//! runtime. Loading goes through the public [`Memory`] (which embeds each episode), many calls at
//! once; `load_s` says how long it took. SQLite's file is on `/dev/shm` when there is one (or
//! `LOOM_BENCH_DIR`), so loading does not wait on a disk's fsync; the file is removed at the end.
//! Data on a server is written under users of this run's own and forgotten at the end.
//!
//! **Checks.** Before timing, planted episodes with a unique word must come back first for a
//! query naming it; every timed recall must return something and only the user's own episodes;
//! fact queries must return exactly the facts that hold. A failed check prints
//! `"verified": false` without timings and the process exits non-zero.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use futures::{TryStreamExt as _, stream};
use loomflow::UserId;
use loomflow::memory::{
    Embedder, Episode, FactQuery, ForgetScope, HashingEmbedder, InMemoryMemory, Memory, MemoryLimits, MemoryStore,
    NewFact, RecallQuery, Timestamp,
};
use loomflow::session::SqliteStore;
use serde_json::Value;

#[path = "common/text.rs"]
mod text;

use text::{Rng, Vocabulary, human_us, percentile, round, thousands, us};

// ---------------------------------------------------------------------------------------------
// Sizes.

/// The sizes of one run.
#[derive(Debug, Clone)]
struct Sizes {
    /// The single user's episodes, at which recall is timed (ascending; loaded incrementally).
    episodes: Vec<usize>,
    /// The user's episodes in the other-users lines.
    own_episodes: usize,
    /// The other users' episodes beside them (ascending).
    others: Vec<usize>,
    /// Episodes per other user.
    per_other_user: usize,
    /// The single user's facts, at which fact queries are timed (ascending).
    facts: Vec<usize>,
    /// How long each line's timed queries run for, at most.
    budget: Duration,
    /// Timed queries per line: at least, at most.
    min_queries: usize,
    max_queries: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            episodes: vec![10_000, 100_000],
            own_episodes: 1_000,
            others: vec![0, 10_000, 100_000],
            per_other_user: 1_000,
            facts: vec![10_000, 100_000],
            budget: Duration::from_secs(3),
            min_queries: 30,
            max_queries: 2_000,
        }
    }

    fn quick() -> Self {
        Self {
            episodes: vec![1_000, 5_000],
            own_episodes: 200,
            others: vec![0, 2_000, 10_000],
            per_other_user: 200,
            facts: vec![1_000, 5_000],
            budget: Duration::from_millis(300),
            min_queries: 10,
            max_queries: 500,
        }
    }
}

/// Recall calls (or episode loads) in flight at once while loading.
const LOAD_CONCURRENCY: usize = 16;
/// Warm-up queries before each line's timed ones.
const WARMUP: usize = 5;
/// Distinct query texts, cycled through.
const QUERIES: usize = 64;
/// Planted episodes with a unique word, checked before timing.
const NEEDLES: usize = 4;
/// The seed of every generated text.
const SEED: u64 = 0x5eed_1007_0000_0001;

// ---------------------------------------------------------------------------------------------
// Command line.

const USAGE: &str = "\
usage: memory_recall [--json] [--quick] [--backend NAME]...

  --json            one JSON line per measurement (the format of the workloads benchmark)
  --quick           small sizes (1k and 5k episodes and facts), a few seconds per backend
  --backend NAME    only this backend (repeatable): in_memory, sqlite, postgres, redis, chroma
  --keep-db         leave SQLite's files in place (for EXPLAIN QUERY PLAN) and print their paths";

#[derive(Debug, Default)]
struct Options {
    json: bool,
    quick: bool,
    backends: Vec<Backend>,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--quick" => options.quick = true,
            "--keep-db" => KEEP_DB.store(true, std::sync::atomic::Ordering::Relaxed),
            // `cargo bench` passes `--bench` to every benchmark binary.
            "--bench" => {}
            "--backend" => {
                let name = args.next().ok_or_else(|| anyhow!("--backend needs a name\n{USAGE}"))?;
                options
                    .backends
                    .push(Backend::parse(&name).ok_or_else(|| anyhow!("unknown backend `{name}`\n{USAGE}"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if options.backends.is_empty() {
        options.backends = Backend::ALL.to_vec();
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("memory_recall: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every line of every backend asked for; `false` when a check failed.
fn run_main() -> anyhow::Result<bool> {
    let options = parse_args()?;
    let sizes = if options.quick { Sizes::quick() } else { Sizes::full() };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot build the tokio runtime")?;
    let mut out = Output::new(options.json);
    let corpus = Corpus::new();
    runtime.block_on(async {
        for backend in options.backends {
            match backend.available() {
                Err(reason) => eprintln!("memory_recall: {} skipped: {reason}", backend.name()),
                Ok(()) => {
                    recall_lines(backend, &corpus, &sizes, &mut out).await;
                    other_users_lines(backend, &corpus, &sizes, &mut out).await;
                    fact_lines(backend, &corpus, &sizes, &mut out).await;
                }
            }
        }
    });
    out.finish();
    Ok(out.ok)
}

// ---------------------------------------------------------------------------------------------
// Backends.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    InMemory,
    Sqlite,
    Postgres,
    Redis,
    Chroma,
}

impl Backend {
    const ALL: [Self; 5] = [Self::InMemory, Self::Sqlite, Self::Postgres, Self::Redis, Self::Chroma];

    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "in_memory" | "memory" => Self::InMemory,
            "sqlite" => Self::Sqlite,
            "postgres" | "postgresql" => Self::Postgres,
            "redis" => Self::Redis,
            "chroma" => Self::Chroma,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::InMemory => "in_memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Chroma => "chroma",
        }
    }

    /// The variable naming the backend's server, for the ones that need one.
    fn url_variable(self) -> Option<&'static str> {
        match self {
            Self::InMemory | Self::Sqlite => None,
            Self::Postgres => Some("LOOM_BENCH_POSTGRES_URL"),
            Self::Redis => Some("LOOM_BENCH_REDIS_URL"),
            Self::Chroma => Some("LOOM_BENCH_CHROMA_URL"),
        }
    }

    /// Whether this build has the backend's feature.
    fn built(self) -> bool {
        match self {
            Self::InMemory | Self::Sqlite => true,
            Self::Postgres => cfg!(feature = "postgres"),
            Self::Redis => cfg!(feature = "redis"),
            Self::Chroma => cfg!(feature = "chroma"),
        }
    }

    /// Whether it can run here, or why not.
    fn available(self) -> Result<(), String> {
        if !self.built() {
            return Err(format!("built without the `{}` feature (add `--features {0}`)", self.name()));
        }
        match self.url_variable() {
            Some(var) if server_url(var).is_none() => Err(format!("{var} is not set")),
            _ => Ok(()),
        }
    }
}

fn server_url(var: &str) -> Option<String> {
    std::env::var(var).ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty())
}

/// A fresh store of one backend, and what to clean up after it.
struct Bed {
    store: Arc<dyn MemoryStore>,
    /// SQLite's file, removed when the bed is dropped.
    file: Option<PathBuf>,
    /// Where the data is, for the line (`/dev/shm`, a server).
    place: String,
    /// This bed's users are named `{tag}_...`: unique to the run on a shared server.
    tag: String,
    /// Whether the data outlives the process (on a server), to be forgotten at the end.
    server: bool,
}

/// Whether SQLite's files stay after the run (`--keep-db`).
static KEEP_DB: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            if KEEP_DB.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!("memory_recall: kept {} (user ids start with {})", file.display(), self.tag);
                return;
            }
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

impl Bed {
    async fn open(backend: Backend) -> anyhow::Result<Self> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tag = format!("bench_{}_{nanos}_{n}", std::process::id());
        let (store, file, place): (Arc<dyn MemoryStore>, _, _) = match backend {
            Backend::InMemory => {
                // Past the default limits (10,000 episodes and facts per user): nothing may be dropped.
                let limits = MemoryLimits::default()
                    .max_users(1_000_000)
                    .max_episodes_per_user(1_000_000)
                    .max_facts_per_user(1_000_000);
                (Arc::new(InMemoryMemory::with_limits(limits)), None, "process".to_owned())
            }
            Backend::Sqlite => {
                let dir = std::env::var_os("LOOM_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
                    let shm = PathBuf::from("/dev/shm");
                    if shm.is_dir() { shm } else { std::env::temp_dir() }
                });
                let path = dir.join(format!("loom-{tag}.sqlite"));
                let store = SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                (Arc::new(store), Some(path), dir.display().to_string())
            }
            Backend::Postgres => (connect_postgres().await?, None, "server".to_owned()),
            Backend::Redis => (connect_redis(&tag).await?, None, "server".to_owned()),
            Backend::Chroma => (connect_chroma(&tag).await?, None, "server".to_owned()),
        };
        let server = backend.url_variable().is_some();
        Ok(Self { store, file, place, tag, server })
    }

    fn memory(&self) -> Memory {
        Memory::shared(Arc::clone(&self.store))
    }

    fn user(&self, name: &str) -> anyhow::Result<UserId> {
        Ok(UserId::new(format!("{}_{name}", self.tag))?)
    }

    /// Forgets `users` (the data a server keeps past the run).
    async fn clean(&self, users: &[UserId]) {
        if !self.server {
            return;
        }
        for user in users {
            if let Err(e) = self.store.forget(user, &ForgetScope::all()).await {
                eprintln!("memory_recall: cannot forget {user}: {e}");
            }
        }
    }
}

#[cfg(feature = "postgres")]
async fn connect_postgres() -> anyhow::Result<Arc<dyn MemoryStore>> {
    let url = server_url("LOOM_BENCH_POSTGRES_URL").ok_or_else(|| anyhow!("LOOM_BENCH_POSTGRES_URL is not set"))?;
    Ok(Arc::new(loomflow::session::PostgresStore::connect(&url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres() -> anyhow::Result<Arc<dyn MemoryStore>> {
    bail!("built without the `postgres` feature")
}

#[cfg(feature = "redis")]
async fn connect_redis(tag: &str) -> anyhow::Result<Arc<dyn MemoryStore>> {
    let url = server_url("LOOM_BENCH_REDIS_URL").ok_or_else(|| anyhow!("LOOM_BENCH_REDIS_URL is not set"))?;
    Ok(Arc::new(loomflow::memory::RedisMemory::connect(&url).await?.prefix(tag)?))
}

#[cfg(not(feature = "redis"))]
async fn connect_redis(_tag: &str) -> anyhow::Result<Arc<dyn MemoryStore>> {
    bail!("built without the `redis` feature")
}

#[cfg(feature = "chroma")]
async fn connect_chroma(tag: &str) -> anyhow::Result<Arc<dyn MemoryStore>> {
    let url = server_url("LOOM_BENCH_CHROMA_URL").ok_or_else(|| anyhow!("LOOM_BENCH_CHROMA_URL is not set"))?;
    Ok(Arc::new(loomflow::memory::ChromaMemory::builder(url).prefix(tag).connect().await?))
}

#[cfg(not(feature = "chroma"))]
async fn connect_chroma(_tag: &str) -> anyhow::Result<Arc<dyn MemoryStore>> {
    bail!("built without the `chroma` feature")
}

// ---------------------------------------------------------------------------------------------
// Generated texts.

/// The generated vocabulary, with the episodes and queries of this benchmark.
struct Corpus(Vocabulary);

impl Corpus {
    fn new() -> Self {
        Self(Vocabulary::new(SEED))
    }

    fn sentence(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        self.0.sentence(rng, min, max)
    }

    /// An episode's text: an agent's turn, or a note.
    fn episode(&self, rng: &mut Rng) -> (&'static str, String) {
        if rng.below(4) == 0 {
            ("note", self.sentence(rng, 6, 16))
        } else {
            ("turn", format!("User: {}\nAssistant: {}", self.sentence(rng, 5, 14), self.sentence(rng, 6, 18)))
        }
    }

    /// A query: what a user would type.
    fn query(&self, rng: &mut Rng) -> String {
        format!("{}?", self.sentence(rng, 5, 9))
    }
}

/// The unique word of planted episode `i` (never made by the corpus: it has digits).
fn needle_word(i: usize) -> String {
    format!("zephyr{i}")
}

/// The text of planted episode `i`.
fn needle_text(i: usize) -> String {
    format!("User: remember the code word {} for the vault\nAssistant: noted", needle_word(i))
}

/// The first time of generated episodes and facts.
fn base_time() -> Timestamp {
    Timestamp::from_ymd(2024, 1, 1)
}

/// Generated episode `i` of `user`: a minute after episode `i - 1`.
fn episode(corpus: &Corpus, rng: &mut Rng, user: &UserId, i: usize) -> Episode {
    let (kind, text) = corpus.episode(rng);
    Episode::new(user.clone(), kind, text).at(base_time().plus_millis(i as i64 * 60_000))
}

/// Keeps `episodes` through the public memory, many at once; how long it took.
async fn load(memory: &Memory, episodes: Vec<Episode>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    stream::iter(episodes.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(LOAD_CONCURRENCY, |e| async move {
            memory.remember_episode(e).await?;
            Ok(())
        })
        .await?;
    Ok(started.elapsed())
}

/// Loads `count` generated episodes of `user`, numbered from `from`, in chunks (texts are made
/// outside the timing); how long the memory took.
async fn load_generated(
    memory: &Memory,
    corpus: &Corpus,
    rng: &mut Rng,
    user: &UserId,
    from: usize,
    count: usize,
) -> anyhow::Result<Duration> {
    let mut took = Duration::ZERO;
    let mut i = from;
    while i < from + count {
        let end = (i + 10_000).min(from + count);
        let chunk: Vec<Episode> = (i..end).map(|k| episode(corpus, rng, user, k)).collect();
        took += load(memory, chunk).await?;
        i = end;
    }
    Ok(took)
}

/// Plants the needles among `user`'s episodes (timestamps amid the others').
async fn plant_needles(memory: &Memory, user: &UserId) -> anyhow::Result<()> {
    for i in 0..NEEDLES {
        let e = Episode::new(user.clone(), "turn", needle_text(i))
            .at(base_time().plus_millis(i as i64 * 7_919_000 + 30_000));
        memory.remember_episode(&e).await?;
    }
    Ok(())
}

/// Checks every needle comes back first for its word alone (by words only) and for its own
/// text (by meaning only).
async fn check_needles(store: &dyn MemoryStore, user: &UserId) -> anyhow::Result<()> {
    let embedder = HashingEmbedder::default();
    for i in 0..NEEDLES {
        let word = needle_word(i);
        for (text, alpha) in [(word.clone(), 0.0), (needle_text(i), 1.0)] {
            let vector = embedder.vector(&text);
            let query = RecallQuery::new(text.as_str()).alpha(alpha);
            let found = store.recall(user, &query, Some(&vector)).await?;
            let first = found.first().map(|r| r.episode.text.as_str()).unwrap_or("(nothing)");
            ensure!(first.contains(&word), "recall of {text:?} (alpha {alpha}) returned first: {first:?}");
        }
    }
    Ok(())
}

/// Queries, embedded once each; the embedding's cost.
struct Queries {
    queries: Vec<RecallQuery>,
    vectors: Vec<Vec<f32>>,
    embed: Vec<Duration>,
}

async fn queries(corpus: &Corpus) -> anyhow::Result<Queries> {
    let mut rng = Rng(SEED ^ 0xdead_beef);
    let embedder = HashingEmbedder::default();
    let mut out = Queries { queries: Vec::new(), vectors: Vec::new(), embed: Vec::new() };
    for _ in 0..QUERIES {
        let text = corpus.query(&mut rng);
        let started = Instant::now();
        let mut vectors = embedder.embed(&[text.as_str()]).await?;
        out.embed.push(started.elapsed());
        out.vectors.push(vectors.pop().ok_or_else(|| anyhow!("the embedder returned no vector"))?);
        out.queries.push(RecallQuery::new(text));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Timing.

/// Individually timed calls.
struct Timings {
    runs: Vec<Duration>,
}

impl Timings {
    fn p50(&self) -> Duration {
        let mut sorted = self.runs.clone();
        sorted.sort_unstable();
        percentile(&sorted, 50.0)
    }

    /// The timing fields of a line.
    fn fields(&self, record: Record) -> Record {
        let mut sorted = self.runs.clone();
        sorted.sort_unstable();
        let mean = self.runs.iter().sum::<Duration>().checked_div(self.runs.len() as u32).unwrap_or_default();
        record
            .with("n", self.runs.len())
            .with("per_run_us", us(mean))
            .with("p50_us", us(percentile(&sorted, 50.0)))
            .with("p99_us", us(percentile(&sorted, 99.0)))
            .with("max_us", us(sorted.last().copied().unwrap_or_default()))
    }
}

/// Warms up, then times calls of `run(i)` one after another: as many as fit in the budget,
/// within the sizes' bounds.
async fn time_calls<F, Fut>(sizes: &Sizes, mut run: F) -> anyhow::Result<Timings>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    for i in 0..WARMUP {
        run(i).await.with_context(|| format!("warm-up call {i}"))?;
    }
    let estimate = started.elapsed() / WARMUP as u32;
    let fit = (sizes.budget.as_secs_f64() / estimate.as_secs_f64().max(1e-9)) as usize;
    let n = fit.clamp(sizes.min_queries, sizes.max_queries);
    let mut runs = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        run(WARMUP + i).await.with_context(|| format!("call {i}"))?;
        runs.push(t.elapsed());
    }
    Ok(Timings { runs })
}

/// Times recall of `user`'s episodes with the prepared queries, checking every answer.
async fn time_recall(store: &dyn MemoryStore, user: &UserId, q: &Queries, sizes: &Sizes) -> anyhow::Result<Timings> {
    time_calls(sizes, |i| async move {
        let k = i % q.queries.len();
        let found = store.recall(user, &q.queries[k], Some(&q.vectors[k])).await?;
        ensure!(!found.is_empty(), "query {k} ({:?}) recalled nothing", q.queries[k].text);
        ensure!(found.iter().all(|r| r.episode.user == *user), "query {k} recalled another user's episode");
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The lines.

/// `memory_recall_{size}`: one user holding `size` episodes.
async fn recall_lines(backend: Backend, corpus: &Corpus, sizes: &Sizes, out: &mut Output) {
    let name = |size: usize| format!("memory_recall_{}", short(size));
    let first = sizes.episodes.first().copied().unwrap_or(0);
    let outcome: anyhow::Result<()> = async {
        let bed = Bed::open(backend).await?;
        let memory = bed.memory();
        let user = bed.user("single")?;
        let q = queries(corpus).await?;
        let mut rng = Rng(SEED);
        let mut loaded = 0;
        let mut load_time = Duration::ZERO;
        plant_needles(&memory, &user).await?;
        for &size in &sizes.episodes {
            eprintln!("memory_recall: {}: loading {} episodes of one user…", backend.name(), short(size));
            load_time += load_generated(&memory, corpus, &mut rng, &user, loaded, size - loaded).await?;
            loaded = size;
            let line = name(size);
            let record = async {
                check_needles(&*bed.store, &user).await?;
                let timings = time_recall(&*bed.store, &user, &q, sizes).await?;
                Ok::<_, anyhow::Error>(
                    timings
                        .fields(Record::new(&line, backend.name()).with("episodes", size).with("other_episodes", 0))
                        .with("embed_p50_us", us(Timings { runs: q.embed.clone() }.p50()))
                        .with("load_s", round(load_time.as_secs_f64(), 3))
                        .with("load_per_episode_us", us(load_time / size.max(1) as u32))
                        .with("place", bed.place.clone())
                        .with("verified", true),
                )
            }
            .await;
            out.push(record.unwrap_or_else(|e| Record::failed(&line, backend.name(), &e)));
        }
        bed.clean(&[user]).await;
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        out.push(Record::failed(&name(first), backend.name(), &e));
    }
}

/// `memory_recall_{own}_others_{others}`: a user's episodes beside other users' ones.
async fn other_users_lines(backend: Backend, corpus: &Corpus, sizes: &Sizes, out: &mut Output) {
    let own = short(sizes.own_episodes);
    let name = |others: usize| format!("memory_recall_{own}_others_{}", short(others));
    let outcome: anyhow::Result<()> = async {
        let bed = Bed::open(backend).await?;
        let memory = bed.memory();
        let user = bed.user("own")?;
        let q = queries(corpus).await?;
        let mut rng = Rng(SEED ^ 1);
        eprintln!("memory_recall: {}: loading the user's {own} episodes…", backend.name());
        plant_needles(&memory, &user).await?;
        let own_load = load_generated(&memory, corpus, &mut rng, &user, 0, sizes.own_episodes).await?;
        let mut users = vec![user.clone()];
        let mut others_loaded = 0;
        let mut load_time = own_load;
        let mut alone: Option<Duration> = None;
        for &others in &sizes.others {
            if others > others_loaded {
                eprintln!("memory_recall: {}: loading {} other users' episodes…", backend.name(), short(others));
            }
            // Other users of `per_other_user` episodes each, texts from the same vocabulary.
            while others_loaded < others {
                let other = bed.user(&format!("other{}", others_loaded / sizes.per_other_user))?;
                let count = sizes.per_other_user.min(others - others_loaded);
                let base = others_loaded % sizes.per_other_user;
                load_time += load_generated(&memory, corpus, &mut rng, &other, base, count).await?;
                if !users.contains(&other) {
                    users.push(other);
                }
                others_loaded += count;
            }
            let line = name(others);
            let record = async {
                check_needles(&*bed.store, &user).await?;
                let timings = time_recall(&*bed.store, &user, &q, sizes).await?;
                let p50 = timings.p50();
                let base = *alone.get_or_insert(p50);
                let total = sizes.own_episodes + others;
                Ok::<_, anyhow::Error>(
                    timings
                        .fields(
                            Record::new(&line, backend.name())
                                .with("episodes", sizes.own_episodes)
                                .with("other_episodes", others)
                                .with("other_users", others.div_ceil(sizes.per_other_user.max(1))),
                        )
                        .with("p50_vs_alone", round(p50.as_secs_f64() / base.as_secs_f64().max(1e-12), 2))
                        .with("embed_p50_us", us(Timings { runs: q.embed.clone() }.p50()))
                        .with("load_s", round(load_time.as_secs_f64(), 3))
                        .with("load_per_episode_us", us(load_time / total.max(1) as u32))
                        .with("place", bed.place.clone())
                        .with("verified", true),
                )
            }
            .await;
            out.push(record.unwrap_or_else(|e| Record::failed(&line, backend.name(), &e)));
        }
        bed.clean(&users).await;
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        out.push(Record::failed(&name(0), backend.name(), &e));
    }
}

/// The predicates of generated facts.
const PREDICATES: [&str; 2] = ["works at", "lives in"];

/// Generated fact `i`: subject `entity{i / 4}`, a predicate, and one of two versions — the
/// second, from 2025, ends the first, from 2024. Odd subjects' later versions are told first.
fn fact(i: usize) -> NewFact {
    let subject = i / 4;
    let predicate = PREDICATES[(i / 2) % 2];
    let version = if subject % 2 == 1 { 1 - i % 2 } else { i % 2 };
    let year = 2024 + version as i32;
    NewFact::new(format!("entity{subject}"), predicate, format!("place{subject}v{version}"))
        .valid_from(Timestamp::from_ymd(year, 1, 1))
}

/// `memory_facts_{subject,all}_{size}`: one user holding `size` facts.
async fn fact_lines(backend: Backend, _corpus: &Corpus, sizes: &Sizes, out: &mut Output) {
    let first = sizes.facts.first().copied().unwrap_or(0);
    let outcome: anyhow::Result<()> = async {
        let bed = Bed::open(backend).await?;
        let memory = bed.memory();
        let user = bed.user("facts")?;
        let mut loaded = 0;
        let mut load_time = Duration::ZERO;
        for &size in &sizes.facts {
            let size = size / 4 * 4;
            eprintln!("memory_recall: {}: loading {} facts of one user…", backend.name(), short(size));
            let started = Instant::now();
            // One subject's facts in order (supersession), subjects at once.
            stream::iter((loaded / 4..size / 4).map(Ok::<_, anyhow::Error>))
                .try_for_each_concurrent(LOAD_CONCURRENCY, |s| {
                    let (memory, user) = (&memory, &user);
                    async move {
                        for i in s * 4..s * 4 + 4 {
                            memory.add_fact(user, fact(i)).await?;
                        }
                        Ok(())
                    }
                })
                .await?;
            load_time += started.elapsed();
            loaded = size;
            let subjects = size / 4;
            let mid = Timestamp::from_ymd(2024, 6, 1);
            let load_fields = |r: Record| {
                r.with("load_s", round(load_time.as_secs_f64(), 3))
                    .with("load_per_fact_us", us(load_time / size.max(1) as u32))
                    .with("place", bed.place.clone())
                    .with("verified", true)
            };
            // The facts of one subject, at a valid time: by then only the first version held.
            let line = format!("memory_facts_subject_{}", short(size));
            let timed = time_calls(sizes, |i| {
                let (memory, user) = (&memory, &user);
                async move {
                    let s = (i * 7_919) % subjects.max(1);
                    let found =
                        memory.facts(user, FactQuery::new().subject(format!("entity{s}")).valid_at(mid)).await?;
                    let want = format!("place{s}v0");
                    ensure!(
                        found.len() == 2 && found.iter().all(|f| f.object == want),
                        "entity{s} at {mid}: {:?}",
                        found.iter().map(|f| &f.object).collect::<Vec<_>>()
                    );
                    Ok(())
                }
            })
            .await;
            out.push(match timed {
                Ok(t) => load_fields(t.fields(Record::new(&line, backend.name()).with("facts", size))),
                Err(e) => Record::failed(&line, backend.name(), &e),
            });
            // Every fact valid now: the later versions.
            let line = format!("memory_facts_all_{}", short(size));
            let now = Timestamp::now();
            let timed = time_calls(sizes, |_| {
                let (memory, user) = (&memory, &user);
                async move {
                    let found = memory.facts(user, FactQuery::new().valid_at(now)).await?;
                    ensure!(found.len() == size / 2, "{} facts valid now, not {}", found.len(), size / 2);
                    Ok(())
                }
            })
            .await;
            out.push(match timed {
                Ok(t) => load_fields(t.fields(Record::new(&line, backend.name()).with("facts", size))),
                Err(e) => Record::failed(&line, backend.name(), &e),
            });
        }
        bed.clean(&[user]).await;
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        out.push(Record::failed(&format!("memory_facts_subject_{}", short(first)), backend.name(), &e));
    }
}

/// `10k` for 10,000.
fn short(n: usize) -> String {
    if n >= 1_000 && n.is_multiple_of(1_000) { format!("{}k", n / 1_000) } else { n.to_string() }
}

// ---------------------------------------------------------------------------------------------
// Output.

/// One output line: ordered JSON fields, as the workloads benchmark writes them.
#[derive(Debug, Clone)]
struct Record {
    fields: Vec<(&'static str, Value)>,
}

impl Record {
    fn new(workload: &str, backend: &str) -> Self {
        Self {
            fields: vec![
                ("framework", Value::from("loom")),
                ("workload", Value::from(workload)),
                ("variant", Value::from(backend)),
            ],
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// The line of a measurement whose checks failed: no timings.
    fn failed(workload: &str, backend: &str, error: &anyhow::Error) -> Self {
        Self::new(workload, backend).with("verified", false).with("error", format!("{error:#}"))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    fn passed(&self) -> bool {
        self.get("verified").and_then(Value::as_bool).unwrap_or(false)
    }

    fn json(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|(k, v)| format!("{}:{v}", Value::from(*k))).collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// Where lines go: JSON lines as they come, or a table.
struct Output {
    json: bool,
    ok: bool,
    header: bool,
}

impl Output {
    fn new(json: bool) -> Self {
        Self { json, ok: true, header: false }
    }

    fn push(&mut self, record: Record) {
        self.ok &= record.passed();
        if self.json {
            println!("{}", record.json());
            return;
        }
        if !self.header {
            self.header = true;
            println!(
                "{:<30} {:<9} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>6}  vs alone",
                "line", "backend", "items", "others", "load", "embed p50", "p50", "p99", "n"
            );
        }
        let text = |key: &str| self_text(record.get(key));
        let workload = text("workload");
        let backend = text("variant");
        if !record.passed() {
            println!("{workload:<30} {backend:<9} FAILED: {}", text("error"));
            return;
        }
        let items = record.get("episodes").or_else(|| record.get("facts")).and_then(Value::as_u64).unwrap_or(0);
        let others = record.get("other_episodes").and_then(Value::as_u64);
        let duration = |key: &str| record.get(key).and_then(Value::as_f64).map_or("-".to_owned(), human_us);
        let load = record.get("load_s").and_then(Value::as_f64).map_or("-".to_owned(), |s| format!("{s:.1} s"));
        println!(
            "{workload:<30} {backend:<9} {:>8} {:>8} {load:>9} {:>10} {:>10} {:>10} {:>6}  {}",
            thousands(items),
            others.map_or("-".to_owned(), thousands),
            duration("embed_p50_us"),
            duration("p50_us"),
            duration("p99_us"),
            record.get("n").and_then(Value::as_u64).unwrap_or(0),
            record.get("p50_vs_alone").and_then(Value::as_f64).map_or(String::new(), |x| format!("{x:.2}×")),
        );
    }

    fn finish(&self) {
        if !self.json && self.header {
            println!(
                "\nrecall: the store's recall of a 5-to-9-word query with its vector (hashing embedder, 256 dims), \
                 limit 5; embedding timed apart"
            );
        }
    }
}

fn self_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}
