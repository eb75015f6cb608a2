//! What each subcommand does.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::net::SocketAddr;

use futures::StreamExt as _;
use loomflow::agent::AgentInput;
use loomflow::governance::Approval;
use loomflow::model::Message;
use loomflow::{Agent, Error, RunError, RunId, SessionId, UserId};
use tokio::io::AsyncBufReadExt as _;

use crate::output::Printer;
use crate::target::{self, Built};
use crate::{
    AuditCommand, ChatArgs, Command, Failure, GraphArgs, GraphFormat, Outcome, RunArgs, RunsCommand, ServeArgs,
    SessionsCommand, Who,
};

pub(crate) async fn dispatch(command: Command) -> Outcome {
    match command {
        Command::Run(args) => run(args).await,
        Command::Chat(args) => chat(args).await,
        Command::Graph(args) => graph(args).await,
        Command::Sessions(command) => sessions(command).await,
        Command::Runs(command) => runs(command).await,
        Command::Audit(command) => audit(command),
        Command::Serve(args) => serve(args).await,
        Command::Ingest(args) => crate::rag::ingest(args).await,
        Command::Search(args) => crate::rag::search(args).await,
        Command::Eval(args) => crate::eval::eval(args).await,
    }
}

pub(crate) fn user(name: &str) -> Result<UserId, Failure> {
    UserId::new(name).map_err(|e| Failure::usage(format!("--user `{name}`: {e}")))
}

fn session(name: &str) -> Result<SessionId, Failure> {
    SessionId::new(name).map_err(|e| Failure::usage(format!("session `{name}`: {e}")))
}

/// The user and the optional session of `who`.
fn identity(who: &Who) -> Result<(UserId, Option<SessionId>), Failure> {
    Ok((user(&who.user)?, who.session.as_deref().map(session).transpose()?))
}

/// A run's failure, said for a person at a terminal.
fn run_failure(e: Error, file: &std::path::Path) -> Failure {
    if let Error::Run(RunError::ApprovalPending { request }) = &e {
        let session = request.session.as_ref().map(|s| format!(" --session {s}")).unwrap_or_default();
        return Failure::failed(format!(
            "the run waits for approval of `{}` ({}): {}\n  approve: loom runs resume {} {} --user {}{session} --approve {}\n  deny:    loom runs resume {} {} --user {}{session} --deny {}",
            request.tool,
            request.arguments,
            request.reason,
            file.display(),
            request.run_id,
            request.user,
            request.call_id,
            file.display(),
            request.run_id,
            request.user,
            request.call_id,
        ));
    }
    Failure::from(e)
}

/// The input of `loom run`: the arguments, or stdin.
fn input(words: &[String]) -> Result<String, Failure> {
    if !words.is_empty() {
        return Ok(words.join(" "));
    }
    if std::io::stdin().is_terminal() {
        return Err(Failure::usage("give the input as arguments, or pipe it in: `echo hi | loom run agent.toml`"));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        return Err(Failure::usage("the input is empty"));
    }
    Ok(text)
}

async fn run(args: RunArgs) -> Outcome {
    let (user, session) = identity(&args.who)?;
    let text = input(&args.input)?;
    let mut printer = Printer::new(args.json);
    match target::build(&args.target).await? {
        Built::Agent(agent) => {
            let mut builder = agent.run(text).user(user);
            if let Some(session) = session {
                builder = builder.session(session);
            }
            finish_agent_run(builder.stream(), &mut printer, &args.target.file).await
        }
        Built::Workflow(workflow) => {
            let mut builder = workflow.run(text).user(user);
            if let Some(session) = session {
                builder = builder.session(session);
            }
            let mut stream = builder.stream();
            while let Some(event) = stream.next().await {
                printer.event(&event);
            }
            match stream.finish().await {
                Ok(result) => {
                    let visited: Vec<String> = result.visited.iter().map(ToString::to_string).collect();
                    let summary = serde_json::json!({
                        "output": result.output,
                        "run_id": result.run_id.to_string(),
                        "visited": visited,
                    });
                    printer.finish(&result.output, summary);
                    Ok(())
                }
                Err(e) => {
                    printer.abandon();
                    Err(run_failure(e, &args.target.file))
                }
            }
        }
    }
}

