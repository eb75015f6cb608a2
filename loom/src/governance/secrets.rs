//! Secrets: values that are used but never shown ([`Secret`]), where they come from
//! ([`Secrets`]: the environment, a map, your vault, a chain of them), `${NAME}` references
//! resolved in configuration text ([`resolve_references`]), and the [`Redactor`] that scrubs
//! their values from events, spans, logs, the journal and the audit log.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A secret value: an API key, a password, a token.
///
/// It prints as `[secret]` (`Debug` and `Display`) and serializes as `"[secret]"`: only
/// [`expose`](Self::expose) gives the value. Clones share the one copy of the value.
///
/// ```
/// use loomflow::governance::Secret;
///
/// let key = Secret::new("sk-live-1234");
/// assert_eq!(format!("{key} {key:?}"), "[secret] [secret]");
/// assert_eq!(key.expose(), "sk-live-1234");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// A secret with this value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The value, for the one place that needs it (an HTTP header, a connection string).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// Writes `"[secret]"`, never the value.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[secret]")
    }
}

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// A `${NAME}` reference names a secret that no source has.
    #[error(
        "`${{{name}}}` at byte {offset} names no secret; set `{name}` (in the environment or the vault), or write `$${{` for a literal `${{`"
    )]
    UnknownReference {
        /// The name referenced.
        name: String,
        /// Where the reference begins, in bytes from the start of the text.
        offset: usize,
    },
    /// A `${` has no closing `}`.
    #[error("the reference at byte {offset} has no closing `}}`; write `${{NAME}}`, or `$${{` for a literal `${{`")]
    UnterminatedReference {
        /// Where the reference begins, in bytes.
        offset: usize,
    },
    /// A reference's name is empty or has whitespace, `{`, `$` or a control character in it.
    #[error("the reference at byte {offset} is malformed ({reason}); write `${{NAME}}`, or `$${{` for a literal `${{`")]
    MalformedReference {
        /// Where the reference begins, in bytes.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An environment variable holds bytes that are not UTF-8.
    #[error("the environment variable `{variable}` is not valid UTF-8; set it to UTF-8 text")]
    NotUnicode {
        /// The variable.
        variable: String,
    },
    /// The vault could not answer.
    #[error(
        "the secrets vault could not give `{name}`: {message}; check that the vault is reachable and that its credentials may read the secret"
    )]
    Vault {
        /// The secret asked for.
        name: String,
        /// What the vault said.
        message: String,
    },
}

impl SecretsError {
    /// A vault failure reading `name`: for implementations of [`Secrets`].
    pub fn vault(name: &str, message: impl fmt::Display) -> Self {
        Self::Vault { name: name.to_owned(), message: message.to_string() }
    }
}

/// Where secrets come from: the environment ([`EnvSecrets`]), a fixed map ([`MapSecrets`]),
/// your vault (implement this trait), or several in turn ([`ChainSecrets`], [`or`](Self::or)).
///
/// ```
/// use loomflow::governance::{EnvSecrets, MapSecrets, Secrets};
///
/// let secrets = MapSecrets::new().with("OPENAI_API_KEY", "sk-test").or(EnvSecrets::new());
/// # let _ = secrets;
/// ```
#[async_trait::async_trait]
pub trait Secrets: Send + Sync + 'static {
    /// The secret called `name`, `None` when this source has no such secret, an error when
    /// the source could not say.
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError>;

    /// This source, then `other` for what this one does not have.
    fn or(self, other: impl Secrets) -> ChainSecrets
    where
        Self: Sized,
    {
        ChainSecrets::new(self).or(other)
    }
}

#[async_trait::async_trait]
impl<S: Secrets + ?Sized> Secrets for Arc<S> {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        (**self).get(name).await
    }
}

#[async_trait::async_trait]
impl<S: Secrets + ?Sized> Secrets for Box<S> {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        (**self).get(name).await
    }
}

