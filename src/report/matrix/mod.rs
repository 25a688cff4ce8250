//! The published attack database: runs of one catalogue against several
//! enforcers, combined into a static site (HTML and Markdown side by side):
//!
//! - `index`: the enforcer × attack matrix, coloured by outcome;
//! - `attacks/<id>`: what the attack is, the policy, each enforcer's outcome
//!   and reproduction;
//! - `enforcers/<name>`: one enforcer's run, with latency figures when a load
//!   run was included.

mod pages;

use std::collections::BTreeMap;
use std::path::Path;

use super::RunReport;
use super::html::anchor;
use crate::oracle::Verdict;
use crate::run::{ScenarioReport, Status};

/// One enforcer's run, under the name the site shows.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// A file-name-safe, unique form of `name`.
    pub slug: String,
    pub report: RunReport,
}

impl Column {
    /// This run's report of `attack`, if it ran it.
    pub fn scenario(&self, attack: &str) -> Option<&ScenarioReport> {
        self.report.scenarios.iter().find(|s| s.id == attack)
    }
}

/// The runs to publish, lined up by attack.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub columns: Vec<Column>,
    /// Attack ids in first-seen order (the catalogue's order).
    pub attacks: Vec<String>,
}

impl Matrix {
    /// Lines up `runs` (name, report); names must be unique.
    pub fn new(runs: Vec<(String, RunReport)>) -> Result<Matrix, String> {
        let mut columns: Vec<Column> = Vec::new();
        let mut attacks: Vec<String> = Vec::new();
        for (name, report) in runs {
            if columns.iter().any(|c| c.name == name) {
                return Err(format!(
                    "two runs are named `{name}`: name them apart with NAME=RUN.json"
                ));
            }
            let base = slug(&name);
            let mut slug = base.clone();
            let mut n = 1;
            while columns.iter().any(|c| c.slug == slug) {
                n += 1;
                slug = format!("{base}-{n}");
            }
            for s in &report.scenarios {
                if !attacks.contains(&s.id) {
                    attacks.push(s.id.clone());
                }
            }
            columns.push(Column { name, slug, report });
        }
        if columns.is_empty() {
            return Err("no runs to combine".into());
        }
        Ok(Matrix { columns, attacks })
    }

    /// The attack's description as the first run that has it tells it.
    pub fn attack(&self, attack: &str) -> Option<&ScenarioReport> {
        self.columns.iter().find_map(|c| c.scenario(attack))
    }

    /// Attack ids grouped by category, categories in first-seen order.
    pub fn by_category(&self) -> Vec<(String, Vec<&str>)> {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for id in &self.attacks {
            let cat = self
                .attack(id)
                .map(|s| s.category.to_string())
                .unwrap_or_default();
            match groups.iter_mut().find(|(c, _)| *c == cat) {
                Some((_, ids)) => ids.push(id),
                None => groups.push((cat, vec![id])),
            }
        }
        groups
    }
}

/// A file-name-safe form of a name.
pub fn slug(name: &str) -> String {
    let mut s = anchor(&name.to_ascii_lowercase());
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s: String = s.trim_matches('-').chars().take(60).collect();
    if s.is_empty() { "run".into() } else { s }
}

/// The one word a matrix cell shows: what the enforcer did about the attack.
pub fn outcome(s: &ScenarioReport) -> &'static str {
    match s.status {
        Status::Passed => "held",
        Status::Broken => "broken",
        Status::Error => "error",
        Status::Skipped => "n/a",
        Status::Failed => {
            // The worst verdict among the findings names the failure.
            const WORST_FIRST: [Verdict; 5] = [
                Verdict::Leaked,
                Verdict::Spoofed,
                Verdict::OverBlocked,
                Verdict::Crashed,
                Verdict::Hung,
            ];
            let found: Vec<Verdict> = s
                .target
                .iter()
                .flat_map(|t| &t.findings)
                .map(|f| f.verdict)
                .collect();
            WORST_FIRST
                .iter()
                .find(|v| found.contains(v))
                .map_or("failed", |v| v.as_str())
        }
    }
}

/// What `write_site` wrote.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub files: Vec<String>,
}

/// Writes the site under `dir`.
pub fn write_site(matrix: &Matrix, dir: &Path) -> Result<Site, String> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    files.insert("index.html".into(), pages::index_html(matrix));
    files.insert("index.md".into(), pages::index_md(matrix));
    for id in &matrix.attacks {
        let stem = format!("attacks/{}", anchor(id));
        files.insert(format!("{stem}.html"), pages::attack_html(matrix, id));
        files.insert(format!("{stem}.md"), pages::attack_md(matrix, id));
    }
    for c in &matrix.columns {
        let stem = format!("enforcers/{}", c.slug);
        files.insert(format!("{stem}.html"), pages::enforcer_html(matrix, c));
        files.insert(format!("{stem}.md"), pages::enforcer_md(matrix, c));
    }
    for sub in ["attacks", "enforcers"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating `{}`: {e}", p.display()))?;
    }
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing `{}`: {e}", path.display()))?;
    }
    Ok(Site {
        files: files.into_keys().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_unique() {
        assert_eq!(
            slug("cmd: python3 proxy.py --flaw=batch"),
            "cmd-python3-proxy-py-flaw-batch"
        );
        assert_eq!(slug("///"), "run");
        let empty = |_: ()| RunReport {
            info: None,
            scenarios: Vec::new(),
            summary: Default::default(),
            bench: None,
        };
        let m = Matrix::new(vec![("a b".into(), empty(())), ("a-b".into(), empty(()))]).unwrap();
        assert_eq!(m.columns[0].slug, "a-b");
        assert_eq!(m.columns[1].slug, "a-b-2");
        assert!(Matrix::new(vec![("x".into(), empty(())), ("x".into(), empty(()))]).is_err());
        assert!(Matrix::new(Vec::new()).is_err());
    }
}
