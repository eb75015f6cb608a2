//! `loom` as a user runs it: every subcommand as a process, on the echo model or a script
//! file, with its stdout, stderr and exit code checked.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch folder for one test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("loom-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn loom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loom"));
    command
        .env_remove("LOOM_USER")
        .env_remove("LOOM_SESSION")
        .env_remove("LOOM_AUDIT_KEY")
        .env_remove("RUST_BACKTRACE");
    command
}

/// Runs `loom args` in `dir`, its stdin closed.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    loom().args(args).current_dir(dir).stdin(Stdio::null()).output().expect("loom runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing what the process printed when it is another.
fn expect_code(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "exit code\nstdout:\n{}\nstderr:\n{}", stdout(output), stderr(output));
    assert!(!stderr(output).contains("panicked") && !stderr(output).contains("RUST_BACKTRACE"), "{}", stderr(output));
}

const ECHO: &str = "instructions = \"You are a helpful assistant.\"\nmodel = \"echo\"\n";

#[test]
fn help_lists_every_subcommand_and_version_prints() {
    let scratch = Scratch::new("help");
    let help = run_in(&scratch.0, &["--help"]);
    expect_code(&help, 0);
    for command in ["run", "chat", "graph", "sessions", "runs", "audit", "serve"] {
        assert!(stdout(&help).contains(command), "{command} missing from:\n{}", stdout(&help));
    }
    let version = run_in(&scratch.0, &["--version"]);
    expect_code(&version, 0);
    assert!(stdout(&version).starts_with("loom "), "{}", stdout(&version));
    // A wrong command line is exit code 2, with clap's message.
    let wrong = run_in(&scratch.0, &["rnu"]);
    expect_code(&wrong, 2);
    assert!(stderr(&wrong).contains("run"), "{}", stderr(&wrong));
}