/// Secrets from environment variables, each read when asked for: `NAME`, or `PREFIX` + `NAME`
/// with a [`prefix`](Self::prefix). An empty variable counts as unset.
#[derive(Debug, Clone, Default)]
pub struct EnvSecrets {
    prefix: String,
}

impl EnvSecrets {
    /// Variables named as the secrets are.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `prefix` + the name: with `LOOM_`, the secret `OPENAI_API_KEY` is the variable
    /// `LOOM_OPENAI_API_KEY`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[async_trait::async_trait]
impl Secrets for EnvSecrets {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        let variable = format!("{}{name}", self.prefix);
        // No variable can have these names (and the platform may refuse to look them up).
        if variable.is_empty() || variable.contains(['=', '\0']) {
            return Ok(None);
        }
        match std::env::var(&variable) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretsError::NotUnicode { variable }),
        }
    }
}

/// Secrets from a fixed map (tests, or values your program already holds).
#[derive(Clone, Default)]
pub struct MapSecrets {
    values: HashMap<String, Secret>,
}

impl fmt::Debug for MapSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("MapSecrets").field("names", &names).finish()
    }
}

impl MapSecrets {
    /// No secrets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the secret `name` with `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, Secret::new(value));
        self
    }

    /// Adds (or replaces) the secret `name`.
    pub fn insert(&mut self, name: impl Into<String>, secret: Secret) {
        self.values.insert(name.into(), secret);
    }
}

#[async_trait::async_trait]
impl Secrets for MapSecrets {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        Ok(self.values.get(name).cloned())
    }
}

/// Several sources asked in turn: the first that has a secret gives it. A source that fails
/// stops the lookup with its error (a vault that is down does not fall through to a stale
/// value further down the chain).
#[derive(Clone)]
pub struct ChainSecrets {
    sources: Vec<Arc<dyn Secrets>>,
}

impl fmt::Debug for ChainSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainSecrets").field("sources", &self.sources.len()).finish()
    }
}

impl ChainSecrets {
    /// A chain of one source.
    pub fn new(first: impl Secrets) -> Self {
        Self { sources: vec![Arc::new(first)] }
    }

    /// Asks `next` for what the sources so far do not have.
    #[must_use]
    pub fn or(mut self, next: impl Secrets) -> Self {
        self.sources.push(Arc::new(next));
        self
    }
}

#[async_trait::async_trait]
impl Secrets for ChainSecrets {
    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        for source in &self.sources {
            if let Some(secret) = source.get(name).await? {
                return Ok(Some(secret));
            }
        }
        Ok(None)
    }
}

/// Replaces each `${NAME}` in `text` with the value of the secret `NAME` from `secrets`;
/// `$${` stands for a literal `${`. Each name is looked up once.
///
/// An unknown name is an error naming the reference and its byte offset, as are a `${` with
/// no `}` and a malformed name (empty, or with whitespace, `{`, `$` or a control character).
///
/// ```
/// use loomflow::governance::{MapSecrets, resolve_references};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let secrets = MapSecrets::new().with("TOKEN", "t0k3n");
/// let text = resolve_references("auth = \"${TOKEN}\" # not $${TOKEN}", &secrets).await?;
/// assert_eq!(text, "auth = \"t0k3n\" # not ${TOKEN}");
/// # Ok::<(), loomflow::governance::SecretsError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn resolve_references(text: &str, secrets: &dyn Secrets) -> Result<String, SecretsError> {
    let mut out = String::with_capacity(text.len());
    let mut found: HashMap<&str, Secret> = HashMap::new();
    // `text[copied..]` is not in `out` yet; `at` is where to look for the next `$`.
    let mut copied = 0;
    let mut at = 0;
    while let Some(i) = text[at..].find('$') {
        let dollar = at + i;
        let rest = &text[dollar..];
        if rest.starts_with("$${") {
            out.push_str(&text[copied..dollar]);
            out.push_str("${");
            at = dollar + 3;
            copied = at;
        } else if rest.starts_with("${") {
            let name_start = dollar + 2;
            let len = text[name_start..].find('}').ok_or(SecretsError::UnterminatedReference { offset: dollar })?;
            let name = &text[name_start..name_start + len];
            if let Some(reason) = malformed(name) {
                return Err(SecretsError::MalformedReference { offset: dollar, reason });
            }
            if !found.contains_key(name) {
                let secret = secrets
                    .get(name)
                    .await?
                    .ok_or_else(|| SecretsError::UnknownReference { name: name.to_owned(), offset: dollar })?;
                found.insert(name, secret);
            }
            out.push_str(&text[copied..dollar]);
            out.push_str(found.get(name).map(Secret::expose).unwrap_or_default());
            at = name_start + len + 1;
            copied = at;
        } else {
            at = dollar + 1;
        }
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

fn malformed(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the name is empty")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("the name has whitespace in it")
    } else if name.contains(['{', '$']) {
        Some("the name has `{` or `$` in it")
    } else {
        None
    }
}