/// Streams an agent run to `printer` and ends it.
async fn finish_agent_run(
    mut stream: loomflow::RunStream<'_, loomflow::RunResult>,
    printer: &mut Printer,
    file: &std::path::Path,
) -> Outcome {
    while let Some(event) = stream.next().await {
        printer.event(&event);
    }
    match stream.finish().await {
        Ok(result) => {
            let summary = serde_json::json!({
                "output": result.output,
                "run_id": result.run_id.to_string(),
                "session": result.session.as_ref().map(ToString::to_string),
                "turns": result.turns,
                "tool_calls": result.tool_calls,
                "usage": result.usage,
                "cost_usd": result.cost_usd,
            });
            printer.finish(&result.output, summary);
            Ok(())
        }
        Err(e) => {
            printer.abandon();
            Err(run_failure(e, file))
        }
    }
}

const CHAT_HELP: &str =
    "/history shows the conversation, /new starts another, /exit (or Ctrl-D) ends; Ctrl-C cancels a turn";

async fn chat(args: ChatArgs) -> Outcome {
    let agent = target::agent(&args.target, "chat").await?;
    let (user, session) = identity(&args.who)?;
    let mut session = session.unwrap_or_else(SessionId::generate);
    println!("loom chat · session {session} · {CHAT_HELP}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        print!("you> ");
        let _ = std::io::stdout().flush();
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tokio::signal::ctrl_c() => {
                println!("\n(Ctrl-D or /exit ends the chat)");
                continue;
            }
        };
        let Some(line) = line else {
            println!();
            return Ok(());
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => return Ok(()),
            "/help" => {
                println!("{CHAT_HELP}");
                continue;
            }
            "/new" => {
                session = SessionId::generate();
                println!("(session {session})");
                continue;
            }
            "/history" => {
                for message in agent.session_store().load(&user, &session, None).await.map_err(Error::from)? {
                    println!("{}", describe(&message));
                }
                continue;
            }
            _ => {}
        }
        turn(&agent, line, &user, &session).await;
    }
}

/// One turn of a chat: streamed, cancelled by Ctrl-C, an error said and the chat goes on.
async fn turn(agent: &Agent, line: &str, user: &UserId, session: &SessionId) {
    let mut printer = Printer::new(false).prefix("loom> ");
    let mut stream = agent.run(line.to_owned()).user(user.clone()).session(session.clone()).stream();
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(event) => printer.event(&event),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                drop(stream);
                printer.abandon();
                println!("(turn cancelled)");
                return;
            }
        }
    }
    match stream.finish().await {
        Ok(result) => printer.finish(&result.output, serde_json::Value::Null),
        Err(e) => {
            printer.abandon();
            eprintln!("error: {e}");
        }
    }
}

/// A message as one line: its role and text.
fn describe(message: &Message) -> String {
    let value = serde_json::to_value(message).unwrap_or_default();
    let role = value.get("role").and_then(serde_json::Value::as_str).unwrap_or("message").to_owned();
    let text = message.text();
    if text.is_empty() { format!("{role}: {value}") } else { format!("{role}: {text}") }
}

async fn graph(args: GraphArgs) -> Outcome {
    let workflow = target::shape(&args.file).await?;
    match args.format {
        GraphFormat::Mermaid => print!("{}", workflow.to_mermaid()),
        GraphFormat::Dot => print!("{}", workflow.to_dot()),
    }
    Ok(())
}

async fn sessions(command: SessionsCommand) -> Outcome {
    match command {
        SessionsCommand::List { target, user: name } => {
            let agent = target::agent(&target, "sessions list").await?;
            for session in agent.session_store().sessions(&user(&name)?).await.map_err(Error::from)? {
                println!("{session}");
            }
        }
        SessionsCommand::Show { target, session: id, user: name, json } => {
            let agent = target::agent(&target, "sessions show").await?;
            let messages =
                agent.session_store().load(&user(&name)?, &session(&id)?, None).await.map_err(Error::from)?;
            if messages.is_empty() {
                return Err(Failure::failed(format!("no session `{id}` for user `{name}`")));
            }
            for message in &messages {
                if json {
                    println!("{}", serde_json::to_string(message).map_err(|e| Failure::failed(e.to_string()))?);
                } else {
                    println!("{}", describe(message));
                }
            }
        }
        SessionsCommand::Fork { target, session: from, into, user: name } => {
            let agent = target::agent(&target, "sessions fork").await?;
            let (user, from_id, into_id) = (user(&name)?, session(&from)?, session(&into)?);
            let store = agent.session_store();
            let messages = store.load(&user, &from_id, None).await.map_err(Error::from)?;
            if messages.is_empty() {
                return Err(Failure::failed(format!("no session `{from}` for user `{name}`")));
            }
            if !store.load(&user, &into_id, None).await.map_err(Error::from)?.is_empty() {
                return Err(Failure::failed(format!("session `{into}` already has messages; fork into a new one")));
            }
            store.append(&user, &into_id, RunId::generate(), &messages).await.map_err(Error::from)?;
            println!("forked {from} into {into} ({} messages)", messages.len());
        }
        SessionsCommand::Forget { target, session: id, user: name } => {
            let agent = target::agent(&target, "sessions forget").await?;
            let found = agent.session_store().clear(&user(&name)?, &session(&id)?).await.map_err(Error::from)?;
            if !found {
                return Err(Failure::failed(format!("no session `{id}` for user `{name}`")));
            }
            println!("forgot {id}");
        }
    }
    Ok(())
}

