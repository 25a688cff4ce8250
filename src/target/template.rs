//! Command templates: `{placeholder}`s filled in, then split into words the
//! way a POSIX shell would, and run without a shell so the harness owns the
//! process it kills.

/// Values for a template's placeholders; `None` leaves the placeholder
/// unavailable, and a template that uses it is an error.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    pub gauntlet: Option<String>,
    /// The mock's stdio command line, already shell-quoted.
    pub upstream: Option<String>,
    pub upstream_url: Option<String>,
    pub policy: Option<String>,
    pub policy_yaml: Option<String>,
    pub workdir: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
    /// Which instance of the target this is (0-based).
    pub replica: Option<usize>,
    /// A fresh Redis database for the scenario.
    pub redis_url: Option<String>,
    /// A command prefix running the enforcer under libfaketime (empty at
    /// normal speed), already shell-quoted.
    pub faketime: Option<String>,
}

const NAMES: [&str; 11] = [
    "gauntlet",
    "upstream",
    "upstream_url",
    "policy",
    "policy_yaml",
    "workdir",
    "port",
    "identity",
    "replica",
    "redis_url",
    "faketime",
];

impl Placeholders {
    fn get(&self, name: &str) -> Option<String> {
        // Everything but `upstream` is one word: quote it so a folder with a
        // space in its name cannot split an argument.
        let quote = |s: &String| shlex::try_quote(s).map(|q| q.into_owned()).ok();
        match name {
            "gauntlet" => self.gauntlet.as_ref().and_then(quote),
            "upstream" => self.upstream.clone(),
            "upstream_url" => self.upstream_url.as_ref().and_then(quote),
            "policy" => self.policy.as_ref().and_then(quote),
            "policy_yaml" => self.policy_yaml.as_ref().and_then(quote),
            "workdir" => self.workdir.as_ref().and_then(quote),
            "port" => self.port.map(|p| p.to_string()),
            "identity" => self.identity.as_ref().and_then(quote),
            "replica" => self.replica.map(|r| r.to_string()),
            "redis_url" => self.redis_url.as_ref().and_then(quote),
            "faketime" => self.faketime.clone(),
            _ => None,
        }
    }
}

/// Whether `template` uses `{name}`.
pub fn uses(template: &str, name: &str) -> bool {
    template.contains(&format!("{{{name}}}"))
}

/// Fills `template` and splits it into a program and its arguments.
pub fn expand(template: &str, values: &Placeholders) -> Result<Vec<String>, String> {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if NAMES.contains(&&after[..close]) => {
                let name = &after[..close];
                let value = values
                    .get(name)
                    .ok_or_else(|| format!("`{{{name}}}` is not available for this target"))?;
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            // Not a placeholder (a JSON brace, say): keep it as written.
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let words = shlex::split(&out).ok_or_else(|| format!("cannot split `{out}` into words"))?;
    if words.is_empty() {
        return Err("the command template is empty".into());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders {
        Placeholders {
            gauntlet: Some("/opt/my tools/gauntlet".into()),
            upstream: Some("'/opt/my tools/gauntlet' mock --stdio".into()),
            policy: Some("/tmp/w 1/policy.json".into()),
            workdir: Some("/tmp/w 1".into()),
            port: Some(4242),
            ..Placeholders::default()
        }
    }

    #[test]
    fn fills_and_splits_like_a_shell() {
        let words = expand(
            "python3 proxy.py --policy {policy} --state {workdir}/s.json --port {port} -- {upstream}",
            &values(),
        )
        .unwrap();
        assert_eq!(
            words,
            [
                "python3",
                "proxy.py",
                "--policy",
                "/tmp/w 1/policy.json",
                "--state",
                "/tmp/w 1/s.json",
                "--port",
                "4242",
                "--",
                "/opt/my tools/gauntlet",
                "mock",
                "--stdio"
            ]
        );
    }

    #[test]
    fn unknown_braces_are_kept_and_missing_values_are_errors() {
        let words = expand(r#"echo '{"a":1}'"#, &values()).unwrap();
        assert_eq!(words, ["echo", r#"{"a":1}"#]);
        let err = expand("x --to {upstream_url}", &values()).unwrap_err();
        assert_eq!(err, "`{upstream_url}` is not available for this target");
        assert!(uses("a {port} b", "port") && !uses("a {portx}", "port"));
    }
}
