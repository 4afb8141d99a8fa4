//! Every comment that cites a section cites one that exists: `PROTOCOL.md §N` or `§N.M`
//! must be a heading of PROTOCOL.md, `docs/ARCHITECTURE.md, "Name"` a heading of that
//! file, and nothing cites the design notes that live outside the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every `.rs` file of the workspace's crates (the fuzz crate included), not `target/`,
/// and not this file, whose own examples are not citations.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with(file!()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out
}

/// The section numbers of PROTOCOL.md (`2`, `2.4`, ...) and the headings of ARCHITECTURE.md.
fn headings() -> (BTreeSet<String>, BTreeSet<String>) {
    let protocol = std::fs::read_to_string(root().join("PROTOCOL.md")).expect("PROTOCOL.md");
    let numbers = protocol
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .filter_map(|h| h.split_whitespace().next())
        .map(|n| n.trim_end_matches('.').to_string())
        .collect();
    let arch =
        std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let names = arch
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| h.trim().to_string())
        .collect();
    (numbers, names)
}

/// The text as one line, comment markers removed: a citation may wrap between the file
/// name and its sections.
fn flatten(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.trim_start()
                .trim_start_matches("//!")
                .trim_start_matches("///")
                .trim_start_matches("//")
                .trim()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The section numbers cited after `PROTOCOL.md` in `text` (`§6.4`, `§2–§4`, `§3, §5`).
fn protocol_citations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let flat = flatten(text);
    let mut rest = flat.as_str();
    while let Some(i) = rest.find("PROTOCOL.md") {
        rest = &rest[i + "PROTOCOL.md".len()..];
        // The citation runs until the closing parenthesis or the end of the sentence (a
        // full stop not inside a number).
        let bytes = rest.as_bytes();
        let end = (0..bytes.len())
            .find(|&i| {
                matches!(bytes[i], b')' | b';' | b':')
                    || (bytes[i] == b'.' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            })
            .unwrap_or(rest.len());
        let cited = &rest[..end];
        for part in cited.split('§').skip(1) {
            let n: String = part
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let n = n.trim_end_matches('.').to_string();
            if !n.is_empty() {
                out.push(n);
            }
        }
    }
    out
}

/// The headings cited as `ARCHITECTURE.md, "Name"`.
fn architecture_citations(text: &str) -> Vec<String> {
    doc_citations(text, "ARCHITECTURE.md")
}

/// The headings cited as `FILE, "Name"` (a doc cited by its headings' names).
fn doc_citations(text: &str, file: &str) -> Vec<String> {
    let flat = flatten(text);
    let mut out = Vec::new();
    let mut rest = flat.as_str();
    while let Some(i) = rest.find(file) {
        rest = &rest[i + file.len()..];
        let end = rest.find(')').unwrap_or(rest.len());
        let cited = &rest[..end];
        for quoted in cited.split('"').skip(1).step_by(2) {
            out.push(quoted.to_string());
        }
    }
    out
}

#[test]
fn every_cited_section_exists() {
    let (numbers, names) = headings();
    assert!(
        numbers.contains("6.4") && names.contains("Where things go"),
        "{numbers:?} {names:?}"
    );
    let mut wrong = Vec::new();
    let mut cited = 0;
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let shown = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for n in protocol_citations(&text) {
            cited += 1;
            if !numbers.contains(&n) {
                wrong.push(format!("{shown}: PROTOCOL.md §{n}"));
            }
        }
        for h in architecture_citations(&text) {
            cited += 1;
            if !names.contains(&h) {
                wrong.push(format!("{shown}: docs/ARCHITECTURE.md \"{h}\""));
            }
        }
    }
    assert!(cited > 30, "found only {cited} citations");
    assert!(
        wrong.is_empty(),
        "citations of sections that do not exist: {wrong:#?}"
    );
}

#[test]
fn nothing_cites_the_design_notes_outside_the_repository() {
    let mut found = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let l = line.to_lowercase();
            // Spelled in pieces, so this file does not cite what it looks for.
            let design = "design";
            if [" §", " (§", ".md"]
                .iter()
                .any(|tail| l.contains(&format!("{design}{tail}")))
            {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_citation_parser_reads_ranges_lists_and_names() {
    assert_eq!(
        protocol_citations("// (PROTOCOL.md §2–§4, §6.1)\n// and PROTOCOL.md\n// §7.2. Then §9"),
        ["2", "4", "6.1", "7.2"]
    );
    assert_eq!(
        architecture_citations("//! (docs/ARCHITECTURE.md, \"The broker link\"; \"Crates\")"),
        ["The broker link", "Crates"]
    );
}

#[test]
fn every_cited_section_of_the_nats_notes_exists() {
    let doc = std::fs::read_to_string(root().join("docs/NATS.md")).expect("docs/NATS.md");
    let names: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_string())
        .collect();
    assert!(names.contains("Exactly once"), "{names:?}");
    let mut wrong = Vec::new();
    let mut cited = 0;
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for name in doc_citations(&text, "docs/NATS.md") {
            cited += 1;
            if !names.contains(&name) {
                wrong.push(format!("{}: docs/NATS.md, \"{name}\"", file.display()));
            }
        }
    }
    assert!(cited >= 5, "the NATS backend cites its notes");
    assert!(
        wrong.is_empty(),
        "cited sections that do not exist: {wrong:#?}"
    );
}