/// Scrubs secret values from text: every occurrence of a value added becomes `[secret]`.
///
/// This is what cleans events, spans, logs, the journal and the audit log. Build it from the
/// secrets in use, then share it (`Arc<Redactor>`; it is `Send + Sync`). Adding a value
/// rebuilds its matcher (an Aho-Corasick automaton over the values); [`redact`](Self::redact)
/// is one pass over the text, whatever the number of values, and overlapping or adjacent
/// occurrences are covered as a whole.
///
/// Values shorter than [`MIN_LEN`](Self::MIN_LEN) characters are ignored: such short strings
/// (`1`, `yes`, `dev`) occur throughout ordinary text, and replacing them everywhere would
/// garble it and point at which short strings are secret; a real credential is longer.
///
/// ```
/// use loomflow::governance::{Redactor, Secret};
///
/// let key = Secret::new("sk-live-1234");
/// let redactor = Redactor::new().with(&key);
/// assert_eq!(redactor.redact("calling with sk-live-1234 now"), "calling with [secret] now");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    values: Vec<Secret>,
    automaton: Automaton,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor").field("secrets", &self.values.len()).finish()
    }
}

impl Redactor {
    /// The shortest value, in characters, that is redacted.
    pub const MIN_LEN: usize = 4;

    /// What replaces each value.
    pub const REPLACEMENT: &'static str = "[secret]";

    /// Redacts nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A redactor of these secrets, built once.
    pub fn from_secrets<'s>(secrets: impl IntoIterator<Item = &'s Secret>) -> Self {
        let mut redactor = Self::new();
        for secret in secrets {
            redactor.push(secret);
        }
        redactor.automaton = Automaton::build(&redactor.values);
        redactor
    }

    /// Adds the value of `secret` (ignored when shorter than [`MIN_LEN`](Self::MIN_LEN)
    /// characters, or already added).
    pub fn add(&mut self, secret: &Secret) {
        if self.push(secret) {
            self.automaton = Automaton::build(&self.values);
        }
    }

    /// Adds the value of `secret`, as [`add`](Self::add).
    #[must_use]
    pub fn with(mut self, secret: &Secret) -> Self {
        self.add(secret);
        self
    }

    /// How many values it redacts.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it redacts nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every occurrence of every value replaced by `[secret]`; borrowed back when
    /// there is none.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let spans = self.automaton.spans(text.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            // The values are UTF-8, so each occurrence starts and ends at character
            // boundaries of the text, and so do their unions.
            out.push_str(&text[at..start]);
            out.push_str(Self::REPLACEMENT);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    fn push(&mut self, secret: &Secret) -> bool {
        let value = secret.expose();
        if value.chars().count() < Self::MIN_LEN || self.values.iter().any(|v| v.expose() == value) {
            return false;
        }
        self.values.push(secret.clone());
        true
    }
}

