//! The environment a command sees: a few harmless variables of the parent, the ones the user
//! named, and nothing else — no API keys, tokens or credentials leak into the child.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The parent's variables that pass by default: how to find programs, the language, the
/// terminal and the time zone.
const ALLOWED: &[&str] = &["PATH", "LANG", "LANGUAGE", "TERM", "TZ"];

/// `PATH` when the parent has none.
pub(super) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the parent's environment comes from.
#[derive(Debug, Clone, Default)]
pub(super) enum ParentEnv {
    /// This process's environment, read when a command starts.
    #[default]
    Process,
    /// A given set of variables (for tests, or a host that keeps its own).
    Given(Vec<(OsString, OsString)>),
}

impl ParentEnv {
    fn vars(&self) -> Vec<(OsString, OsString)> {
        match self {
            Self::Process => std::env::vars_os().collect(),
            Self::Given(vars) => vars.clone(),
        }
    }
}

/// What goes into a command's environment, in the order later entries win: the allowed and
/// passed variables of the parent, the defaults, the shell's variables, the command's.
pub(super) struct EnvPlan<'a> {
    pub(super) parent: &'a ParentEnv,
    /// Names of the parent's variables to pass as well.
    pub(super) pass: &'a [OsString],
    /// Extra names allowed by default in this mode (`TMPDIR` without the sandbox).
    pub(super) also_allowed: &'a [&'a str],
    pub(super) defaults: Vec<(OsString, OsString)>,
    pub(super) shell: &'a [(OsString, OsString)],
    pub(super) command: &'a [(OsString, OsString)],
}

impl EnvPlan<'_> {
    pub(super) fn build(self) -> Vec<(OsString, OsString)> {
        let mut env = BTreeMap::new();
        for (name, value) in self.parent.vars() {
            let allowed = ALLOWED.iter().chain(self.also_allowed).any(|a| name == OsStr::new(a))
                || name.as_bytes().starts_with(b"LC_")
                || self.pass.contains(&name);
            if allowed {
                env.insert(name, value);
            }
        }
        env.entry(OsString::from("PATH")).or_insert_with(|| OsString::from(DEFAULT_PATH));
        for (name, value) in
            self.defaults.into_iter().chain(self.shell.iter().cloned()).chain(self.command.iter().cloned())
        {
            env.insert(name, value);
        }
        env.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    #[test]
    fn only_allowed_passed_and_given_variables_reach_the_command() {
        let parent = ParentEnv::Given(vars(&[
            ("PATH", "/usr/bin"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "en_GB.UTF-8"),
            ("OPENAI_API_KEY", "sk-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("HOME", "/root"),
            ("PROJECT", "loom"),
        ]));
        let env = EnvPlan {
            parent: &parent,
            pass: &[OsString::from("PROJECT")],
            also_allowed: &[],
            defaults: vars(&[("HOME", "/tmp/home")]),
            shell: &vars(&[("MODE", "test")]),
            command: &vars(&[("MODE", "call")]),
        }
        .build();
        assert_eq!(
            env,
            vars(&[
                ("HOME", "/tmp/home"),
                ("LANG", "C.UTF-8"),
                ("LC_TIME", "en_GB.UTF-8"),
                ("MODE", "call"),
                ("PATH", "/usr/bin"),
                ("PROJECT", "loom"),
            ])
        );
    }

    #[test]
    fn a_parent_without_path_gets_the_usual_one() {
        let parent = ParentEnv::Given(Vec::new());
        let env = EnvPlan { parent: &parent, pass: &[], also_allowed: &[], defaults: vec![], shell: &[], command: &[] }
            .build();
        assert_eq!(env, vars(&[("PATH", DEFAULT_PATH)]));
    }
}