#[test]
fn run_streams_the_answer_of_the_two_line_file() {
    let scratch = Scratch::new("run");
    scratch.file("agent.toml", ECHO);
    let output = run_in(&scratch.0, &["run", "agent.toml", "Hello", "there"]);
    expect_code(&output, 0);
    assert_eq!(stdout(&output), "Echo: Hello there\n");

    // The input may come from stdin.
    let mut child = loom()
        .args(["run", "agent.toml"])
        .current_dir(&scratch.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("loom runs");
    child.stdin.take().expect("stdin").write_all(b"from a pipe\n").expect("write stdin");
    let output = child.wait_with_output().expect("loom ends");
    assert_eq!(stdout(&output), "Echo: from a pipe\n");
}

#[test]
fn run_json_prints_every_event_then_the_result() {
    let scratch = Scratch::new("json");
    scratch.file("agent.toml", ECHO);
    let output = run_in(&scratch.0, &["run", "agent.toml", "--json", "--user", "ada", "hi"]);
    expect_code(&output, 0);
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    let kinds: Vec<String> = lines[..lines.len() - 1].iter().map(|l| l["kind"]["type"].to_string()).collect();
    assert!(kinds.iter().any(|k| k.contains("run_started")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.contains("text_delta")), "{kinds:?}");
    let result = &lines[lines.len() - 1]["result"];
    assert_eq!(result["output"], "Echo: hi");
    assert!(result["run_id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[test]
fn a_script_drives_the_built_in_file_tools() {
    let scratch = Scratch::new("script");
    scratch.file("agent.toml", "instructions = \"Read files.\"\nmodel = \"echo\"\ntools = [\"read_file\"]\n");
    scratch.file("notes.txt", "the launch is on Friday\n");
    scratch.file(
        "script.json",
        r#"[{"tool": "read_file", "arguments": {"path": "notes.txt"}}, {"text": "The launch is on Friday."}]"#,
    );
    let output = run_in(&scratch.0, &["run", "agent.toml", "--script", "script.json", "When is the launch?"]);
    expect_code(&output, 0);
    assert_eq!(stdout(&output), "The launch is on Friday.\n");
    assert!(stderr(&output).contains("→ read_file({\"path\":\"notes.txt\"})"), "{}", stderr(&output));
}

#[test]
fn a_bad_file_is_exit_code_2_with_the_line_and_no_backtrace() {
    let scratch = Scratch::new("bad");
    scratch.file("agent.toml", "instructions = \"Help.\"\nmodel = \"echo\"\nmax_turn = 3\n");
    let output = run_in(&scratch.0, &["run", "agent.toml", "hi"]);
    expect_code(&output, 2);
    let err = stderr(&output);
    assert!(err.starts_with("error: agent.toml:3:1: unknown key `max_turn`"), "{err}");
    assert!(err.contains("did you mean `max_turns`?"), "{err}");

    let missing = run_in(&scratch.0, &["run", "nowhere.toml", "hi"]);
    expect_code(&missing, 2);
    assert!(stderr(&missing).contains("cannot read `nowhere.toml`"), "{}", stderr(&missing));

    let no_tool = scratch.file("tools.toml", "instructions = \"Help.\"\nmodel = \"echo\"\ntools = [\"read_fille\"]\n");
    let output = run_in(&scratch.0, &["run", no_tool.to_str().expect("utf-8"), "hi"]);
    expect_code(&output, 2);
    assert!(stderr(&output).contains("did you mean `read_file`?"), "{}", stderr(&output));
}

const REVIEW: &str = r#"
[agents.draft]
instructions = "Draft."
model = "echo"

[agents.review]
instructions = "Answer approved or revise."
model = "echo"

[workflow]
name = "review"
start = "draft"
edges = [{ from = "draft", to = "review" }]
routes = [{ from = "review", to = { revise = "draft", approved = "end" } }]
max_visits = 3
"#;

#[test]
fn run_runs_a_workflow_file_and_shows_its_steps() {
    let scratch = Scratch::new("workflow");
    scratch.file("review.toml", REVIEW);
    scratch.file(
        "script.json",
        r#"[{"text": "draft one"}, {"text": "revise"}, {"text": "draft two"}, {"text": "approved"}]"#,
    );
    let output = run_in(&scratch.0, &["run", "review.toml", "--script", "script.json", "Write."]);
    expect_code(&output, 0);
    assert_eq!(stdout(&output), "approved\n");
    let err = stderr(&output);
    let steps: Vec<&str> = err.lines().filter(|l| l.contains('▸')).map(str::trim).collect();
    assert_eq!(steps, ["▸ draft", "▸ review", "▸ draft", "▸ review", "▸ end"]);
}

#[test]
fn graph_draws_mermaid_and_dot_without_keys() {
    let scratch = Scratch::new("graph");
    // The models need keys nobody set: drawing builds nothing that calls them.
    scratch.file("review.toml", &REVIEW.replace("model = \"echo\"", "model = \"gpt-4.1-mini\""));
    let mermaid = loom()
        .args(["graph", "review.toml"])
        .current_dir(&scratch.0)
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("loom");
    expect_code(&mermaid, 0);
    let text = stdout(&mermaid);
    assert!(text.starts_with("flowchart TD\n"), "{text}");
    assert!(text.contains("-->|revise|") && text.contains("-->|approved|"), "{text}");
    let dot = run_in(&scratch.0, &["graph", "review.toml", "--format", "dot"]);
    expect_code(&dot, 0);
    assert!(stdout(&dot).starts_with("digraph"), "{}", stdout(&dot));
    scratch.file("agent.toml", ECHO);
    let agent = run_in(&scratch.0, &["graph", "agent.toml"]);
    expect_code(&agent, 2);
    assert!(stderr(&agent).contains("is an agent file"), "{}", stderr(&agent));
}

const STORED: &str =
    "instructions = \"Help.\"\nmodel = \"echo\"\n\n[sessions]\nbackend = \"sqlite\"\npath = \"loom.db\"\n";

#[test]
fn sessions_list_show_fork_and_forget() {
    let scratch = Scratch::new("sessions");
    scratch.file("agent.toml", STORED);
    for text in ["first question", "second question"] {
        expect_code(&run_in(&scratch.0, &["run", "agent.toml", "--user", "ada", "--session", "s1", text]), 0);
    }
    expect_code(&run_in(&scratch.0, &["run", "agent.toml", "--user", "bob", "--session", "b1", "bob's"]), 0);

    let list = run_in(&scratch.0, &["sessions", "list", "agent.toml", "--user", "ada"]);
    expect_code(&list, 0);
    assert_eq!(stdout(&list), "s1\n");

    let show = run_in(&scratch.0, &["sessions", "show", "agent.toml", "s1", "--user", "ada"]);
    expect_code(&show, 0);
    assert_eq!(
        stdout(&show),
        "user: first question\nassistant: Echo: first question\nuser: second question\nassistant: Echo: second question\n"
    );
    // Bob's session is not Ada's.
    let other = run_in(&scratch.0, &["sessions", "show", "agent.toml", "b1", "--user", "ada"]);
    expect_code(&other, 1);

    let fork = run_in(&scratch.0, &["sessions", "fork", "agent.toml", "s1", "s2", "--user", "ada"]);
    expect_code(&fork, 0);
    assert_eq!(stdout(&fork), "forked s1 into s2 (4 messages)\n");
    let again = run_in(&scratch.0, &["sessions", "fork", "agent.toml", "s1", "s2", "--user", "ada"]);
    expect_code(&again, 1);

    let forget = run_in(&scratch.0, &["sessions", "forget", "agent.toml", "s1", "--user", "ada"]);
    expect_code(&forget, 0);
    let list = run_in(&scratch.0, &["sessions", "list", "agent.toml", "--user", "ada"]);
    assert_eq!(stdout(&list), "s2\n");
    expect_code(&run_in(&scratch.0, &["sessions", "forget", "agent.toml", "s1", "--user", "ada"]), 1);
}

#[test]
fn a_durable_approval_pauses_the_run_and_runs_resume_finishes_it_in_another_process() {
    let scratch = Scratch::new("runs");
    scratch.file(
        "agent.toml",
        "instructions = \"Write notes.\"\nmodel = \"echo\"\ntools = [\"write_file\"]\n\n[sessions]\nbackend = \"sqlite\"\npath = \"loom.db\"\n\n[permissions]\nmode = \"default\"\ndurable_approvals = true\n",
    );
    scratch.file(
        "script.json",
        r#"[{"tool": "write_file", "arguments": {"path": "note.txt", "content": "ship it"}}, {"text": "Written."}]"#,
    );
    let paused = run_in(&scratch.0, &["run", "agent.toml", "--script", "script.json", "--session", "s1", "Note it."]);
    expect_code(&paused, 1);
    let err = stderr(&paused);
    assert!(err.contains("waits for approval of `write_file`"), "{err}");
    assert!(!scratch.path("note.txt").exists(), "the tool ran before its approval");
    let approve = err.lines().find_map(|l| l.trim().strip_prefix("approve: ")).expect("the approve command").to_owned();
    let words: Vec<&str> = approve.split_whitespace().collect();
    let (run, call) = (words[4], words[words.len() - 1]);

    let list = run_in(&scratch.0, &["runs", "list", "agent.toml", "--session", "s1"]);
    expect_code(&list, 0);
    assert!(stdout(&list).starts_with(&format!("{run}\ts1\trunning\t")), "{}", stdout(&list));

    // Another process decides: only the rest of the script is left for it.
    scratch.file("rest.json", r#"[{"text": "Written."}]"#);
    let resumed = run_in(
        &scratch.0,
        &["runs", "resume", "agent.toml", run, "--session", "s1", "--approve", call, "--script", "rest.json"],
    );
    expect_code(&resumed, 0);
    assert_eq!(stdout(&resumed), "Written.\n");
    assert_eq!(std::fs::read_to_string(scratch.path("note.txt")).expect("the note"), "ship it");
    let list = run_in(&scratch.0, &["runs", "list", "agent.toml", "--session", "s1"]);
    assert!(stdout(&list).contains("\tfinished\t"), "{}", stdout(&list));
}

#[test]
fn audit_verify_finds_an_edited_entry() {
    let scratch = Scratch::new("audit");
    let key = "0123456789abcdef0123456789abcdef-cli-test";
    scratch.file(
        "agent.toml",
        "instructions = \"Help.\"\nmodel = \"echo\"\n\n[audit_log]\nbackend = \"file\"\npath = \"audit.jsonl\"\nkey = \"${LOOM_AUDIT_KEY}\"\n",
    );
    for text in ["one", "two"] {
        let output = loom()
            .args(["run", "agent.toml", text])
            .current_dir(&scratch.0)
            .env("LOOM_AUDIT_KEY", key)
            .output()
            .expect("loom");
        expect_code(&output, 0);
    }
    let verify = loom()
        .args(["audit", "verify", "audit.jsonl"])
        .current_dir(&scratch.0)
        .env("LOOM_AUDIT_KEY", key)
        .output()
        .expect("loom");
    expect_code(&verify, 0);
    assert!(stdout(&verify).starts_with("audit.jsonl: intact — "), "{}", stdout(&verify));

    let log = std::fs::read_to_string(scratch.path("audit.jsonl")).expect("the log");
    assert!(log.contains("\"turns\":1"), "{log}");
    std::fs::write(scratch.path("audit.jsonl"), log.replacen("\"turns\":1", "\"turns\":7", 1)).expect("tamper");
    let verify = run_in(&scratch.0, &["audit", "verify", "audit.jsonl", "--key", key]);
    expect_code(&verify, 1);
    assert!(stderr(&verify).contains("problem(s)"), "{}", stderr(&verify));
    assert!(!stdout(&verify).is_empty(), "the problem is named");

    let short = run_in(&scratch.0, &["audit", "verify", "audit.jsonl", "--key", "short"]);
    expect_code(&short, 2);
}

#[test]
fn serve_answers_an_openai_client_on_loopback_and_stops_on_sigint() {
    let scratch = Scratch::new("serve");
    scratch.file("assistant.toml", ECHO);
    let mut child = loom()
        .args(["serve", "assistant.toml", "--port", "0"])
        .current_dir(&scratch.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loom serve");
    let mut out = child.stdout.take().expect("stdout");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8_lossy(&first).into_owned();
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "binds loopback by default: {address}");
    assert!(first.contains("model `assistant`"), "{first}");

    let body =
        r#"{"model":"assistant","messages":[{"role":"user","content":"hi"}],"stream":false,"user":"ada","n":null}"#;
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or_default()).expect("a JSON body");
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["choices"][0]["message"]["content"], "Echo: hi");

    // Ctrl-C (SIGINT) shuts it down cleanly.
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "loom serve did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    assert!(rest.contains("loom serve: stopped"), "{rest}");
}

#[cfg(unix)]
mod pty {
    //! `loom chat` on a pseudo-terminal: what a person at a terminal sees, Ctrl-C included.

    use super::*;
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::sync::mpsc;

    /// The terminal's output so far, read on a thread.
    struct Screen {
        seen: String,
        chunks: mpsc::Receiver<String>,
    }

    impl Screen {
        /// Waits until the output holds `text` (after what was already waited for).
        fn wait_for(&mut self, text: &str) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.seen.contains(text) {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.chunks.recv_timeout(left) {
                    Ok(chunk) => self.seen.push_str(&chunk),
                    Err(_) => panic!("{text:?} never appeared; the terminal shows:\n{}", self.seen),
                }
            }
            let at = self.seen.find(text).map_or(0, |i| i + text.len());
            self.seen.drain(..at);
        }
    }

    fn open_pty() -> (OwnedFd, File) {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("a utf-8 tty name"))
            .expect("open the tty");
        (master, slave)
    }

    #[test]
    fn chat_streams_turns_keeps_the_conversation_and_ctrl_c_cancels_only_the_turn() {
        let scratch = Scratch::new("chat");
        scratch.file("agent.toml", ECHO);
        scratch.file(
            "script.json",
            r#"[{"text": "Hello Ada."}, {"text": "never shown", "delay_ms": 30000}, {"text": "You said your name is Ada."}]"#,
        );
        let (master, slave) = open_pty();
        // `setsid --ctty` makes the terminal the child's controlling terminal, so that Ctrl-C
        // on it is a SIGINT to the chat, as at a real terminal.
        let mut child = Command::new("setsid")
            .arg("--ctty")
            .arg(env!("CARGO_BIN_EXE_loom"))
            .args(["chat", "agent.toml", "--script", "script.json", "--user", "ada"])
            .current_dir(&scratch.0)
            .env_remove("LOOM_SESSION")
            .stdin(slave.try_clone().expect("tty"))
            .stdout(slave.try_clone().expect("tty"))
            .stderr(slave)
            .spawn()
            .expect("setsid loom chat");
        let mut reader = File::from(master.try_clone().expect("pty"));
        let mut writer = File::from(master);
        let (send, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || send.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                    break;
                }
            }
        });
        let mut screen = Screen { seen: String::new(), chunks };
        screen.wait_for("you> ");
        writer.write_all(b"My name is Ada.\n").expect("type");
        screen.wait_for("loom> Hello Ada.");
        screen.wait_for("you> ");

        // A slow turn, cancelled by Ctrl-C: the chat goes on.
        writer.write_all(b"Tell me a long story.\n").expect("type");
        screen.wait_for("thinking");
        std::thread::sleep(Duration::from_millis(200));
        writer.write_all(&[0x03]).expect("Ctrl-C");
        screen.wait_for("(turn cancelled)");
        screen.wait_for("you> ");

        writer.write_all(b"What is my name?\n").expect("type");
        screen.wait_for("loom> You said your name is Ada.");
        screen.wait_for("you> ");
        writer.write_all(b"/history\n").expect("type");
        screen.wait_for("user: My name is Ada.");
        screen.wait_for("assistant: Hello Ada.");
        screen.wait_for("user: What is my name?");
        screen.wait_for("you> ");
        writer.write_all(b"/exit\n").expect("type");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "loom chat did not exit on /exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn ingest_loads_a_folder_into_a_corpus_and_search_finds_it() {
    let scratch = Scratch::new("ingest");
    std::fs::create_dir_all(scratch.path("docs")).expect("docs");
    scratch.file(
        "docs/resume.md",
        "# Resume\n\nA crashed run is resumed from its journal: recorded steps are replayed.\n",
    );
    scratch.file("docs/budgets.md", "# Budgets\n\nA user's token budget stops a run that passes it.\n");
    scratch.file("docs/skip.txt", "not included\n");
    let ingest = run_in(&scratch.0, &["ingest", "docs", "--into", "corpus.db", "--include", "**/*.md"]);
    expect_code(&ingest, 0);
    assert!(stdout(&ingest).starts_with("ingested 2 document(s) into corpus.db: "), "{}", stdout(&ingest));
    // Again: nothing changed, nothing is embedded twice.
    let again = run_in(&scratch.0, &["ingest", "docs", "--into", "corpus.db", "--include", "**/*.md"]);
    assert!(stdout(&again).contains(": 0 chunk(s) added"), "{}", stdout(&again));

    let search = run_in(&scratch.0, &["search", "corpus.db", "how is a crashed run resumed", "--limit", "1", "--json"]);
    expect_code(&search, 0);
    let best: serde_json::Value =
        serde_json::from_str(stdout(&search).lines().next().expect("a passage")).expect("JSON");
    assert!(best["document"].as_str().is_some_and(|d| d.ends_with("resume.md")), "{best}");
    // Another user's corpus is empty.
    let other = run_in(&scratch.0, &["search", "corpus.db", "resumed", "--user", "bob"]);
    expect_code(&other, 0);
    assert_eq!(stdout(&other), "");
    let missing = run_in(&scratch.0, &["search", "nothing.db", "x"]);
    expect_code(&missing, 2);
}