/// A redactor is a guardrail (`secrets`) on every stage: given to
/// [`Governance::redact_secrets`](super::Governance::redact_secrets), it replaces the values in
/// a run's input, in the model's answers and in tool results before anything is journaled,
/// logged, audited or sent to the model again.
#[async_trait::async_trait]
impl super::Guardrail for Redactor {
    fn name(&self) -> &str {
        "secrets"
    }

    async fn check(&self, checked: super::Checked<'_>) -> Result<super::Verdict, super::GuardError> {
        Ok(match self.redact(checked.text) {
            Cow::Borrowed(_) => super::Verdict::Pass,
            Cow::Owned(text) => super::Verdict::Rewrite { text, note: "secret values redacted".to_owned() },
        })
    }
}

/// An Aho-Corasick automaton over bytes: a trie of the values with failure links, each state
/// knowing the longest value that ends there.
#[derive(Clone, Default)]
struct Automaton {
    states: Vec<Node>,
}

#[derive(Clone, Default)]
struct Node {
    /// The transitions, by byte, sorted.
    next: Vec<(u8, u32)>,
    /// The state of the longest proper suffix that is in the trie.
    fail: u32,
    /// The length of the longest value that is a suffix of this state's path (0: none).
    longest: u32,
}

impl Automaton {
    fn build(values: &[Secret]) -> Self {
        let mut states = vec![Node::default()];
        for value in values {
            let mut s = 0usize;
            for &b in value.expose().as_bytes() {
                s = match states[s].next.binary_search_by_key(&b, |&(k, _)| k) {
                    Ok(i) => states[s].next[i].1 as usize,
                    Err(i) => {
                        let new = states.len();
                        states[s].next.insert(i, (b, new as u32));
                        states.push(Node::default());
                        new
                    }
                };
            }
            // A value ending here is the longest suffix this state can have: its whole path.
            states[s].longest = value.expose().len() as u32;
        }
        // Failure links, breadth first: a state's link is found from its parent's.
        let mut queue = std::collections::VecDeque::new();
        for &(_, child) in &states[0].next {
            queue.push_back(child as usize);
        }
        while let Some(u) = queue.pop_front() {
            let children = states[u].next.clone();
            for (b, v) in children {
                let v = v as usize;
                let mut f = states[u].fail as usize;
                let fail = loop {
                    if let Some(n) = step(&states[f], b) {
                        break n;
                    }
                    if f == 0 {
                        break 0;
                    }
                    f = states[f].fail as usize;
                };
                states[v].fail = fail as u32;
                if states[v].longest == 0 {
                    states[v].longest = states[fail].longest;
                }
                queue.push_back(v);
            }
        }
        Self { states }
    }

    /// The merged byte ranges of `text` that the values cover, in order.
    fn spans(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if self.states.len() <= 1 {
            return spans;
        }
        let mut s = 0usize;
        for (i, &b) in text.iter().enumerate() {
            s = loop {
                if let Some(n) = step(&self.states[s], b) {
                    break n;
                }
                if s == 0 {
                    break 0;
                }
                s = self.states[s].fail as usize;
            };
            let len = self.states[s].longest as usize;
            if len == 0 {
                continue;
            }
            // The longest value ending here covers every shorter one ending here.
            let (mut start, end) = (i + 1 - len, i + 1);
            while let Some(&(a, b)) = spans.last() {
                if start > b {
                    break;
                }
                start = start.min(a);
                spans.pop();
            }
            spans.push((start, end));
        }
        spans
    }
}