async fn runs(command: RunsCommand) -> Outcome {
    match command {
        RunsCommand::List { target, who } => {
            let agent = target::agent(&target, "runs list").await?;
            let (user, session) = identity(&who)?;
            let sessions = match session {
                Some(session) => vec![session],
                None => agent.session_store().sessions(&user).await.map_err(Error::from)?,
            };
            for session in sessions {
                for info in agent.runs(&user, &session).await? {
                    println!("{}\t{}\t{}\t{}", info.run, session, info.status, info.started_ms);
                }
            }
            Ok(())
        }
        RunsCommand::Resume { target, run, who, approve, deny, json } => {
            let agent = target::agent(&target, "runs resume").await?;
            let (user, session) = identity(&who)?;
            let Some(session) = session else {
                return Err(Failure::usage("`loom runs resume` needs the run's `--session`"));
            };
            let mut input = if run == "latest" {
                AgentInput::resume_latest()
            } else {
                let id: RunId = run.parse().map_err(|e| Failure::usage(format!("run `{run}`: {e}")))?;
                AgentInput::resume(id)
            };
            for call in approve {
                input = input.approve(call, Approval::Allow);
            }
            for call in deny {
                input = input.approve(call, Approval::deny("denied from the command line"));
            }
            let mut printer = Printer::new(json);
            let stream = agent.resume_with(input).user(user).session(session).stream();
            finish_agent_run(stream, &mut printer, &target.file).await
        }
    }
}

fn audit(command: AuditCommand) -> Outcome {
    let AuditCommand::Verify { file, key } = command;
    let key = loomflow::telemetry::audit::AuditKey::from_bytes(key.as_bytes())
        .map_err(|e| Failure::usage(format!("--key: {e}")))?;
    let report = loomflow::telemetry::audit::verify_file(&file, &key)
        .map_err(|e| Failure::failed(format!("{}: {e}", file.display())))?;
    if report.is_intact() {
        println!("{}: intact — {} entries, {} users", file.display(), report.entries, report.users);
        return Ok(());
    }
    for problem in &report.problems {
        println!("{problem}");
    }
    Err(Failure::failed(format!(
        "{}: {} problem(s) in {} entries of {} users",
        file.display(),
        report.problems.len(),
        report.entries,
        report.users
    )))
}

async fn serve(args: ServeArgs) -> Outcome {
    let address: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .or_else(|_| format!("[{}]:{}", args.host, args.port).parse())
        .map_err(|_| Failure::usage(format!("--host `{}` is not an IP address", args.host)))?;
    let stem = args.target.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "loom".into());
    let mut server = loomflow::serve::Server::new();
    let name = match target::build(&args.target).await? {
        Built::Agent(agent) => {
            let name = agent.agent_name().map(str::to_owned).unwrap_or(stem);
            server = server.agent(name.clone(), *agent);
            name
        }
        Built::Workflow(workflow) => {
            let name = workflow.name().to_owned();
            server = server.workflow(name.clone(), workflow);
            name
        }
    };
    if args.tokens.is_empty() {
        server = server.open();
    } else {
        let mut tokens = Vec::with_capacity(args.tokens.len());
        for entry in &args.tokens {
            let Some((token, who)) = entry.split_once('=') else {
                return Err(Failure::usage("--token takes TOKEN=USER"));
            };
            tokens.push((token.to_owned(), user(who)?));
        }
        server = server.bearer_tokens(tokens);
    }
    let service = server.address(address).build().map_err(Error::from)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {address}: {e}")))?;
    let bound = listener.local_addr()?;
    println!("loom serve: http://{bound} (model `{name}`; POST /v1/chat/completions, /runs; Ctrl-C stops)");
    let _ = std::io::stdout().flush();
    // Ctrl-C, or SIGTERM (what a service manager sends).
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    service.serve(listener, shutdown).await.map_err(|e| Failure::failed(e.to_string()))?;
    println!("loom serve: stopped");
    Ok(())
}