#[test]
fn eval_reports_the_share_of_answers_that_hold_what_was_expected() {
    let scratch = Scratch::new("eval");
    scratch.file("agent.toml", ECHO);
    scratch.file(
        "cases.jsonl",
        "{\"input\": \"Paris is in France\", \"expect\": \"paris\"}\n\n{\"input\": \"Rome\", \"expect\": \"Italy\"}\n",
    );
    let all = run_in(&scratch.0, &["eval", "agent.toml", "cases.jsonl"]);
    expect_code(&all, 1);
    assert_eq!(stdout(&all), "✗ line 3: the answer lacks what was expected: Echo: Rome\n");
    assert!(stderr(&all).contains("1/2 passed (50.0 %); 100.0 % needed"), "{}", stderr(&all));
    let half = run_in(&scratch.0, &["eval", "agent.toml", "cases.jsonl", "--min", "0.5", "--json"]);
    expect_code(&half, 0);
    let lines: Vec<serde_json::Value> = stdout(&half).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["passed"], true);
    assert_eq!(lines[1]["line"], 3);
    scratch.file("bad.jsonl", "{\"question\": \"x\"}\n");
    let bad = run_in(&scratch.0, &["eval", "agent.toml", "bad.jsonl"]);
    expect_code(&bad, 2);
    assert!(stderr(&bad).contains("bad.jsonl:1:"), "{}", stderr(&bad));
}