fn step(node: &Node, b: u8) -> Option<usize> {
    node.next.binary_search_by_key(&b, |&(k, _)| k).ok().map(|i| node.next[i].1 as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn a_secret_never_shows_its_value() -> Result {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "[secret] [secret] Some([secret])");
        assert_eq!(serde_json::to_string(&serde_json::json!({ "key": s.expose() }))?, r#"{"key":"hunter22"}"#);
        #[derive(serde::Serialize)]
        struct Config {
            key: Secret,
        }
        assert_eq!(serde_json::to_string(&Config { key: s.clone() })?, r#"{"key":"[secret]"}"#);
        assert_eq!(s.expose(), "hunter22");
        Ok(())
    }

    #[tokio::test]
    async fn map_env_and_chain() -> Result {
        let map = MapSecrets::new().with("A", "alpha-value").with("B", "beta-value");
        assert_eq!(map.get("A").await?.map(|s| s.expose().to_owned()).as_deref(), Some("alpha-value"));
        assert!(map.get("C").await?.is_none());
        assert_eq!(format!("{map:?}"), r#"MapSecrets { names: ["A", "B"] }"#);

        if let Ok(path) = std::env::var("PATH")
            && !path.is_empty()
        {
            let env = EnvSecrets::new();
            assert_eq!(env.get("PATH").await?.map(|s| s.expose().to_owned()), Some(path.clone()));
            assert_eq!(EnvSecrets::new().prefix("PA").get("TH").await?.map(|s| s.expose().to_owned()), Some(path));
        }
        assert!(EnvSecrets::new().get("LOOM_TEST_SURELY_UNSET_4F1D").await?.is_none());
        assert!(EnvSecrets::new().get("A=B").await?.is_none());
        assert!(EnvSecrets::new().get("").await?.is_none());

        let chain = MapSecrets::new().with("A", "first-one").or(map.clone()).or(EnvSecrets::new());
        assert_eq!(chain.get("A").await?.map(|s| s.expose().to_owned()).as_deref(), Some("first-one"));
        assert_eq!(chain.get("B").await?.map(|s| s.expose().to_owned()).as_deref(), Some("beta-value"));
        assert!(chain.get("LOOM_TEST_SURELY_UNSET_4F1D").await?.is_none());
        Ok(())
    }

    struct Down;

    #[async_trait::async_trait]
    impl Secrets for Down {
        async fn get(&self, name: &str) -> std::result::Result<Option<Secret>, SecretsError> {
            Err(SecretsError::vault(name, "connection refused"))
        }
    }

    #[tokio::test]
    async fn a_failing_vault_stops_the_chain() {
        let chain = Down.or(MapSecrets::new().with("A", "stale-value"));
        let e = chain.get("A").await.err();
        assert_eq!(e, Some(SecretsError::Vault { name: "A".to_owned(), message: "connection refused".to_owned() }));
        let message = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("check that the vault is reachable"), "{message}");
    }

    #[tokio::test]
    async fn references_resolve() -> Result {
        let secrets = MapSecrets::new().with("KEY", "k-123").with("prod/db", "pässwörd");
        let text = "key = \"${KEY}\"\nurl = \"postgres://u:${prod/db}@h\" # ${KEY} again, $${KEY}, $5, $$, $";
        assert_eq!(
            resolve_references(text, &secrets).await?,
            "key = \"k-123\"\nurl = \"postgres://u:pässwörd@h\" # k-123 again, ${KEY}, $5, $$, $"
        );
        assert_eq!(resolve_references("", &secrets).await?, "");
        assert_eq!(resolve_references("${KEY}${KEY}", &secrets).await?, "k-123k-123");
        // Read left to right, `$$${` is a `$`, then the escape.
        assert_eq!(resolve_references("$$${KEY}", &secrets).await?, "$${KEY}");
        Ok(())
    }

    #[tokio::test]
    async fn bad_references_say_where() {
        let secrets = MapSecrets::new().with("KEY", "k-123");
        let e = resolve_references("é ${KEY} ${NOPE}", &secrets).await.err();
        assert_eq!(e, Some(SecretsError::UnknownReference { name: "NOPE".to_owned(), offset: 10 }));
        let message = e.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            message,
            "`${NOPE}` at byte 10 names no secret; set `NOPE` (in the environment or the vault), or write `$${` for a literal `${`"
        );
        assert_eq!(
            resolve_references("a ${KEY", &secrets).await.err(),
            Some(SecretsError::UnterminatedReference { offset: 2 })
        );
        assert!(matches!(
            resolve_references("${}", &secrets).await,
            Err(SecretsError::MalformedReference { offset: 0, .. })
        ));
        assert!(matches!(
            resolve_references("x ${A B}", &secrets).await,
            Err(SecretsError::MalformedReference { offset: 2, .. })
        ));
        let e = resolve_references("${KEY}", &Down).await.err();
        assert!(matches!(e, Some(SecretsError::Vault { .. })), "{e:?}");
    }

    #[test]
    fn the_redactor_replaces_every_value() {
        let (a, b) = (Secret::new("sk-live-1234"), Secret::new("hunter22"));
        let redactor = Redactor::new().with(&a).with(&b).with(&Secret::new("abc")).with(&a);
        assert_eq!(redactor.len(), 2, "short and repeated values are ignored");
        assert_eq!(
            redactor.redact("sk-live-1234 and hunter22, again sk-live-1234; abc stays"),
            "[secret] and [secret], again [secret]; abc stays"
        );
        assert!(matches!(redactor.redact("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(Redactor::new().redact("sk-live-1234"), Cow::Borrowed(_)));
        assert_eq!(format!("{redactor:?}"), "Redactor { secrets: 2 }");
    }

    #[test]
    fn overlapping_and_nested_values_are_covered_whole() {
        let values = [Secret::new("abcd"), Secret::new("abcdef"), Secret::new("cdefgh"), Secret::new("xyzw")];
        let redactor = Redactor::from_secrets(&values);
        // `abcd` is a prefix of `abcdef`; `cdefgh` overlaps both: nothing of them shows.
        assert_eq!(redactor.redact("1 abcdefgh 2"), "1 [secret] 2");
        assert_eq!(redactor.redact("abcd"), "[secret]");
        assert_eq!(redactor.redact("abcabcd!"), "abc[secret]!");
        assert_eq!(redactor.redact("xyzwxyzw"), "[secret]", "adjacent occurrences merge");
        assert_eq!(redactor.redact("zcdefgh abcde"), "z[secret] [secret]e");
        // A suffix reached through a failure link.
        let redactor = Redactor::from_secrets(&[Secret::new("aaab"), Secret::new("ab12")]);
        assert_eq!(redactor.redact("aaaab12"), "a[secret]");
    }

    #[test]
    fn unicode_values_and_text() {
        let redactor = Redactor::new().with(&Secret::new("clé-secrète"));
        assert_eq!(redactor.redact("ma clé-secrète ✓"), "ma [secret] ✓");
        assert_eq!(redactor.redact("clé-secrèt"), "clé-secrèt");
        let short = Redactor::new().with(&Secret::new("ééé"));
        assert!(short.is_empty(), "three characters, though six bytes");
    }

    #[test]
    fn the_redactor_is_shared_across_threads() -> Result {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Redactor>();
        send_sync::<Secret>();
        let redactor = Arc::new(Redactor::new().with(&Secret::new("token-xyz")));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let r = Arc::clone(&redactor);
                std::thread::spawn(move || r.redact(&format!("{i}: token-xyz")).into_owned())
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().map_err(|_| "a thread panicked")?, format!("{i}: [secret]"));
        }
        Ok(())
    }

    #[test]
    fn redaction_is_linear() {
        let values: Vec<Secret> = (0..200).map(|i| Secret::new(format!("{}{i}", "a".repeat(50)))).collect();
        let redactor = Redactor::from_secrets(&values);
        let text = "a".repeat(1_000_000) + "7";
        let started = std::time::Instant::now();
        assert_eq!(redactor.redact(&text).len(), 1_000_000 - 50 + "[secret]".len() - 1 + 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
